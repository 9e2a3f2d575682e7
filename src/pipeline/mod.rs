//! The run: read line -> decode -> route (validate, partition) -> the stream's open file
//! (encode) -> [writer thread] compress -> store -> durable event -> release STATE.
//!
//! This module only wires the rooms together: the [`router::Router`] knows the streams, the
//! [`files::FileSet`] owns the open files and their roll rules, the [`finish::Finisher`] keeps
//! the manifest, versions and deletions, and [`crate::ack`] decides which STATE may be printed.
//! The decode thread owns all of them, so the per-record path takes no lock and makes no
//! syscall; it talks to the reader, BATCH and writer threads only in large blocks and chunks,
//! and never waits on storage itself.

mod batches;
#[cfg(feature = "delta")]
mod commits;
mod cursor;
mod files;
mod finish;
mod notices;
mod open_file;
mod partitions;
mod rejects;
mod router;
#[cfg(feature = "delta")]
mod versions;
mod workers;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded, select, unbounded};
use serde_json::value::RawValue;

use crate::ack::{AckTracker, FileId};
use crate::config::Config;
use crate::destination::{Event, Storage};
use crate::error::{Error, InputError, InputErrorKind};
use crate::keys::RunContext;
use crate::singer::{self, Message, batch};
use files::{Fault, FileSet, RecordContext};
use finish::Finisher;
use router::Router;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub records: u64,
    pub files: u64,
    pub bytes: u64,
}

/// Runs the whole pipeline over `input`, printing released STATE values to `state_out`.
/// On error nothing newer than what was already printed is printed, and files not yet
/// complete are discarded. `batches` opens `s3://` BATCH files (the S3 destination's
/// credentials), when there is one.
/// `signals` delivers SIGTERM / SIGINT / SIGUSR1: the first stops reading, finishes the files
/// already written to and prints the STATE they cover; a second one aborts.
pub fn run(
    config: &Config,
    storage: Arc<dyn Storage>,
    batches: Option<Arc<dyn batch::Opener>>,
    input: Box<dyn Read + Send>,
    state_out: &mut dyn Write,
    signals: &Receiver<i32>,
) -> Result<Summary, Error> {
    let (block_tx, block_rx) = bounded(3);
    let (block_recycle_tx, block_recycle_rx) = bounded(4);
    let reader = singer::spawn_reader(input, block_tx, block_recycle_rx, config.max_line_bytes);
    let schemas = workers::Schemas::default();
    let mut blocks = workers::spawn(block_rx, config.workers, &schemas);

    let (command_tx, command_rx) = bounded(8);
    let (event_tx, event_rx) = unbounded();
    let (chunk_recycle_tx, chunk_recycle_rx) = bounded(16);
    tracing::info!(destination = %storage.describe(), run_id = %config.run_id, "starting");
    let writer = crate::writer::spawn(storage.clone(), command_rx, event_tx.clone(), chunk_recycle_tx, config.workers);

    let run_context =
        RunContext { now: chrono::Utc::now().with_timezone(&config.timezone), run_id: config.run_id.clone() };
    #[cfg(feature = "delta")]
    let delta = commits::Delta::open(config)?;
    let mut run = Run {
        config,
        #[cfg(feature = "delta")]
        delta,
        router: Router::new(config, run_context.clone()),
        files: FileSet::new(config, run_context.clone(), command_tx, chunk_recycle_rx),
        finisher: Finisher::new(config),
        ack: AckTracker::default(),
        run: run_context,
        batches,
        events: event_rx,
        signals: signals.clone(),
        line: 0,
        received_at: String::new(),
        closing: 0,
        stopped_by_signal: false,
        batch_at: None,
        schemas,
        verdict: None,
        state_out,
    };
    let result = match run.consume(&mut blocks, &block_recycle_tx) {
        Ok(()) => run.finish(),
        Err(e @ Error::Input(_)) => {
            // Bad input stops the run, but every record before it is good: keep them as if the
            // input had ended there, and print the STATE they cover, so a rerun starts as late
            // as honestly possible.
            run.keep_before_error();
            Err(e)
        }
        Err(e) => Err(e),
    };
    // Hanging up makes the writer abort whatever is still open (only after an error).
    run.files.hang_up();
    drop(event_tx);
    let _ = writer.join();
    // After a second signal the user wants out now: in-flight uploads get a short grace.
    let grace = if matches!(result, Err(Error::Interrupted(_))) { 5 } else { 120 };
    storage.shutdown(Duration::from_secs(grace));
    let t = &run.finisher.totals;
    let summary = Summary { records: t.records, files: t.files, bytes: t.bytes };
    match result {
        Ok(()) if run.stopped_by_signal => Ok(summary), // the reader may wait on stdin
        Ok(()) => {
            let _ = reader.join();
            Ok(summary)
        }
        // The reader may be blocked reading stdin; it ends when the process does.
        Err(e) => Err(e),
    }
}

struct Run<'a, 'o> {
    config: &'a Config,
    /// `table_format: delta`: durable data files wait here for their commit.
    #[cfg(feature = "delta")]
    delta: Option<commits::Delta>,
    router: Router<'a>,
    files: FileSet<'a>,
    finisher: Finisher<'a>,
    ack: AckTracker,
    run: RunContext,
    batches: Option<Arc<dyn batch::Opener>>,
    events: Receiver<Event>,
    signals: Receiver<i32>,
    line: u64,
    /// When the current input block arrived, for `_sdc_received_at`.
    received_at: String,
    /// Objects handed to the writer (closed files, markers, deletions) not yet reported back.
    closing: usize,
    stopped_by_signal: bool,
    /// While a BATCH message's files are read: the file and line of the record at hand.
    batch_at: Option<crate::error::BatchPlace>,
    /// What the workers check records against, republished at every SCHEMA.
    schemas: workers::Schemas,
    /// A worker's verdict on the record of the line at hand.
    verdict: Option<workers::Verdict>,
    state_out: &'o mut dyn Write,
}

/// Whether to go on reading after a line: a first signal during a BATCH stops it.
enum Flow {
    Continue,
    Stop,
}

impl Run<'_, '_> {
    /// Reads until end of input, reacting to durable files and file age on the way.
    fn consume(&mut self, blocks: &mut workers::Ordered, recycle: &Sender<Vec<u8>>) -> Result<(), Error> {
        #[cfg(feature = "delta")]
        let commit_interval = self.delta.as_ref().map(|d| d.tables.interval());
        #[cfg(not(feature = "delta"))]
        let commit_interval = None;
        let ticker = match self.config.limits.max_age.into_iter().chain(commit_interval).min() {
            Some(age) => crossbeam_channel::tick((age / 4).clamp(Duration::from_millis(50), Duration::from_secs(1))),
            None => crossbeam_channel::never(),
        };
        let events = self.events.clone();
        let signals = self.signals.clone();
        loop {
            let next = blocks.next_channel().clone();
            select! {
                recv(next) -> block => match block {
                    Ok(Ok(mut checked)) => {
                        blocks.advance();
                        if self.config.add_record_metadata {
                            self.received_at = chrono::Utc::now().to_rfc3339();
                        }
                        for (i, line) in checked.block.lines().enumerate() {
                            self.verdict = checked.verdicts.get_mut(i).and_then(Option::take);
                            if let Flow::Stop = self.line(line)? {
                                return Ok(());
                            }
                        }
                        blocks.recycle(std::mem::take(&mut checked.verdicts));
                        let _ = recycle.try_send(checked.block.into_bytes());
                        while let Ok(event) = events.try_recv() {
                            self.event(event)?;
                        }
                        self.release_state()?;
                    }
                    Ok(Err(e)) => return Err(Error::Read(e)),
                    Err(_) => return Ok(()), // end of input
                },
                recv(events) -> event => {
                    if let Ok(event) = event {
                        self.event(event)?;
                        self.release_state()?;
                    }
                },
                recv(ticker) -> _ => {
                    let closed = self.files.close_aged();
                    self.drain_closed(closed)?;
                    #[cfg(feature = "delta")]
                    self.flush_tables()?;
                    self.release_state()?; // what a commit just covered, without waiting for input
                }
                recv(signals) -> signal => {
                    self.first_signal(signal.unwrap_or_default());
                    return Ok(());
                }
            }
        }
    }

    fn first_signal(&mut self, signal: i32) {
        tracing::warn!(signal, "stopping: finishing the files already written to; send the signal again to abort");
        self.stopped_by_signal = true;
    }

    /// End of input: close every file, wait until all are durable, write the markers and the
    /// manifest, wait for them, print the last STATE.
    fn finish(&mut self) -> Result<(), Error> {
        let closed = self.files.close_all();
        self.drain_closed(closed)?;
        // Deletions become due as files become durable; they must be done before the
        // manifest (which must not list what they removed) and the last STATE.
        loop {
            self.wait_for_objects()?;
            if !self.config.dry_run && self.issue_deletions()? == 0 {
                break;
            }
            if self.config.dry_run {
                break;
            }
        }
        if self.config.dry_run {
            let listing = self.finisher.dry_run_listing();
            return self.state_out.write_all(listing.as_bytes()).map_err(Error::Stdout);
        }
        #[cfg(feature = "delta")]
        self.commit_tables(commits::Commit::at_end(self.stopped_by_signal))?;
        // Markers and the manifest only once every data object is durable, and before the
        // final STATE: their presence means the run's data is complete.
        if self.config.write_success_marker {
            for key in self.finisher.markers() {
                let key = self.files.keys().claim_exact(key)?;
                // Empty and the same for every run: a later run's marker may replace it.
                self.extra(key, Vec::new(), "text/plain", true)?;
            }
        }
        self.finisher.totals.early_closes = self.files.early_closes;
        let null_items = self.router.null_items();
        finish::null_items_metrics(&null_items);
        if let Some((rendered, body)) = self.finisher.manifest(&self.run, &null_items) {
            let key = self.files.keys().claim(rendered)?;
            self.extra(key, body, "application/json", false)?;
        }
        self.wait_for_objects()?;
        self.release_state()?;
        let t = &self.finisher.totals;
        tracing::info!(
            records = t.records,
            files = t.files,
            bytes = t.bytes,
            rejected = t.rejected,
            early_closes = t.early_closes,
            "finished"
        );
        Ok(())
    }

    fn extra(
        &mut self,
        key: crate::keys::ObjectKey,
        body: Vec<u8>,
        content_type: &'static str,
        overwrite: bool,
    ) -> Result<(), Error> {
        self.files.write_extra(key, body, content_type, overwrite).map_err(|f| self.fault(f))?;
        self.closing += 1;
        Ok(())
    }

    /// Waits until every object handed to the writer is durable (or a second signal).
    fn wait_for_objects(&mut self) -> Result<(), Error> {
        let (events, signals) = (self.events.clone(), self.signals.clone());
        while self.closing > 0 {
            select! {
                recv(events) -> event => match event {
                    Ok(event) => self.event(event)?,
                    Err(_) => break,
                },
                // A signal that came as the input ended (a job runner stopping tap and target
                // together) is the first one: finish gracefully; only another one aborts.
                recv(signals) -> signal => match signal {
                    Ok(signal) if !self.stopped_by_signal => self.first_signal(signal),
                    signal => return Err(Error::Interrupted(signal.unwrap_or_default())),
                },
            }
        }
        Ok(())
    }

    /// After bad input: the open files hold only records from before it (a file that got
    /// part of the bad record was dropped), so they close as at the end of input, become
    /// durable, and the STATE they cover is printed; Delta tables commit what that STATE
    /// covers. No markers and no manifest: the run did not complete. Whatever fails here is
    /// logged; the bad input stays the run's error.
    fn keep_before_error(&mut self) {
        let kept = (|| -> Result<(), Error> {
            let closed = self.files.close_all();
            self.drain_closed(closed)?;
            self.wait_for_objects()?;
            // Delta: with no record since the last STATE every file holds only what it covers,
            // so everything commits with it; otherwise only files closed at a STATE do.
            #[cfg(feature = "delta")]
            self.commit_tables(match self.delta.as_ref().is_some_and(|d| !d.records_since_state) {
                true => commits::Commit::All,
                false => commits::Commit::Covered,
            })?;
            self.release_state()
        })();
        if let Err(e) = kept {
            tracing::warn!(error = %e, "could not keep every record before the error");
        }
    }

    fn input_error(&self, stream: Option<&str>, kind: InputErrorKind) -> Error {
        Error::Input(InputError {
            line: self.line,
            stream: stream.map(str::to_string),
            kind,
            batch: self.batch_at.clone(),
        })
    }

    fn fault(&self, fault: Fault) -> Error {
        match fault {
            Fault::Input { stream, kind } => self.input_error(Some(&stream), kind),
            Fault::Fatal(e) => e,
        }
    }

    /// Hands the files the file set closed to the finisher.
    fn drain_closed(&mut self, result: Result<(), Fault>) -> Result<(), Error> {
        for closed in self.files.take_closed() {
            self.closing += 1;
            #[cfg(feature = "delta")]
            commits::file_closed(&mut self.delta, &self.router, self.line, &closed);
            self.finisher.file_closed(closed);
        }
        result.map_err(|f| self.fault(f))
    }

    fn line(&mut self, line: Result<&str, usize>) -> Result<Flow, Error> {
        self.line += 1;
        let mut line = line.map_err(|at| self.input_error(None, InputErrorKind::Utf8(at)))?;
        if self.line == 1 {
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        if line.as_bytes().first().is_none_or(u8::is_ascii_whitespace) && line.trim().is_empty() {
            return Ok(Flow::Continue); // blank lines carry nothing
        }
        #[cfg(debug_assertions)]
        if std::env::var_os("TARGET_S3_DEBUG_PANIC").is_some_and(|v| v == "decode") {
            panic!("injected by TARGET_S3_DEBUG_PANIC"); // debug builds only, for the tests
        }
        // A worker decoded a RECORD line already: its message is taken back, not parsed again.
        let mut verdict = self.verdict.take();
        let located = verdict.as_mut().and_then(|v| v.located.take());
        let message = match located.as_ref().and_then(|l| l.message(line)) {
            Some(message) => message,
            None => singer::decode(line).map_err(|e| self.input_error(e.stream.as_deref(), e.kind))?,
        };
        match message {
            Message::Record { stream, record, time_extracted, version } => {
                self.record(&stream, record, time_extracted, version, verdict)?;
            }
            Message::Schema { stream, schema, key_properties, bookmark_properties } => {
                let close = self
                    .router
                    .schema(&stream, schema, key_properties, bookmark_properties)
                    .map_err(|kind| self.input_error(Some(&stream), kind))?;
                self.schemas.publish(self.router.published());
                #[cfg(feature = "delta")]
                self.check_table_schema(&stream)?;
                if close {
                    let closed = self.files.close_stream(&stream);
                    self.drain_closed(closed)?;
                }
            }
            Message::State { value } => {
                self.ack.state(self.line, value.get());
                #[cfg(feature = "delta")]
                self.state_arrived()?;
            }
            Message::ActivateVersion { stream, version } => {
                // Recorded in the manifest. In folder mode the version's files are complete
                // now, and with hard_delete older versions go once they are durable.
                let version = version.map(|v| v.get().to_string()).unwrap_or_default();
                tracing::info!(%stream, %version, line = self.line, "ACTIVATE_VERSION");
                if self.config.version_folders {
                    let closed = self.files.close_stream(&stream);
                    self.drain_closed(closed)?;
                }
                let known = self.router.stream(&stream).is_some();
                self.finisher.activate_version(&stream, &version, self.line, known);
            }
            Message::Batch { stream, encoding, manifest } => return self.batch(&stream, encoding, manifest),
        }
        Ok(Flow::Continue)
    }

    fn record(
        &mut self,
        name: &str,
        record: &str,
        time_extracted: Option<&RawValue>,
        version: Option<&RawValue>,
        verdict: Option<workers::Verdict>,
    ) -> Result<(), Error> {
        let route = match self.router.route(name, record, version, verdict) {
            Ok(route) => route,
            Err(kind @ (InputErrorKind::Invalid(_) | InputErrorKind::MissingKeyProperty(_)))
                if self.config.dead_letter.is_some() =>
            {
                return self.reject(name, record, &kind);
            }
            Err(kind) => return Err(self.input_error(Some(name), kind)),
        };
        #[cfg(feature = "delta")]
        if let Some(delta) = self.delta.as_mut() {
            delta.records_since_state = true;
        }
        let context = RecordContext { line: self.line, time_extracted, version, received_at: &self.received_at };
        let written =
            self.files.write(route.spec, route.partition, record, route.cursor.as_ref(), &context, &mut self.ack);
        self.finisher.totals.records += 1;
        self.drain_closed(written)
    }

    fn event(&mut self, event: Event) -> Result<(), Error> {
        match event {
            Event::Durable { id, key, bytes, crc32 } => {
                #[cfg(feature = "delta")]
                if self.table_file_durable(id, &key, bytes)? {
                    self.closing = self.closing.saturating_sub(1); // but not acknowledged yet
                    self.finisher.file_durable(id, &key, bytes, crc32);
                    return Ok(());
                }
                self.object_done(id);
                self.finisher.file_durable(id, &key, bytes, crc32);
                Ok(())
            }
            Event::Deleted { id, stream, root, keys } => {
                tracing::info!(%stream, objects = keys.len(), under = %root, "hard_delete: deleted older versions");
                self.finisher.deleted(&keys);
                self.object_done(id);
                Ok(())
            }
            Event::Failed(e) => Err(Error::Storage(e)),
        }
    }

    fn object_done(&mut self, id: FileId) {
        self.ack.file_durable(id);
        self.closing = self.closing.saturating_sub(1);
    }

    /// Hands the writer the `hard_delete`s whose ACTIVATE_VERSION is now covered. Each holds
    /// back every STATE after its ACTIVATE_VERSION until it is done.
    fn issue_deletions(&mut self) -> Result<usize, Error> {
        let router = &self.router;
        let due = self.finisher.due_deletions(|line| self.ack.covered(line), |s| router.stream(s).cloned(), &self.run);
        let count = due.len();
        for deletion in due {
            let line = deletion.line;
            let id = self.files.request_deletion(deletion).map_err(|f| self.fault(f))?;
            self.ack.file_opened(id, line);
            self.closing += 1;
        }
        Ok(count)
    }

    fn release_state(&mut self) -> Result<(), Error> {
        if self.config.dry_run {
            return Ok(()); // nothing was written, so nothing may be acknowledged
        }
        self.issue_deletions()?;
        #[cfg(feature = "delta")]
        self.commit_tables(commits::Commit::WhenDue)?;
        if let Some(state) = self.ack.release() {
            let out = &mut self.state_out;
            writeln!(out, "{state}").and_then(|()| out.flush()).map_err(Error::Stdout)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
