//! The HTTP/1 server behind every Skyport listener (the local API server and the edge agent's
//! node listener), with the limits a LAN full of firmware and the odd hostile client needs:
//!
//! - at most [`Limits::max_connections`] connections at once: past that the server stops
//!   accepting until one closes, so idle or slow clients cannot use up file descriptors;
//! - [`Limits::header_read_timeout`] to send a request head, which also closes idle keep-alive
//!   connections (hyper arms it whenever it waits for the next request);
//! - [`Limits::io_timeout`]: a read or write that makes no progress for that long ends the
//!   connection (a body dripped a byte at a time, a client that never reads its answer);
//! - request heads checked before routing: a URI over [`MAX_URI_BYTES`] answers 414 and a head
//!   over [`MAX_HEAD_BYTES`] or [`MAX_HEADERS`] fields answers 431, both as problem JSON. Only
//!   a head larger than hyper's buffer ([`PARSER_BUFFER_BYTES`]) is refused by hyper itself,
//!   with a bare 431, before Skyport sees it.
//!
//! Every connection carries [`axum::extract::ConnectInfo`] with the peer address, and shutdown
//! is orderly: on cancellation the listener closes, open connections finish the request they
//! are in, and whatever is still open after [`SHUTDOWN_GRACE`] is dropped.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tower::{Service, ServiceExt as _};

/// Longest request target accepted (paths plus query; SMD filter queries stay far below).
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest request head accepted: request line and header fields.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;
/// Most header fields in one request.
pub const MAX_HEADERS: usize = 100;
/// hyper's read buffer: a head that does not fit is refused by the parser (bare 431).
pub const PARSER_BUFFER_BYTES: usize = 256 * 1024;
/// hyper's own header-count limit, above [`MAX_HEADERS`] so that ours answers first.
const PARSER_MAX_HEADERS: usize = 4 * MAX_HEADERS;
/// How long open connections get to finish after shutdown starts.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Connection limits of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub io_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(15),
            io_timeout: Duration::from_secs(60),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` is cancelled.
///
/// Returns an error only if the listener itself fails for good; per-connection failures are
/// logged at debug level and end that connection alone.
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    limits: Limits,
    shutdown: CancellationToken,
) -> std::io::Result<()>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut conns = JoinSet::new();
    let mut saturated = false;
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        if slots.available_permits() == 0 && !saturated {
            tracing::warn!(
                max_connections = limits.max_connections,
                "connection limit reached: new connections wait until one closes"
            );
        }
        saturated = slots.available_permits() == 0;
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning; the permit is returned.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Finished connections leave their results here; collect them as we go.
        while conns.try_join_next().is_some() {}
        let app = app.clone();
        let shutdown = shutdown.clone();
        conns.spawn(async move {
            serve_connection(stream, peer, app, limits, shutdown).await;
            drop(permit);
        });
    }
    drop(listener);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::warn!(
            open = conns.len(),
            "connections still open after the grace period; closing them"
        );
        conns.shutdown().await;
    }
    Ok(())
}

async fn serve_connection<S>(
    stream: TcpStream,
    peer: SocketAddr,
    app: S,
    limits: Limits,
    shutdown: CancellationToken,
) where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    // Boot scripts are small and latency-bound; don't let Nagle hold them back.
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "TCP_NODELAY not set");
    }
    let io = TokioIo::new(IdleIo::new(stream, limits.io_timeout));
    let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move {
            if let Some(refused) = check_head(&req) {
                return Ok::<_, Infallible>(refused);
            }
            let resp = app.oneshot(req.map(Body::new)).await?;
            Ok(crate::problem_for_bare_errors(resp).await)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(PARSER_BUFFER_BYTES)
        .max_headers(PARSER_MAX_HEADERS);
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// 414 or 431 as problem JSON for heads over Skyport's limits (hyper's are higher).
fn check_head<B>(req: &Request<B>) -> Option<Response> {
    // The request target as sent (origin form, or authority + path in absolute form), measured
    // without formatting the URI on every request.
    let uri = req.uri().authority().map_or(0, |a| a.as_str().len())
        + req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES {
        return Some(crate::problem(
            StatusCode::URI_TOO_LONG,
            format!("the request target is {uri} bytes; at most {MAX_URI_BYTES} are accepted"),
        ));
    }
    let fields = req.headers().len();
    let head: usize = uri
        + req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>();
    if fields > MAX_HEADERS || head > MAX_HEAD_BYTES {
        return Some(crate::problem(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "the request head has {fields} fields in {head} bytes; at most {MAX_HEADERS} fields and {MAX_HEAD_BYTES} bytes are accepted"
            ),
        ));
    }
    None
}

/// A socket whose reads and writes fail with `TimedOut` once the connection has gone that long
/// with neither a read nor a write making progress. One clock for both directions: hyper keeps
/// a read pending while it streams a response (to notice a hang-up), and a long download must
/// not count as an idle read.
struct IdleIo {
    inner: TcpStream,
    timeout: Duration,
    last_progress: Instant,
    timer: Pin<Box<Sleep>>,
}

impl IdleIo {
    fn new(inner: TcpStream, timeout: Duration) -> Self {
        let now = Instant::now();
        IdleIo {
            inner,
            timeout,
            last_progress: now,
            timer: Box::pin(tokio::time::sleep_until(now + timeout)),
        }
    }

    /// After a `Pending` from the socket: whether the connection has been idle too long (if
    /// not, the timer is armed to wake the task when it would be).
    fn idle_too_long(&mut self, cx: &mut Context<'_>) -> bool {
        let deadline = self.last_progress + self.timeout;
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        self.timer.as_mut().poll(cx).is_ready()
    }

    /// What the socket's `poll` for `what` (read or write) came to: progress when ready; when
    /// pending, a time-out error once the connection has been idle too long.
    fn progress<T>(
        &mut self,
        cx: &mut Context<'_>,
        what: &str,
        poll: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        match poll {
            Poll::Ready(r) => {
                self.last_progress = Instant::now();
                Poll::Ready(r)
            }
            Poll::Pending if self.idle_too_long(cx) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no {what} progress within the I/O timeout"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for IdleIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.progress(cx, "read", poll)
    }
}

impl AsyncWrite for IdleIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(cx, "write", poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progress(cx, "write", poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
        Poll::Ready(Ok(()))
    }
}
