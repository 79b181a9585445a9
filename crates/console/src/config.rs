//! The console's one setting group: how people sign in through an OAuth 2 authorization server
//! (Cognito's hosted UI in the cloud). Read under the same `SKYPORT_CONSOLE_*` names by the
//! local server (file, environment, flags) and the boot Lambda (environment); without them the
//! console takes pasted tokens (the local issuer's) or, with authentication off, nobody signs in.

use crate::session::{OAuthClient, SignIn};

pub const ENV_AUTH_URL: &str = "SKYPORT_CONSOLE_AUTH_URL";
pub const ENV_CLIENT_ID: &str = "SKYPORT_CONSOLE_CLIENT_ID";
pub const ENV_REDIRECT_URI: &str = "SKYPORT_CONSOLE_REDIRECT_URI";
pub const ENV_SCOPE: &str = "SKYPORT_CONSOLE_SCOPE";
/// The scopes asked for when none are configured.
pub const DEFAULT_SCOPE: &str = "openid skyport/read skyport/write skyport/admin";

/// The settings as given, before checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsoleSettings {
    /// [`ENV_AUTH_URL`]: the authorization server (`https://<prefix>.auth.<region>.amazoncognito.com`).
    pub auth_url: Option<String>,
    /// [`ENV_CLIENT_ID`]: the public app client whose callback is the console's.
    pub client_id: Option<String>,
    /// [`ENV_REDIRECT_URI`]: `https://<api>/console/callback`.
    pub redirect_uri: Option<String>,
    /// [`ENV_SCOPE`].
    pub scope: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConsoleConfigError {
    #[error("console sign-in: {0} is set but {1} is not (set both, with {2}, or none)")]
    Incomplete(&'static str, &'static str, &'static str),
    #[error("console sign-in: {name} {value:?} must be an http(s) URL")]
    Url { name: &'static str, value: String },
    #[error("console sign-in: {0} must end with /console/callback")]
    Callback(&'static str),
}

impl ConsoleSettings {
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        ConsoleSettings {
            auth_url: get(ENV_AUTH_URL),
            client_id: get(ENV_CLIENT_ID),
            redirect_uri: get(ENV_REDIRECT_URI),
            scope: get(ENV_SCOPE),
        }
    }

    /// Each setting from `self`, or else from `fallback`.
    pub fn or(self, fallback: ConsoleSettings) -> ConsoleSettings {
        ConsoleSettings {
            auth_url: self.auth_url.or(fallback.auth_url),
            client_id: self.client_id.or(fallback.client_id),
            redirect_uri: self.redirect_uri.or(fallback.redirect_uri),
            scope: self.scope.or(fallback.scope),
        }
    }

    /// The OAuth client, when one is configured; all three of URL, client and callback or none.
    pub fn resolve(self) -> Result<Option<OAuthClient>, ConsoleConfigError> {
        let (url, id, cb) = match (self.auth_url, self.client_id, self.redirect_uri) {
            (None, None, None) => return Ok(None),
            (Some(u), Some(i), Some(c)) => (u, i, c),
            (Some(_), _, _) => {
                return Err(ConsoleConfigError::Incomplete(
                    ENV_AUTH_URL,
                    "the client id or the redirect URI",
                    "the other",
                ));
            }
            (None, _, _) => {
                return Err(ConsoleConfigError::Incomplete(
                    ENV_CLIENT_ID,
                    ENV_AUTH_URL,
                    ENV_REDIRECT_URI,
                ));
            }
        };
        let (url, cb) = (url.trim().to_string(), cb.trim().to_string());
        for (name, value) in [(ENV_AUTH_URL, &url), (ENV_REDIRECT_URI, &cb)] {
            // It goes into a Location header: a URL as is, nothing a header cannot carry.
            let plain = value.bytes().all(|b| b.is_ascii_graphic());
            if !plain
                || value.parse::<axum::http::Uri>().is_err()
                || !(value.starts_with("https://") || value.starts_with("http://"))
            {
                return Err(ConsoleConfigError::Url {
                    name,
                    value: value.clone(),
                });
            }
        }
        if !cb.ends_with("/console/callback") {
            return Err(ConsoleConfigError::Callback(ENV_REDIRECT_URI));
        }
        Ok(Some(OAuthClient {
            auth_url: url.trim_end_matches('/').to_string(),
            client_id: id,
            redirect_uri: cb,
            scope: self.scope.unwrap_or_else(|| DEFAULT_SCOPE.to_string()),
        }))
    }
}

/// How people sign in to a console whose API verifies tokens with `auth` (`None`: off).
pub fn sign_in(auth: &skyport_auth::AuthLayer, oauth: Option<OAuthClient>) -> SignIn {
    match (auth, oauth) {
        (None, _) => SignIn::Off,
        (Some(j), Some(o)) => SignIn::OAuth(j.clone(), o),
        (Some(j), None) => SignIn::Token(j.clone()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn all_three_or_none() {
        assert_eq!(ConsoleSettings::default().resolve(), Ok(None));
        let half = ConsoleSettings {
            auth_url: Some("https://a".into()),
            ..Default::default()
        };
        assert!(matches!(
            half.resolve(),
            Err(ConsoleConfigError::Incomplete(..))
        ));
        let env = |k: &str| {
            Some(match k {
                ENV_AUTH_URL => "https://x.auth.eu-west-1.amazoncognito.com/".to_string(),
                ENV_CLIENT_ID => "cid".into(),
                ENV_REDIRECT_URI => "https://api.example/console/callback".into(),
                _ => return None,
            })
        };
        let c = ConsoleSettings::from_lookup(&env)
            .resolve()
            .unwrap()
            .unwrap();
        assert_eq!(c.auth_url, "https://x.auth.eu-west-1.amazoncognito.com");
        assert_eq!(c.scope, DEFAULT_SCOPE);
        let wrong = ConsoleSettings {
            redirect_uri: Some("https://api.example/elsewhere".into()),
            ..ConsoleSettings::from_lookup(&env)
        };
        assert_eq!(
            wrong.resolve(),
            Err(ConsoleConfigError::Callback(ENV_REDIRECT_URI))
        );
        // A value that a Location header could not carry is refused at start-up.
        let bad = ConsoleSettings {
            auth_url: Some("https://x.example/a b".into()),
            ..ConsoleSettings::from_lookup(&env)
        };
        assert!(matches!(bad.resolve(), Err(ConsoleConfigError::Url { .. })));
        let trailing = ConsoleSettings {
            auth_url: Some("https://x.example\n".into()),
            ..ConsoleSettings::from_lookup(&env)
        };
        assert_eq!(
            trailing.resolve().unwrap().unwrap().auth_url,
            "https://x.example"
        );
    }
}
