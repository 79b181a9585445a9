//! A finished app served over real HTTP on 127.0.0.1 as `skyport serve` serves it (with the
//! peer address the node-facing routes read), and the largest bulk component POST the API
//! accepts: what the tests and benchmarks that load the real server share.

use std::net::SocketAddr;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// An app listening on a free loopback port until [`Served::stop`].
pub struct Served {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Served {
    pub async fn start(
        app: tower_http::normalize_path::NormalizePath<axum::Router>,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let make = axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
            SocketAddr,
        >(app);
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = axum::serve(listener, make).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        let task = tokio::spawn(async move { serving.await });
        Ok(Served { addr, stop, task })
    }

    /// Stops taking connections, lets the requests in flight finish, and returns how serving
    /// ended (an error too if it had ended before).
    pub async fn stop(self) -> std::io::Result<()> {
        self.stop
            .send(())
            .map_err(|()| std::io::Error::other("the server had stopped already"))?;
        self.task.await.map_err(std::io::Error::other)?
    }
}

/// The largest bulk component POST within `limit` bytes (the API's body limit): new node
/// xnames from cabinet `first_cabinet` on, 2,048 a cabinet, no NIDs. Returns the body and how
/// many components it holds.
pub fn largest_bulk_body(limit: usize, first_cabinet: usize) -> (Vec<u8>, usize) {
    let component = |n: usize| {
        let (cabinet, i) = (first_cabinet + n / 2048, n % 2048);
        let (chassis, slot, node) = (i / 256, (i / 4) % 64, i % 4);
        format!(
            r#"{{"ID":"x{cabinet}c{chassis}s{slot}b0n{node}","State":"Ready","Role":"Compute"}}"#
        )
    };
    let mut body = br#"{"Components":["#.to_vec();
    let mut n = 0;
    loop {
        let next = component(n);
        let comma = usize::from(n > 0);
        // The closing `]}` must still fit.
        if body.len() + comma + next.len() + 2 > limit {
            break;
        }
        if n > 0 {
            body.push(b',');
        }
        body.extend_from_slice(next.as_bytes());
        n += 1;
    }
    body.extend_from_slice(b"]}");
    (body, n)
}
