//! An in-process client for a finished Skyport app (the real Router, no mocks): calls it,
//! asserts that every error is SMD/BSS-shaped RFC 7807 problem JSON, and checks answers against
//! an upstream OpenAPI spec.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::spec::Spec;

/// One request of a scripted exchange and the status it must answer:
/// `(method, uri, spec_path, body, status)`, sent as [`Api::call`] sends it.
pub type Step<'a> = (&'a str, &'a str, &'a str, Option<Value>, u16);

pub struct Api {
    pub app: tower_http::normalize_path::NormalizePath<axum::Router>,
    pub spec: Arc<Spec>,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: Vec<u8>,
}

impl Resp {
    /// Asserts the status, and for errors that the body is SMD's RFC 7807 shape.
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.raw)
        );
        self
    }

    /// The problem's `detail`: upstream's exact text.
    pub fn detail(&self) -> &str {
        self.body["detail"].as_str().unwrap_or("")
    }

    /// Skyport's `context` member: which entry, value or holder (empty when none).
    pub fn context(&self) -> &str {
        self.body["context"].as_str().unwrap_or("")
    }

    /// `detail (context)`, as the CLI shows it: for checks that a refusal names its cause.
    pub fn explained(&self) -> String {
        match self.context() {
            "" => self.detail().to_string(),
            c => format!("{} ({c})", self.detail()),
        }
    }
}

/// Sends `req` to `app` and reads the whole answer, its body as JSON where it is JSON (else
/// `null`); checks nothing.
pub async fn send(
    app: &tower_http::normalize_path::NormalizePath<axum::Router>,
    req: Request<Body>,
) -> Resp {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let raw = resp.into_body().collect().await.unwrap().to_bytes();
    Resp {
        status,
        headers,
        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        raw: raw.to_vec(),
    }
}

impl Api {
    pub fn new(app: tower_http::normalize_path::NormalizePath<axum::Router>, spec: Spec) -> Self {
        Api {
            app,
            spec: Arc::new(spec),
        }
    }

    pub async fn raw(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Resp {
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = send(&self.app, req.body(Body::from(body)).unwrap()).await;
        if r.status.is_client_error() || r.status.is_server_error() {
            assert_eq!(
                r.headers.get("content-type").map(|v| v.to_str().unwrap()),
                Some("application/problem+json"),
                "{method} {uri}: error without problem JSON: {}",
                String::from_utf8_lossy(&r.raw)
            );
            for k in ["type", "title", "detail", "status"] {
                assert!(
                    r.body.get(k).is_some(),
                    "{method} {uri}: problem lacks {k}: {}",
                    r.body
                );
            }
            assert_eq!(r.body["status"], r.status.as_u16());
        }
        r
    }

    /// Calls `method uri` with a JSON body and checks the answer against the spec operation
    /// `spec_path` (pass "" to skip the spec check, for Skyport-only routes).
    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        spec_path: &str,
        body: Option<Value>,
    ) -> Resp {
        let (headers, bytes): (&[(&str, &str)], Vec<u8>) = match &body {
            Some(b) => (
                &[("content-type", "application/json")],
                serde_json::to_vec(b).unwrap(),
            ),
            None => (&[], Vec::new()),
        };
        let r = self.raw(method, uri, headers, bytes).await;
        if !spec_path.is_empty() {
            self.spec
                .check(method, spec_path, r.status.as_u16(), &r.body)
                .unwrap_or_else(|e| panic!("{method} {uri}: {e:#}"));
        }
        r
    }

    pub async fn get(&self, uri: &str, spec_path: &str) -> Resp {
        self.call("GET", uri, spec_path, None).await
    }

    /// Sends `steps` in order, each checked as [`Api::call`] checks it, and asserts each status:
    /// for the stretches of a scenario whose answers need no other check.
    pub async fn steps<'a>(&self, steps: impl IntoIterator<Item = Step<'a>>) {
        for (method, uri, spec_path, body, status) in steps {
            let r = self.call(method, uri, spec_path, body).await;
            assert_eq!(
                r.status.as_u16(),
                status,
                "{method} {uri}: unexpected status; body: {}",
                String::from_utf8_lossy(&r.raw)
            );
        }
    }
}
