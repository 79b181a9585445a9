//! Signing in to the cloud's console: the authorization code flow with PKCE against an
//! authorization server, as Cognito's hosted UI runs it. Cognito cannot run here (moto, the
//! emulator the suite uses for Cognito's user-pool API, has no hosted UI), so this test plays
//! its two endpoints: `/oauth2/authorize` is the redirect the console builds (checked field by
//! field), and a real HTTP server answers `/oauth2/token`, refusing a verifier that does not
//! hash to the challenge (RFC 7636 S256), as Cognito does. The token it hands out is signed by
//! a local issuer the console's verifier trusts, so the console's own checks are the real ones.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use skyport_auth::local::{LOCAL_AUDIENCE, LOCAL_ISSUER};
use skyport_auth::{Jwks, KeySource, LocalIssuer};
use skyport_console::{Console, OAuthClient, Place, SignIn};
use tower::ServiceExt;

struct Emulated {
    /// The challenge of the last authorization request, and the code handed out for it.
    challenge: Mutex<Option<(String, String)>>,
    issuer: LocalIssuer,
    scopes: Vec<String>,
}

/// Cognito's token endpoint, as far as the console uses it.
async fn token(
    axum::extract::State(e): axum::extract::State<Arc<Emulated>>,
    body: String,
) -> (StatusCode, axum::Json<serde_json::Value>) {
    let form: std::collections::HashMap<String, String> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let Some((challenge, code)) = e.challenge.lock().unwrap().take() else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": "invalid_grant"})),
        );
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let ok = form.get("grant_type").map(String::as_str) == Some("authorization_code")
        && form.get("code") == Some(&code)
        && form.get("client_id").map(String::as_str) == Some("console-client")
        && form.get("redirect_uri").map(String::as_str)
            == Some("https://api.example/console/callback")
        && skyport_console::session::challenge(&verifier) == challenge;
    if !ok {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": "invalid_grant"})),
        );
    }
    let t = e
        .issuer
        .mint("alice", &e.scopes, Duration::from_secs(300))
        .unwrap();
    (
        StatusCode::OK,
        axum::Json(
            serde_json::json!({"access_token": t, "token_type": "Bearer", "expires_in": 300}),
        ),
    )
}

async fn call(
    app: &axum::Router,
    uri: &str,
    cookie: Option<&str>,
) -> (StatusCode, Vec<String>, Option<String>, String) {
    let mut r = Request::get(uri);
    if let Some(c) = cookie {
        r = r.header(header::COOKIE, c);
    }
    let resp = app
        .clone()
        .oneshot(r.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let cookies = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_string());
    let body = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    (status, cookies, location, body)
}

async fn setup(scopes: &[&str]) -> (tempfile::TempDir, axum::Router, Arc<Emulated>) {
    let dir = tempfile::tempdir().unwrap();
    let issuer = LocalIssuer::load_or_create(dir.path()).unwrap();
    let jwks = Jwks::new(
        KeySource::Static(issuer.jwks().clone()),
        LOCAL_ISSUER,
        vec![LOCAL_AUDIENCE.to_string()],
    );
    let emulated = Arc::new(Emulated {
        challenge: Mutex::new(None),
        issuer,
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = axum::Router::new()
        .route("/oauth2/token", axum::routing::post(token))
        .with_state(emulated.clone());
    tokio::spawn(async move { axum::serve(listener, server).await });
    let store = skyport_store_sqlite::SqliteStore::open(dir.path().join("db")).unwrap();
    let store: Arc<dyn skyport_store::Store> = Arc::new(store);
    let boot = skyport_boot::BootService::new(store.clone(), skyport_ipxe::Settings::default());
    let oauth = OAuthClient {
        auth_url: format!("http://{addr}"),
        client_id: "console-client".into(),
        redirect_uri: "https://api.example/console/callback".into(),
        scope: "openid skyport/read".into(),
    };
    let app = Console::new(
        store,
        boot,
        Place::Cloud,
        SignIn::OAuth(Arc::new(jwks), oauth),
    )
    .router();
    (dir, app, emulated)
}

/// The hosted UI's part: the person signs in, and it sends the browser back with a code.
fn authorize(location: &str, e: &Emulated) -> (String, String) {
    let (base, query) = location.split_once('?').unwrap();
    assert!(base.ends_with("/oauth2/authorize"), "{location}");
    let q: std::collections::HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "console-client");
    assert_eq!(q["redirect_uri"], "https://api.example/console/callback");
    assert_eq!(q["scope"], "openid skyport/read");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    let code = "c0de".to_string();
    *e.challenge.lock().unwrap() = Some((q["code_challenge"].clone(), code.clone()));
    (code, q["state"].clone())
}

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn the_code_flow_with_pkce_signs_a_person_in_and_back_to_the_page_they_asked_for() {
    let (_dir, app, e) = setup(&["read"]).await;
    // A page without a session sends the person to sign in, remembering the page.
    let (s, _, loc, _) = call(&app, "/console/sites", None).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(
        loc.as_deref(),
        Some("/console/login?next=%2Fconsole%2Fsites")
    );
    let (s, _, _, body) = call(&app, "/console/login?next=%2Fconsole%2Fsites", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        body.contains("/console/login/start?next=%2Fconsole%2Fsites"),
        "{body}"
    );
    // The start: a redirect to the authorization server, the verifier kept in a cookie that
    // only the console's paths see.
    let (s, cookies, loc, _) =
        call(&app, "/console/login/start?next=%2Fconsole%2Fsites", None).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let pkce = cookies
        .iter()
        .find(|c| c.starts_with("skyport_console_pkce="))
        .unwrap();
    assert!(
        pkce.contains("Path=/console; HttpOnly; SameSite=Lax; Secure; Max-Age=600"),
        "{pkce}"
    );
    let (code, state) = authorize(&loc.unwrap(), &e);
    // Back with the code: exchanged with the verifier, the token verified, the session set.
    let cb = format!("/console/callback?code={code}&state={state}");
    let (s, cookies, loc, body) = call(&app, &cb, Some(&cookie_pair(pkce))).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(loc.as_deref(), Some("/console/sites"));
    let session = cookies
        .iter()
        .find(|c| c.starts_with("skyport_console="))
        .unwrap();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("skyport_console_pkce=;")),
        "{cookies:?}"
    );
    let (s, _, _, body) = call(&app, "/console/sites", Some(&cookie_pair(session))).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("alice") && body.contains(">read<"), "{body}");
}

#[tokio::test]
async fn a_callback_that_does_not_match_its_start_signs_nobody_in() {
    let (_dir, app, e) = setup(&["read"]).await;
    let (_, cookies, loc, _) = call(&app, "/console/login/start", None).await;
    let pkce = cookie_pair(&cookies[0]);
    let (code, state) = authorize(&loc.unwrap(), &e);
    // Another browser (no PKCE cookie), or a forged state: back to sign in, no session.
    for (uri, cookie) in [
        (format!("/console/callback?code={code}&state={state}"), None),
        (
            format!("/console/callback?code={code}&state=forged"),
            Some(pkce.as_str()),
        ),
    ] {
        let (s, cookies, loc, _) = call(&app, &uri, cookie).await;
        assert_eq!(s, StatusCode::SEE_OTHER);
        assert!(loc.unwrap().ends_with("&message=timeout"));
        assert!(
            !cookies.iter().any(|c| c.starts_with("skyport_console=")),
            "{cookies:?}"
        );
    }
    // A verifier that is not the one the challenge was made from: the server refuses it.
    let mut parts: Vec<String> = pkce
        .split_once('=')
        .unwrap()
        .1
        .split('.')
        .map(String::from)
        .collect();
    parts[1] = "A".repeat(64);
    let wrong = format!("skyport_console_pkce={}", parts.join("."));
    let (s, _, loc, _) = call(
        &app,
        &format!("/console/callback?code={code}&state={state}"),
        Some(&wrong),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let loc = loc.unwrap();
    assert!(loc.ends_with("message=failed"), "{loc}");
    // The authorization server said no: said, nothing set.
    let (_, cookies, loc, _) = call(&app, "/console/callback?error=access_denied", None).await;
    let loc = loc.unwrap();
    assert!(loc.ends_with("message=refused"), "{loc}");
    assert!(cookies.is_empty());
    let (_, _, _, page) = call(&app, &loc, None).await;
    assert!(page.contains("The sign-in was refused."), "{page}");
    // The page says only its own words: a link cannot put text on it.
    let (_, _, _, page) = call(
        &app,
        "/console/login?message=Paste+your+token+at+https://evil.example",
        None,
    )
    .await;
    assert!(
        !page.contains("evil.example") && !page.contains("role=\"alert\""),
        "{page}"
    );
}

#[tokio::test]
async fn a_token_without_a_skyport_scope_is_not_kept_and_anyone_can_sign_out() {
    let (_dir, app, e) = setup(&[]).await;
    let (_, cookies, loc, _) = call(&app, "/console/login/start", None).await;
    let (code, state) = authorize(&loc.unwrap(), &e);
    let (_, cookies, loc, _) = call(
        &app,
        &format!("/console/callback?code={code}&state={state}"),
        Some(&cookie_pair(&cookies[0])),
    )
    .await;
    assert!(loc.unwrap().ends_with("message=no-scope"));
    assert!(
        !cookies.iter().any(|c| c.starts_with("skyport_console=")),
        "{cookies:?}"
    );
    // A session that grants nothing (here a token with no scope) still shows the reason, and
    // signing out works without a valid session, from the console's own page only.
    let t = e.issuer.mint("bob", &[], Duration::from_secs(60)).unwrap();
    let session = format!("skyport_console={t}");
    let (s, _, _, body) = call(&app, "/console/boots", Some(&session)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(
        body.contains("holds no skyport/read, write or admin scope"),
        "{body}"
    );
    let out = |origin: &'static str| {
        Request::post("/console/logout")
            .header(header::HOST, "api.example")
            .header(header::ORIGIN, origin)
            .header(header::COOKIE, &session)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("csrf="))
            .unwrap()
    };
    let r = app
        .clone()
        .oneshot(out("https://evil.example"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .clone()
        .oneshot(out("https://api.example"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let gone = r.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        gone.starts_with("skyport_console=;") && gone.contains("Max-Age=0"),
        "{gone}"
    );
}
