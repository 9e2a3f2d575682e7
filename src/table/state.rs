//! `--table-state`: the Singer STATE the tables hold, read back from their logs, so a job
//! runner that lost its state store resumes from the lake.

use std::collections::{BTreeMap, HashSet};

use super::Tables;
use crate::config::Config;
use crate::error::TableError;

/// `--table-state`: the STATE of the newest complete commit round of this pipeline (every
/// table the round names holds its commit), or `None` when it committed none. A round cut
/// short by a kill or a failure is passed over: its STATE is newer than some of its tables.
pub fn table_state(config: &Config) -> Result<Option<String>, TableError> {
    let tables = Tables::open(config)?;
    let found = find(&tables, &tables.options.pipeline_id)?;
    match (&found, &tables.options.legacy_pipeline_id) {
        (None, Some(legacy)) => {
            let old = find(&tables, legacy)?;
            if old.is_some() {
                tracing::warn!(
                    pipeline_id = legacy.as_str(),
                    "found the STATE under the fixed default pipeline_id of earlier versions; this run's commits carry the id derived from destination, prefix and table_path ({}); set pipeline_id to keep one id",
                    tables.options.pipeline_id
                );
            }
            Ok(old)
        }
        _ => Ok(found),
    }
}

/// The newest complete round's STATE of `pipeline_id` in the tables under `table_path`.
fn find(tables: &Tables, pipeline_id: &str) -> Result<Option<String>, TableError> {
    let (base, depth) = tables.options.table_path.fixed_folder();
    tables.runtime.block_on(async {
        let mut folders = vec![base.trim_end_matches('/').to_string()];
        for _ in 0..depth {
            let mut next = Vec::new();
            for folder in &folders {
                let list = tables.store.folders(folder).await.map_err(|e| TableError::new(folder, e.to_string()))?;
                let inner = tables.format.inner_folders();
                next.extend(list.into_iter().filter(|f| !inner.iter().any(|i| f.rsplit('/').next() == Some(*i))));
            }
            folders = next;
        }
        // txn version -> (STATE, the round's tables, the tables seen holding it)
        let mut rounds: BTreeMap<i64, (serde_json::Value, Vec<String>, HashSet<String>)> = BTreeMap::new();
        // Tables holding a commit of this pipeline (their newest txn, from the log's `txn`
        // actions, which checkpoints keep): a STATE must be found for them.
        let mut committed: Vec<(String, i64)> = Vec::new();
        let note = |rounds: &mut BTreeMap<i64, (serde_json::Value, Vec<String>, HashSet<String>)>,
                        folder: &str,
                        txn: i64,
                        ours: &serde_json::Value| {
            let round: Vec<String> = match ours["round"].as_array() {
                Some(names) => names.iter().filter_map(|n| n.as_str().map(str::to_string)).collect(),
                None => vec![folder.to_string()],
            };
            let entry = rounds.entry(txn).or_insert_with(|| (ours["state"].clone(), round, HashSet::new()));
            entry.2.insert(folder.to_string());
        };
        for folder in folders {
            let Ok(mut log) = tables.format.open(&tables.store, &folder) else { continue };
            if !log.exists(&tables.store).await.unwrap_or(false) {
                continue;
            }
            let error = |e: &dyn std::fmt::Display| TableError::new(&folder, e.to_string());
            log.load(&tables.store).await.map_err(|e| error(&e))?;
            let Some(held) = log.held(pipeline_id).await.map_err(|e| error(&e))? else { continue };
            committed.push((folder.clone(), held));
            // The round records kept beside the table (written once a commit is in), then the
            // table's own history (rounds from before those records, or whose record was not
            // written).
            for (txn, ours) in tables.store.states(&folder, pipeline_id).await.map_err(|e| error(&e))? {
                if txn <= held && ours["pipelineId"] == pipeline_id {
                    note(&mut rounds, &folder, txn, &ours);
                }
            }
            for (txn, ours) in log.rounds(pipeline_id).await.map_err(|e| error(&e))? {
                note(&mut rounds, &folder, txn, &ours);
            }
        }
        // A round without a STATE (input that ended after the tap's last STATE, or had none)
        // moves no resume point: the one before it still holds.
        let complete = rounds
            .into_iter()
            .rev()
            .find(|(_, (state, round, seen))| !state.is_null() && round.iter().all(|t| seen.contains(t)));
        match complete {
            Some((_, (state, _, _))) => Ok(Some(state.to_string())),
            // The tables hold this pipeline's commits, but no complete round with a STATE was
            // found: printing `{}` would make the tap start over.
            None if !committed.is_empty() => {
                let (folder, txn) = &committed[0];
                Err(TableError::new(
                    folder,
                    format!(
                        "holds commits of pipeline_id {pipeline_id:?} (txn {txn}), but no complete commit round with a STATE was found in {} table(s): resume from the job runner's stored state, or start a full sync deliberately",
                        committed.len()
                    ),
                ))
            }
            None => Ok(None),
        }
    })
}
