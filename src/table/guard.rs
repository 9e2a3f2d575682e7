//! What a table commit must never do in a stranger's lake, checked before the first write: lose
//! a racing writer's commit on a store that ignores conditional writes, or wrap a table around
//! objects another tool put in the folder.

use std::collections::{HashMap, HashSet};

use super::Tables;
use super::store::TableStore;
use crate::error::TableError;

impl Tables {
    /// Refuses a store on which concurrent commits could replace each other (see
    /// `single_writer`), before anything is written to a table. Once per run.
    pub fn check_store(&self) -> Result<(), TableError> {
        // An Iceberg commit is the catalog's compare-and-swap; its files all have new names.
        if self.options.iceberg.is_some() {
            return Ok(());
        }
        let probe = &self.options.probe_key;
        let honoured = self.runtime.block_on(self.store.honours_conditional_writes(probe)).map_err(|e| {
            TableError::new(
                "",
                format!("checking that the store refuses to replace a log entry (a conditional write of {probe}): {e}"),
            )
        })?;
        match (honoured, self.options.single_writer) {
            (true, _) => Ok(()),
            (false, true) => {
                tracing::warn!("this store ignores conditional writes (If-None-Match): committing anyway because single_writer is true; a second writer committing to these tables at the same time would replace commits");
                Ok(())
            }
            (false, false) => Err(TableError::new(
                "",
                "this store ignores conditional writes (If-None-Match: *): two writers committing to one table at once would both succeed and one commit would replace the other, losing its data; use a store that honours them (AWS S3, MinIO, R2), or set `single_writer: true` if only one writer ever commits to these tables at a time".into(),
            )),
        }
    }

    /// Refuses a table that target-s3 created for another stream (its `targetS3.stream`
    /// property): a real stream named `orders_v2` must not write into the second version of
    /// `orders`' table. Once per folder and run; tables without the property (other tools',
    /// earlier versions') are not refused.
    pub fn check_owner(&mut self, folder: &str, stream: &str) -> Result<(), TableError> {
        if !self.owners.insert(folder.to_string()) {
            return Ok(());
        }
        match self.table_info(folder)?.and_then(|info| info.stream) {
            Some(owner) if owner != stream => Err(TableError::new(
                folder,
                format!(
                    "stream {stream:?} maps to this table, which target-s3 created for stream {owner:?} (a version of its table under incompatible_schema: new_table): rename the stream (e.g. with the tap's stream_maps), or point table_path elsewhere"
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Refuses a table folder that is no Delta table yet but holds other objects (as Spark
    /// refuses to create a table in a non-empty folder): once per folder and run.
    pub fn check_not_foreign(&mut self, folder: &str) -> Result<(), TableError> {
        if self.clean.contains(folder) {
            return Ok(());
        }
        let error = |e: &dyn std::fmt::Display| TableError::new(folder, e.to_string());
        let foreign = self.runtime.block_on(async {
            let log = self.format.open(&self.store, folder)?;
            if log.exists(&self.store).await.map_err(|e| error(&e))? {
                return Ok(None);
            }
            let inner = self.format.written_before_table();
            let found = self.store.foreign_object(folder, inner).await.map_err(|e| error(&e))?;
            // Another writer may have created the table between the two looks (8 writers on
            // SeaweedFS did): its first commit is then what the listing found.
            if found.as_deref().is_some_and(|o| o.contains("/_delta_log/"))
                && log.exists(&self.store).await.map_err(|e| error(&e))?
            {
                return Ok(None);
            }
            Ok(found)
        })?;
        if let Some(object) = foreign {
            return Err(TableError::new(
                folder,
                format!(
                    "the folder is not a table yet but holds {object}, which target-s3 did not write there; a table created around it would hide it from readers and a table's cleanup (Delta's VACUUM, Iceberg's orphan file removal) would delete it: point table_path (or prefix) at an empty folder, or move those objects"
                ),
            ));
        }
        self.clean.insert(folder.to_string());
        Ok(())
    }
}

/// Whether target-s3 can append to a table another tool made, decided while planning a round,
/// before any table of it commits (so a table we cannot write never leaves the round half
/// committed): every writer feature its protocol requires is one delta-rs writes, and it has no
/// CHECK constraints (`delta.constraints.*`), which target-s3 does not evaluate.
pub(super) fn writable(
    folder: &str,
    snapshot: &deltalake_core::table::state::DeltaTableState,
) -> Result<(), TableError> {
    deltalake_core::kernel::transaction::PROTOCOL.can_write_to(snapshot).map_err(|e| {
        TableError::new(
            folder,
            format!(
                "target-s3 cannot append to this table: {e} (its protocol requires them of every writer, whether the table uses them or not: tables at writer version 3 or later, e.g. after a CHECK constraint was added or change data feed enabled; delta-rs as built into target-s3 cannot enforce them); nothing in this round was committed: point table_path at a new table, or rewrite the table at writer version 2"
            ),
        )
    })?;
    let constraints: Vec<&String> =
        snapshot.metadata().configuration().keys().filter(|k| k.starts_with("delta.constraints.")).collect();
    if !constraints.is_empty() {
        return Err(TableError::new(
            folder,
            format!(
                "the table has CHECK constraints ({}), which target-s3 does not evaluate: it refuses to append rather than add rows that may break them; nothing in this round was committed",
                constraints.iter().map(|k| k.trim_start_matches("delta.constraints.")).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    Ok(())
}

/// The tables of a round that already hold it: a rerun of a round that was cut short after some
/// of its tables committed (a failed request, a kill between commits) carries the same STATE
/// over the same tables, and the tap resent the same records. The newest round record of this
/// pipeline, kept beside any table of the round, with this STATE and these tables names that
/// round's txn; a table whose log holds that txn as its newest (its own record may be missing:
/// a commit whose answer was lost, a run stopped before it wrote the record) holds the round,
/// and committing its files again would add every record twice. A round every table holds is
/// complete: a new round that happens to carry the same STATE. A table whose record of that
/// round counts other records than it has waiting now, or whose records' digest differs, was
/// sent other records (a tap whose STATE does not move, and whose source changed): its files
/// are committed, as duplicates are better than a loss. `held`: each existing table's newest txn
/// of the pipeline; `records`: the number and digest of the records waiting for each table.
pub(super) async fn repeated_round<'f>(
    store: &TableStore,
    pipeline_id: &str,
    folders: &[&'f str],
    state: &serde_json::Value,
    held: &HashMap<&str, i64>,
    records: &HashMap<&str, (u64, u64)>,
) -> Result<HashSet<&'f str>, TableError> {
    if state.is_null() || held.is_empty() {
        return Ok(HashSet::new());
    }
    let round: HashSet<&str> = folders.iter().copied().collect();
    let mut newest: Option<i64> = None;
    let mut found_by_folder = HashMap::new();
    for folder in folders {
        let Some(holds) = held.get(folder) else { continue };
        let found = store.states(folder, pipeline_id).await.map_err(|e| TableError::new(folder, e.to_string()))?;
        for (txn, record) in &found {
            let same_tables = record["round"].as_array().is_some_and(|r| {
                r.len() == round.len() && r.iter().all(|t| t.as_str().is_some_and(|t| round.contains(t)))
            });
            if txn <= holds && record["state"] == *state && same_tables {
                newest = newest.max(Some(*txn));
            }
        }
        found_by_folder.insert(*folder, found);
    }
    let Some(txn) = newest else { return Ok(HashSet::new()) };
    let holding: HashSet<&'f str> = folders.iter().copied().filter(|f| held.get(f) == Some(&txn)).collect();
    if holding.len() == folders.len() {
        return Ok(HashSet::new());
    }
    // Its own record of the round, where there is one, must count what waits now (records
    // from before digests were recorded: their number).
    let same_records = |folder: &&str| {
        let Some((_, own)) = found_by_folder.get(folder).and_then(|f| f.iter().find(|(t, _)| *t == txn)) else {
            return true;
        };
        let (count, digest) = records.get(folder).copied().unwrap_or_default();
        own["records"].as_u64().is_none_or(|n| n == count) && own["digest"].as_u64().is_none_or(|d| d == digest)
    };
    Ok(holding.into_iter().filter(same_records).collect())
}
