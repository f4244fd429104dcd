//! A loopback HTTP/1.1 server for tests: one thread per connection, `Connection: close`, every
//! request logged, responses from a handler closure.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    /// The body (read by `Content-Length`).
    pub body: Vec<u8>,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The path without the query.
    pub(crate) fn route(&self) -> &str {
        self.path.split('?').next().unwrap_or_default()
    }

    /// The value of query parameter `name`, percent-decoded.
    pub(crate) fn query(&self, name: &str) -> Option<String> {
        let (_, query) = self.path.split_once('?')?;
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then(|| percent_decode(value))
        })
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What to answer.
#[derive(Clone, Debug, Default)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send only this many body bytes (while declaring the full length), then close.
    pub truncate_at: Option<usize>,
}

impl Response {
    pub(crate) fn ok(body: impl Into<Vec<u8>>) -> Response {
        Response {
            status: 200,
            body: body.into(),
            ..Default::default()
        }
    }
    pub(crate) fn status(status: u16) -> Response {
        Response {
            status,
            body: format!("status {status}\n").into_bytes(),
            ..Default::default()
        }
    }
    pub(crate) fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// A running server; stops accepting when dropped.
pub(crate) struct Server {
    port: u16,
    log: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    active: Arc<AtomicUsize>,
    max_active: Arc<AtomicUsize>,
}

impl Server {
    pub(crate) fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let active = Arc::new(AtomicUsize::new(0));
        let max_active = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (log2, stop2, active2, max2) = (
            log.clone(),
            stop.clone(),
            active.clone(),
            max_active.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (handler, log, active, max_active) =
                    (handler.clone(), log2.clone(), active2.clone(), max2.clone());
                std::thread::spawn(move || {
                    let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                    max_active.fetch_max(now, Ordering::SeqCst);
                    let answered = serve(stream, &*handler, &log);
                    // Counted until the response is sent, not until the client hangs up.
                    active.fetch_sub(1, Ordering::SeqCst);
                    // Drain anything left so the client sees a clean close.
                    if let Ok(mut reader) = answered {
                        let mut sink = [0u8; 64];
                        let _ = reader.get_mut().read(&mut sink);
                    }
                });
            }
        });
        Server {
            port,
            log,
            stop,
            active,
            max_active,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    pub(crate) fn count(&self, path: &str) -> usize {
        self.requests().iter().filter(|r| r.path == path).count()
    }

    /// Most connections handled at the same time.
    pub(crate) fn max_concurrency(&self) -> usize {
        self.max_active.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Answers one request; returns the connection's reader, to drain.
fn serve(
    stream: TcpStream,
    handler: &Handler,
    log: &Mutex<Vec<Request>>,
) -> std::io::Result<BufReader<TcpStream>> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            // As a strict server reads them (RFC 9110 §5.3): a field sent twice is one list,
            // the values joined by ", " in the order sent; never just the last one.
            headers
                .entry(name.trim().to_ascii_lowercase())
                .and_modify(|list: &mut String| {
                    list.push_str(", ");
                    list.push_str(value.trim());
                })
                .or_insert_with(|| value.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let request = Request {
        method,
        path,
        headers,
        body,
    };
    log.lock().unwrap().push(request.clone());
    let response = handler(&request);
    let mut out = stream;
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        response.status,
        response.body.len()
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    let body = match response.truncate_at {
        Some(n) => &response.body[..n.min(response.body.len())],
        None => &response.body[..],
    };
    out.write_all(body)?;
    out.flush()?;
    let _ = out.shutdown(std::net::Shutdown::Write);
    Ok(reader)
}

/// Serves `body` honouring a `Range: bytes=N-` header, as a static file server would.
pub(crate) fn ranged(request: &Request, body: &[u8]) -> Response {
    let len = body.len();
    if let Some(spec) = request
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
    {
        // RFC 9110: `A-`, `A-B` (B clamped to the end) and the suffix form `-N`.
        let span = match spec.split_once('-') {
            Some(("", n)) => n
                .parse::<usize>()
                .ok()
                .map(|n| (len.saturating_sub(n), len)),
            Some((a, "")) => a.parse::<usize>().ok().map(|a| (a, len)),
            Some((a, b)) => match (a.parse::<usize>(), b.parse::<usize>()) {
                (Ok(a), Ok(b)) if a <= b => Some((a, (b + 1).min(len))),
                _ => None,
            },
            None => None,
        };
        if let Some((start, end)) = span.filter(|(start, end)| start < end) {
            return Response {
                status: 206,
                body: body[start..end].to_vec(),
                ..Default::default()
            }
            .header("Content-Range", &format!("bytes {start}-{}/{len}", end - 1))
            .header("Accept-Ranges", "bytes");
        }
        return Response::status(416);
    }
    Response::ok(body.to_vec()).header("Accept-Ranges", "bytes")
}
