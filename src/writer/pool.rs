//! gzip members compressed on several threads. A file's chunks are independent gzip members
//! (see [`super::gzip`]), so the writer thread hands each chunk to the pool as it arrives and
//! passes the results on in the order the chunks came: storage sees each file's bytes, and the
//! pipeline sees each file's close, exactly as if one thread had compressed them. With one
//! core (`workers: 1`) there is no pool and the writer compresses inline as before.

use std::collections::VecDeque;

use crossbeam_channel::{Receiver, Sender, TryRecvError, bounded};

use super::gzip::Members;
use crate::destination::FileId;

/// A job's result: the members, and the chunk it was made from (for reuse).
pub struct Done {
    pub members: std::io::Result<Vec<u8>>,
    pub data: Vec<u8>,
}

struct Task {
    job: Members,
    reply: Sender<Done>,
}

/// The compressing threads; they end when the pool is dropped.
pub struct Pool {
    tasks: Sender<Task>,
    /// Output buffers passed on to storage, back for the next jobs.
    spent: Sender<Vec<u8>>,
}

impl Pool {
    pub fn new(threads: usize) -> Pool {
        let (tasks, queue) = bounded::<Task>(2 * threads);
        let (spent, reused) = bounded::<Vec<u8>>(4 * threads);
        for n in 0..threads {
            let (queue, reused) = (queue.clone(), reused.clone());
            std::thread::Builder::new()
                .name(format!("compress-{n}"))
                .spawn(move || {
                    for Task { job, reply } in queue {
                        #[cfg(debug_assertions)]
                        if std::env::var_os("TARGET_S3_DEBUG_PANIC").is_some_and(|v| v == "compress") {
                            panic!("injected by TARGET_S3_DEBUG_PANIC") // debug builds only, for the tests
                        }
                        let mut out = reused.try_recv().unwrap_or_default();
                        let members = job.run(&mut out).map(|()| out);
                        // The writer may have given up on the file (an error): nothing to do.
                        let _ = reply.send(Done { members, data: job.data });
                    }
                })
                .expect("spawning a compressing thread");
        }
        Pool { tasks, spent }
    }

    /// Hands `out` (passed on to storage) back for reuse.
    pub fn reuse(&self, mut out: Vec<u8>) {
        out.clear();
        let _ = self.spent.try_send(out);
    }
}

/// Jobs in the order their chunks arrived.
#[derive(Default)]
pub struct InOrder {
    queue: VecDeque<(FileId, u64, Receiver<Done>)>,
}

impl InOrder {
    /// Queues `job`, a chunk of `len` bytes of file `id`.
    pub fn submit(&mut self, pool: &Pool, id: FileId, len: u64, job: Members) {
        let (reply, done) = bounded(1);
        // The pool's threads live as long as the pool: the send only fails if one panicked,
        // and then the reply's sender is dropped and `next` reports it.
        let _ = pool.tasks.send(Task { job, reply });
        self.queue.push_back((id, len, done));
    }

    /// The oldest job's result, once done: waiting for it while more than `keep` are queued
    /// (`keep` 0: every job), else only if it is done already.
    pub fn next(&mut self, keep: usize) -> Option<(FileId, u64, Done)> {
        let (_, _, done) = self.queue.front()?;
        let result = if self.queue.len() > keep {
            done.recv().unwrap_or_else(|_| lost())
        } else {
            match done.try_recv() {
                Ok(result) => result,
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Disconnected) => lost(),
            }
        };
        let (id, len, _) = self.queue.pop_front()?;
        Some((id, len, result))
    }

    /// How many jobs may be queued before the writer waits for the oldest: enough to keep
    /// every one of `threads` busy while the writer passes results on.
    pub fn depth(threads: usize) -> usize {
        2 * threads
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn clear(&mut self) {
        self.queue.clear();
    }
}

/// A job whose thread ended without an answer (a panic there).
fn lost() -> Done {
    Done {
        members: Err(std::io::Error::other("a thread compressing gzip members failed (a bug; please report it)")),
        data: Vec::new(),
    }
}
