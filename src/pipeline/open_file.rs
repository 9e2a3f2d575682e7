//! One open file of a stream and partition: its encoder, its key, what it holds in memory and
//! its size so far, estimated after compression ([`super::files`] decides what to do with it).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::cursor::CursorRange;
use super::router::StreamSpec;
use crate::ack::FileId;
use crate::formats::Encoder;
use crate::keys::ObjectKey;
use crate::writer::{Command, Progress};

/// What a started file costs on the writer thread beyond its bytes (compressor state, output
/// buffer, a Parquet row group in progress), for the memory budget.
const STARTED_COST: u64 = 1024 * 1024;

pub(super) struct OpenFile<'a> {
    pub(super) id: FileId,
    pub(super) spec: Arc<StreamSpec<'a>>,
    /// The object's key; for keys decided at close (cursor macros), a provisional name.
    pub(super) key: ObjectKey,
    /// Kept only when the key is decided at close (cursor macros) and may need record fields.
    pub(super) first_record: Option<String>,
    /// When the file opened, for `_sdc_batched_at` (empty unless add_record_metadata is on).
    pub(super) batched_at: String,
    pub(super) cursor: CursorRange,
    /// Record sequence number of the last write, to close the least recently written file.
    pub(super) last_write: u64,
    pub(super) encoder: Encoder,
    /// The `version` of the file's records (text), for `{table_version}`.
    pub(super) table_version: Option<String>,
    pub(super) records: u64,
    /// Delta tables: the sum of its records' hashes ([`Closed::digest`]).
    pub(super) digest: u64,
    pub(super) opened_at: Instant,
    pub(super) opened_line: u64,
    /// Uncompressed bytes handed to the writer so far.
    pub(super) sent: u64,
    pub(super) progress: Arc<Progress>,
    /// The writer's `Open`, held until the file has something to hand over (see the module
    /// doc); `None` once sent.
    pub(super) pending_open: Option<Command>,
    /// Record bytes since the last batch of rows (typed formats), for the memory budget.
    pub(super) unbatched: u64,
    /// This file's share of the memory budget, as last counted.
    pub(super) accounted: u64,
    /// The compression ratio assumed until the writer has compressed some of this file: the
    /// stream's last file's (1 for its first file). Without it, small `max_bytes_per_file`
    /// limits closed gzip files at about the limit before compression.
    pub(super) ratio_hint: f64,
}

impl OpenFile<'_> {
    /// What the file holds in memory: its encoded bytes not handed over, rows not yet batched,
    /// and the writer's state once started.
    pub(super) fn memory(&self) -> u64 {
        let started = if self.pending_open.is_none() { STARTED_COST } else { 0 };
        self.encoder.pending() as u64 + self.unbatched + started
    }

    /// The file's size after compression, estimated from what the writer has done so far and
    /// the compression ratio it saw: the writer runs behind, and waiting for it would cost the
    /// pipeline its overlap. Exact without compression.
    pub(super) fn estimated_size(&self) -> u64 {
        let (consumed, written) = self.progressed();
        // Encoded and not handed over: the buffer, or the Avro block being filled.
        let behind = self.sent.saturating_sub(consumed) + (self.encoder.pending() + self.encoder.in_progress()) as u64;
        let ratio = if consumed > 0 { written as f64 / consumed as f64 } else { self.ratio_hint };
        written + (behind as f64 * ratio) as u64
    }

    /// Stored bytes per encoded byte, as far as the writer got with this file.
    pub(super) fn ratio(&self) -> Option<f64> {
        let (consumed, written) = self.progressed();
        (consumed > 0).then(|| written as f64 / consumed as f64)
    }

    /// Encoded bytes the writer took, and the bytes they became: written, or encoded and held
    /// back (a Parquet row group in progress).
    fn progressed(&self) -> (u64, u64) {
        let consumed = self.progress.consumed.load(Ordering::Relaxed);
        (consumed, self.progress.written.load(Ordering::Relaxed) + self.progress.held.load(Ordering::Relaxed))
    }
}
