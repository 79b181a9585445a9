//! Cold start of each Lambda function binary: process start until it asks the Lambda runtime
//! API for its first event (init), until its first response, and its peak memory, side by side
//! with a minimal `lambda_http` hello-world built with the same profile. The runtime API is
//! played by a local server; DynamoDB by DynamoDB Local; the functions get the environment the
//! SAM template gives them (JWT auth on).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

/// Times seen by the fake runtime API, relative to the process start.
#[derive(Default)]
struct Seen {
    start: Option<Instant>,
    next: Option<Duration>,
    response: Option<(Duration, u16)>,
    error: Option<String>,
    event: String,
    served: bool,
}

type Shared = Arc<Mutex<Seen>>;

async fn next(State(s): State<Shared>) -> Response {
    let event = {
        let Ok(mut g) = s.lock() else {
            return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        if g.served {
            None
        } else {
            g.served = true;
            g.next = g.start.map(|t| t.elapsed());
            Some(g.event.clone())
        }
    };
    match event {
        // One event per run: later polls wait until the process is stopped.
        None => std::future::pending::<Response>().await,
        Some(e) => {
            let mut h = HeaderMap::new();
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() + 30_000)
                .unwrap_or(0);
            for (k, v) in [
                ("lambda-runtime-aws-request-id", "req-1".to_string()),
                ("lambda-runtime-deadline-ms", deadline.to_string()),
                (
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:bench".to_string(),
                ),
                (
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000".to_string(),
                ),
            ] {
                if let (Ok(k), Ok(v)) = (
                    axum::http::HeaderName::from_bytes(k.as_bytes()),
                    axum::http::HeaderValue::from_str(&v),
                ) {
                    h.insert(k, v);
                }
            }
            (h, e).into_response()
        }
    }
}

async fn response(
    State(s): State<Shared>,
    UrlPath(_id): UrlPath<String>,
    body: String,
) -> &'static str {
    if let Ok(mut g) = s.lock() {
        let status = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("statusCode").and_then(|c| c.as_u64()))
            .unwrap_or(0) as u16;
        g.response = g.start.map(|t| (t.elapsed(), status));
    }
    "{}"
}

async fn error(State(s): State<Shared>, body: String) -> &'static str {
    if let Ok(mut g) = s.lock() {
        g.error = Some(body);
    }
    "{}"
}

fn event(path: &str, headers: serde_json::Value) -> String {
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com", "domainPrefix": "abc123",
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "192.0.2.10", "userAgent": "skyport-bench"},
            "requestId": "req-1", "routeKey": "$default", "stage": "$default",
            "time": "24/Nov/2026:07:00:00 +0000", "timeEpoch": 1_795_500_000_000u64
        },
        "isBase64Encoded": false
    })
    .to_string()
}

struct Run {
    init: Duration,
    first: Duration,
    status: u16,
    peak_kb: u64,
}

fn peak_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

async fn one(bin: &Path, env: &[(&str, String)], ev: &str) -> anyhow::Result<Run> {
    let seen: Shared = Arc::new(Mutex::new(Seen {
        event: ev.to_string(),
        ..Seen::default()
    }));
    let app = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(error))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    // Which trust store the SDK's HTTPS client loads at init (rustls-native-certs): this
    // machine's default is a bundle plus a directory of 292 files; Lambda's AL2023 image has a
    // bundle. `SSL_CERT_FILE` given to the bench is passed on, to measure either.
    for k in ["SSL_CERT_FILE", "SSL_CERT_DIR"] {
        if let Some(v) = std::env::var_os(k) {
            cmd.env(k, v);
        }
    }
    if let Ok(mut g) = seen.lock() {
        g.start = Some(Instant::now());
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let result = loop {
        let (resp, next, err) = match seen.lock() {
            Ok(g) => (g.response, g.next, g.error.clone()),
            Err(_) => bail!("runtime state poisoned"),
        };
        if let Some(e) = err {
            break Err(anyhow::anyhow!("{} reported an error: {e}", bin.display()));
        }
        if let (Some((first, status)), Some(init)) = (resp, next) {
            let peak = peak_kb(child.id());
            break Ok(Run {
                init,
                first,
                status,
                peak_kb: peak,
            });
        }
        if let Some(st) = child.try_wait()? {
            break Err(anyhow::anyhow!("{} exited early: {st}", bin.display()));
        }
        if Instant::now() > deadline {
            break Err(anyhow::anyhow!("{} never answered", bin.display()));
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    server.abort();
    result
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub async fn run(runs: usize) -> anyhow::Result<()> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| skyport_testkit::repo_root().join("target"))
        .join("release");
    let bins = ["hello-lambda", "inventory", "boot", "metadata", "images"];
    for b in bins {
        if !target.join(b).exists() {
            bail!(
                "{} is missing: build first with `cargo build --release -p skyport-fn-inventory -p skyport-fn-boot -p skyport-fn-metadata -p skyport-fn-images -p skyport-bench --bin hello-lambda --bin inventory --bin boot --bin metadata --bin images`",
                target.join(b).display()
            );
        }
    }
    let ddb = skyport_testkit::DynamoLocal::start()?;
    let client = skyport_testkit::dynamo_client(&ddb.endpoint(), None).await;
    skyport_store_dynamo::DynamoStore::new(client, "skyport")
        .ensure_table()
        .await?;
    let common: Vec<(&str, String)> = vec![
        ("AWS_ENDPOINT_URL_DYNAMODB", ddb.endpoint()),
        ("SKYPORT_TABLE", "skyport".into()),
        ("SKYPORT_AUTH", "jwt".into()),
        (
            "SKYPORT_AUTH_ISSUER",
            "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_bench".into(),
        ),
        ("SKYPORT_AUTH_AUDIENCE", "bench-client".into()),
        (
            "SKYPORT_PUBLIC_URL",
            "https://abc123.execute-api.us-east-1.amazonaws.com".into(),
        ),
        (
            "SKYPORT_CLOUD_INIT_URL",
            "https://abc123.execute-api.us-east-1.amazonaws.com/cloud-init".into(),
        ),
        ("SKYPORT_IMAGE_BUCKET", "skyport-images".into()),
    ];
    let host = serde_json::json!({"host": "abc123.execute-api.us-east-1.amazonaws.com"});
    // Each function's first request: a route a node or a health check sends without a token,
    // which reaches DynamoDB where the route does.
    let cases = [
        ("hello-lambda", "/hello", host.clone(), "GET /hello"),
        (
            "inventory",
            "/hsm/v2/service/ready",
            host.clone(),
            "GET /hsm/v2/service/ready (DynamoDB ping)",
        ),
        (
            "boot",
            "/boot/v1/service/status/all",
            host.clone(),
            "GET /boot/v1/service/status/all (DynamoDB ping)",
        ),
        (
            "metadata",
            "/cloud-init/meta-data",
            serde_json::json!({"host": "abc123.execute-api.us-east-1.amazonaws.com", "x-forwarded-for": "192.0.2.10"}),
            "GET /cloud-init/meta-data (DynamoDB query, unknown node)",
        ),
        (
            "images",
            "/images/v1/images",
            host,
            "GET /images/v1/images without a token (401)",
        ),
    ];
    println!(
        "skyport-bench coldstart: {runs} runs per binary (median), release profile, {} CPUs",
        crate::cpus()
    );
    let mut hello_init = Duration::ZERO;
    for (bin, path, headers, what) in cases {
        let ev = event(path, headers);
        let mut inits = Vec::new();
        let mut firsts = Vec::new();
        let mut peak = 0;
        let mut status = 0;
        for _ in 0..runs {
            let r = one(&target.join(bin), &common, &ev).await?;
            inits.push(r.init);
            firsts.push(r.first);
            peak = peak.max(r.peak_kb);
            status = r.status;
        }
        let (init, first) = (median(inits), median(firsts));
        if bin == "hello-lambda" {
            hello_init = init;
        }
        let size = std::fs::metadata(target.join(bin))
            .map(|m| m.len())
            .unwrap_or(0);
        println!(
            "{bin:<13} init {:>7.2} ms ({:.2}× hello, target ≤ 1.30)  first response {:>7.2} ms (HTTP {status})  peak {:>5.1} MB (target ≤ 32)  binary {:>5.1} MB  [{what}]",
            init.as_secs_f64() * 1000.0,
            init.as_secs_f64() / hello_init.as_secs_f64().max(1e-9),
            first.as_secs_f64() * 1000.0,
            peak as f64 / 1024.0,
            size as f64 / 1_048_576.0,
        );
    }
    Ok(())
}
