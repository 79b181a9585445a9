//! `skyport login`: stores a token for a profile. Locally it mints one with the server's own
//! key (from its data directory, so only someone who can read that directory can log in);
//! against the cloud it signs in through the stack's Cognito domain (authorization code flow
//! with PKCE, the browser redirected to a one-shot loopback listener), or takes a token on
//! standard input. Either way the token is checked against the API before it is saved.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::{CliError, CliResult, Global, profile};

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Local server's data directory, whose key signs the token.
    #[arg(long, env = "SKYPORT_DATA", default_value = crate::config::DEFAULT_DATA)]
    pub data: PathBuf,
    /// Scopes of the minted token: read, write, admin, edge.
    #[arg(long, value_delimiter = ',', default_value = "admin")]
    pub scope: Vec<String>,
    /// Lifetime of the minted token, seconds.
    #[arg(long, default_value_t = 86_400)]
    pub ttl: u64,
    /// Read a token (for example from the stack's Cognito domain) from standard input instead
    /// of minting one.
    #[arg(long, conflicts_with = "auth_url")]
    pub token_stdin: bool,
    /// Sign in through an OAuth 2 authorization server (the stack's Cognito domain,
    /// `https://<prefix>.auth.<region>.amazoncognito.com`) with the authorization code flow and
    /// PKCE: the command prints a URL to open in a browser and receives the code on
    /// --redirect-uri.
    #[arg(long, requires = "client_id")]
    pub auth_url: Option<String>,
    /// The admin app client (the stack's `AdminClientId` output).
    #[arg(long)]
    pub client_id: Option<String>,
    /// Where the browser is sent back to; must be the app client's callback URL.
    #[arg(long, default_value = "http://localhost:8765/callback")]
    pub redirect_uri: String,
    /// OAuth scopes to ask for.
    #[arg(
        long,
        default_value = "openid skyport/read skyport/write skyport/admin"
    )]
    pub oauth_scope: String,
}

fn random_url_safe(bytes: usize) -> anyhow::Result<String> {
    use base64::Engine;
    let mut b = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .context("reading /dev/urandom")?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// The authorization code flow with PKCE (RFC 7636), as a command-line program does it: a
/// one-shot listener on the redirect URI's loopback port receives the code.
async fn oauth_login(a: &LoginArgs, auth_url: &str, client_id: &str) -> anyhow::Result<String> {
    use anyhow::bail;
    use base64::Engine;
    use sha2::Digest;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let base = auth_url.trim_end_matches('/');
    if !(base.starts_with("https://") || base.starts_with("http://")) {
        bail!("--auth-url {base:?} must start with https://");
    }
    let redirect = reqwest::Url::parse(&a.redirect_uri)
        .with_context(|| format!("--redirect-uri {:?}", a.redirect_uri))?;
    let host = redirect.host_str().unwrap_or("");
    if redirect.scheme() != "http" || !(host == "localhost" || host == "127.0.0.1") {
        bail!("--redirect-uri must be http://localhost:<port>/... or http://127.0.0.1:<port>/...");
    }
    let port = redirect.port().unwrap_or(80);
    let verifier = random_url_safe(48)?;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let state = random_url_safe(16)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("listening on 127.0.0.1:{port} for the sign-in redirect"))?;
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", &a.redirect_uri)
        .append_pair("scope", &a.oauth_scope)
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    eprintln!("Open this URL in a browser to sign in:\n\n  {base}/oauth2/authorize?{query}\n");
    let wait = async {
        loop {
            let (mut sock, _) = listener.accept().await?;
            let mut buf = vec![0u8; 8192];
            let n = sock.read(&mut buf).await?;
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let target = head
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or("")
                .to_string();
            let q = target.split_once('?').map(|(_, q)| q).unwrap_or("");
            let params: std::collections::HashMap<String, String> =
                form_urlencoded::parse(q.as_bytes()).into_owned().collect();
            if !target.starts_with(redirect.path()) || params.is_empty() {
                let _ = sock
                    .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    .await;
                continue;
            }
            let (status, text, result) =
                match (params.get("code"), params.get("state"), params.get("error")) {
                    (_, _, Some(e)) => (
                        "400 Bad Request",
                        "Sign-in failed; see the terminal.",
                        Err(format!("the authorization server said: {e}")),
                    ),
                    (Some(code), Some(st), None) if *st == state => (
                        "200 OK",
                        "Signed in. You can close this window.",
                        Ok(code.clone()),
                    ),
                    _ => (
                        "400 Bad Request",
                        "Unexpected answer; see the terminal.",
                        Err("the redirect did not carry this sign-in's state".to_string()),
                    ),
                };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}\n",
                text.len() + 1
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            return Ok::<_, std::io::Error>(result);
        }
    };
    let code = tokio::time::timeout(std::time::Duration::from_secs(300), wait)
        .await
        .context("no sign-in within 5 minutes")?
        .context("receiving the sign-in redirect")?
        .map_err(anyhow::Error::msg)?;
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("client_id", client_id)
        .append_pair("code", &code)
        .append_pair("redirect_uri", &a.redirect_uri)
        .append_pair("code_verifier", &verifier)
        .finish();
    let token_url = format!("{base}/oauth2/token");
    let resp = reqwest::Client::new()
        .post(&token_url)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(form)
        .send()
        .await
        .with_context(|| format!("POST {token_url}"))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!(
            "POST {token_url}: HTTP {}: {}",
            status.as_u16(),
            body.get("error")
                .and_then(|e| e.as_str())
                .unwrap_or("no detail")
        );
    }
    body.get("access_token")
        .and_then(|t| t.as_str())
        .map(String::from)
        .with_context(|| format!("POST {token_url}: no access_token in the answer"))
}

pub async fn login(g: &Global, a: &LoginArgs) -> CliResult {
    let current = profile::resolve(&Global {
        token: None,
        ..g.clone()
    })
    .or_else(|_| {
        // A new profile: only its URL is known so far.
        Ok::<_, anyhow::Error>(profile::Profile {
            name: g.profile.clone().unwrap_or_else(|| "local".into()),
            url: g.url.clone().unwrap_or_else(|| profile::LOCAL_URL.into()),
            token: None,
        })
    })
    .map_err(CliError::Local)?;
    let token = if let (Some(auth), Some(id)) = (&a.auth_url, &a.client_id) {
        oauth_login(a, auth, id).await.map_err(CliError::Local)?
    } else if a.token_stdin {
        let mut t = String::new();
        std::io::stdin()
            .read_to_string(&mut t)
            .context("reading the token from standard input")?;
        let t = t.trim().to_string();
        if t.is_empty() {
            return Err(CliError::Local(anyhow::anyhow!(
                "no token on standard input"
            )));
        }
        t
    } else {
        if a.ttl == 0 || a.ttl > 366 * 86_400 {
            return Err(CliError::Local(anyhow::anyhow!(
                "--ttl must be between 1 second and a year"
            )));
        }
        let key = skyport_auth::LocalIssuer::key_path(&a.data);
        if !key.exists() {
            return Err(CliError::Local(anyhow::anyhow!(
                "no local signing key at {} (start `skyport serve --data {}` once, or use --token-stdin)",
                key.display(),
                a.data.display()
            )));
        }
        let issuer = skyport_auth::LocalIssuer::load_or_create(&a.data)
            .map_err(|e| CliError::Local(e.into()))?;
        let sub = std::env::var("USER").unwrap_or_else(|_| "admin".into());
        issuer
            .mint(&sub, &a.scope, std::time::Duration::from_secs(a.ttl))
            .map_err(|e| CliError::Local(e.into()))?
    };
    // Check it before saving: a read the token's scopes allow.
    let c = skyport_client::Client::new(&current.url, Some(token.clone()))?;
    c.get_json("/hsm/v2/groups/labels", &[]).await?;
    let path = profile::save(g, &current.name, &current.url, &token).map_err(CliError::Local)?;
    eprintln!(
        "skyport: logged in to {} as profile {:?} (saved in {})",
        current.url,
        current.name,
        path.display()
    );
    Ok(())
}
