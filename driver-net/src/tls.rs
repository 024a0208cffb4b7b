//! TLS for SIP connections (RFC 3261 §26.2, RFC 5630): the rustls configurations the
//! connection engine uses, from the operator's PEM files (CONTRACT.md §7).
//!
//! Ours to providers and destinations check the peer's certificate against the
//! system's CA roots plus `SIP_TLS_CA_FILE`, and its name against the host we dialled
//! (SNI carries it); `SIP_TLS_CERT_FILE`/`SIP_TLS_KEY_FILE` make the listener's
//! identity and are offered as our client certificate when a peer asks for one. No
//! file is read again after the start: a bad one stops trunkline with what is wrong.

use futures_rustls::rustls::pki_types::pem::PemObject;
use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use futures_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why the TLS settings cannot be used; each says which file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read as PEM.
    #[error("cannot read {what} {path}: {reason} (set {setting} to a readable PEM file)")]
    Read {
        what: &'static str,
        setting: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// A certificate file holds no certificate.
    #[error("{path} holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\"); {setting} must name PEM certificates")]
    NoCertificate {
        setting: &'static str,
        path: PathBuf,
    },
    /// Only one of the certificate and its key was given.
    #[error("SIP_TLS_CERT_FILE (sip.tls.cert_file) and SIP_TLS_KEY_FILE (sip.tls.key_file) go together: set both, or neither")]
    HalfIdentity,
    /// The certificate and key do not make an identity (mismatch, unsupported key).
    #[error("the certificate in {cert} and the key in {key} cannot be used together: {reason}")]
    Identity {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    /// No CA roots at all: neither the system's nor `SIP_TLS_CA_FILE`.
    #[error("no CA certificates to check TLS peers against: the system has none (install ca-certificates) and SIP_TLS_CA_FILE (sip.tls.ca_file) is not set")]
    NoRoots,
}

/// The TLS settings of the connection engine.
#[derive(Clone)]
pub struct TlsConfig {
    client: Arc<ClientConfig>,
    server: Option<Arc<ServerConfig>>,
    roots: usize,
}

impl std::fmt::Debug for TlsConfig {
    // The configurations hold the private key: show only what is harmless.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("roots", &self.roots)
            .field("listener", &self.server.is_some())
            .finish()
    }
}

impl TlsConfig {
    /// Loads the configurations: the system roots plus `ca_file`'s certificates for
    /// the peers we connect to, and the identity in `cert_file`/`key_file` (both or
    /// neither) for the listener and as our client certificate.
    pub fn load(
        ca_file: Option<&Path>,
        cert_file: Option<&Path>,
        key_file: Option<&Path>,
    ) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        // Unreadable system certificates are skipped: the rest still serve.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(path) = ca_file {
            let certs = read_certs(path, "SIP_TLS_CA_FILE (sip.tls.ca_file)", "the CA file")?;
            roots.add_parsable_certificates(certs);
        }
        if roots.is_empty() {
            return Err(TlsError::NoRoots);
        }
        let identity = match (cert_file, key_file) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err(TlsError::HalfIdentity),
        };
        let versions = rustls::DEFAULT_VERSIONS;
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| identity_error(Path::new("-"), Path::new("-"), e))?
            .with_root_certificates(roots.clone());
        let (client, server) = match identity {
            None => (builder.with_no_client_auth(), None),
            Some((cert, key)) => {
                let chain = read_certs(
                    cert,
                    "SIP_TLS_CERT_FILE (sip.tls.cert_file)",
                    "the certificate file",
                )?;
                let private = read_key(key)?;
                let client = builder
                    .with_client_auth_cert(chain.clone(), private.clone_key())
                    .map_err(|e| identity_error(cert, key, e))?;
                let server = ServerConfig::builder_with_provider(provider)
                    .with_protocol_versions(versions)
                    .map_err(|e| identity_error(cert, key, e))?
                    .with_no_client_auth()
                    .with_single_cert(chain, private)
                    .map_err(|e| identity_error(cert, key, e))?;
                (client, Some(Arc::new(server)))
            }
        };
        Ok(Self {
            client: Arc::new(client),
            server,
            roots: roots.len(),
        })
    }

    /// For connections we open.
    pub fn client(&self) -> Arc<ClientConfig> {
        self.client.clone()
    }

    /// For the listener, when an identity is configured.
    pub fn server(&self) -> Option<Arc<ServerConfig>> {
        self.server.clone()
    }

    /// How many CA certificates peers are checked against.
    pub fn roots(&self) -> usize {
        self.roots
    }
}

fn identity_error(cert: &Path, key: &Path, e: rustls::Error) -> TlsError {
    TlsError::Identity {
        cert: cert.to_owned(),
        key: key.to_owned(),
        reason: e.to_string(),
    }
}

fn read_certs(
    path: &Path,
    setting: &'static str,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_error = |reason: String| TlsError::Read {
        what,
        setting,
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| read_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            setting,
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    // The key's text never goes into an error: only the file's name and why.
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Read {
        what: "the private key file",
        setting: "SIP_TLS_KEY_FILE (sip.tls.key_file)",
        path: path.to_owned(),
        reason: e.to_string(),
    })
}
