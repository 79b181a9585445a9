//! How the agent trusts a BMC's certificate. BMCs ship self-signed certificates, so the choice
//! is explicit: verify against a site CA bundle, pin each BMC's certificate on first use and
//! refuse a changed one (the default), or skip verification when an admin passes `--insecure`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading CA bundle {path}: {source}")]
    CaBundle {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("CA bundle {path} holds no usable certificate")]
    EmptyCaBundle { path: PathBuf },
    #[error("certificate pin file {path}: {reason}")]
    Pins { path: PathBuf, reason: String },
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The SHA-256 of a certificate's DER bytes, as lowercase hex.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    hex::encode(Sha256::digest(cert.as_ref()))
}

/// Certificate pins by BMC (`host:port`), persisted as a small JSON file so a restart keeps them.
#[derive(Debug, Default)]
pub struct PinStore {
    path: Option<PathBuf>,
    pins: Mutex<BTreeMap<String, String>>,
}

impl PinStore {
    /// An in-memory store (tests, one-off runs with nowhere to write).
    pub fn memory() -> Self {
        Self::default()
    }

    /// Loads the pins at `path`; a missing file is an empty store.
    pub fn load(path: &Path) -> Result<Self, TlsError> {
        let pins = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| TlsError::Pins {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(TlsError::Pins {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                });
            }
        };
        Ok(Self {
            path: Some(path.to_path_buf()),
            pins: Mutex::new(pins),
        })
    }

    pub fn get(&self, bmc: &str) -> Option<String> {
        self.lock().get(bmc).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        // A poisoned lock only means another thread panicked mid-insert of a String pair; the map
        // itself is still consistent.
        self.pins.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Pins `fp` for `bmc` if nothing is pinned yet. Returns the pin now in force.
    fn pin_first(&self, bmc: &str, fp: &str) -> String {
        self.lock()
            .entry(bmc.to_string())
            .or_insert_with(|| fp.to_string())
            .clone()
    }

    /// Forgets a BMC's pin (after an admin checked a replaced certificate).
    pub fn forget(&self, bmc: &str) -> bool {
        self.lock().remove(bmc).is_some()
    }

    /// Writes the pins back atomically (temp file, then rename).
    pub fn save(&self) -> Result<(), TlsError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let err = |e: std::io::Error| TlsError::Pins {
            path: path.clone(),
            reason: e.to_string(),
        };
        let body = serde_json::to_vec_pretty(&*self.lock()).map_err(|e| TlsError::Pins {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, body).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }
}

/// The trust policy for BMC certificates.
#[derive(Clone, Debug)]
pub enum TlsPolicy {
    /// Verify against these roots (a site CA bundle).
    Ca(Arc<RootCertStore>),
    /// Trust on first use: pin the certificate's fingerprint, refuse a different one later.
    Tofu(Arc<PinStore>),
    /// No verification at all; only by explicit admin choice.
    Insecure,
}

impl TlsPolicy {
    /// Reads a PEM CA bundle.
    pub fn ca_bundle(path: &Path) -> Result<Self, TlsError> {
        let bytes = std::fs::read(path).map_err(|source| TlsError::CaBundle {
            path: path.to_path_buf(),
            source,
        })?;
        let mut roots = RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut bytes.as_slice()) {
            let cert = cert.map_err(|source| TlsError::CaBundle {
                path: path.to_path_buf(),
                source,
            })?;
            // A bundle may carry certificates rustls cannot use as anchors; skip those.
            if roots.add(cert).is_err() {
                tracing::warn!(path = %path.display(), "skipping unusable certificate in CA bundle");
            }
        }
        if roots.is_empty() {
            return Err(TlsError::EmptyCaBundle {
                path: path.to_path_buf(),
            });
        }
        Ok(Self::Ca(Arc::new(roots)))
    }

    /// The rustls client configuration for one BMC (`host:port` keys the pin).
    pub fn client_config(&self, bmc: &str) -> Result<rustls::ClientConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let config = match self {
            TlsPolicy::Ca(roots) => builder
                .with_root_certificates(roots.clone())
                .with_no_client_auth(),
            TlsPolicy::Tofu(pins) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(SelfSignedVerifier {
                    pin: Some((bmc.to_string(), pins.clone())),
                    algs: provider.signature_verification_algorithms,
                }))
                .with_no_client_auth(),
            TlsPolicy::Insecure => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(SelfSignedVerifier {
                    pin: None,
                    algs: provider.signature_verification_algorithms,
                }))
                .with_no_client_auth(),
        };
        Ok(config)
    }
}

/// The message a changed certificate fails with; the crawler reports it as its own reason.
pub const PIN_MISMATCH: &str = "certificate changed since it was pinned";

/// For self-signed BMC certificates: with a pin, accepts the certificate pinned for this BMC
/// or pins the first one seen; without (`--insecure`), accepts any. Either way the handshake
/// signature is still checked, so the peer holds the certificate's key.
#[derive(Debug)]
struct SelfSignedVerifier {
    /// The BMC (`host:port`) and the pin store.
    pin: Option<(String, Arc<PinStore>)>,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for SelfSignedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some((bmc, pins)) = &self.pin else {
            return Ok(ServerCertVerified::assertion());
        };
        let fp = fingerprint(end_entity);
        let pinned = pins.pin_first(bmc, &fp);
        if pinned == fp {
            Ok(ServerCertVerified::assertion())
        } else {
            tracing::error!(bmc = %bmc, pinned = %pinned, presented = %fp,
                "BMC certificate changed since it was pinned; refusing to talk to it");
            Err(rustls::Error::General(format!(
                "{PIN_MISMATCH} (pinned sha256 {pinned}, presented {fp})"
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}
