//! Token verification against real signed JWTs: every way a token can be wrong gives its own
//! 401 reason; Cognito-shaped access tokens (no `aud`, `client_id`, space-separated `scope`)
//! are accepted; an unknown `kid` refreshes the JWKS at most once per interval; an unreachable
//! JWKS keeps the cached keys working.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use skyport_auth::local::{LOCAL_AUDIENCE, LOCAL_ISSUER};
use skyport_auth::{AuthError, Jwks, KeySource, LocalIssuer};
use skyport_model::now;

fn verifier(issuer: &LocalIssuer) -> Jwks {
    Jwks::new(
        KeySource::Static(issuer.jwks().clone()),
        LOCAL_ISSUER,
        vec![LOCAL_AUDIENCE.into()],
    )
}

#[tokio::test]
async fn good_tokens_pass_and_every_bad_one_fails_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = LocalIssuer::load_or_create(dir.path()).unwrap();
    let v = verifier(&issuer);
    let t = issuer
        .mint(
            "alice",
            &["read".into(), "edge".into()],
            Duration::from_secs(60),
        )
        .unwrap();
    let p = v.verify(&t).await.unwrap();
    assert_eq!(p.sub, "alice");
    assert!(p.has("read") && p.has("edge") && !p.has("write"));

    let base = json!({"iss": LOCAL_ISSUER, "sub": "x", "aud": LOCAL_AUDIENCE,
                      "exp": now() + 60, "scope": "skyport/read"});
    let with = |patch: serde_json::Value| {
        let mut c = base.clone();
        for (k, val) in patch.as_object().unwrap() {
            c[k] = val.clone();
        }
        issuer.sign_claims(&c).unwrap()
    };
    assert_eq!(
        v.verify(&with(json!({"exp": now() - 120}))).await,
        Err(AuthError::Expired)
    );
    assert_eq!(
        v.verify(&with(json!({"nbf": now() + 600}))).await,
        Err(AuthError::NotYetValid)
    );
    assert_eq!(
        v.verify(&with(json!({"iss": "https://evil.example"})))
            .await,
        Err(AuthError::WrongIssuer("https://evil.example".into()))
    );
    assert_eq!(
        v.verify(&with(json!({"aud": "someone-else"}))).await,
        Err(AuthError::WrongAudience)
    );
    // Scopes of another resource server are not ours.
    let p = v
        .verify(&with(json!({"scope": "other/admin skyport/write"})))
        .await
        .unwrap();
    assert_eq!(p.scopes.iter().collect::<Vec<_>>(), ["write"]);

    // Signed by a different key that claims the same kid.
    let other_dir = tempfile::tempdir().unwrap();
    let other = LocalIssuer::load_or_create(other_dir.path()).unwrap();
    let forged = other.sign_claims_with_kid(&base, &issuer.kid()).unwrap();
    assert_eq!(v.verify(&forged).await, Err(AuthError::BadSignature));
    // Signed by a key nobody published.
    let unknown = other.sign_claims(&base).unwrap();
    assert_eq!(v.verify(&unknown).await, Err(AuthError::UnknownKey));
    // Tampered payload.
    let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
    parts[1] = parts[1].chars().rev().collect();
    assert!(v.verify(&parts.join(".")).await.is_err());
    for garbage in ["", "abc", "a.b.c", "eyJhbGciOiJub25lIn0.e30."] {
        assert!(
            matches!(
                v.verify(garbage).await,
                Err(AuthError::Malformed(_)) | Err(AuthError::UnknownKey)
            ),
            "{garbage:?}"
        );
    }
}

#[tokio::test]
async fn cognito_access_tokens_use_client_id_as_audience() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = LocalIssuer::load_or_create(dir.path()).unwrap();
    let v = Jwks::new(
        KeySource::Static(issuer.jwks().clone()),
        "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pool",
        vec!["edge-client-id".into()],
    );
    // What Cognito's client-credentials flow issues: no aud, client_id, token_use, space-separated scope.
    let t = issuer
        .sign_claims(&json!({
            "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pool",
            "sub": "edge-client-id", "client_id": "edge-client-id", "token_use": "access",
            "scope": "skyport/edge", "exp": now() + 3600, "iat": now(),
        }))
        .unwrap();
    let p = v.verify(&t).await.unwrap();
    assert_eq!(p.client_id.as_deref(), Some("edge-client-id"));
    assert!(p.has("edge"));
    // TokenSmith-style array scopes.
    let t = issuer
        .sign_claims(&json!({
            "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pool",
            "sub": "svc", "aud": ["edge-client-id"], "scope": ["skyport/read"], "exp": now() + 60,
        }))
        .unwrap();
    assert!(v.verify(&t).await.unwrap().has("read"));
}

#[tokio::test]
async fn unknown_kids_refresh_once_per_interval_and_an_unreachable_jwks_keeps_cached_keys() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = LocalIssuer::load_or_create(dir.path()).unwrap();
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, serde_json::to_string(issuer.jwks()).unwrap()).unwrap();
    let v = Jwks::new(
        KeySource::File(file.clone()),
        LOCAL_ISSUER,
        vec![LOCAL_AUDIENCE.into()],
    );
    let good = issuer
        .mint("a", &["read".into()], Duration::from_secs(60))
        .unwrap();
    v.verify(&good).await.unwrap();
    assert_eq!(v.fetches.load(Ordering::Relaxed), 1);
    // A flood of tokens with unknown kids costs at most one more fetch per interval.
    let other_dir = tempfile::tempdir().unwrap();
    let other = LocalIssuer::load_or_create(other_dir.path()).unwrap();
    let stranger = other
        .mint("b", &["read".into()], Duration::from_secs(60))
        .unwrap();
    for _ in 0..50 {
        assert_eq!(v.verify(&stranger).await, Err(AuthError::UnknownKey));
    }
    assert!(v.fetches.load(Ordering::Relaxed) <= 2, "{:?}", v.fetches);
    // The JWKS disappears (issuer unreachable): known keys keep verifying.
    std::fs::remove_file(&file).unwrap();
    for _ in 0..5 {
        v.verify(&good).await.unwrap();
    }
}

#[test]
fn the_local_key_is_created_once_private_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let a = LocalIssuer::load_or_create(dir.path()).unwrap();
    let b = LocalIssuer::load_or_create(dir.path()).unwrap();
    assert_eq!(a.kid(), b.kid());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(LocalIssuer::key_path(dir.path()))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        a.mint("x", &["root".into()], Duration::from_secs(1))
            .is_err()
    );
}
