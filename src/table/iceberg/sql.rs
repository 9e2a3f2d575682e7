//! The SQL catalog: the two tables pyiceberg's `SqlCatalog` (and Iceberg's JDBC catalog) keep,
//! in a SQLite file. A table is one row naming its current metadata file; a commit is a
//! compare-and-swap of that name, so of two writers that read the same metadata, one wins and
//! the other reloads and tries again. pyiceberg, polars and DuckDB (through pyiceberg) open the
//! same file with `SqlCatalog(name, uri="sqlite:///...")`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

/// How long a statement waits for another writer's transaction on the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// The SQL catalog's two tables, as pyiceberg creates them (SQLite and PostgreSQL alike).
pub const TABLES: &str = "CREATE TABLE IF NOT EXISTS iceberg_tables (
        catalog_name VARCHAR(255) NOT NULL,
        table_namespace VARCHAR(255) NOT NULL,
        table_name VARCHAR(255) NOT NULL,
        metadata_location VARCHAR(1000),
        previous_metadata_location VARCHAR(1000),
        iceberg_type VARCHAR(5),
        PRIMARY KEY (catalog_name, table_namespace, table_name));
    CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (
        catalog_name VARCHAR(255) NOT NULL,
        namespace VARCHAR(255) NOT NULL,
        property_key VARCHAR(255) NOT NULL,
        property_value VARCHAR(1000) NOT NULL,
        PRIMARY KEY (catalog_name, namespace, property_key));";

pub struct Sql {
    path: PathBuf,
    name: String,
    /// Whether the table has pyiceberg's `iceberg_type` column (catalogs made by Iceberg's
    /// JDBC catalog in its first layout, or older pyiceberg, do not).
    typed: bool,
}

impl Sql {
    /// Opens (creating if needed) the catalog file, with the tables pyiceberg would create.
    pub fn open(path: &Path, name: &str) -> Result<Sql, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        let mut catalog = Sql { path: path.to_path_buf(), name: name.to_string(), typed: true };
        let db = catalog.connect()?;
        db.execute_batch(TABLES).map_err(|e| catalog.error(e))?;
        let columns: Vec<String> = db
            .prepare("SELECT name FROM pragma_table_info('iceberg_tables')")
            .and_then(|mut q| q.query_map([], |r| r.get::<_, String>(0))?.collect())
            .map_err(|e| catalog.error(e))?;
        catalog.typed = columns.iter().any(|c| c == "iceberg_type");
        Ok(catalog)
    }

    fn connect(&self) -> Result<Connection, String> {
        let db = Connection::open(&self.path).map_err(|e| self.error(e))?;
        db.busy_timeout(BUSY_TIMEOUT).map_err(|e| self.error(e))?;
        Ok(db)
    }

    fn error(&self, e: impl std::fmt::Display) -> String {
        format!("the Iceberg catalog {}: {e}", self.path.display())
    }

    /// The current metadata file of `namespace.name`, `None` when the catalog has no such table.
    pub fn load(&self, namespace: &str, name: &str) -> Result<Option<String>, String> {
        self.connect()?
            .query_row(
                if self.typed {
                    "SELECT metadata_location FROM iceberg_tables WHERE catalog_name = ?1 AND table_namespace = ?2 AND table_name = ?3 AND (iceberg_type IS NULL OR iceberg_type = 'TABLE')"
                } else {
                    "SELECT metadata_location FROM iceberg_tables WHERE catalog_name = ?1 AND table_namespace = ?2 AND table_name = ?3"
                },
                params![self.name, namespace, name],
                |row| row.get::<_, Option<String>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.error(e))
    }

    /// Registers a new table (and its namespace): false when another writer registered it first.
    pub fn create(&self, namespace: &str, name: &str, metadata_location: &str) -> Result<bool, String> {
        let db = self.connect()?;
        db.execute(
            "INSERT OR IGNORE INTO iceberg_namespace_properties VALUES (?1, ?2, 'exists', 'true')",
            params![self.name, namespace],
        )
        .map_err(|e| self.error(e))?;
        let insert = if self.typed {
            "INSERT OR IGNORE INTO iceberg_tables (catalog_name, table_namespace, table_name, metadata_location, previous_metadata_location, iceberg_type) VALUES (?1, ?2, ?3, ?4, NULL, 'TABLE')"
        } else {
            "INSERT OR IGNORE INTO iceberg_tables (catalog_name, table_namespace, table_name, metadata_location, previous_metadata_location) VALUES (?1, ?2, ?3, ?4, NULL)"
        };
        let added =
            db.execute(insert, params![self.name, namespace, name, metadata_location]).map_err(|e| self.error(e))?;
        Ok(added == 1)
    }

    /// Points the table at `new` if it still points at `old`: false when another writer
    /// committed in between.
    pub fn swap(&self, namespace: &str, name: &str, old: &str, new: &str) -> Result<bool, String> {
        let changed = self
            .connect()?
            .execute(
                "UPDATE iceberg_tables SET metadata_location = ?1, previous_metadata_location = ?2
                 WHERE catalog_name = ?3 AND table_namespace = ?4 AND table_name = ?5 AND metadata_location = ?2",
                params![new, old, self.name, namespace, name],
            )
            .map_err(|e| self.error(e))?;
        Ok(changed == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swap_from_a_stale_location_fails() {
        let dir = std::env::temp_dir().join(format!("t3-catalog-{}", uuid::Uuid::new_v4().simple()));
        let catalog = Sql::open(&dir.join("catalog.db"), "default").unwrap();
        assert!(catalog.create("ns", "orders", "m0").unwrap());
        assert!(!catalog.create("ns", "orders", "other").unwrap());
        assert!(catalog.swap("ns", "orders", "m0", "m1").unwrap());
        assert!(!catalog.swap("ns", "orders", "m0", "m2").unwrap());
        assert_eq!(catalog.load("ns", "orders").unwrap().as_deref(), Some("m1"));
        assert_eq!(catalog.load("ns", "missing").unwrap(), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_catalog_in_the_first_jdbc_layout_takes_tables_too() {
        let dir = std::env::temp_dir().join(format!("t3-catalog-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("catalog.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE iceberg_tables (catalog_name VARCHAR(255) NOT NULL, table_namespace VARCHAR(255) NOT NULL,
                 table_name VARCHAR(255) NOT NULL, metadata_location VARCHAR(1000), previous_metadata_location VARCHAR(1000),
                 PRIMARY KEY (catalog_name, table_namespace, table_name))",
            )
            .unwrap();
        let catalog = Sql::open(&path, "default").unwrap();
        assert!(catalog.create("ns", "orders", "m0").unwrap());
        assert_eq!(catalog.load("ns", "orders").unwrap().as_deref(), Some("m0"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
