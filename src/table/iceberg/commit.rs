//! Committing to an Iceberg table: the schema a stream's SCHEMA needs (before its files carry
//! the new columns' ids), and a round's append snapshot: the manifest of its files, the manifest
//! list carrying the parent's manifests on, the snapshot summary with target-s3's round record.
//! Each is one [`Changes`] on the metadata it was worked out from, tried again on a newer one
//! when another writer committed first.

use std::time::Duration;

use deltalake_core::kernel::StructType;
use serde_json::{Value, json};

use super::catalog::{self, Changes, Current};
use super::manifest::{self, DataFile};
use super::{COMMIT_ATTEMPTS, IcebergTable, NewFile, Prepared, RECORD_KEY, Version, partition, schema};
use crate::table::store::TableStore;

impl IcebergTable {
    /// Appends `files` in one snapshot whose summary (and the table property of the pipeline)
    /// carries `record`, evolving the schema to `columns` first when they add columns. Another
    /// writer's commit in between: reloaded and tried again; a table that already holds `txn`
    /// (an earlier attempt whose answer was lost) is not committed to again.
    pub async fn append(
        &mut self,
        store: &TableStore,
        (new_files, written): (&[NewFile<'_>], &[(i64, String)]),
        columns: &StructType,
        (pipeline_id, txn): (&str, i64),
        record: &Value,
    ) -> Result<Version, String> {
        let mut files: Vec<DataFile> = Vec::with_capacity(new_files.len());
        let snapshot_id =
            i64::from_ne_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().expect("8 bytes")) & i64::MAX;
        let mut manifest: Option<manifest::Added> = None;
        for attempt in 1..=COMMIT_ATTEMPTS {
            if !self.load(store).await? {
                return Err(format!("the table {} is no longer in the catalog", self.identifier()));
            }
            if self.held(pipeline_id) >= Some(txn) {
                if self.holds(record) {
                    tracing::warn!(table = %self.identifier(), "the table already holds this commit (an answer lost on the way back)");
                    return Ok(self.metadata()["last-sequence-number"].as_i64().unwrap_or(0));
                }
                return Err(crate::table::concurrent_run(pipeline_id, self.held(pipeline_id), txn));
            }
            // Every id the files were written with must still be the table's: a column another
            // writer dropped meanwhile would read as null from them.
            let have = schema::ids(self.fields());
            if let Some((id, name)) = written.iter().find(|(id, _)| !have.iter().any(|(h, _)| h == id)) {
                return Err(format!(
                    "the column {name:?} (field id {id}) was dropped from the table {} by another writer while this run was loading; this run's files name it by that id, so readers would read its values as null: nothing of this round was committed to this table; rerun from the last printed STATE (the column is then added again, with a new id)",
                    self.identifier()
                ));
            }
            let base = self.current.clone().expect("loaded");
            let mut changes = Changes { schema: self.evolve(&base.1, columns)?, ..Changes::default() };
            let schema = changes.schema.as_ref().map_or_else(|| self.schema_of(&base.1).clone(), |(s, _)| s.clone());
            let schema_id = schema["schema-id"].as_i64().unwrap_or(0);
            let added = match &manifest {
                Some(added) => added,
                None => {
                    // The files' partition tuples, typed as the table's spec has them.
                    let (spec_id, spec, spec_json) = partition::spec(&base.1, self.fields());
                    for f in new_files {
                        let mut tuple = Vec::with_capacity(spec.len());
                        for field in &spec {
                            let granularity =
                                self.partitions.iter().find(|p| p.column == field.name).and_then(|p| p.granularity);
                            let text = f.values.get(&field.name).and_then(Option::as_deref);
                            tuple.push(partition::datum(field, granularity, text)?);
                        }
                        let stats = super::stats::read(store, &f.key, f.bytes).await?;
                        files.push(DataFile {
                            path: f.path.clone(),
                            records: f.records,
                            bytes: f.bytes,
                            partition: tuple,
                            stats,
                        });
                    }
                    let spec = manifest::Spec { id: spec_id, fields: &spec, json: &spec_json };
                    let body = manifest::manifest(&files, snapshot_id, (&schema.to_string(), schema_id), &spec)?;
                    let length = body.len() as u64;
                    let name = format!("metadata/{}-m0.avro", uuid::Uuid::new_v4());
                    let path = catalog::put(store, &self.place(), &name, body).await?;
                    let records = files.iter().map(|f| f.records).sum();
                    let partitions = (0..spec.fields.len())
                        .map(|i| partition::summary(files.iter().map(|f| &f.partition[i])))
                        .collect();
                    manifest.insert(manifest::Added {
                        path,
                        length,
                        files: files.len() as u64,
                        records,
                        spec_id,
                        partitions,
                    })
                }
            };
            let metadata = &base.1;
            let parent = metadata["current-snapshot-id"].as_i64().filter(|id| *id >= 0);
            let parent_snapshot = parent.and_then(|id| {
                metadata["snapshots"].as_array().and_then(|s| s.iter().find(|s| s["snapshot-id"] == id)).cloned()
            });
            let parent_list = match parent_snapshot.as_ref().and_then(|s| s["manifest-list"].as_str()) {
                Some(uri) => {
                    let key = store
                        .key_of(uri)
                        .ok_or_else(|| format!("the manifest list {uri} is outside the destination"))?;
                    Some(store.get(&key).await.map_err(|e| format!("reading {uri}: {e}"))?)
                }
                None => None,
            };
            let sequence = metadata["last-sequence-number"].as_i64().unwrap_or(0) + 1;
            let list = manifest::manifest_list(parent_list.as_deref(), added, snapshot_id, parent, sequence)?;
            let name = format!("metadata/snap-{snapshot_id}-{attempt}-{}.avro", uuid::Uuid::new_v4());
            let list_uri = catalog::put(store, &self.place(), &name, list).await?;
            let now = chrono::Utc::now().timestamp_millis().max(metadata["last-updated-ms"].as_i64().unwrap_or(0) + 1);
            let mut snapshot = json!({
                "snapshot-id": snapshot_id,
                "sequence-number": sequence,
                "timestamp-ms": now,
                "manifest-list": list_uri,
                "summary": summary(parent_snapshot.as_ref(), &files, record),
                "schema-id": schema_id,
            });
            if let Some(parent) = parent {
                snapshot["parent-snapshot-id"] = Value::from(parent);
            }
            changes.snapshot = Some(snapshot);
            changes.expired = self.expired(&base.1, now);
            changes.properties.push((format!("{RECORD_KEY}.{pipeline_id}"), record.to_string()));
            match self.commit(store, &base, &changes).await {
                Ok(Some(current)) => {
                    self.take(current)?;
                    self.delete_lists(store, &base.1, &changes.expired).await;
                    return Ok(sequence);
                }
                Ok(None) => {}
                // The outcome is unknown (a lost answer, a timeout): the table says whether it is in.
                Err(e) => {
                    if self.load(store).await.is_ok() && self.holds(record) {
                        tracing::warn!(table = %self.identifier(), error = %e, "the commit is in the table despite the error (its answer was lost)");
                        return Ok(sequence);
                    }
                    return Err(e);
                }
            }
            tracing::debug!(table = %self.identifier(), attempt, "another writer committed first; retrying");
            let jitter = u64::from(uuid::Uuid::new_v4().as_fields().0 % 20);
            tokio::time::sleep(Duration::from_millis(jitter + 5 * attempt.min(40) as u64)).await;
        }
        Err(format!("{COMMIT_ATTEMPTS} attempts lost the race for the table's next metadata to other writers"))
    }

    /// The new schema (and `last-column-id`) that adds the columns of `columns` the table
    /// (`metadata`) lacks, with new field ids, and makes optional the required fields they leave
    /// empty; `None` when the table's schema holds them already. The name mapping goes with it.
    fn evolve(&self, metadata: &Value, columns: &StructType) -> Result<Option<(Value, i64)>, String> {
        let fields = self.schema_of(metadata)["fields"].as_array().cloned().unwrap_or_default();
        let mut ids =
            schema::Ids { last: metadata["last-column-id"].as_i64().unwrap_or(0).max(schema::max_id(&fields)) };
        let Some(evolved) = schema::evolve(&fields, columns, &mut ids)? else { return Ok(None) };
        let relaxed: Vec<String> = schema::required(&fields)
            .into_iter()
            .filter(|f| !schema::required(&evolved).contains(f))
            .map(|(_, n)| n)
            .collect();
        if relaxed.is_empty() {
            tracing::info!(table = %self.identifier(), "schema evolved: new optional columns");
        } else {
            tracing::warn!(table = %self.identifier(), columns = %relaxed.join(", "), "required columns made optional: the stream's schema lets its records leave them empty");
        }
        let fields = evolved;
        let schema_id = metadata["schemas"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["schema-id"].as_i64())
            .max()
            .unwrap_or(0)
            + 1;
        Ok(Some((json!({"type": "struct", "schema-id": schema_id, "fields": fields}), ids.last)))
    }

    /// Commits `changes` (with the name mapping of a new schema) on top of `base`: the new
    /// metadata, or `None` when another writer committed first.
    async fn commit(&self, store: &TableStore, base: &Current, changes: &Changes) -> Result<Option<Current>, String> {
        let mut changes = changes.clone();
        if let Some((schema, _)) = &changes.schema {
            let existing = base.1["properties"]["schema.name-mapping.default"].as_str();
            let mapping = schema::name_mapping(schema["fields"].as_array().map_or(&[][..], |f| f), existing);
            changes.properties.push(("schema.name-mapping.default".to_string(), mapping.to_string()));
        }
        self.catalog.commit(store, (&self.namespace, &self.name), &self.place(), base, &changes).await
    }

    /// With `iceberg_expire_snapshots`: the snapshots of `metadata` older than the table's
    /// `history.expire.max-snapshot-age-ms` (Iceberg's default: 5 days) before `now`, but for the
    /// newest `history.expire.min-snapshots-to-keep` (default 1) and any a branch or tag names.
    fn expired(&self, metadata: &Value, now: i64) -> Vec<i64> {
        if !self.expire {
            return Vec::new();
        }
        let property = |key: &str, default: i64| {
            metadata["properties"][key].as_str().and_then(|v| v.parse::<i64>().ok()).unwrap_or(default)
        };
        let max_age = property("history.expire.max-snapshot-age-ms", 432_000_000);
        let keep = usize::try_from(property("history.expire.min-snapshots-to-keep", 1)).unwrap_or(1);
        let named: Vec<&Value> =
            metadata["refs"].as_object().into_iter().flat_map(|r| r.values()).map(|r| &r["snapshot-id"]).collect();
        let mut snapshots: Vec<&Value> = metadata["snapshots"].as_array().into_iter().flatten().collect();
        snapshots.sort_by_key(|s| s["timestamp-ms"].as_i64().unwrap_or(0));
        // The new snapshot counts among those kept.
        let keep_from = snapshots.len().saturating_sub(keep.saturating_sub(1));
        snapshots[..keep_from]
            .iter()
            .filter(|s| s["timestamp-ms"].as_i64().is_some_and(|t| t < now - max_age))
            .filter(|s| s["snapshot-id"] != metadata["current-snapshot-id"] && !named.contains(&&s["snapshot-id"]))
            .filter_map(|s| s["snapshot-id"].as_i64())
            .collect()
    }

    /// Deletes the manifest lists of `expired` snapshots (each list is its snapshot's own; the
    /// manifests and data files stay, as the newer snapshots of an appended table name them).
    async fn delete_lists(&self, store: &TableStore, metadata: &Value, expired: &[i64]) {
        for snapshot in metadata["snapshots"].as_array().into_iter().flatten() {
            if !snapshot["snapshot-id"].as_i64().is_some_and(|id| expired.contains(&id)) {
                continue;
            }
            if let Some(key) = snapshot["manifest-list"].as_str().and_then(|uri| store.key_of(uri))
                && let Err(e) = store.delete(&key).await
            {
                tracing::warn!(file = %key, error = %e, "could not delete an expired snapshot's manifest list");
            }
        }
        if !expired.is_empty() {
            tracing::info!(table = %self.identifier(), snapshots = expired.len(), "expired old snapshots");
        }
    }

    /// The current schema's fields as the stream's Parquet files take them: ids, and the text
    /// columns an identity partition takes its values from marked (see
    /// [`crate::formats::parquet::EMPTY_IS_NULL`]).
    fn file_fields(&self) -> Value {
        let (_, _, spec) = partition::spec(self.metadata(), self.fields());
        let identity: Vec<&Value> = spec
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["transform"] == "identity")
            .map(|f| &f["source-id"])
            .collect();
        let mut fields = self.fields().to_vec();
        for field in &mut fields {
            if field["type"] == "string" && identity.contains(&&field["id"]) {
                field[crate::formats::parquet::EMPTY_IS_NULL] = Value::Bool(true);
            }
        }
        Value::Array(fields)
    }

    /// The table of a stream whose SCHEMA has `columns`, as its data files must name their
    /// columns: created (empty) or evolved now, before a file carries a new column, so every
    /// column has its field id. Returns the table's current schema fields (ids and all).
    pub async fn prepare(&mut self, store: &TableStore, stream: &str, columns: &StructType) -> Result<Value, Prepared> {
        for attempt in 1..=COMMIT_ATTEMPTS {
            if !self.load(store).await? && self.create(store, stream, columns).await? {
                return Ok(self.file_fields());
            }
            self.writable()?;
            let merged = crate::table::schema::evolve_with(&self.columns()?, columns, true)
                .map_err(|e| Prepared::Unfit(format!("{e} (Iceberg table {})", self.identifier())))?;
            let base = self.current.clone().expect("loaded");
            let Some(schema) = merged.map(|m| self.evolve(&base.1, &m)).transpose()?.flatten() else {
                return Ok(self.file_fields());
            };
            let changes = Changes { schema: Some(schema), ..Changes::default() };
            if let Some(current) = self.commit(store, &base, &changes).await? {
                self.take(current)?;
                return Ok(self.file_fields());
            }
            tracing::debug!(table = %self.identifier(), attempt, "another writer changed the table first; retrying");
            tokio::time::sleep(Duration::from_millis(5 * attempt.min(40) as u64)).await;
        }
        Err(Prepared::Failed(format!(
            "{COMMIT_ATTEMPTS} attempts lost the race for the table's next metadata to other writers"
        )))
    }
}

/// An append snapshot's summary: what it added, the table's totals where the parent kept them,
/// and target-s3's round record.
fn summary(parent: Option<&Value>, files: &[DataFile], record: &Value) -> Value {
    let (records, bytes): (u64, u64) = files.iter().fold((0, 0), |(r, b), f| (r + f.records, b + f.bytes));
    let mut summary = json!({
        "operation": "append",
        "added-data-files": files.len().to_string(),
        "added-records": records.to_string(),
        "added-files-size": bytes.to_string(),
        RECORD_KEY: record.to_string(),
    });
    for (total, added) in
        [("total-data-files", files.len() as u64), ("total-records", records), ("total-files-size", bytes)]
    {
        let before = match parent {
            None => Some(0),
            Some(p) => p["summary"][total].as_str().and_then(|t| t.parse::<u64>().ok()),
        };
        if let Some(before) = before {
            summary[total] = Value::from((before + added).to_string());
        }
    }
    if parent.is_none() {
        for total in ["total-delete-files", "total-position-deletes", "total-equality-deletes"] {
            summary[total] = Value::from("0");
        }
    }
    summary
}
