//! The SQL catalog in PostgreSQL: the same two tables as the SQLite file (pyiceberg's
//! `SqlCatalog` and Iceberg's JDBC catalog keep them in any database), for teams whose writers
//! and readers run on many machines. A commit is the same compare-and-swap of the table's row.

use tokio_postgres::{Client, NoTls};

use super::sql::TABLES;

pub struct Postgres {
    client: Client,
    name: String,
    /// The URI without its password, for messages.
    shown: String,
    /// Whether the table has pyiceberg's `iceberg_type` column.
    typed: bool,
}

impl Postgres {
    /// Connects (`postgresql://user:password@host:port/database`; a SQLAlchemy `+driver` is
    /// passed over) and creates the catalog's tables if they are missing.
    pub async fn open(uri: &str, name: &str) -> Result<Postgres, String> {
        let uri = match uri.split_once("://") {
            Some((scheme, rest)) if scheme.starts_with("postgresql+") => format!("postgresql://{rest}"),
            _ => uri.to_string(),
        };
        let shown = match url::Url::parse(&uri) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                url.to_string()
            }
            _ => uri.clone(),
        };
        let error = |e: &dyn std::fmt::Display| format!("the Iceberg catalog {shown}: {e}");
        let (client, connection) = tokio_postgres::connect(&uri, NoTls).await.map_err(|e| error(&e))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "the Iceberg catalog's PostgreSQL connection ended");
            }
        });
        // Two writers starting at once may both try to create the tables: the loser's error
        // is no error when the tables are there.
        if let Err(e) = client.batch_execute(TABLES).await {
            let there = client
                .query_one("SELECT to_regclass('iceberg_tables') IS NOT NULL AND to_regclass('iceberg_namespace_properties') IS NOT NULL", &[])
                .await
                .map(|row| row.get::<_, bool>(0))
                .unwrap_or(false);
            if !there {
                return Err(error(&e));
            }
        }
        let typed: i64 = client
            .query_one(
                "SELECT count(*) FROM information_schema.columns WHERE table_name = 'iceberg_tables' AND column_name = 'iceberg_type'",
                &[],
            )
            .await
            .map_err(|e| error(&e))?
            .get(0);
        Ok(Postgres { client, name: name.to_string(), shown, typed: typed > 0 })
    }

    fn error(&self, e: impl std::fmt::Display) -> String {
        format!("the Iceberg catalog {}: {e}", self.shown)
    }

    pub async fn load(&self, namespace: &str, name: &str) -> Result<Option<String>, String> {
        let query = if self.typed {
            "SELECT metadata_location FROM iceberg_tables WHERE catalog_name = $1 AND table_namespace = $2 AND table_name = $3 AND (iceberg_type IS NULL OR iceberg_type = 'TABLE')"
        } else {
            "SELECT metadata_location FROM iceberg_tables WHERE catalog_name = $1 AND table_namespace = $2 AND table_name = $3"
        };
        let row = self.client.query_opt(query, &[&self.name, &namespace, &name]).await.map_err(|e| self.error(e))?;
        Ok(row.and_then(|r| r.get::<_, Option<String>>(0)))
    }

    pub async fn create(&self, namespace: &str, name: &str, metadata_location: &str) -> Result<bool, String> {
        self.client
            .execute(
                "INSERT INTO iceberg_namespace_properties (catalog_name, namespace, property_key, property_value) VALUES ($1, $2, 'exists', 'true') ON CONFLICT DO NOTHING",
                &[&self.name, &namespace],
            )
            .await
            .map_err(|e| self.error(e))?;
        let insert = if self.typed {
            "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, metadata_location, previous_metadata_location, iceberg_type) VALUES ($1, $2, $3, $4, NULL, 'TABLE') ON CONFLICT DO NOTHING"
        } else {
            "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, metadata_location, previous_metadata_location) VALUES ($1, $2, $3, $4, NULL) ON CONFLICT DO NOTHING"
        };
        let added = self
            .client
            .execute(insert, &[&self.name, &namespace, &name, &metadata_location])
            .await
            .map_err(|e| self.error(e))?;
        Ok(added == 1)
    }

    pub async fn swap(&self, namespace: &str, name: &str, old: &str, new: &str) -> Result<bool, String> {
        let changed = self
            .client
            .execute(
                "UPDATE iceberg_tables SET metadata_location = $1, previous_metadata_location = $2
                 WHERE catalog_name = $3 AND table_namespace = $4 AND table_name = $5 AND metadata_location = $2",
                &[&new, &old, &self.name, &namespace, &name],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(changed == 1)
    }
}
