//! The axum layer that enforces the mounted services' access declarations
//! (`skyport_http::access`) on every matched route: anonymous routes pass, others need a valid bearer token with the route's scope. Failures are RFC 7807
//! problems: 401 (with `WWW-Authenticate: Bearer`) for a missing or bad token, 403 for a valid
//! token without the scope. The verified [`Principal`] is put in the request's extensions.

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};
use skyport_http::ApiError;

use crate::{AuthError, Jwks, Principal};
use skyport_http::access::{Access, Declared, decide};

/// `None` means authentication is off (a lab, explicitly).
pub type AuthLayer = Option<Arc<Jwks>>;

fn reject(e: &AuthError) -> Response {
    if let AuthError::SiteLookup(_) = e {
        return ApiError::Unavailable(e.to_string()).into_response();
    }
    if e.forbidden() {
        return ApiError::Forbidden(e.to_string()).into_response();
    }
    let mut r = ApiError::Unauthorized(e.to_string()).into_response();
    let challenge = match e {
        AuthError::Missing => "Bearer realm=\"skyport\"".to_string(),
        other => format!(
            "Bearer realm=\"skyport\", error=\"invalid_token\", error_description=\"{}\"",
            other.to_string().replace('"', "'")
        ),
    };
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

#[derive(Clone)]
struct Enforce {
    services: Arc<[Declared]>,
    jwks: AuthLayer,
}

async fn enforce(State(e): State<Enforce>, mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let Access::Need(need) = decide(&e.services, req.method(), &route) else {
        return next.run(req).await;
    };
    let Some(jwks) = e.jwks else {
        return next.run(req).await;
    };
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return reject(&AuthError::Missing);
    };
    let principal: Principal = match jwks.verify(token).await {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(route = %route, error = %e, "request refused: bad token");
            return reject(&e);
        }
    };
    if !need.satisfied_by(|s| principal.has(s)) {
        let granted = if principal.scopes.is_empty() {
            "no skyport scope".to_string()
        } else {
            principal
                .scopes
                .iter()
                .map(|s| format!("skyport/{s}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        tracing::info!(route = %route, sub = %principal.sub, need = need.as_str(), "request refused: scope");
        return reject(&AuthError::Scope {
            need: need.as_str().to_string(),
            granted,
        });
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// Applies the access `services` declare to every route of `router` (call after all routes
/// are merged; a route no service declares needs `admin`).
pub fn auth_layer(router: Router, services: &[Declared], jwks: AuthLayer) -> Router {
    let state = Enforce {
        services: services.into(),
        jwks,
    };
    router.route_layer(axum::middleware::from_fn_with_state(state, enforce))
}
