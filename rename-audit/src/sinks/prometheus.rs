//! The `/metrics` endpoint.
//!
//! prometheus-client writes OpenMetrics text. Prometheus 2.x asks for
//! OpenMetrics first and gets it as is; a scraper that only accepts the
//! classic text format (0.0.4) gets the same samples with counter metadata
//! renamed to the sample names and without the OpenMetrics-only lines.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::SinkError;
use crate::metrics::Metrics;
use crate::util::throttle::LogThrottle;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT_004: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Connections served at once. A scraper needs one; the cap keeps the
/// descriptors a local user can make the daemon hold far below its limit,
/// so capture and its /proc reads never run out of them.
pub const MAX_CONNECTIONS: usize = 32;
/// A client must send its whole request header within this time.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// And be done, response read, within this time.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(20);

/// A running metrics endpoint.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// The bound address (the real port when `listen` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting scrapes; waits at most `deadline` for open ones.
    pub async fn stop(self, deadline: Duration) {
        let _ = self.stop.send(());
        let mut task = self.task;
        if tokio::time::timeout(deadline, &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// Bind `listen` now (so a bad address fails start-up with a clear error) and
/// serve `GET /metrics` on `rt`.
pub fn serve(
    listen: SocketAddr,
    metrics: Arc<Metrics>,
    rt: &Handle,
) -> Result<MetricsServer, SinkError> {
    let bind_err = |source: std::io::Error| SinkError::Bind {
        addr: listen,
        hint: bind_hint(&source, listen),
        source,
    };
    let std_listener = std::net::TcpListener::bind(listen).map_err(bind_err)?;
    std_listener.set_nonblocking(true).map_err(bind_err)?;
    let addr = std_listener.local_addr().map_err(bind_err)?;
    let listener = {
        let _guard = rt.enter();
        TcpListener::from_std(std_listener).map_err(bind_err)?
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = rt.spawn(accept_loop(listener, metrics, stopped));
    tracing::info!(%addr, "metrics endpoint listening");
    Ok(MetricsServer { addr, stop, task })
}

/// One open connection, as the accept loop sees it.
struct Slot {
    /// Its request header is in and being answered.
    answering: Arc<AtomicBool>,
    /// Dropping this closes the connection; closed once the task is done.
    close: oneshot::Sender<()>,
}

/// Accepts connections and serves each on its own task, at most
/// [`MAX_CONNECTIONS`] at once. When full, the oldest connection that has
/// not sent its request yet is closed for the new one: slow, half-sent
/// requests cannot lock a scraper out, and the descriptors held stay
/// bounded whatever clients do.
async fn accept_loop(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut open: VecDeque<Slot> = VecDeque::with_capacity(MAX_CONNECTIONS);
    let mut log = LogThrottle::new(Duration::from_secs(60));
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // EMFILE and the like: wait instead of spinning; the
                    // pending connections stay in the kernel's backlog.
                    if let Some(held) = log.allow(Instant::now()) {
                        tracing::warn!(%error, repeated = held, "metrics endpoint cannot accept a connection");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        open.retain(|s| !s.close.is_closed());
        if open.len() >= MAX_CONNECTIONS {
            let idle = open
                .iter()
                .position(|s| !s.answering.load(Ordering::Relaxed));
            if let Some(held) = log.allow(Instant::now()) {
                tracing::warn!(
                    limit = MAX_CONNECTIONS,
                    repeated = held,
                    "metrics endpoint: too many connections; closing the oldest one that sent no request"
                );
            }
            match idle {
                // Dropping its sender ends that connection's task.
                Some(i) => drop(open.remove(i)),
                None => {
                    drop(stream);
                    continue;
                }
            }
        }
        let answering = Arc::new(AtomicBool::new(false));
        let (close, closed) = oneshot::channel();
        open.push_back(Slot {
            answering: Arc::clone(&answering),
            close,
        });
        tokio::spawn(connection(stream, Arc::clone(&metrics), answering, closed));
    }
}

async fn connection(
    stream: TcpStream,
    metrics: Arc<Metrics>,
    answering: Arc<AtomicBool>,
    closed: oneshot::Receiver<()>,
) {
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        answering.store(true, Ordering::Relaxed);
        let metrics = Arc::clone(&metrics);
        async move { Ok::<_, Infallible>(route(&req, &metrics)) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        // One request per connection: an idle keep-alive connection would
        // hold a slot (Prometheus reconnects for every scrape anyway).
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = closed => {}
        _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn) => {}
    }
}

fn route(req: &Request<hyper::body::Incoming>, metrics: &Metrics) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    match req.uri().path() {
        "/metrics" => scrape(metrics, req.headers()),
        "/" => (StatusCode::OK, "rename-audit: metrics at /metrics\n").into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn bind_hint(e: &std::io::Error, listen: SocketAddr) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => "another process already listens there; pick another port",
        std::io::ErrorKind::PermissionDenied if listen.port() < 1024 => {
            "ports below 1024 need CAP_NET_BIND_SERVICE; pick a port above 1023"
        }
        std::io::ErrorKind::AddrNotAvailable => "that address is not on this host",
        _ => "check the listen address",
    }
}

fn scrape(metrics: &Metrics, headers: &HeaderMap) -> Response {
    let body = metrics.encode();
    let wants_openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let (content_type, body) = if wants_openmetrics {
        (OPENMETRICS, body)
    } else {
        (TEXT_004, openmetrics_to_text_004(&body))
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        Body::from(body),
    )
        .into_response()
}

/// OpenMetrics text to the classic Prometheus text format: counter families
/// are named after their `_total` samples, and `# EOF` / `# UNIT` go.
fn openmetrics_to_text_004(om: &str) -> String {
    let counters: std::collections::HashSet<&str> = om
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(om.len() + 256);
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                out.push_str(prefix);
                out.push_str(name);
                if counters.contains(name) {
                    out.push_str("_total");
                }
                out.push(' ');
                out.push_str(tail);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_text_renames_counter_metadata_and_drops_eof() {
        let om = "# HELP a_things Things.\n# TYPE a_things counter\na_things_total{x=\"1\"} 3\n\
                  # HELP b Level.\n# TYPE b gauge\nb 2\n# EOF\n";
        assert_eq!(
            openmetrics_to_text_004(om),
            "# HELP a_things_total Things.\n# TYPE a_things_total counter\na_things_total{x=\"1\"} 3\n\
             # HELP b Level.\n# TYPE b gauge\nb 2\n"
        );
    }

    #[test]
    fn real_exposition_converts_cleanly() {
        let m = Metrics::new();
        let text = openmetrics_to_text_004(&m.encode());
        assert!(text.contains("# TYPE rename_audit_renames_total counter\n"));
        assert!(text.contains("# TYPE rename_audit_processes_tracked gauge\n"));
        assert!(!text.contains("# EOF"));
        assert!(!text.contains("_total_total"));
    }

    #[test]
    fn serves_both_formats_and_reports_bind_errors() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let metrics = Metrics::new();
        let server = serve(
            "127.0.0.1:0".parse().unwrap(),
            Arc::clone(&metrics),
            rt.handle(),
        )
        .expect("bind an ephemeral port");
        let addr = server.local_addr();

        let err = serve(addr, Arc::clone(&metrics), rt.handle())
            .err()
            .expect("second bind on the same port must fail");
        let msg = err.to_string();
        assert!(
            msg.contains(&addr.to_string()) && msg.contains("another process"),
            "{msg}"
        );

        let get = |accept: &'static str| {
            rt.block_on(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
                let req = format!(
                    "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
                );
                s.write_all(req.as_bytes()).await.expect("write");
                let mut resp = String::new();
                s.read_to_string(&mut resp).await.expect("read");
                resp
            })
        };
        let om = get("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5");
        assert!(om.starts_with("HTTP/1.1 200"), "{om}");
        assert!(
            om.contains("content-type: application/openmetrics-text"),
            "{om}"
        );
        assert!(om.contains("# EOF"), "{om}");
        let classic = get("text/plain");
        assert!(
            classic.contains("content-type: text/plain; version=0.0.4"),
            "{classic}"
        );
        assert!(
            classic.contains("# TYPE rename_audit_renames_total counter"),
            "{classic}"
        );
        rt.block_on(server.stop(Duration::from_secs(1)));
    }
}
