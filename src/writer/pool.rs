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

    /// How many jobs are queued after file `id`'s last one (all of them when it has none):
    /// waiting until no more than that are queued passes on every chunk of the file.
    pub fn queued_after(&self, id: FileId) -> usize {
        match self.queue.iter().rposition(|(file, _, _)| *file == id) {
            Some(last) => self.queue.len() - last - 1,
            None => self.queue.len(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::gzip::GzipMembers;

    /// Results come back in the order jobs were queued, whatever thread finishes first, and a
    /// file's close waits exactly until its own last chunk is out.
    #[test]
    fn results_come_back_in_queue_order() {
        let pool = Pool::new(4);
        let mut queue = InOrder::default();
        let mut files = [GzipMembers::new(6, "a"), GzipMembers::new(6, "b")];
        let mut expected = Vec::new();
        for i in 0..40usize {
            let file = i % 3 % 2;
            // Big and small chunks, so later jobs often finish first.
            let data = vec![b'a' + (i % 26) as u8; if i % 4 == 0 { 300_000 } else { 10 }];
            expected.push((file as FileId, data.len() as u64));
            let job = files[file].job(data);
            queue.submit(&pool, file as FileId, expected.last().unwrap().1, job);
        }
        let last_of_0 = expected.iter().rposition(|(f, _)| *f == 0).unwrap();
        assert_eq!(queue.queued_after(0), expected.len() - last_of_0 - 1);
        assert_eq!(queue.queued_after(7), expected.len(), "no job of that file");
        let mut got = Vec::new();
        while let Some((id, len, done)) = queue.next(0) {
            assert!(done.members.is_ok());
            got.push((id, len));
        }
        assert_eq!(got, expected);
    }
}
