//! Configuration of `skyport serve`, resolved in one place: defaults, then the TOML file
//! (`--config`/`SKYPORT_CONFIG`), then `SKYPORT_*` environment variables, then flags.
//! The table in `docs/configuration.md` lists every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde::Deserialize;
use skyport_auth::{AuthConfig, AuthMode, AuthSettings};
use skyport_http::LogFormat;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:27779";
pub const DEFAULT_DATA: &str = "./skyport-data";

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "SKYPORT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:27779].
    #[arg(long, env = "SKYPORT_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory of the embedded store (created if missing) [default: ./skyport-data].
    #[arg(long, env = "SKYPORT_DATA")]
    pub data: Option<PathBuf>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "SKYPORT_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// URL nodes use to reach this server (boot-script chain URLs) [default: http://<listen>].
    #[arg(long, env = "SKYPORT_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// cloud-init base URL put in kernel parameters as `ds=nocloud-net;s=<url>/`
    /// [default: <public-url>/cloud-init].
    #[arg(long, env = "SKYPORT_CLOUD_INIT_URL")]
    pub cloud_init_url: Option<String>,
    /// Seconds a node waits before retrying a failed boot [default: 30].
    #[arg(long, env = "SKYPORT_BOOT_RETRY_DELAY")]
    pub boot_retry_delay: Option<u32>,
    /// local (tokens from `skyport token`), jwks (an external issuer), or off (a lab only)
    /// [default: local].
    #[arg(long, env = "SKYPORT_AUTH")]
    pub auth: Option<String>,
    /// With --auth jwks: the issuer's JWKS, a URL or file [default: <issuer>/.well-known/jwks.json].
    #[arg(long, env = "SKYPORT_AUTH_JWKS_URL")]
    pub auth_jwks_url: Option<String>,
    /// The former name of --auth-jwks-url (and SKYPORT_AUTH_JWKS of SKYPORT_AUTH_JWKS_URL),
    /// still read when the new one is not given.
    #[arg(long, env = "SKYPORT_AUTH_JWKS", hide = true)]
    pub auth_jwks: Option<String>,
    /// With --auth jwks: the token issuer (`iss`) to accept.
    #[arg(long, env = "SKYPORT_AUTH_ISSUER")]
    pub auth_issuer: Option<String>,
    /// With --auth jwks: the audiences (`aud`, or Cognito's `client_id`) to accept,
    /// comma-separated.
    #[arg(long, env = "SKYPORT_AUTH_AUDIENCE")]
    pub auth_audience: Option<String>,
    /// The console signs people in through this OAuth 2 authorization server (authorization
    /// code with PKCE) instead of a pasted token; with --console-client-id and
    /// --console-redirect-uri.
    #[arg(long, env = "SKYPORT_CONSOLE_AUTH_URL")]
    pub console_auth_url: Option<String>,
    /// The console's public OAuth client at --console-auth-url.
    #[arg(long, env = "SKYPORT_CONSOLE_CLIENT_ID")]
    pub console_client_id: Option<String>,
    /// The console's callback, `<public URL>/console/callback`, registered with the client.
    #[arg(long, env = "SKYPORT_CONSOLE_REDIRECT_URI")]
    pub console_redirect_uri: Option<String>,
    /// OAuth scopes the console asks for [default: openid skyport/read skyport/write skyport/admin].
    #[arg(long, env = "SKYPORT_CONSOLE_SCOPE")]
    pub console_scope: Option<String>,
}

/// The file form; unknown keys are an error so a typo cannot silently fall back to a default.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct ServeFile {
    listen: Option<SocketAddr>,
    data: Option<PathBuf>,
    log_format: Option<LogFormat>,
    public_url: Option<String>,
    cloud_init_url: Option<String>,
    boot_retry_delay: Option<u32>,
    auth: Option<String>,
    #[serde(alias = "auth_jwks")]
    auth_jwks_url: Option<String>,
    auth_issuer: Option<String>,
    auth_audience: Option<String>,
    console_auth_url: Option<String>,
    console_client_id: Option<String>,
    console_redirect_uri: Option<String>,
    console_scope: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data: PathBuf,
    pub log_format: LogFormat,
    pub public_url: String,
    pub cloud_init_url: String,
    pub boot_retry_delay: u32,
    pub auth: AuthConfig,
    /// How the console signs people in through an authorization server, if it does.
    pub console: Option<skyport_console::OAuthClient>,
}

/// A base URL nodes will be sent to: http(s), no whitespace or characters iPXE would interpret.
fn check_url(what: &str, u: &str) -> anyhow::Result<String> {
    let u = u.trim().trim_end_matches('/').to_string();
    if !(u.starts_with("http://") || u.starts_with("https://")) {
        anyhow::bail!("{what} {u:?} must start with http:// or https://");
    }
    if let Err(e) = skyport_ipxe::check_value(skyport_ipxe::Slot::Kernel, &u) {
        anyhow::bail!("{what} {u:?} cannot be placed in a boot script: {e}");
    }
    Ok(u)
}

impl ServeConfig {
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(p) => read_file(p)?,
            None => ServeFile::default(),
        };
        let listen = args.listen.or(file.listen).unwrap_or_else(|| {
            DEFAULT_LISTEN
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 27779)))
        });
        let public_url = match args.public_url.clone().or(file.public_url) {
            Some(u) => check_url("public_url", &u)?,
            None => format!("http://{listen}"),
        };
        let cloud_init_url = match args.cloud_init_url.clone().or(file.cloud_init_url) {
            Some(u) => check_url("cloud_init_url", &u)?,
            None => format!("{public_url}/cloud-init"),
        };
        let boot_retry_delay = args
            .boot_retry_delay
            .or(file.boot_retry_delay)
            .unwrap_or(30);
        if boot_retry_delay == 0 || boot_retry_delay > 3600 {
            anyhow::bail!("boot_retry_delay {boot_retry_delay} must be between 1 and 3600 seconds");
        }
        // The same settings, names and rules as the Lambda functions' (skyport-auth).
        let flags = AuthSettings {
            mode: args.auth.clone(),
            issuer: args.auth_issuer.clone(),
            audience: args.auth_audience.clone(),
            jwks_url: args.auth_jwks_url.clone().or(args.auth_jwks.clone()),
        };
        let auth = flags
            .or(AuthSettings {
                mode: file.auth,
                issuer: file.auth_issuer,
                audience: file.auth_audience,
                jwks_url: file.auth_jwks_url,
            })
            .resolve(AuthMode::Local)?;
        let console = skyport_console::ConsoleSettings {
            auth_url: args.console_auth_url.clone(),
            client_id: args.console_client_id.clone(),
            redirect_uri: args.console_redirect_uri.clone(),
            scope: args.console_scope.clone(),
        }
        .or(skyport_console::ConsoleSettings {
            auth_url: file.console_auth_url,
            client_id: file.console_client_id,
            redirect_uri: file.console_redirect_uri,
            scope: file.console_scope,
        })
        .resolve()?;
        Ok(ServeConfig {
            auth,
            console,
            listen,
            data: args
                .data
                .clone()
                .or(file.data)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA)),
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            public_url,
            cloud_init_url,
            boot_retry_delay,
        })
    }
}

fn read_file(p: &Path) -> anyhow::Result<ServeFile> {
    let text = std::fs::read_to_string(p)
        .with_context(|| format!("reading config file {}", p.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_is_defaults_file_then_flags() {
        let dir = std::env::temp_dir().join(format!("skyport-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("s.toml");
        std::fs::write(&f, "listen = \"127.0.0.1:9000\"\ndata = \"/tmp/x\"\n").unwrap();
        let c = ServeConfig::resolve(&ServeArgs {
            config: Some(f.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.data, PathBuf::from("/tmp/x"));
        assert_eq!(c.log_format, LogFormat::Text);
        let c = ServeConfig::resolve(&ServeArgs {
            config: Some(f.clone()),
            listen: Some("127.0.0.1:9001".parse().unwrap()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.listen.port(), 9001);
        assert_eq!(
            ServeConfig::resolve(&ServeArgs::default())
                .unwrap()
                .listen
                .port(),
            27779
        );
    }

    #[test]
    fn auth_settings_take_the_former_spellings_and_flags_win() {
        let dir = std::env::temp_dir().join(format!("skyport-cfg-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("auth.toml");
        // A file written for the former names: `auth_jwks`, and the Lambdas' `jwt`.
        std::fs::write(
            &f,
            "auth = \"jwt\"\nauth_jwks = \"/etc/skyport/jwks.json\"\n\
             auth_issuer = \"https://issuer.example/\"\nauth_audience = \"a,b\"\n",
        )
        .unwrap();
        let args = |audience: Option<&str>| ServeArgs {
            config: Some(f.clone()),
            auth_audience: audience.map(str::to_string),
            ..Default::default()
        };
        let AuthConfig::Jwks(j) = ServeConfig::resolve(&args(None)).unwrap().auth else {
            panic!("jwt is jwks");
        };
        assert_eq!(j.jwks_url, "/etc/skyport/jwks.json");
        assert_eq!(j.issuer, "https://issuer.example/");
        assert_eq!(j.audiences, ["a", "b"]);
        let AuthConfig::Jwks(j) = ServeConfig::resolve(&args(Some("c"))).unwrap().auth else {
            panic!("jwt is jwks");
        };
        assert_eq!(j.audiences, ["c"]);
        // The new flag over the former one.
        let c = ServeConfig::resolve(&ServeArgs {
            auth: Some("jwks".into()),
            auth_issuer: Some("https://issuer.example".into()),
            auth_audience: Some("a".into()),
            auth_jwks: Some("/old.json".into()),
            auth_jwks_url: Some("https://issuer.example/keys".into()),
            ..Default::default()
        })
        .unwrap();
        let AuthConfig::Jwks(j) = c.auth else {
            panic!("jwks");
        };
        assert_eq!(j.jwks_url, "https://issuer.example/keys");
        assert_eq!(
            ServeConfig::resolve(&ServeArgs::default()).unwrap().auth,
            AuthConfig::Local
        );
        let e = ServeConfig::resolve(&ServeArgs {
            auth: Some("jwks".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(format!("{e:#}").contains("SKYPORT_AUTH_ISSUER"), "{e:#}");
    }

    #[test]
    fn bad_file_names_file_and_key() {
        let dir = std::env::temp_dir().join(format!("skyport-cfg-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("bad.toml");
        std::fs::write(&f, "listen = \"127.0.0.1:9000\"\nlisen = 3\n").unwrap();
        let e = ServeConfig::resolve(&ServeArgs {
            config: Some(f.clone()),
            ..Default::default()
        })
        .unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("bad.toml") && msg.contains("lisen"), "{msg}");
        let missing = ServeConfig::resolve(&ServeArgs {
            config: Some(dir.join("nope.toml")),
            ..Default::default()
        });
        assert!(format!("{:#}", missing.unwrap_err()).contains("nope.toml"));
    }
}
