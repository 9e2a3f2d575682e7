//! BATCH messages: the files they name are read on their own thread and their records loaded
//! exactly like RECORD messages of the stream, at the BATCH line's position; a record is named
//! by its file and line there.

use crossbeam_channel::select;
use serde_json::value::RawValue;

use super::{Error, Flow, InputErrorKind, Run};
use crate::singer::{self, batch};

impl Run<'_, '_> {
    /// A BATCH message: its files' records are loaded exactly like RECORD messages of the
    /// stream, at the BATCH line's position. The files are read on their own thread, so a slow
    /// or stuck file (a FIFO, an S3 endpoint that never answers) never blocks this one: it keeps
    /// handling durable files and signals while it waits.
    pub(super) fn batch(
        &mut self,
        stream: &str,
        encoding: singer::BatchEncoding,
        urls: Vec<String>,
    ) -> Result<Flow, Error> {
        tracing::info!(stream, files = urls.len(), line = self.line, "reading BATCH files");
        let blocks = batch::spawn(encoding, urls, self.batches.clone(), self.config.max_line_bytes);
        let (events, signals) = (self.events.clone(), self.signals.clone());
        loop {
            select! {
                recv(blocks) -> block => match block {
                    Ok(Ok(block)) => {
                        for (n, line) in block.lines.lines().enumerate() {
                            let at = |message: String| format!("{} line {}: {message}", block.url, block.first_line + n as u64);
                            let line = line.map_err(|b| self.input_error(Some(stream), InputErrorKind::Batch(at(format!("invalid UTF-8 at byte {b}")))))?;
                            if line.trim().is_empty() {
                                continue;
                            }
                            let record: &RawValue = serde_json::from_str(line).map_err(|e| {
                                self.input_error(Some(stream), InputErrorKind::Batch(at(format!("malformed JSON: {e}"))))
                            })?;
                            self.batch_at = Some(crate::error::BatchPlace { url: block.url.clone(), line: block.first_line + n as u64 });
                            let loaded = self.record(stream, record.get(), None, None, None);
                            self.batch_at = None;
                            loaded?;
                        }
                    }
                    Ok(Err(message)) => return Err(self.input_error(Some(stream), InputErrorKind::Batch(message))),
                    Err(_) => return Ok(Flow::Continue), // every file read
                },
                recv(events) -> event => {
                    if let Ok(event) = event {
                        self.event(event)?;
                        self.release_state()?;
                    }
                },
                recv(signals) -> signal => {
                    self.first_signal(signal.unwrap_or_default());
                    return Ok(Flow::Stop);
                }
            }
        }
    }
}
