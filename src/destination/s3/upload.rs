//! One object's upload as a small state machine, after object_store's `upload.rs`: bytes fill a
//! part buffer; a file that stays below one part is a single PutObject when it ends; one that
//! reaches a part becomes a multipart upload while it is being written, with at most
//! `upload_concurrency` requests in flight across all files (one semaphore), so memory is bounded
//! by the part size, never by the file size. Any failure aborts the multipart upload, so no
//! partial object and no billed parts stay behind. The requests are a trait: the machine is
//! tested against a fake store, the real one is [`super::requests::AwsRequests`].

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::destination::{Completion, ObjectMeta, ObjectSink};
use crate::error::StorageError;

/// A finished part, as CompleteMultipartUpload wants it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub number: i32,
    pub etag: Option<String>,
    pub crc32: Option<String>,
}

/// The five requests an upload makes. `write_id` is unique per object and travels with it
/// (user metadata), so a retried request that finds "its" object already there can tell its
/// own earlier attempt from somebody else's object.
pub trait Requests: Send + Sync + 'static {
    fn put(
        &self,
        key: &str,
        meta: &ObjectMeta,
        write_id: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    fn create_multipart(
        &self,
        key: &str,
        meta: &ObjectMeta,
        write_id: &str,
    ) -> impl Future<Output = Result<String, StorageError>> + Send;
    fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<Part, StorageError>> + Send;
    fn complete(
        &self,
        key: &str,
        meta: &ObjectMeta,
        write_id: &str,
        upload_id: &str,
        parts: Vec<Part>,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    fn abort(&self, key: &str, upload_id: &str) -> impl Future<Output = ()> + Send;
}

/// What every upload of one store shares.
pub struct Uploads<R> {
    pub requests: Arc<R>,
    pub handle: Handle,
    /// Requests in flight across all files (`upload_concurrency`).
    pub permits: Arc<Semaphore>,
    pub part_size: usize,
    /// Finishing and aborting uploads, awaited at shutdown so none is cut off half-way.
    pub background: Mutex<Vec<JoinHandle<()>>>,
}

impl<R> Uploads<R> {
    fn track(&self, task: JoinHandle<()>) {
        let mut background = self.background.lock().expect("not poisoned");
        background.retain(|t| !t.is_finished());
        background.push(task);
    }

    /// Takes the background tasks, for shutdown.
    pub fn take_background(&self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut *self.background.lock().expect("not poisoned"))
    }
}

enum State {
    /// Below one part so far: the bytes are all in the buffer.
    Buffering,
    /// Parts are uploading; the buffer holds the next one.
    Multipart { id: String, done: Vec<Part>, running: Vec<JoinHandle<Result<Part, StorageError>>> },
}

pub struct Upload<R: Requests> {
    shared: Arc<Uploads<R>>,
    key: String,
    meta: ObjectMeta,
    write_id: String,
    /// The part being filled; never more than `part_size` bytes.
    buf: Vec<u8>,
    state: State,
    bytes: u64,
}

impl<R: Requests> Upload<R> {
    pub fn new(shared: Arc<Uploads<R>>, key: String, meta: ObjectMeta) -> Upload<R> {
        let write_id = uuid::Uuid::new_v4().to_string();
        Upload { shared, key, meta, write_id, buf: Vec::new(), state: State::Buffering, bytes: 0 }
    }

    /// Sends the full buffer as the next part; waits for a free request slot first, which is
    /// what keeps memory bounded when S3 is slower than the input.
    fn send_part(&mut self) -> Result<(), StorageError> {
        let shared = self.shared.clone();
        if let State::Buffering = self.state {
            let id = shared.handle.block_on(shared.requests.create_multipart(&self.key, &self.meta, &self.write_id))?;
            self.state = State::Multipart { id, done: Vec::new(), running: Vec::new() };
        }
        let State::Multipart { id, done, running } = &mut self.state else { unreachable!("set above") };
        // Surface a failed part now instead of at the end of the file.
        let (finished, still): (Vec<_>, Vec<_>) = running.drain(..).partition(|t| t.is_finished());
        *running = still;
        for task in finished {
            done.push(join_part(&shared.handle, task)?);
        }
        let permit = shared.handle.block_on(shared.permits.clone().acquire_owned()).expect("semaphore never closed");
        let body = std::mem::replace(&mut self.buf, Vec::with_capacity(shared.part_size));
        let number = (done.len() + running.len() + 1) as i32;
        let (upload_id, key, task_shared) = (id.clone(), self.key.clone(), shared.clone());
        running.push(shared.handle.spawn(async move {
            let result = task_shared.requests.upload_part(&key, &upload_id, number, body).await;
            drop(permit);
            result
        }));
        Ok(())
    }
}

fn join_part(handle: &Handle, task: JoinHandle<Result<Part, StorageError>>) -> Result<Part, StorageError> {
    handle.block_on(task).unwrap_or_else(|e| Err(StorageError::S3Setup(format!("upload task failed: {e}"))))
}

impl<R: Requests> ObjectSink for Upload<R> {
    fn write(&mut self, mut data: &[u8]) -> Result<(), StorageError> {
        self.bytes += data.len() as u64;
        let part_size = self.shared.part_size;
        while !data.is_empty() {
            if self.buf.capacity() == 0 {
                // A power of two, so doubling growth ends exactly at a (power-of-two) part
                // size instead of overshooting it: small files stay small, large ones never
                // hold more than one part.
                self.buf.reserve_exact(64 * 1024);
            }
            let room = if self.meta.key_at_close { data.len() } else { part_size - self.buf.len() };
            let n = room.min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            // A key decided at close cannot start a multipart upload: such files (bounded by
            // max_bytes_per_file, checked at start-up) are one PutObject.
            if self.buf.len() >= part_size && !self.meta.key_at_close {
                self.send_part()?;
            }
        }
        Ok(())
    }

    fn finish(self: Box<Self>, done: Completion) {
        let Upload { shared, key, meta, write_id, buf, state, bytes } = *self;
        let task_shared = shared.clone();
        let task = shared.handle.spawn(async move {
            let r = &task_shared.requests;
            let result = match state {
                State::Buffering => {
                    let _permit = task_shared.permits.acquire().await.expect("semaphore never closed");
                    r.put(done.key.as_str(), &meta, &write_id, buf).await
                }
                State::Multipart { id, done: parts, running } => {
                    complete(&task_shared, &key, &meta, &write_id, &id, parts, running, buf).await
                }
            };
            done.done(result.map(|()| bytes));
        });
        shared.track(task);
    }

    fn abort(self: Box<Self>) {
        let Upload { shared, key, state, .. } = *self;
        let State::Multipart { id, running, .. } = state else { return };
        let task_shared = shared.clone();
        let task = shared.handle.spawn(async move {
            // Parts still uploading would survive an abort sent before they finish.
            for t in running {
                let _ = t.await;
            }
            task_shared.requests.abort(&key, &id).await;
        });
        shared.track(task);
    }
}

/// Uploads the last part, waits for all parts, completes; aborts the upload on any failure.
#[allow(clippy::too_many_arguments)]
async fn complete<R: Requests>(
    shared: &Uploads<R>,
    key: &str,
    meta: &ObjectMeta,
    write_id: &str,
    upload_id: &str,
    mut parts: Vec<Part>,
    running: Vec<JoinHandle<Result<Part, StorageError>>>,
    last: Vec<u8>,
) -> Result<(), StorageError> {
    let mut result: Result<(), StorageError> = Ok(());
    for task in running {
        match task.await {
            Ok(Ok(part)) => parts.push(part),
            Ok(Err(e)) => result = result.and(Err(e)),
            Err(e) => result = result.and(Err(StorageError::S3Setup(format!("upload task failed: {e}")))),
        }
    }
    if result.is_ok() && (!last.is_empty() || parts.is_empty()) {
        let number = parts.len() as i32 + 1;
        let _permit = shared.permits.acquire().await.expect("semaphore never closed");
        match shared.requests.upload_part(key, upload_id, number, last).await {
            Ok(part) => parts.push(part),
            Err(e) => result = Err(e),
        }
    }
    if result.is_ok() {
        parts.sort_by_key(|p| p.number);
        match shared.requests.complete(key, meta, write_id, upload_id, parts).await {
            Ok(()) => return Ok(()),
            Err(e) => result = Err(e),
        }
    }
    shared.requests.abort(key, upload_id).await;
    result
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::destination::Event;
    use crate::keys::ObjectKey;

    /// A store in memory that records every request and fails the ones it is told to.
    #[derive(Default)]
    struct Fake {
        calls: Mutex<Vec<String>>,
        parts: Mutex<Vec<(i32, Vec<u8>)>>,
        objects: Mutex<Vec<(String, Vec<u8>)>>,
        fail_part: Option<i32>,
        in_flight: AtomicUsize,
        most_in_flight: AtomicUsize,
    }

    impl Fake {
        fn log(&self, call: String) {
            self.calls.lock().unwrap().push(call);
        }
        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl Requests for Fake {
        async fn put(&self, key: &str, _: &ObjectMeta, _: &str, body: Vec<u8>) -> Result<(), StorageError> {
            self.log(format!("put {key} {}", body.len()));
            self.objects.lock().unwrap().push((key.to_string(), body));
            Ok(())
        }
        async fn create_multipart(&self, key: &str, _: &ObjectMeta, _: &str) -> Result<String, StorageError> {
            self.log(format!("create {key}"));
            Ok("u1".into())
        }
        async fn upload_part(&self, _: &str, _: &str, number: i32, body: Vec<u8>) -> Result<Part, StorageError> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            if self.fail_part == Some(number) {
                return Err(StorageError::S3Setup(format!("part {number} refused")));
            }
            self.parts.lock().unwrap().push((number, body));
            Ok(Part { number, etag: Some(format!("e{number}")), crc32: None })
        }
        async fn complete(
            &self,
            key: &str,
            _: &ObjectMeta,
            _: &str,
            _: &str,
            parts: Vec<Part>,
        ) -> Result<(), StorageError> {
            let numbers: Vec<i32> = parts.iter().map(|p| p.number).collect();
            self.log(format!("complete {key} {numbers:?}"));
            let mut stored = self.parts.lock().unwrap().clone();
            stored.sort_by_key(|(n, _)| *n);
            let body = stored.into_iter().flat_map(|(_, b)| b).collect();
            self.objects.lock().unwrap().push((key.to_string(), body));
            Ok(())
        }
        async fn abort(&self, key: &str, upload_id: &str) {
            self.log(format!("abort {key} {upload_id}"));
        }
    }

    struct Harness {
        runtime: tokio::runtime::Runtime,
        shared: Arc<Uploads<Fake>>,
    }

    fn harness(fake: Fake, part_size: usize, concurrency: usize) -> Harness {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let shared = Arc::new(Uploads {
            requests: Arc::new(fake),
            handle: runtime.handle().clone(),
            permits: Arc::new(Semaphore::new(concurrency)),
            part_size,
            background: Mutex::new(Vec::new()),
        });
        Harness { runtime, shared }
    }

    fn meta(key_at_close: bool) -> ObjectMeta {
        ObjectMeta { content_type: "text/plain", content_encoding: None, key_at_close, overwrite: false }
    }

    /// Writes `data` in chunks, finishes, and returns the completion event.
    fn upload(h: &Harness, data: &[u8], chunk: usize, key_at_close: bool) -> Event {
        let mut up = Box::new(Upload::new(h.shared.clone(), "k".into(), meta(key_at_close)));
        for c in data.chunks(chunk) {
            up.write(c).unwrap();
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        up.finish(Completion::new(1, ObjectKey::new("k".into()).unwrap(), 0, tx));
        let event = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        for t in h.shared.take_background() {
            h.runtime.block_on(t).unwrap();
        }
        event
    }

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn a_file_below_one_part_is_one_put() {
        let h = harness(Fake::default(), 1024, 4);
        let data = bytes(1000);
        assert!(matches!(upload(&h, &data, 100, false), Event::Durable { bytes: 1000, .. }));
        assert_eq!(h.shared.requests.calls(), ["put k 1000"]);
        assert_eq!(h.shared.requests.objects.lock().unwrap()[0].1, data);
    }

    #[test]
    fn a_larger_file_streams_as_numbered_parts_in_order() {
        let h = harness(Fake::default(), 1024, 4);
        let data = bytes(2600);
        assert!(matches!(upload(&h, &data, 300, false), Event::Durable { bytes: 2600, .. }));
        assert_eq!(h.shared.requests.calls(), ["create k", "complete k [1, 2, 3]"]);
        let parts = h.shared.requests.parts.lock().unwrap().clone();
        assert!(parts.iter().all(|(n, b)| b.len() == if *n < 3 { 1024 } else { 552 }), "full parts then the rest");
        assert_eq!(h.shared.requests.objects.lock().unwrap()[0].1, data);
    }

    #[test]
    fn a_part_that_fails_aborts_the_upload_and_fails_the_file() {
        let h = harness(Fake { fail_part: Some(2), ..Fake::default() }, 1024, 4);
        let event = upload(&h, &bytes(5000), 1000, false);
        // The failure surfaces while writing (next part) or at the end; either way the upload
        // is aborted and never completed.
        let calls = h.shared.requests.calls();
        assert!(matches!(event, Event::Failed(_)), "{calls:?}");
        assert!(
            calls.contains(&"abort k u1".to_string()) && !calls.iter().any(|c| c.starts_with("complete")),
            "{calls:?}"
        );
    }

    #[test]
    fn an_aborted_file_aborts_its_multipart_upload_after_its_parts() {
        let h = harness(Fake::default(), 1024, 4);
        let mut up = Box::new(Upload::new(h.shared.clone(), "k".into(), meta(false)));
        up.write(&bytes(3000)).unwrap();
        up.abort();
        for t in h.shared.take_background() {
            h.runtime.block_on(t).unwrap();
        }
        assert_eq!(h.shared.requests.calls(), ["create k", "abort k u1"]);
        assert!(h.shared.requests.objects.lock().unwrap().is_empty());
    }

    #[test]
    fn requests_in_flight_never_exceed_the_concurrency() {
        let h = harness(Fake::default(), 1024, 2);
        upload(&h, &bytes(20 * 1024), 4096, false);
        assert!(h.shared.requests.most_in_flight.load(Ordering::SeqCst) <= 2);
        assert_eq!(h.shared.requests.parts.lock().unwrap().len(), 20);
    }

    #[test]
    fn a_key_decided_at_close_is_one_put_whatever_its_size() {
        let h = harness(Fake::default(), 1024, 4);
        upload(&h, &bytes(5000), 700, true);
        assert_eq!(h.shared.requests.calls(), ["put k 5000"]);
    }
}
