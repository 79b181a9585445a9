//! Signing in and out: the token form, the authorization code flow with PKCE (start and
//! callback), and where a person goes back to afterwards.

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use skyport_http::ApiError;

use crate::pages::{self, Nav};
use crate::session::{self, Level, Refused, SignIn};
use crate::{Console, Place};

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    message: String,
}

/// Only the console's own pages are places to go back to after signing in, and only as a
/// path a `Location` header can carry as is (a control character would not be a header value).
pub(crate) fn safe_next(next: &str) -> &str {
    let path_only = next.len() <= 2048 && next.bytes().all(|b| b.is_ascii_graphic());
    if path_only
        && next.starts_with("/console/")
        && !next.starts_with("/console//")
        && !next.contains('\\')
    {
        next
    } else {
        "/console/boots"
    }
}

pub(crate) const TOKEN_HINT: &str = "A token from <code>skyport token --scope read</code> (or write, admin) on the server's machine.";
pub(crate) const CLOUD_HINT: &str = "An access token of this API: the one <code>skyport login</code> stores (deploy with <code>ConsoleUrl</code> to sign in through the hosted UI instead).";
pub(crate) const EDGE_HINT: &str =
    "The agent's admin token (its <code>console_admin_token_file</code>).";

pub(crate) async fn login_page(State(c): State<Console>, Query(q): Query<LoginQuery>) -> Response {
    let next = safe_next(&q.next);
    let (oauth, hint) = match &c.sign_in {
        SignIn::OAuth(..) => (true, ""),
        SignIn::EdgeAdmin(None) => {
            return c.render(
                "Sign in",
                Nav::None,
                None,
                pages::problem(
                    "Read-only",
                    "This agent has no admin token configured: its console only shows.",
                ),
            );
        }
        SignIn::EdgeAdmin(Some(_)) => (false, EDGE_HINT),
        SignIn::Off => return Redirect::to(next).into_response(),
        SignIn::Token(_) if matches!(c.place, Place::Cloud) => (false, CLOUD_HINT),
        SignIn::Token(_) => (false, TOKEN_HINT),
    };
    // What the message says is shown as text (escaped), never as markup.
    let msg: String = q.message.chars().take(300).collect();
    c.render(
        "Sign in",
        Nav::None,
        None,
        pages::login(&msg, oauth, next, hint),
    )
}

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

pub(crate) async fn login_token(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    let again = |msg: &str| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("next", safe_next(&f.next));
        q.append_pair("message", msg);
        Redirect::to(&format!("/console/login?{}", q.finish())).into_response()
    };
    if !session::same_origin(&headers) {
        return again("That sign-in did not come from this console's page.");
    }
    let token = f.token.trim();
    if !session::cookie_safe(token) {
        return again("That is not a token.");
    }
    // Checked now, so a wrong token is said at once rather than on the next page.
    let mut probe = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("{}={token}", session::COOKIE)) {
        probe.insert(header::COOKIE, v);
    }
    match session::viewer(&c.sign_in, &probe).await {
        Ok(v) if v.signed_in => {}
        Ok(_) => return again("That is not this agent's admin token."),
        Err(Refused::SignIn(m) | Refused::Forbidden(m) | Refused::Unavailable(m)) => {
            return again(if m.is_empty() {
                "That token is not valid here."
            } else {
                &m
            });
        }
    }
    let mut r = Redirect::to(safe_next(&f.next)).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(session::COOKIE, token, c.secure(), None),
    );
    r
}

pub(crate) async fn login_start(State(c): State<Console>, Query(q): Query<LoginQuery>) -> Response {
    let SignIn::OAuth(_, client) = &c.sign_in else {
        return Redirect::to("/console/login").into_response();
    };
    let (Ok(state), Ok(verifier)) = (session::random_url_safe(24), session::random_url_safe(48))
    else {
        return c.fail(
            None,
            &ApiError::Internal("no randomness for the sign-in".into()),
        );
    };
    // The state carries where to go back to; the cookie ties the callback to this browser.
    let next = safe_next(&q.next);
    let value = format!("{state}.{verifier}.{}", base64_url(next));
    let mut r = Redirect::to(&client.authorize_url(&state, &verifier)).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(session::PKCE_COOKIE, &value, c.secure(), Some(600)),
    );
    r
}

pub(crate) fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[derive(Deserialize)]
pub(crate) struct Callback {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: String,
}

pub(crate) async fn callback(
    State(c): State<Console>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    use base64::Engine;
    let SignIn::OAuth(_, client) = &c.sign_in else {
        return Redirect::to("/console/login").into_response();
    };
    let again = |msg: &str| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("message", msg);
        Redirect::to(&format!("/console/login?{}", q.finish())).into_response()
    };
    if !q.error.is_empty() {
        return again(&format!("The sign-in was refused: {}", q.error));
    }
    let pkce = session::cookie(&headers, session::PKCE_COOKIE).unwrap_or_default();
    let mut parts = pkce.splitn(3, '.');
    let (Some(state), Some(verifier), next) = (parts.next(), parts.next(), parts.next()) else {
        return again("The sign-in took too long or started in another browser. Try again.");
    };
    if q.code.is_empty() || !session::same_secret(state, &q.state) {
        return again("The sign-in took too long or started in another browser. Try again.");
    }
    let next = next
        .and_then(|n| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(n)
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    let token = match client.exchange(&q.code, verifier).await {
        Ok(t) if session::cookie_safe(&t) => t,
        Ok(_) => return again("The authorization server sent a token this console cannot keep."),
        Err(e) => {
            tracing::warn!(error = %e, "console sign-in: code exchange failed");
            return again(&format!("The sign-in could not be completed: {e}"));
        }
    };
    let mut r = Redirect::to(safe_next(&next)).into_response();
    let h = r.headers_mut();
    h.append(
        header::SET_COOKIE,
        session::set_cookie(session::COOKIE, &token, c.secure(), None),
    );
    h.append(
        header::SET_COOKIE,
        session::set_cookie(session::PKCE_COOKIE, "", c.secure(), None),
    );
    r
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    pub(crate) csrf: String,
}

pub(crate) async fn logout(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = c
        .actor(&headers, &f.csrf, Level::Read, "/console/boots")
        .await
    {
        return r;
    }
    let mut r = Redirect::to("/console/login?message=Signed+out.").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(session::COOKIE, "", c.secure(), None),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_places_to_go_back_to() {
        assert_eq!(
            safe_next("/console/nodes/x1c0s0b0n0"),
            "/console/nodes/x1c0s0b0n0"
        );
        for hostile in [
            "https://evil.example/",
            "//evil.example",
            "/console//evil.example",
            "/console/\\evil",
            "/console/a\r\nSet-Cookie: x=1",
            "/console/a b",
            "/hsm/v2/State/Components",
            "",
        ] {
            assert_eq!(safe_next(hostile), "/console/boots", "{hostile:?}");
        }
        // Whatever comes through is a valid Location (Redirect::to would panic otherwise).
        let _ = Redirect::to(safe_next("/console/\u{7f}"));
    }
}
