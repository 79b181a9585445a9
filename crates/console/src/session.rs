//! Who is looking at the console, and what they may do. A browser holds its token in an
//! `HttpOnly` cookie scoped to `/console`; every request verifies it again with the same
//! verifier and scope rules as the APIs (`skyport-auth`), so a `read` token sees and only
//! `write` or `admin` act. Forms that act carry a token derived from the session (CSRF) and must
//! come from the console's own origin.
//!
//! How a token gets into the cookie depends on where the console runs ([`SignIn`]): through an
//! OAuth 2 authorization server with the authorization code flow and PKCE (Cognito's hosted UI
//! in the cloud), by pasting a token (the local issuer's `skyport token`), or, at an edge agent,
//! by pasting the agent's configured admin token (everyone who can reach the listener reads).

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use sha2::{Digest, Sha256};
use skyport_auth::{Jwks, Principal};
use skyport_http::access::Need;

/// The session cookie.
pub const COOKIE: &str = "skyport_console";
/// The PKCE state and verifier, between the redirect to the authorization server and back.
pub const PKCE_COOKIE: &str = "skyport_console_pkce";

/// How people sign in.
#[derive(Clone)]
pub enum SignIn {
    /// Authentication is off (a lab): everyone may do everything.
    Off,
    /// A token pasted into the sign-in form, verified like an API bearer token.
    Token(Arc<Jwks>),
    /// The authorization code flow with PKCE against `oauth`; the access token is verified.
    OAuth(Arc<Jwks>, OAuthClient),
    /// An edge agent: anyone who reaches the listener reads; the configured admin token (when
    /// there is one) acts.
    EdgeAdmin(Option<String>),
}

/// A public OAuth 2 client of an authorization server (Cognito's hosted UI: its domain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    /// `https://<prefix>.auth.<region>.amazoncognito.com`: `/oauth2/authorize` and
    /// `/oauth2/token` under it.
    pub auth_url: String,
    pub client_id: String,
    /// `https://<api>/console/callback`, registered as the client's callback URL.
    pub redirect_uri: String,
    pub scope: String,
}

/// What the viewer may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Read,
    Write,
    Admin,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Read => "read",
            Level::Write => "write",
            Level::Admin => "admin",
        }
    }
}

/// The person behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// Who they are (the token's subject), empty when nobody signed in.
    pub who: String,
    pub level: Level,
    /// Whether a session cookie stands behind it (sign-out is offered).
    pub signed_in: bool,
    /// The value forms must carry to act.
    pub csrf: String,
}

/// Why a request has no viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not signed in, or the session's token no longer verifies: sign in (again).
    SignIn(String),
    /// Signed in with a token that grants nothing here.
    Forbidden(String),
    /// The verifier could not answer (keys unreachable).
    Unavailable(String),
}

/// The value of cookie `name` in `headers`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value for the console's path (`value` empty: delete it).
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age_s: Option<i64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/console; HttpOnly; SameSite=Lax");
    if secure {
        c.push_str("; Secure");
    }
    match (value.is_empty(), max_age_s) {
        (true, _) => c.push_str("; Max-Age=0"),
        (false, Some(s)) => c.push_str(&format!("; Max-Age={s}")),
        (false, None) => {}
    }
    // Only cookie-safe characters reach here (JWTs, base64url, hex); anything else is dropped
    // by the caller's check, so this cannot fail on our own values.
    HeaderValue::from_str(&c)
        .unwrap_or_else(|_| HeaderValue::from_static("skyport_console=; Path=/console; Max-Age=0"))
}

/// Whether `v` may be put in a cookie as is.
pub fn cookie_safe(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 3800
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~+/=".contains(&b))
}

/// The form token of a session: a hash of the session's token, so it needs no server state
/// (a Lambda's execution environments share nothing) and a page of another site cannot know it.
pub fn csrf_for(session: &str) -> String {
    let h = Sha256::digest(format!("skyport-console-csrf\0{session}").as_bytes());
    h.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The session cookie of an edge agent's admin: derived from the admin token, so the token
/// itself never sits in a browser (and a cookie sent to another port of the host gives away
/// only this agent's session).
pub fn edge_session(admin_token: &str) -> String {
    let h = Sha256::digest(format!("skyport-edge-console-session\0{admin_token}").as_bytes());
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether two secrets are equal, in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The level a verified token gives: the API's own rules (`Need::satisfied_by`).
pub fn level_of(p: &Principal) -> Option<Level> {
    let has = |s: &str| p.has(s);
    if Need::Admin.satisfied_by(has) {
        Some(Level::Admin)
    } else if Need::Write.satisfied_by(has) {
        Some(Level::Write)
    } else if Need::Read.satisfied_by(has) {
        Some(Level::Read)
    } else {
        None
    }
}

/// Who sent `headers`, under `sign_in`.
pub async fn viewer(sign_in: &SignIn, headers: &HeaderMap) -> Result<Viewer, Refused> {
    let session = cookie(headers, COOKIE);
    match sign_in {
        SignIn::Off => Ok(Viewer {
            who: String::new(),
            level: Level::Admin,
            signed_in: false,
            csrf: csrf_for(""),
        }),
        SignIn::EdgeAdmin(admin) => {
            let is_admin =
                matches!((admin, &session), (Some(a), Some(s)) if same_secret(&edge_session(a), s));
            Ok(Viewer {
                who: if is_admin {
                    "admin".into()
                } else {
                    String::new()
                },
                level: if is_admin { Level::Admin } else { Level::Read },
                signed_in: is_admin,
                csrf: csrf_for(session.as_deref().unwrap_or("")),
            })
        }
        SignIn::Token(jwks) | SignIn::OAuth(jwks, _) => {
            let Some(token) = session else {
                return Err(Refused::SignIn(String::new()));
            };
            let p = jwks.verify(&token).await.map_err(|e| match e {
                skyport_auth::AuthError::Keys(_) | skyport_auth::AuthError::SiteLookup(_) => {
                    Refused::Unavailable(e.to_string())
                }
                e => Refused::SignIn(format!("Your session ended: {e}. Sign in again.")),
            })?;
            let Some(level) = level_of(&p) else {
                return Err(Refused::Forbidden(format!(
                    "{} holds no skyport/read, write or admin scope.",
                    if p.sub.is_empty() {
                        "This token"
                    } else {
                        &p.sub
                    }
                )));
            };
            Ok(Viewer {
                who: p.sub.clone(),
                level,
                signed_in: true,
                csrf: csrf_for(&token),
            })
        }
    }
}

/// Whether a form post comes from the console's own pages: its `Origin` (or, without one, its
/// `Referer`) names the host the request was sent to. Browsers send `Origin` with every form
/// post; a request with neither is refused.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|v| v.to_str().ok());
    let from = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    match (host, from) {
        (Some(h), Some(f)) => {
            let rest = f
                .strip_prefix("https://")
                .or_else(|| f.strip_prefix("http://"))
                .unwrap_or("");
            rest.split('/').next() == Some(h)
        }
        _ => false,
    }
}

/// A random URL-safe string of `bytes` random bytes (PKCE verifier, state).
pub fn random_url_safe(bytes: usize) -> Result<String, getrandom::Error> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// The PKCE challenge of `verifier` (S256).
pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl OAuthClient {
    /// Where the browser goes to sign in.
    pub fn authorize_url(&self, state: &str, verifier: &str) -> String {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", &self.scope)
            .append_pair("state", state)
            .append_pair("code_challenge_method", "S256")
            .append_pair("code_challenge", &challenge(verifier))
            .finish();
        format!(
            "{}/oauth2/authorize?{q}",
            self.auth_url.trim_end_matches('/')
        )
    }

    /// Trades the authorization code for an access token.
    pub async fn exchange(&self, code: &str, verifier: &str) -> Result<String, ExchangeError> {
        let url = format!("{}/oauth2/token", self.auth_url.trim_end_matches('/'));
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| ExchangeError::Http {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let r = http
            .post(&url)
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", &self.client_id),
                ("code", code),
                ("redirect_uri", &self.redirect_uri),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .map_err(|e| ExchangeError::Http {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let status = r.status();
        let body: serde_json::Value = r.json().await.map_err(|e| ExchangeError::Http {
            url: url.clone(),
            reason: format!("HTTP {status}, unreadable answer: {e}"),
        })?;
        if !status.is_success() {
            return Err(ExchangeError::Refused {
                url,
                status: status.as_u16(),
                error: body["error"].as_str().unwrap_or("").to_string(),
            });
        }
        body["access_token"]
            .as_str()
            .map(str::to_string)
            .ok_or(ExchangeError::NoToken { url })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("{url}: {reason}")]
    Http { url: String, reason: String },
    #[error("{url}: HTTP {status} ({error})")]
    Refused {
        url: String,
        status: u16,
        error: String,
    },
    #[error("{url}: the answer holds no access_token")]
    NoToken { url: String },
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cookies_are_read_among_others_and_written_for_the_console_only() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; skyport_console=abc.def"),
        );
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("abc.def"));
        assert_eq!(cookie(&h, "b"), None);
        let c = set_cookie(COOKIE, "tok", true, Some(60));
        assert_eq!(
            c.to_str().unwrap(),
            "skyport_console=tok; Path=/console; HttpOnly; SameSite=Lax; Secure; Max-Age=60"
        );
        assert!(
            set_cookie(COOKIE, "", false, None)
                .to_str()
                .unwrap()
                .ends_with("Max-Age=0")
        );
        assert!(cookie_safe("eyJ.a-b_c.d"));
        assert!(!cookie_safe("a;b") && !cookie_safe("a b") && !cookie_safe(""));
    }

    #[test]
    fn a_post_must_come_from_the_same_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(!same_origin(&h), "neither Origin nor Referer");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080.evil.example"),
        );
        assert!(!same_origin(&h));
    }

    #[test]
    fn the_form_token_follows_the_session_and_pkce_is_s256() {
        assert_ne!(csrf_for("a"), csrf_for("b"));
        assert_eq!(csrf_for("a").len(), 32);
        // RFC 7636, appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let c = OAuthClient {
            auth_url: "https://x.auth.eu-west-1.amazoncognito.com/".into(),
            client_id: "cid".into(),
            redirect_uri: "https://api/console/callback".into(),
            scope: "openid skyport/read".into(),
        };
        let u = c.authorize_url("st", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert!(u.starts_with("https://x.auth.eu-west-1.amazoncognito.com/oauth2/authorize?response_type=code&client_id=cid&redirect_uri=https%3A%2F%2Fapi%2Fconsole%2Fcallback&scope=openid+skyport%2Fread&state=st&code_challenge_method=S256&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"), "{u}");
        assert!(same_secret("x", "x") && !same_secret("x", "y"));
    }
}
