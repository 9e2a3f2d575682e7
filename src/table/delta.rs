//! A commit to a Delta table: one log version adding a round's files (and the new columns they
//! bring), carrying the round's record in `commitInfo` and the pipeline's `txn`. The Delta
//! protocol itself (log, conflict checks, checkpoints) is delta-rs's.

use std::time::Duration;

use deltalake_core::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake_core::kernel::{Action, Add, StructType, Transaction};
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::{DeltaTable, DeltaTableError};

use super::{COMMIT_ATTEMPTS, COMMIT_INFO_KEY, Pending, schema};
use crate::error::TableError;

/// One table's commit.
pub(super) struct Commit<'a> {
    pub folder: &'a str,
    pub pipeline_id: &'a str,
    pub partition_columns: Vec<String>,
    pub txn: i64,
    pub info: serde_json::Value,
    /// The table's columns after this commit.
    pub columns: StructType,
    pub now: i64,
}

impl Commit<'_> {
    fn properties(&self) -> CommitProperties {
        CommitProperties::default()
            .with_metadata([(COMMIT_INFO_KEY.to_string(), self.info.clone())])
            .with_application_transaction(Transaction::new(self.pipeline_id, self.txn))
            .with_create_checkpoint(true)
            .with_max_retries(0)
    }

    fn adds(&self, files: &[Pending]) -> Vec<Action> {
        files
            .iter()
            .map(|f| {
                Action::Add(Add {
                    // Written URI-encoded by delta-rs (`%` as `%25`), as the protocol asks.
                    path: f.path.clone(),
                    partition_values: f.partition_values.clone(),
                    size: f.bytes as i64,
                    modification_time: self.now,
                    data_change: true,
                    stats: Some(serde_json::json!({ "numRecords": f.records }).to_string()),
                    ..Default::default()
                })
            })
            .collect()
    }

    pub fn error(&self, e: impl std::fmt::Display) -> TableError {
        TableError::new(self.folder, e.to_string())
    }

    /// Creates the table with the files, or appends them (evolving the schema in the same
    /// commit when the files brought new nullable columns). Returns the table version written.
    pub async fn run_delta(&self, delta: &mut DeltaTable, files: &[Pending]) -> Result<i64, TableError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = async {
                delta.update_state().await?;
                let snapshot = delta.snapshot()?;
                // An earlier attempt whose answer was lost may be in: committing again would
                // add every file twice. A newer txn that is not this commit's is another run of
                // the same pipeline, committing at the same time.
                let held = snapshot.transaction_version(delta.log_store().as_ref(), self.pipeline_id).await?;
                if held >= Some(self.txn) {
                    if self.is_in(delta).await {
                        tracing::warn!(table = %self.folder, "the table already holds this commit (an answer lost on the way back)");
                        return Ok(snapshot.version() as i64);
                    }
                    return Err(DeltaTableError::Generic(super::concurrent_run(self.pipeline_id, held, self.txn)));
                }
                let current = snapshot.schema();
                let evolved = schema::evolve(&current, &self.columns).map_err(DeltaTableError::Generic)?;
                let mut actions = Vec::new();
                if let Some(evolved) = evolved {
                    use deltalake_core::kernel::MetadataExt;
                    tracing::info!(table = %self.folder, "schema evolved: new nullable columns");
                    actions.push(Action::Metadata(snapshot.metadata().clone().with_schema(&evolved)?));
                }
                actions.extend(self.adds(files));
                let operation = DeltaOperation::Write {
                    mode: SaveMode::Append,
                    partition_by: Some(self.partition_columns.clone()).filter(|c| !c.is_empty()),
                    predicate: None,
                };
                let done = CommitBuilder::from(self.properties())
                    .with_actions(actions)
                    .build(Some(snapshot), delta.log_store(), operation)
                    .await?;
                Ok::<_, DeltaTableError>(done.version() as i64)
            }
            .await;
            match result {
                Ok(version) => return Ok(version),
                Err(DeltaTableError::Transaction {
                    source: TransactionError::CommitConflict(_) | TransactionError::MaxCommitAttempts(_),
                }) if attempt < COMMIT_ATTEMPTS => {
                    tracing::debug!(table = %self.folder, attempt, "another writer committed first; retrying");
                    // Spread the retries of writers racing for the same versions.
                    let jitter = u64::from(uuid::Uuid::new_v4().as_fields().0 % 20);
                    tokio::time::sleep(Duration::from_millis(jitter + 5 * attempt.min(40) as u64)).await;
                }
                Err(e) => {
                    // A failure whose outcome is unknown (an answer lost with no retry left, a
                    // checkpoint that failed after the commit): the log says whether it is in.
                    if let Some(version) = self.landed(delta).await {
                        tracing::warn!(table = %self.folder, error = %e, "the commit is in the table despite the error (its answer was lost)");
                        return Ok(version);
                    }
                    return Err(self.error(e));
                }
            }
        }
    }

    /// The table's version if it holds this commit.
    async fn landed(&self, delta: &mut DeltaTable) -> Option<i64> {
        delta.update_state().await.ok()?;
        let snapshot = delta.snapshot().ok()?;
        let held = snapshot.transaction_version(delta.log_store().as_ref(), self.pipeline_id).await.ok()?;
        if held >= Some(self.txn) && self.is_in(delta).await { Some(snapshot.version() as i64) } else { None }
    }

    /// Whether one of the table's newest commits is this one (this run's, this txn).
    async fn is_in(&self, delta: &DeltaTable) -> bool {
        use futures::StreamExt;
        let mut history = delta.history(Some(super::HISTORY_DEPTH));
        while let Some(commit) = history.next().await {
            let Ok(commit) = commit else { return false };
            if let Some(ours) = commit.info.get(COMMIT_INFO_KEY)
                && ours["txnVersion"] == self.info["txnVersion"]
                && ours["runId"] == self.info["runId"]
                && ours["pipelineId"] == self.info["pipelineId"]
            {
                return true;
            }
        }
        false
    }
}
