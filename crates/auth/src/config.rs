//! The one auth configuration of every Skyport API server. `skyport serve` and the Lambda
//! functions read the same settings under the same names (`SKYPORT_AUTH`,
//! `SKYPORT_AUTH_ISSUER`, `SKYPORT_AUTH_AUDIENCE`, `SKYPORT_AUTH_JWKS_URL`; the local server
//! also from its file and flags) and resolve them here, with the same rules and defaults,
//! into what the auth layer verifies. Former spellings stay accepted so that no deployed
//! setting breaks: `jwt` for `jwks`, `SKYPORT_AUTH_JWKS` for `SKYPORT_AUTH_JWKS_URL`.

use crate::{Jwks, KeySource};

/// Which tokens are accepted: `local`, `jwks` or `off`.
pub const ENV_MODE: &str = "SKYPORT_AUTH";
/// The token issuer (`iss`) to accept, with `jwks`.
pub const ENV_ISSUER: &str = "SKYPORT_AUTH_ISSUER";
/// Comma-separated audiences (`aud`, or Cognito's `client_id`) to accept, with `jwks`.
pub const ENV_AUDIENCE: &str = "SKYPORT_AUTH_AUDIENCE";
/// Where the issuer's signing keys are, with `jwks`: a URL, a `file://` URL or a path.
pub const ENV_JWKS_URL: &str = "SKYPORT_AUTH_JWKS_URL";
/// The local server's former name for [`ENV_JWKS_URL`], read when that one is unset.
pub const ENV_JWKS_URL_OLD: &str = "SKYPORT_AUTH_JWKS";

/// Which tokens a server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Tokens signed by the local server's own key (`skyport token`).
    Local,
    /// Tokens of an external issuer (Cognito, TokenSmith, …), checked against its JWKS.
    Jwks,
    /// No authentication at all, for a lab.
    Off,
}

impl std::str::FromStr for AuthMode {
    type Err = AuthConfigError;
    fn from_str(s: &str) -> Result<Self, AuthConfigError> {
        match s {
            "local" => Ok(AuthMode::Local),
            // `jwt` is what the Lambda functions used to call it.
            "jwks" | "jwt" => Ok(AuthMode::Jwks),
            "off" => Ok(AuthMode::Off),
            other => Err(AuthConfigError::Mode(other.to_string())),
        }
    }
}

/// Why auth settings were refused; names the variable at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthConfigError {
    #[error("{ENV_MODE}={0:?}: expected local, jwks or off")]
    Mode(String),
    #[error("{var} is not set: auth mode jwks needs {what} (or set {ENV_MODE}=off, for a lab)")]
    Missing {
        var: &'static str,
        what: &'static str,
    },
}

/// The auth settings as given (file, environment or flags), before defaults and checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthSettings {
    /// [`ENV_MODE`].
    pub mode: Option<String>,
    /// [`ENV_ISSUER`].
    pub issuer: Option<String>,
    /// [`ENV_AUDIENCE`].
    pub audience: Option<String>,
    /// [`ENV_JWKS_URL`], or else [`ENV_JWKS_URL_OLD`].
    pub jwks_url: Option<String>,
}

impl AuthSettings {
    /// The settings under their `SKYPORT_AUTH*` names in `get` (the process environment, or a
    /// test's table).
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Self {
        AuthSettings {
            mode: get(ENV_MODE),
            issuer: get(ENV_ISSUER),
            audience: get(ENV_AUDIENCE),
            jwks_url: get(ENV_JWKS_URL).or_else(|| get(ENV_JWKS_URL_OLD)),
        }
    }

    /// Each setting from `self`, or else from `fallback` (flags and environment over a file).
    pub fn or(self, fallback: AuthSettings) -> AuthSettings {
        AuthSettings {
            mode: self.mode.or(fallback.mode),
            issuer: self.issuer.or(fallback.issuer),
            audience: self.audience.or(fallback.audience),
            jwks_url: self.jwks_url.or(fallback.jwks_url),
        }
    }

    /// Checks the settings and fills in the defaults: `default` when no mode is given (the
    /// local server's is `local`, the Lambdas' `jwks`); with `jwks`, an issuer and at least one
    /// audience are required, and the keys default to `<issuer>/.well-known/jwks.json`.
    /// The issuer is kept as given (it is compared exactly with the tokens' `iss`, which ends
    /// with a `/` at some issuers), but for surrounding blanks.
    pub fn resolve(self, default: AuthMode) -> Result<AuthConfig, AuthConfigError> {
        let mode = match self.mode.as_deref() {
            None => default,
            Some(m) => m.parse()?,
        };
        match mode {
            AuthMode::Local => Ok(AuthConfig::Local),
            AuthMode::Off => Ok(AuthConfig::Off),
            AuthMode::Jwks => {
                let set =
                    |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
                let issuer = set(self.issuer).ok_or(AuthConfigError::Missing {
                    var: ENV_ISSUER,
                    what: "the token issuer (`iss`) to accept",
                })?;
                let audiences: Vec<String> = self
                    .audience
                    .unwrap_or_default()
                    .split(',')
                    .map(|a| a.trim().to_string())
                    .filter(|a| !a.is_empty())
                    .collect();
                if audiences.is_empty() {
                    return Err(AuthConfigError::Missing {
                        var: ENV_AUDIENCE,
                        what: "the audiences (`aud`, or Cognito's `client_id`) to accept",
                    });
                }
                let jwks_url = set(self.jwks_url).unwrap_or_else(|| {
                    format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/'))
                });
                Ok(AuthConfig::Jwks(JwksConfig {
                    issuer,
                    audiences,
                    jwks_url,
                }))
            }
        }
    }
}

/// How a server authenticates requests, checked and complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthConfig {
    /// Tokens signed by the key in the local server's data directory.
    Local,
    /// Tokens from an external issuer.
    Jwks(JwksConfig),
    /// No authentication: only when asked for.
    Off,
}

/// Who may sign tokens for this API, and where their public keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksConfig {
    /// The `iss` to accept (Cognito: `https://cognito-idp.<region>.amazonaws.com/<pool>`).
    pub issuer: String,
    /// The `aud` (or Cognito `client_id`) values to accept.
    pub audiences: Vec<String>,
    /// The issuer's JWKS: an `http(s)://` URL, or a file (`file:///…` or a path), which serves
    /// development against the local issuer's keys.
    pub jwks_url: String,
}

impl JwksConfig {
    /// Where the verifier gets its keys.
    pub fn key_source(&self) -> KeySource {
        let u = self.jwks_url.as_str();
        if let Some(path) = u.strip_prefix("file://") {
            KeySource::File(path.into())
        } else if u.starts_with("http://") || u.starts_with("https://") {
            KeySource::Url(u.to_string())
        } else {
            KeySource::File(u.into())
        }
    }

    /// A verifier for these settings (keys fetched on first use, then cached).
    pub fn verifier(&self) -> Jwks {
        Jwks::new(
            self.key_source(),
            self.issuer.clone(),
            self.audiences.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    const COGNITO: &str = "https://cognito-idp.us-east-1.amazonaws.com/pool";

    #[test]
    fn jwks_needs_an_issuer_and_an_audience_and_derives_the_keys_url() {
        let e = AuthSettings::from_lookup(&table(&[]))
            .resolve(AuthMode::Jwks)
            .unwrap_err();
        assert!(e.to_string().contains(ENV_ISSUER), "{e}");
        let e = AuthSettings::from_lookup(&table(&[(ENV_ISSUER, COGNITO)]))
            .resolve(AuthMode::Jwks)
            .unwrap_err();
        assert!(e.to_string().contains(ENV_AUDIENCE), "{e}");
        let c = AuthSettings::from_lookup(&table(&[
            (
                ENV_ISSUER,
                " https://cognito-idp.us-east-1.amazonaws.com/pool ",
            ),
            (ENV_AUDIENCE, "client-a, ,client-b"),
        ]))
        .resolve(AuthMode::Jwks)
        .unwrap();
        assert_eq!(
            c,
            AuthConfig::Jwks(JwksConfig {
                issuer: COGNITO.into(),
                audiences: vec!["client-a".into(), "client-b".into()],
                jwks_url: format!("{COGNITO}/.well-known/jwks.json"),
            })
        );
    }

    #[test]
    fn the_default_mode_applies_only_when_none_is_given() {
        let none = AuthSettings::default();
        assert_eq!(none.clone().resolve(AuthMode::Local), Ok(AuthConfig::Local));
        assert_eq!(none.resolve(AuthMode::Off), Ok(AuthConfig::Off));
        let off = AuthSettings::from_lookup(&table(&[(ENV_MODE, "off")]));
        assert_eq!(off.resolve(AuthMode::Jwks), Ok(AuthConfig::Off));
        let e = AuthSettings::from_lookup(&table(&[(ENV_MODE, "maybe")]))
            .resolve(AuthMode::Local)
            .unwrap_err();
        assert_eq!(e, AuthConfigError::Mode("maybe".into()));
        assert!(e.to_string().contains("SKYPORT_AUTH=\"maybe\""), "{e}");
    }

    #[test]
    fn former_spellings_are_accepted_and_the_new_name_wins() {
        // What the Lambdas (`jwt`) and the local server (`SKYPORT_AUTH_JWKS`) used to read.
        let old = AuthSettings::from_lookup(&table(&[
            (ENV_MODE, "jwt"),
            (ENV_ISSUER, "skyport-local"),
            (ENV_AUDIENCE, "skyport"),
            (ENV_JWKS_URL_OLD, "/etc/skyport/jwks.json"),
        ]));
        let AuthConfig::Jwks(j) = old.resolve(AuthMode::Local).unwrap() else {
            panic!("jwt is jwks");
        };
        assert_eq!(j.jwks_url, "/etc/skyport/jwks.json");
        let both = AuthSettings::from_lookup(&table(&[
            (ENV_JWKS_URL, "https://new.example/jwks.json"),
            (ENV_JWKS_URL_OLD, "/old.json"),
        ]));
        assert_eq!(
            both.jwks_url.as_deref(),
            Some("https://new.example/jwks.json")
        );
    }

    #[test]
    fn settings_fall_back_field_by_field() {
        let flags = AuthSettings {
            issuer: Some("flag-iss".into()),
            ..Default::default()
        };
        let file = AuthSettings {
            mode: Some("jwks".into()),
            issuer: Some("file-iss".into()),
            audience: Some("aud".into()),
            jwks_url: None,
        };
        let merged = flags.or(file);
        assert_eq!(merged.mode.as_deref(), Some("jwks"));
        assert_eq!(merged.issuer.as_deref(), Some("flag-iss"));
        assert_eq!(merged.audience.as_deref(), Some("aud"));
    }

    #[test]
    fn keys_come_from_urls_or_files() {
        let at = |u: &str| {
            JwksConfig {
                issuer: "i".into(),
                audiences: vec!["a".into()],
                jwks_url: u.into(),
            }
            .key_source()
        };
        assert!(
            matches!(at("https://x/jwks.json"), KeySource::Url(u) if u == "https://x/jwks.json")
        );
        assert!(matches!(at("http://127.0.0.1:1/j"), KeySource::Url(_)));
        assert!(
            matches!(at("file:///etc/j.json"), KeySource::File(p) if p.as_os_str() == "/etc/j.json")
        );
        assert!(matches!(at("/etc/j.json"), KeySource::File(p) if p.as_os_str() == "/etc/j.json"));
        assert!(matches!(at("jwks.json"), KeySource::File(p) if p.as_os_str() == "jwks.json"));
    }
}
