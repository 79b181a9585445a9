//! Which API a command talks to and with which token: defaults, then the CLI config file
//! (`~/.config/skyport/cli.toml`, named profiles), then `SKYPORT_*` variables, then flags.
//!
//! ```toml
//! default = "local"
//! [profiles.local]
//! url = "http://127.0.0.1:27779"
//! token_file = "/home/me/.config/skyport/local.token"
//! [profiles.prod]
//! url = "https://abc123.execute-api.us-east-1.amazonaws.com"
//! token_file = "/home/me/.config/skyport/prod.token"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::Global;

pub const LOCAL_URL: &str = "http://127.0.0.1:27779";

#[derive(Deserialize, Serialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct CliFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileFile>,
}

#[derive(Deserialize, Serialize, Default, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub url: String,
    pub token: Option<String>,
}

/// `--cli-config`, else `$XDG_CONFIG_HOME/skyport/cli.toml`, else `~/.config/skyport/cli.toml`.
pub fn config_path(g: &Global) -> PathBuf {
    if let Some(p) = &g.cli_config {
        return p.clone();
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("skyport").join("cli.toml")
}

pub fn load(path: &Path) -> anyhow::Result<CliFile> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("CLI config {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CliFile::default()),
        Err(e) => Err(e).with_context(|| format!("reading CLI config {}", path.display())),
    }
}

pub fn resolve(g: &Global) -> anyhow::Result<Profile> {
    let path = config_path(g);
    let file = load(&path)?;
    let name = g
        .profile
        .clone()
        .or(file.default.clone())
        .unwrap_or_else(|| "local".into());
    let p = file.profiles.get(&name).cloned();
    if p.is_none() && name != "local" && g.url.is_none() {
        bail!(
            "no profile {name:?} in {} (create it with `skyport login --profile {name} ...`)",
            path.display()
        );
    }
    let p = p.unwrap_or_default();
    let url = g
        .url
        .clone()
        .or(p.url.clone())
        .unwrap_or_else(|| LOCAL_URL.into());
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        bail!("profile {name}: URL {url:?} must start with http:// or https://");
    }
    let token = match (&g.token, &p.token_file) {
        (Some(t), _) => Some(t.trim().to_string()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("profile {name}: reading token file {}", f.display()))?
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    Ok(Profile { name, url, token })
}

/// Writes a file only its owner can read (tokens, the CLI config).
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// Stores `token` for profile `name` at `url`, making it the default if there is none.
pub fn save(g: &Global, name: &str, url: &str, token: &str) -> anyhow::Result<PathBuf> {
    let path = config_path(g);
    let mut file = load(&path)?;
    let token_file = path.with_file_name(format!("{name}.token"));
    write_private(&token_file, &format!("{token}\n"))?;
    file.profiles.insert(
        name.to_string(),
        ProfileFile {
            url: Some(url.to_string()),
            token_file: Some(token_file),
        },
    );
    if file.default.is_none() {
        file.default = Some(name.to_string());
    }
    write_private(&path, &toml::to_string(&file)?)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_file_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let mut g = Global {
            cli_config: Some(dir.path().join("cli.toml")),
            ..Default::default()
        };
        let p = resolve(&g).unwrap();
        assert_eq!(
            (p.name.as_str(), p.url.as_str(), p.token),
            ("local", LOCAL_URL, None)
        );
        save(&g, "lab", "http://10.0.0.1:27779", "tok").unwrap();
        let p = resolve(&g).unwrap();
        assert_eq!((p.name.as_str(), p.token.as_deref()), ("lab", Some("tok")));
        g.url = Some("http://x:1".into());
        g.token = Some("flag".into());
        let p = resolve(&g).unwrap();
        assert_eq!(
            (p.url.as_str(), p.token.as_deref()),
            ("http://x:1", Some("flag"))
        );
        g.url = None;
        g.profile = Some("nope".into());
        assert!(
            resolve(&g)
                .unwrap_err()
                .to_string()
                .contains("no profile \"nope\"")
        );
        std::fs::write(dir.path().join("cli.toml"), "defualt = 1\n").unwrap();
        g.profile = None;
        assert!(format!("{:#}", resolve(&g).unwrap_err()).contains("cli.toml"));
    }
}
