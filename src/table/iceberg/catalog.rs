//! Where a table's current metadata is named, and how a commit moves it on: the SQL catalog, in
//! a SQLite file or PostgreSQL (target-s3 writes the next metadata file and swaps the catalog
//! row to it), or a REST catalog
//! (the server applies the commit's updates, checked against its requirements). Either way a
//! commit is one [`Changes`] on top of the metadata it was worked out from, and fails, without
//! effect, when another writer committed first.

use serde_json::{Value, json};

use super::postgres::Postgres;
use super::rest::Rest;
use super::sql::Sql;
use crate::table::store::TableStore;

pub enum Catalog {
    Sql(Sql),
    Postgres(Postgres),
    Rest(Rest),
}

/// A table's current metadata: its file's URI and its JSON.
pub type Current = (String, Value);

/// Where a table lives: its folder (key in the store) and its location URI.
pub struct Place<'a> {
    pub folder: &'a str,
    pub location: &'a str,
}

/// What one commit changes in a table's metadata.
#[derive(Default, Clone)]
pub struct Changes {
    /// A new current schema (with its `schema-id`) and the table's new `last-column-id`.
    pub schema: Option<(Value, i64)>,
    /// Table properties set.
    pub properties: Vec<(String, String)>,
    /// A new snapshot, made the head of the `main` branch.
    pub snapshot: Option<Value>,
    /// Snapshots expired (`iceberg_expire_snapshots_days`).
    pub expired: Vec<i64>,
}

impl Changes {
    /// `base` with these changes: the SQL catalog's next metadata file (`base_uri` its current),
    /// and the metadata files it no longer lists, which the table's properties
    /// (`write.metadata.delete-after-commit.enabled`, `write.metadata.previous-versions-max`)
    /// ask to delete once it is committed.
    fn apply(&self, base: &Value, base_uri: &str) -> (Value, Vec<String>) {
        let mut metadata = base.clone();
        if let Some((schema, last_column_id)) = &self.schema {
            push(&mut metadata["schemas"], schema.clone());
            metadata["current-schema-id"] = schema["schema-id"].clone();
            metadata["last-column-id"] = Value::from(*last_column_id);
        }
        for (key, value) in &self.properties {
            metadata["properties"][key] = Value::from(value.as_str());
        }
        let previous_ms = base["last-updated-ms"].as_i64().unwrap_or(0);
        let mut now = chrono::Utc::now().timestamp_millis().max(previous_ms + 1);
        if let Some(snapshot) = &self.snapshot {
            let id = snapshot["snapshot-id"].clone();
            now = now.max(snapshot["timestamp-ms"].as_i64().unwrap_or(0));
            push(&mut metadata["snapshots"], snapshot.clone());
            push(&mut metadata["snapshot-log"], json!({"snapshot-id": id, "timestamp-ms": snapshot["timestamp-ms"]}));
            metadata["refs"]["main"] = json!({"snapshot-id": id, "type": "branch"});
            metadata["current-snapshot-id"] = id;
            metadata["last-sequence-number"] = snapshot["sequence-number"].clone();
        }
        if !self.expired.is_empty() {
            let kept = |e: &Value| !e["snapshot-id"].as_i64().is_some_and(|id| self.expired.contains(&id));
            for list in ["snapshots", "snapshot-log"] {
                if let Some(items) = metadata[list].as_array_mut() {
                    items.retain(kept);
                }
            }
        }
        push(&mut metadata["metadata-log"], json!({"metadata-file": base_uri, "timestamp-ms": previous_ms}));
        metadata["last-updated-ms"] = Value::from(now);
        let properties = &metadata["properties"];
        let mut dropped = Vec::new();
        if properties["write.metadata.delete-after-commit.enabled"].as_str() == Some("true") {
            let keep =
                properties["write.metadata.previous-versions-max"].as_str().and_then(|n| n.parse().ok()).unwrap_or(100);
            if let Some(log) = metadata["metadata-log"].as_array_mut()
                && log.len() > keep
            {
                let cut = log.len() - keep;
                dropped = log.drain(..cut).filter_map(|e| e["metadata-file"].as_str().map(str::to_string)).collect();
            }
        }
        (metadata, dropped)
    }

    /// The REST catalog's commit request: these changes, required to apply to `base` (the same
    /// table, the same `main` head, the same schema when it changes).
    fn request(&self, base: &Value) -> Value {
        let head = base["refs"]["main"]["snapshot-id"].clone();
        let mut requirements = vec![
            json!({"type": "assert-table-uuid", "uuid": base["table-uuid"]}),
            json!({"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": head}),
        ];
        let mut updates = Vec::new();
        if let Some((schema, last_column_id)) = &self.schema {
            requirements
                .push(json!({"type": "assert-current-schema-id", "current-schema-id": base["current-schema-id"]}));
            requirements.push(
                json!({"type": "assert-last-assigned-field-id", "last-assigned-field-id": base["last-column-id"]}),
            );
            updates.push(json!({"action": "add-schema", "schema": schema, "last-column-id": last_column_id}));
            updates.push(json!({"action": "set-current-schema", "schema-id": -1}));
        }
        if !self.properties.is_empty() {
            let set: serde_json::Map<String, Value> =
                self.properties.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect();
            updates.push(json!({"action": "set-properties", "updates": set}));
        }
        if let Some(snapshot) = &self.snapshot {
            updates.push(json!({"action": "add-snapshot", "snapshot": snapshot}));
            updates.push(json!({"action": "set-snapshot-ref", "ref-name": "main", "type": "branch", "snapshot-id": snapshot["snapshot-id"]}));
        }
        if !self.expired.is_empty() {
            updates.push(json!({"action": "remove-snapshots", "snapshot-ids": self.expired}));
        }
        json!({"requirements": requirements, "updates": updates})
    }
}

pub fn push(list: &mut Value, item: Value) {
    match list.as_array_mut() {
        Some(items) => items.push(item),
        None => *list = Value::Array(vec![item]),
    }
}

/// Writes `name` inside the table's folder; returns its URI.
pub async fn put(store: &TableStore, place: &Place<'_>, name: &str, body: Vec<u8>) -> Result<String, String> {
    let key = format!("{}/{name}", place.folder);
    store.put(&key, body).await.map_err(|e| format!("writing {key}: {e}"))?;
    Ok(format!("{}/{name}", place.location))
}

/// Writes the metadata file of a new metadata version.
async fn write_metadata(store: &TableStore, place: &Place<'_>, metadata: &Value) -> Result<String, String> {
    let version = metadata["metadata-log"].as_array().map_or(0, Vec::len);
    let name = format!("metadata/{version:05}-{}.metadata.json", uuid::Uuid::new_v4());
    put(store, place, &name, serde_json::to_vec_pretty(metadata).expect("JSON serializes")).await
}

impl Catalog {
    /// A SQL catalog's row: the table's current metadata file.
    async fn row(&self, namespace: &str, name: &str) -> Result<Option<String>, String> {
        match self {
            Catalog::Sql(sql) => sql.load(namespace, name),
            Catalog::Postgres(pg) => pg.load(namespace, name).await,
            Catalog::Rest(_) => unreachable!("a REST catalog has no rows"),
        }
    }

    async fn insert(&self, namespace: &str, name: &str, uri: &str) -> Result<bool, String> {
        match self {
            Catalog::Sql(sql) => sql.create(namespace, name, uri),
            Catalog::Postgres(pg) => pg.create(namespace, name, uri).await,
            Catalog::Rest(_) => unreachable!("a REST catalog has no rows"),
        }
    }

    async fn swap(&self, namespace: &str, name: &str, old: &str, new: &str) -> Result<bool, String> {
        match self {
            Catalog::Sql(sql) => sql.swap(namespace, name, old, new),
            Catalog::Postgres(pg) => pg.swap(namespace, name, old, new).await,
            Catalog::Rest(_) => unreachable!("a REST catalog has no rows"),
        }
    }

    /// The table's current metadata, `None` when the catalog has no such table.
    pub async fn load(&self, store: &TableStore, namespace: &str, name: &str) -> Result<Option<Current>, String> {
        match self {
            Catalog::Sql(_) | Catalog::Postgres(_) => {
                let Some(uri) = self.row(namespace, name).await? else { return Ok(None) };
                let key = store
                    .key_of(&uri)
                    .ok_or_else(|| format!("the catalog names the metadata {uri}, outside the destination"))?;
                let bytes = store.get(&key).await.map_err(|e| format!("reading {uri}: {e}"))?;
                let metadata = serde_json::from_slice(&bytes).map_err(|e| format!("reading {uri}: {e}"))?;
                Ok(Some((uri, metadata)))
            }
            Catalog::Rest(rest) => rest.load(namespace, name).await,
        }
    }

    /// Registers the new table whose first metadata is `metadata`: its current metadata, or
    /// `None` when another writer registered the name first.
    pub async fn create(
        &self,
        store: &TableStore,
        (namespace, name): (&str, &str),
        place: &Place<'_>,
        metadata: Value,
    ) -> Result<Option<Current>, String> {
        match self {
            Catalog::Sql(_) | Catalog::Postgres(_) => {
                let uri = write_metadata(store, place, &metadata).await?;
                Ok(self.insert(namespace, name, &uri).await?.then_some((uri, metadata)))
            }
            Catalog::Rest(rest) => rest.create(namespace, name, &metadata).await,
        }
    }

    /// Commits `changes` on top of `base`: the new current metadata, or `None` when another
    /// writer committed first (nothing changed). An error leaves the outcome unknown.
    pub async fn commit(
        &self,
        store: &TableStore,
        (namespace, name): (&str, &str),
        place: &Place<'_>,
        base: &Current,
        changes: &Changes,
    ) -> Result<Option<Current>, String> {
        match self {
            Catalog::Sql(_) | Catalog::Postgres(_) => {
                let (metadata, dropped) = changes.apply(&base.1, &base.0);
                let uri = write_metadata(store, place, &metadata).await?;
                if !self.swap(namespace, name, &base.0, &uri).await? {
                    return Ok(None);
                }
                for old in dropped {
                    // Best effort, as Iceberg's own writers do: a file left behind is only space.
                    if let Some(key) = store.key_of(&old)
                        && let Err(e) = store.delete(&key).await
                    {
                        tracing::warn!(file = %old, error = %e, "could not delete an old metadata file");
                    }
                }
                Ok(Some((uri, metadata)))
            }
            Catalog::Rest(rest) => rest.commit(namespace, name, &changes.request(&base.1)).await,
        }
    }
}
