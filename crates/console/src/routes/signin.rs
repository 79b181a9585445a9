//! Signing in and out: the token form, the authorization code flow with PKCE (start and
//! callback), and where a person goes back to afterwards.

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use skyport_http::ApiError;

use crate::pages::{self, Nav};
use crate::session::{self, Refused, SignIn};
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

/// What the sign-in page may say, by code: fixed texts, so a link cannot put its own words on
/// the real sign-in page. Details go to the log.
pub(crate) fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "signed-out" => "Signed out.",
        "ended" => "Your session ended. Sign in again.",
        "foreign" => "That sign-in did not come from this console's page.",
        "not-a-token" => "That is not a token.",
        "invalid" => "That token is not valid here.",
        "not-admin" => "That is not this agent's admin token.",
        "no-scope" => "Your account holds no skyport/read, write or admin scope.",
        "unavailable" => "The token could not be checked now. Try again in a moment.",
        "timeout" => "The sign-in took too long or started in another browser. Try again.",
        "refused" => "The sign-in was refused.",
        "failed" => "The sign-in could not be completed. Try again.",
        _ => return None,
    })
}

/// The sign-in page saying `code`, going back to `next` afterwards.
pub(crate) fn again(code: &str, next: &str) -> Response {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("next", safe_next(next));
    q.append_pair("message", code);
    Redirect::to(&format!("/console/login?{}", q.finish())).into_response()
}

/// Who a session cookie holding `value` would be, checked before the cookie is set.
async fn probe(c: &Console, value: &str) -> Result<session::Viewer, Refused> {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("{}={value}", session::COOKIE)) {
        headers.insert(header::COOKIE, v);
    }
    session::viewer(&c.sign_in, &headers).await
}

/// The code for a refused sign-in.
fn refused_code(r: &Refused) -> &'static str {
    match r {
        Refused::SignIn(_) => "invalid",
        Refused::Forbidden(_) => "no-scope",
        Refused::Unavailable(_) => "unavailable",
    }
}

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
    let msg = notice(&q.message).unwrap_or("");
    c.render(
        "Sign in",
        Nav::None,
        None,
        pages::login(msg, oauth, next, hint),
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
    if !session::same_origin(&headers) {
        return again("foreign", &f.next);
    }
    let token = f.token.trim();
    if !session::cookie_safe(token) {
        return again("not-a-token", &f.next);
    }
    // Checked now, so a wrong token is said at once rather than on the next page.
    let value = match &c.sign_in {
        SignIn::EdgeAdmin(_) => session::edge_session(token),
        _ => token.to_string(),
    };
    match probe(&c, &value).await {
        Ok(v) if v.signed_in => {}
        Ok(_) => return again("not-admin", &f.next),
        Err(r) => {
            tracing::info!(refused = ?r, "console sign-in refused");
            return again(refused_code(&r), &f.next);
        }
    }
    let mut r = Redirect::to(safe_next(&f.next)).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(session::COOKIE, &value, c.secure(), None),
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
    if !q.error.is_empty() {
        tracing::info!(error = %q.error, "console sign-in refused by the authorization server");
        return again("refused", "");
    }
    let pkce = session::cookie(&headers, session::PKCE_COOKIE).unwrap_or_default();
    let mut parts = pkce.splitn(3, '.');
    let (Some(state), Some(verifier), next) = (parts.next(), parts.next(), parts.next()) else {
        return again("timeout", "");
    };
    if q.code.is_empty() || !session::same_secret(state, &q.state) {
        return again("timeout", "");
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
        Ok(_) => {
            tracing::warn!("console sign-in: the token cannot be kept in a cookie");
            return again("failed", &next);
        }
        Err(e) => {
            tracing::warn!(error = %e, "console sign-in: code exchange failed");
            return again("failed", &next);
        }
    };
    // A token that grants nothing here is not kept: its holder could not even sign out.
    if let Err(r) = probe(&c, &token).await {
        tracing::info!(refused = ?r, "console sign-in: token refused");
        return again(refused_code(&r), &next);
    }
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
    Form(_): Form<CsrfForm>,
) -> Response {
    // Signing out needs no valid session (a token that expired or grants nothing must still be
    // removable), only a form from this console's page.
    if !session::same_origin(&headers) {
        return c.fail(
            None,
            &ApiError::Forbidden("this form did not come from this console's own page".into()),
        );
    }
    let mut r = Redirect::to("/console/login?message=signed-out").into_response();
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
