//! `workers`: records are parsed and validated on worker threads, a block of lines at a time,
//! ahead of the decode thread. Validation (a value tree per record, the JSON Schema check, the
//! exact number checks) is the largest share of the decode thread's work and depends on nothing
//! but the record and its stream's schema, so it can run anywhere; everything that depends on
//! order (which file a record goes to, rolls, keys, STATE) stays on the decode thread, which
//! takes the blocks back in input order. Output is therefore the same for any number of
//! workers.
//!
//! A worker checks a record against the stream's schema as the decode thread last published it
//! (once per block, not per record). A verdict names the compiled schema it was reached with;
//! the decode thread uses it only if that is still the stream's schema when it reaches the
//! record, and checks the record itself otherwise (a SCHEMA line between, the first blocks
//! before the first SCHEMA was read).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::error::InputErrorKind;
use crate::schema::{Found, StreamSchema};
use crate::singer::{self, Block, Located, Message};

/// A worker's work on one RECORD line: where its parts lie, and its verdict.
pub struct Verdict {
    /// The line decoded: the decode thread takes the message from here instead of parsing the
    /// line again.
    pub located: Option<Located>,
    /// The address of the compiled schema it was checked against (kept alive by the block's
    /// snapshot, so no other schema can be at that address meanwhile): compared, never read,
    /// and no reference count touched per record; 0 when the stream had none published.
    schema: usize,
    /// What [`StreamSchema::check`] said. The parsed record is dropped here, on the thread
    /// that built it: handing value trees to the decode thread cost more than the check saved
    /// (cache misses and cross-thread frees, measured); the decode thread reads a cursor field
    /// from the record's text instead.
    result: Result<Found, InputErrorKind>,
}

impl Verdict {
    /// The verdict, if it was reached with `schema` (the stream's schema now).
    pub fn for_schema(self, schema: &Arc<StreamSchema>) -> Option<Result<Found, InputErrorKind>> {
        (self.schema == Arc::as_ptr(schema) as usize).then_some(self.result)
    }
}

/// A block with the verdicts on its lines (`None`: not checked, for any reason).
pub struct Checked {
    pub block: Block,
    pub verdicts: Vec<Option<Verdict>>,
    /// The schemas the verdicts were reached with, alive as long as they are.
    _schemas: Arc<Published>,
}

/// Per stream, its compiled schema.
pub type Published = HashMap<String, Arc<StreamSchema>>;

/// The streams' schemas as the decode thread last published them.
#[derive(Clone, Default)]
pub struct Schemas(Arc<RwLock<Arc<Published>>>);

impl Schemas {
    /// Replaces what workers check against (after a SCHEMA line; the map is small).
    pub fn publish(&self, streams: Published) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(streams);
    }

    fn snapshot(&self) -> Arc<Published> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Blocks in the order they were read, checked by `workers` threads (at least one). Block `i`
/// goes to worker `i % workers` and comes back through its channel, so reading the channels
/// in turn restores the input order with no reordering buffer. A worker takes one block and
/// may have two done ahead of the decode thread (so one descheduled worker does not stall the
/// others at once): the memory in flight is a few blocks per worker.
pub struct Ordered {
    outputs: Vec<Receiver<std::io::Result<Checked>>>,
    next: usize,
    /// Verdict lists going back to the workers, emptied: a list grown afresh per block (and
    /// freed on another thread) cost fresh pages per block and held memory in the allocator.
    recycle: Sender<Vec<Option<Verdict>>>,
}

impl Ordered {
    /// The channel the next block in input order comes from.
    pub fn next_channel(&self) -> &Receiver<std::io::Result<Checked>> {
        &self.outputs[self.next]
    }

    /// A block was taken from [`Ordered::next_channel`].
    pub fn advance(&mut self) {
        self.next = (self.next + 1) % self.outputs.len();
    }

    /// Hands a block's verdict list back for reuse.
    pub fn recycle(&self, mut verdicts: Vec<Option<Verdict>>) {
        if verdicts.capacity() > 0 {
            verdicts.clear();
            let _ = self.recycle.try_send(verdicts);
        }
    }
}

/// Starts `workers` checking threads and the thread that deals the reader's blocks out to them.
/// One worker checks nothing: the decode thread checks every record itself, as a run did before
/// there were workers (the reference the tests compare more workers with).
pub fn spawn(blocks: Receiver<std::io::Result<Block>>, workers: usize, schemas: &Schemas) -> Ordered {
    let check = workers > 1;
    let workers = workers.max(1);
    let mut inputs: Vec<Sender<std::io::Result<Block>>> = Vec::with_capacity(workers);
    let mut outputs = Vec::with_capacity(workers);
    let (recycle, reused) = bounded::<Vec<Option<Verdict>>>(2 * workers);
    for n in 0..workers {
        let reused = reused.clone();
        let (in_tx, in_rx) = bounded::<std::io::Result<Block>>(1);
        let (out_tx, out_rx) = bounded(2);
        let schemas = schemas.clone();
        std::thread::Builder::new()
            .name(format!("check-{n}"))
            .spawn(move || {
                // A panic here must not pass for the end of input (a closed channel): where no
                // panic hook ends the process (the library), the decode thread gets an error.
                let _alarm = Alarm(out_tx.clone());
                for block in in_rx {
                    let checked = block.map(|block| match check {
                        true => check_block(block, schemas.snapshot(), reused.try_recv().unwrap_or_default()),
                        false => Checked { block, verdicts: Vec::new(), _schemas: Arc::default() },
                    });
                    if out_tx.send(checked).is_err() {
                        return;
                    }
                }
            })
            .expect("spawning a worker thread");
        inputs.push(in_tx);
        outputs.push(out_rx);
    }
    std::thread::Builder::new()
        .name("deal-blocks".into())
        .spawn(move || {
            for (i, block) in blocks.into_iter().enumerate() {
                if inputs[i % inputs.len()].send(block).is_err() {
                    return;
                }
            }
        })
        .expect("spawning the dealing thread");
    Ordered { outputs, next: 0, recycle }
}

/// Sends an error in place of the next block if its thread unwinds.
struct Alarm(Sender<std::io::Result<Checked>>);

impl Drop for Alarm {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ =
                self.0.send(Err(std::io::Error::other("a thread checking records failed (a bug; please report it)")));
        }
    }
}

/// Each RECORD line decoded, and checked when its stream has a published schema.
fn check_block(block: Block, streams: Arc<Published>, mut verdicts: Vec<Option<Verdict>>) -> Checked {
    for line in block.lines() {
        let verdict = line.ok().and_then(|line| {
            let message = singer::decode(line).ok()?;
            let located = Located::of(line, &message)?;
            let Message::Record { stream, record, .. } = message else { return None };
            let (schema, result) = match streams.get(stream.as_ref()) {
                Some(schema) => (Arc::as_ptr(schema) as usize, schema.check_deferred(record)),
                None => (0, Ok(Found::default())),
            };
            Some(Verdict { located: Some(located), schema, result })
        });
        verdicts.push(verdict);
    }
    Checked { block, verdicts, _schemas: streams }
}
