//! A fault-injecting HTTP proxy between target-s3 and the S3 server, on loopback only. It reads
//! one request at a time (head and `Content-Length` body), forwards it on a fresh upstream
//! connection and relays the answer with `Connection: close`, so every request is a unit it can
//! break on purpose: answer 503 SlowDown or 500 InternalError, reset the connection half-way
//! through the request body, answer too late, or cut the response body short. "Down" refuses
//! everything, as a server that died.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 503 SlowDown (throttling).
    SlowDown,
    /// 500 InternalError.
    InternalError,
    /// 403 AccessDenied (a write the credentials may not do).
    AccessDenied,
    /// Close the connection after half of the request body, without an answer.
    ResetMidBody,
    /// Forward the request, then wait this long before answering.
    Delay(Duration),
    /// Hold the request this long without forwarding it, then close: it never happened.
    Hang(Duration),
    /// Forward the request, then send only the first half of the answer's bytes and close.
    TruncateResponse,
    /// Forward the request (it succeeds upstream), then close without a byte of the answer.
    LoseResponse,
}

pub struct Proxy {
    pub endpoint: String,
    state: Arc<State>,
}

#[derive(Default)]
struct State {
    down: AtomicBool,
    /// Faults for the next requests that match `only`, in order.
    faults: Mutex<VecDeque<Fault>>,
    /// Only requests whose head contains this text get faults (e.g. "uploadId=" for parts).
    only: Mutex<Option<String>>,
    /// Every request gets this fault (permanent failure).
    always: Mutex<Option<Fault>>,
    pub requests: AtomicUsize,
    pub faulted: AtomicUsize,
    /// The head (request line and headers) of every request, in arrival order.
    heads: Mutex<Vec<String>>,
    /// A request header (lowercase name) removed before forwarding: a store that ignores it.
    strip: Mutex<Option<String>>,
}

impl Proxy {
    /// Forwards 127.0.0.1:<new port> to `upstream` (host:port).
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State::default());
        let upstream = upstream.to_string();
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if shared.down.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let (state, upstream) = (shared.clone(), upstream.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, &upstream, &state);
                });
            }
        });
        Proxy { endpoint, state }
    }

    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// Queues faults for the next requests (optionally only those whose request line or
    /// headers contain `only`).
    pub fn inject(&self, faults: &[Fault], only: Option<&str>) {
        *self.state.only.lock().unwrap() = only.map(str::to_string);
        self.state.faults.lock().unwrap().extend(faults.iter().copied());
    }

    /// Removes the request header `name` from every request from now on (`if-none-match`: the
    /// store behind the proxy then behaves as one that ignores conditional writes).
    pub fn strip_header(&self, name: &str) {
        *self.state.strip.lock().unwrap() = Some(name.to_ascii_lowercase());
    }

    /// Drops the faults not used yet.
    pub fn clear(&self) {
        self.state.faults.lock().unwrap().clear();
        *self.state.only.lock().unwrap() = None;
    }

    pub fn fail_always(&self, fault: Option<Fault>) {
        *self.state.always.lock().unwrap() = fault;
    }

    pub fn faults_left(&self) -> usize {
        self.state.faults.lock().unwrap().len()
    }

    pub fn faulted(&self) -> usize {
        self.state.faulted.load(Ordering::SeqCst)
    }

    /// The heads (request line and headers) of the requests so far, in arrival order.
    pub fn request_heads(&self) -> Vec<String> {
        self.state.heads.lock().unwrap().clone()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads an HTTP head (through the blank line) and returns it with any body bytes read past it.
fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok(Some((buf, rest)));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn content_length(head: &[u8]) -> usize {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    text.lines().find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))).unwrap_or(0)
}

/// Rewrites the `Connection` header to `close`.
fn with_close(head: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

/// The head without the header `name` (lowercase).
fn without_header(head: &[u8], name: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let prefix = format!("{name}:");
    let kept: Vec<&str> = text.split("\r\n").filter(|l| !l.to_ascii_lowercase().starts_with(&prefix)).collect();
    kept.join("\r\n").into_bytes()
}

fn error_response(status: &str, code: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>"
    );
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn next_fault(state: &State, head: &[u8]) -> Option<Fault> {
    if let Some(f) = *state.always.lock().unwrap() {
        return Some(f);
    }
    let only = state.only.lock().unwrap().clone();
    if let Some(only) = only
        && find(head, only.as_bytes()).is_none()
    {
        return None;
    }
    state.faults.lock().unwrap().pop_front()
}

fn serve(mut client: TcpStream, upstream: &str, state: &State) -> std::io::Result<()> {
    let Some((head, mut body)) = read_head(&mut client)? else { return Ok(()) };
    state.requests.fetch_add(1, Ordering::SeqCst);
    state.heads.lock().unwrap().push(String::from_utf8_lossy(&head).into_owned());
    let length = content_length(&head);
    let fault = next_fault(state, &head);
    if fault.is_some() {
        state.faulted.fetch_add(1, Ordering::SeqCst);
    }
    let read_body = |client: &mut TcpStream, body: &mut Vec<u8>| -> std::io::Result<()> {
        let mut chunk = vec![0u8; 64 * 1024];
        while body.len() < length {
            let n = client.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        Ok(())
    };
    match fault {
        // Error answers come after the whole request, as a server sends them.
        Some(Fault::SlowDown) => {
            read_body(&mut client, &mut body)?;
            return client.write_all(&error_response("503 Slow Down", "SlowDown"));
        }
        Some(Fault::InternalError) => {
            read_body(&mut client, &mut body)?;
            return client.write_all(&error_response("500 Internal Server Error", "InternalError"));
        }
        Some(Fault::AccessDenied) => {
            read_body(&mut client, &mut body)?;
            return client.write_all(&error_response("403 Forbidden", "AccessDenied"));
        }
        Some(Fault::Hang(d)) => {
            std::thread::sleep(d);
            return client.shutdown(Shutdown::Both);
        }
        Some(Fault::ResetMidBody) => {
            let mut chunk = vec![0u8; 64 * 1024];
            while body.len() < length / 2 {
                let n = client.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
            return client.shutdown(Shutdown::Both);
        }
        _ => {}
    }
    read_body(&mut client, &mut body)?;
    if state.down.load(Ordering::SeqCst) {
        return client.shutdown(Shutdown::Both);
    }
    let mut server = TcpStream::connect(upstream)?;
    let head = match state.strip.lock().unwrap().as_deref() {
        Some(name) => without_header(&head, name),
        None => head,
    };
    server.write_all(&with_close(&head))?;
    server.write_all(&body)?;
    let mut response = Vec::new();
    server.read_to_end(&mut response)?;
    let (response_head, response_body) = match find(&response, b"\r\n\r\n") {
        Some(end) => (with_close(&response[..end + 4]), response[end + 4..].to_vec()),
        None => (response.clone(), Vec::new()),
    };
    match fault {
        Some(Fault::Delay(d)) => std::thread::sleep(d),
        Some(Fault::LoseResponse) => return client.shutdown(Shutdown::Both),
        Some(Fault::TruncateResponse) => {
            let full = [response_head.as_slice(), response_body.as_slice()].concat();
            client.write_all(&full[..full.len() / 2])?;
            return client.shutdown(Shutdown::Both);
        }
        _ => {}
    }
    if state.down.load(Ordering::SeqCst) {
        return client.shutdown(Shutdown::Both);
    }
    client.write_all(&response_head)?;
    client.write_all(&response_body)?;
    client.shutdown(Shutdown::Both)
}
