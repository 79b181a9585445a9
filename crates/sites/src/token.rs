//! The local server's OAuth 2 token endpoint (`POST /oauth2/token`): an edge agent exchanges
//! its site's client credentials for a short-lived `skyport/edge` token signed by the local
//! issuer, exactly as it would at Cognito's `/oauth2/token` in the cloud.
//!
//! Errors follow RFC 6749 section 5.2 (`{"error": "invalid_client", ...}`) rather than RFC 7807,
//! because OAuth clients (the agent, curl scripts written for Cognito) parse that shape.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use skyport_auth::LocalIssuer;
use skyport_store::Store;

/// How long an issued token lives (Cognito's default for machine clients is an hour too).
pub const TOKEN_TTL: Duration = Duration::from_secs(3600);

#[derive(Clone)]
struct TokenState {
    store: Arc<dyn Store>,
    issuer: Arc<LocalIssuer>,
}

/// `POST /oauth2/token` over the site registry in `store`.
pub fn router(store: Arc<dyn Store>, issuer: Arc<LocalIssuer>) -> Router {
    Router::new()
        .route("/oauth2/token", post(token))
        .with_state(TokenState { store, issuer })
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut r = (
        status,
        axum::Json(serde_json::json!({"error": error, "error_description": description})),
    )
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"skyport\""),
        );
    }
    r
}

/// Client ID and secret from HTTP Basic (preferred) or the form body.
fn credentials(h: &HeaderMap, form: &[(String, String)]) -> Option<(String, String)> {
    let basic = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(i, p)| (i.to_string(), p.to_string()))
        });
    basic.or_else(|| {
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        Some((get("client_id")?, get("client_secret")?))
    })
}

async fn token(State(st): State<TokenState>, h: HeaderMap, body: Bytes) -> Response {
    if body.len() > 8192 {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "body too large");
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let grant = form
        .iter()
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v.as_str());
    match grant {
        Some("client_credentials") => {}
        Some(other) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("grant_type {other:?}: only client_credentials is issued here"),
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is missing",
            );
        }
    }
    if let Some((_, scope)) = form.iter().find(|(k, _)| k == "scope")
        && scope.split_whitespace().any(|s| s != "skyport/edge")
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "site clients are granted skyport/edge only",
        );
    }
    let Some((id, secret)) = credentials(&h, &form) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client credentials are missing",
        );
    };
    let site = match crate::registry::check_local_secret(st.store.as_ref(), &id, &secret).await {
        Ok(Some(site)) => site,
        Ok(None) => {
            tracing::info!(client_id = %id, "token refused: unknown client or wrong secret");
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "unknown client, revoked client, or wrong secret",
            );
        }
        Err(e) => {
            tracing::error!(client_id = %id, error = %e, "token endpoint: registry unavailable");
            return oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "try again",
            );
        }
    };
    match st
        .issuer
        .mint_for_client(&id, &["edge".to_string()], TOKEN_TTL)
    {
        Ok(t) => {
            tracing::info!(client_id = %id, site = %site, "edge token issued");
            let mut r = axum::Json(serde_json::json!({
                "access_token": t,
                "token_type": "Bearer",
                "expires_in": TOKEN_TTL.as_secs(),
            }))
            .into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "token endpoint: signing failed");
            oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "signing failed",
            )
        }
    }
}
