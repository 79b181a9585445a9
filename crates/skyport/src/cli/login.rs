//! `skyport login`: stores a token for a profile. Locally it mints one with the server's own
//! key (from its data directory, so only someone who can read that directory can log in);
//! against the cloud it takes a token obtained from the stack's Cognito domain on standard
//! input. Either way the token is checked against the API before it is saved.

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
    #[arg(long)]
    pub token_stdin: bool,
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
    let token = if a.token_stdin {
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
