//! BMC credentials at rest: a JSON file whose entries are AES-256-GCM encrypted under a key that
//! only the environment holds (`SKYPORT_EDGE_SECRETS_KEY`, 64 hex digits). Each entry is bound
//! to its name (the name is the associated data), so entries cannot be swapped between BMCs.
//! Credentials are looked up by `host:port`, then `host`, then `default`; they are never logged
//! and never leave the site.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use serde::{Deserialize, Serialize};
use skyport_redfish::Credentials;

pub const KEY_ENV: &str = "SKYPORT_EDGE_SECRETS_KEY";

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("{KEY_ENV} is not set; create a key with `skyport-edge secrets generate-key`")]
    NoKey,
    #[error("{KEY_ENV} must be 64 hexadecimal digits (32 bytes)")]
    BadKey,
    #[error("secrets file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("secret {id:?} in {path} cannot be decrypted (wrong key or tampered file)")]
    Decrypt { path: PathBuf, id: String },
}

#[derive(Serialize, Deserialize, Default)]
struct FileForm {
    version: u32,
    secrets: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct Plain {
    username: String,
    password: String,
}

/// Parses the key from its hex form.
pub fn parse_key(hex_key: &str) -> Result<[u8; 32], SecretsError> {
    let bytes = hex::decode(hex_key.trim()).map_err(|_| SecretsError::BadKey)?;
    bytes.try_into().map_err(|_| SecretsError::BadKey)
}

/// A fresh random key, hex-encoded.
pub fn generate_key() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// The decrypted credentials, by id.
pub struct SecretStore {
    path: PathBuf,
    key: [u8; 32],
    entries: BTreeMap<String, Credentials>,
}

impl SecretStore {
    /// Opens (or starts) the file at `path` with the key from the environment.
    pub fn open(path: &Path) -> Result<Self, SecretsError> {
        let key = std::env::var(KEY_ENV).map_err(|_| SecretsError::NoKey)?;
        Self::open_with_key(path, parse_key(&key)?)
    }

    pub fn open_with_key(path: &Path, key: [u8; 32]) -> Result<Self, SecretsError> {
        let file_err = |reason: String| SecretsError::File {
            path: path.to_path_buf(),
            reason,
        };
        let form: FileForm = match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| file_err(e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileForm::default(),
            Err(e) => return Err(file_err(e.to_string())),
        };
        let cipher = Aes256Gcm::new(&key.into());
        let mut entries = BTreeMap::new();
        for (id, blob) in &form.secrets {
            let decrypt_err = || SecretsError::Decrypt {
                path: path.to_path_buf(),
                id: id.clone(),
            };
            let raw = hex::decode(blob).map_err(|_| decrypt_err())?;
            if raw.len() < 12 {
                return Err(decrypt_err());
            }
            let (nonce, ct) = raw.split_at(12);
            let plain = cipher
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: ct,
                        aad: id.as_bytes(),
                    },
                )
                .map_err(|_| decrypt_err())?;
            let p: Plain = serde_json::from_slice(&plain).map_err(|_| decrypt_err())?;
            entries.insert(
                id.clone(),
                Credentials {
                    username: p.username,
                    password: p.password,
                },
            );
        }
        Ok(Self {
            path: path.to_path_buf(),
            key,
            entries,
        })
    }

    /// Credentials for a BMC: `host:port`, then `host`, then `default`.
    pub fn lookup(&self, host: &str, port: u16) -> Option<&Credentials> {
        self.entries
            .get(&format!("{host}:{port}"))
            .or_else(|| self.entries.get(host))
            .or_else(|| self.entries.get("default"))
    }

    pub fn ids(&self) -> impl Iterator<Item = (&String, &str)> {
        self.entries.iter().map(|(k, v)| (k, v.username.as_str()))
    }

    pub fn set(&mut self, id: &str, creds: Credentials) {
        self.entries.insert(id.to_string(), creds);
    }

    pub fn remove(&mut self, id: &str) -> bool {
        self.entries.remove(id).is_some()
    }

    /// Encrypts every entry with a fresh nonce and replaces the file atomically (mode 0600).
    pub fn save(&self) -> Result<(), SecretsError> {
        let file_err = |reason: String| SecretsError::File {
            path: self.path.clone(),
            reason,
        };
        let cipher = Aes256Gcm::new(&self.key.into());
        let mut form = FileForm {
            version: 1,
            secrets: BTreeMap::new(),
        };
        for (id, c) in &self.entries {
            let nonce: [u8; 12] = rand::random();
            let plain = serde_json::to_vec(&Plain {
                username: c.username.clone(),
                password: c.password.clone(),
            })
            .map_err(|e| file_err(e.to_string()))?;
            let ct = cipher
                .encrypt(
                    Nonce::from_slice(&nonce),
                    Payload {
                        msg: &plain,
                        aad: id.as_bytes(),
                    },
                )
                .map_err(|_| file_err("encryption failed".into()))?;
            let mut blob = nonce.to_vec();
            blob.extend_from_slice(&ct);
            form.secrets.insert(id.clone(), hex::encode(blob));
        }
        let body = serde_json::to_vec_pretty(&form).map_err(|e| file_err(e.to_string()))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| file_err(e.to_string()))?;
        }
        let tmp = self.path.with_extension("tmp");
        write_private(&tmp, &body).map_err(|e| file_err(e.to_string()))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| file_err(e.to_string()))
    }
}

fn write_private(path: &Path, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(body)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(u: &str, p: &str) -> Credentials {
        Credentials {
            username: u.into(),
            password: p.into(),
        }
    }

    /// A directory with `secrets.json` holding `entries` (id, username, password), and its key.
    fn saved(entries: &[(&str, &str, &str)]) -> (tempfile::TempDir, [u8; 32]) {
        let dir = tempfile::tempdir().unwrap();
        let key = parse_key(&generate_key()).unwrap();
        let mut s = SecretStore::open_with_key(&dir.path().join("secrets.json"), key).unwrap();
        for (id, u, p) in entries {
            s.set(id, creds(u, p));
        }
        s.save().unwrap();
        (dir, key)
    }

    #[test]
    fn round_trip_lookup_order_and_no_plaintext_on_disk() {
        let (dir, key) = saved(&[
            ("default", "root", "initial0"),
            ("10.0.0.5", "admin", "hunter2"),
            ("10.0.0.5:8443", "ops", "swordfish"),
        ]);
        let path = dir.path().join("secrets.json");
        let raw = std::fs::read_to_string(&path).unwrap();
        for secret in ["initial0", "hunter2", "swordfish", "root", "admin"] {
            assert!(!raw.contains(secret), "{secret} in clear text");
        }
        let s = SecretStore::open_with_key(&path, key).unwrap();
        assert_eq!(s.lookup("10.0.0.5", 8443).unwrap().username, "ops");
        assert_eq!(s.lookup("10.0.0.5", 443).unwrap().username, "admin");
        assert_eq!(s.lookup("10.0.0.6", 443).unwrap().password, "initial0");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn wrong_key_and_swapped_entries_are_refused() {
        let (dir, key) = saved(&[("a", "u1", "p1"), ("b", "u2", "p2")]);
        let path = dir.path().join("secrets.json");
        let other = parse_key(&generate_key()).unwrap();
        assert!(matches!(
            SecretStore::open_with_key(&path, other),
            Err(SecretsError::Decrypt { .. })
        ));
        // Moving b's ciphertext under a's name fails authentication.
        let mut form: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let b = form["secrets"]["b"].clone();
        form["secrets"]["a"] = b;
        std::fs::write(&path, form.to_string()).unwrap();
        assert!(matches!(
            SecretStore::open_with_key(&path, key),
            Err(SecretsError::Decrypt { id, .. }) if id == "a"
        ));
        assert!(matches!(parse_key("abcd"), Err(SecretsError::BadKey)));
    }
}
