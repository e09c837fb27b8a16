//! The sink: a minimal HTTP/1.1 server on 127.0.0.1 that answers every request `200` at once
//! and records when it arrived, on which path, with which `webhook-id`, and its body.
//!
//! It runs on a single-threaded tokio runtime in a thread of its own and shares the process's
//! monotonic clock with the load generator, so "arrived − answered" is one clock's difference.
//! It speaks just enough HTTP/1.1 for keywire's webhook client and the generator: keep-alive,
//! `Content-Length` bodies (chunked bodies get `411` and the connection closes: no client here
//! sends them, and a miscount would show up as missing deliveries).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// One request as the sink received it.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// When its last byte was read.
    pub at: Instant,
    /// The number at the end of the path (`/hook/7` → 7), if any.
    pub hook: Option<u32>,
    /// The `webhook-id` header.
    pub id: String,
    /// The body.
    pub body: Vec<u8>,
}

#[derive(Default)]
struct Shared {
    arrivals: Mutex<Vec<Arrival>>,
    count: AtomicU64,
}

/// A running sink; stops (with its thread) when dropped.
pub struct Sink {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
const OK_CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
const BAD: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
const NO_LENGTH: &[u8] =
    b"HTTP/1.1 411 Length Required\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
/// Largest head (request line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest body accepted.
const MAX_BODY: usize = 8 * 1024 * 1024;

impl Sink {
    /// Starts the sink on a free port.
    pub fn start() -> Result<Sink, String> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("sink: cannot bind 127.0.0.1: {e}"))?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| format!("sink: {e}"))?;
        let port = std_listener
            .local_addr()
            .map_err(|e| format!("sink: {e}"))?
            .port();
        let shared = Arc::new(Shared::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let inner = shared.clone();
        let thread = std::thread::Builder::new()
            .name("bench-sink".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime for the sink");
                runtime.block_on(async move {
                    let listener =
                        TcpListener::from_std(std_listener).expect("the sink's listener");
                    tokio::select! {
                        () = accept_loop(listener, inner) => {}
                        _ = stopped => {}
                    }
                });
            })
            .map_err(|e| format!("sink: cannot start its thread: {e}"))?;
        Ok(Sink {
            url: format!("http://127.0.0.1:{port}"),
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// How many requests arrived since the start (never reset).
    pub fn count(&self) -> u64 {
        self.shared.count.load(Ordering::Acquire)
    }

    /// Every request recorded since the last call, in arrival order; clears the record.
    pub fn take(&self) -> Vec<Arrival> {
        std::mem::take(&mut *self.shared.arrivals.lock().expect("sink lock"))
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, say: back off a little rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve(stream, shared.clone()));
    }
}

/// What the head of one request says.
struct Head {
    /// Bytes of the request line and headers.
    len: usize,
    body_len: usize,
    close: bool,
    hook: Option<u32>,
    id: String,
}

enum Parsed {
    Complete(Head),
    Partial,
    /// Answer this and close.
    Refuse(&'static [u8]),
}

fn parse_head(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Parsed::Partial,
        _ => return Parsed::Refuse(BAD),
    };
    let mut head = Head {
        len,
        body_len: 0,
        close: request.version == Some(0),
        hook: request.path.and_then(hook_of),
        id: String::new(),
    };
    for header in request.headers.iter() {
        let value = header.value;
        if header.name.eq_ignore_ascii_case("content-length") {
            match std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
            {
                Some(n) if n <= MAX_BODY => head.body_len = n,
                _ => return Parsed::Refuse(BAD),
            }
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Parsed::Refuse(NO_LENGTH);
        } else if header.name.eq_ignore_ascii_case("connection") {
            head.close = value.eq_ignore_ascii_case(b"close");
        } else if header.name.eq_ignore_ascii_case("webhook-id") {
            head.id = String::from_utf8_lossy(value).into_owned();
        }
    }
    Parsed::Complete(head)
}

/// The number that ends a path (`/hook/12` → 12).
fn hook_of(path: &str) -> Option<u32> {
    let path = path.split('?').next().unwrap_or(path);
    path.rsplit('/').next()?.parse().ok()
}

async fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = [0_u8; 16 * 1024];
    loop {
        // The head.
        let head = loop {
            if !buf.is_empty() {
                match parse_head(&buf) {
                    Parsed::Complete(head) => break head,
                    Parsed::Refuse(answer) => {
                        let _ = stream.write_all(answer).await;
                        return;
                    }
                    Parsed::Partial => {}
                }
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        // The body.
        let total = head.len + head.body_len;
        while buf.len() < total {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let at = Instant::now();
        let body = buf[head.len..total].to_vec();
        buf.drain(..total);
        shared.arrivals.lock().expect("sink lock").push(Arrival {
            at,
            hook: head.hook,
            id: head.id,
            body,
        });
        shared.count.fetch_add(1, Ordering::Release);
        let answer = if head.close { OK_CLOSE } else { OK };
        if stream.write_all(answer).await.is_err() || head.close {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse() {
        let raw = b"POST /hook/12 HTTP/1.1\r\nhost: x\r\nContent-Length: 5\r\nwebhook-id: run_1\r\n\r\nhello";
        let Parsed::Complete(head) = parse_head(raw) else {
            panic!("a complete head")
        };
        assert_eq!(head.hook, Some(12));
        assert_eq!(head.body_len, 5);
        assert_eq!(head.id, "run_1");
        assert!(!head.close);
        assert_eq!(&raw[head.len..], b"hello");

        assert!(matches!(
            parse_head(b"POST /hook/1 HTTP/1.1\r\nhost"),
            Parsed::Partial
        ));
        assert!(matches!(
            parse_head(b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n"),
            Parsed::Refuse(NO_LENGTH)
        ));
        let Parsed::Complete(head) = parse_head(b"GET /base HTTP/1.0\r\n\r\n") else {
            panic!("a complete head")
        };
        assert!(head.close && head.hook.is_none());
    }

    #[test]
    fn records_requests_over_keep_alive() {
        let sink = Sink::start().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let address = sink.url.trim_start_matches("http://").to_owned();
            let mut stream = TcpStream::connect(address).await.unwrap();
            for i in 0..3 {
                let body = format!("{{\"n\":{i}}}");
                let request = format!(
                    "POST /hook/{i} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nwebhook-id: m{i}\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(request.as_bytes()).await.unwrap();
                let mut answer = [0_u8; OK.len()];
                stream.read_exact(&mut answer).await.unwrap();
                assert_eq!(&answer[..], OK);
            }
        });
        assert_eq!(sink.count(), 3);
        let arrivals = sink.take();
        assert_eq!(arrivals.len(), 3);
        assert_eq!(arrivals[2].hook, Some(2));
        assert_eq!(arrivals[2].id, "m2");
        assert_eq!(arrivals[2].body, b"{\"n\":2}");
        assert!(sink.take().is_empty());
    }
}
