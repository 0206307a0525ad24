//! TLS for the API's TCP listener: mutual TLS only.
//!
//! The API gives whoever can use it root on the host, so a TCP listener authenticates every
//! client: the handshake requires a client certificate that chains to the operator's CA
//! (dockerd's `--tlsverify`). Berth has no server-only TLS and no plain TCP mode. TLS 1.2 and
//! 1.3 only, with rustls' ring provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// The PEM files of a mutual-TLS listener (dockerd's `--tlscacert`, `--tlscert`, `--tlskey`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA whose certificates clients must present.
    pub ca: PathBuf,
    /// The server's certificate chain, leaf first.
    pub cert: PathBuf,
    /// The server certificate's private key.
    pub key: PathBuf,
}

/// Why the TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file cannot be read.
    #[error("cannot read the {what} {path}: {error}")]
    Read {
        /// Which file it is ("CA certificate", "server certificate", "server key").
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's error.
        error: std::io::Error,
    },
    /// The file is not valid PEM or holds none of the expected items.
    #[error("the {what} {path} is not usable PEM: {reason}")]
    Pem {
        /// Which file it is.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA certificates cannot be used to verify clients.
    #[error("the CA certificate {path} cannot verify clients: {reason}")]
    Ca {
        /// The CA file.
        path: PathBuf,
        /// What rustls said.
        reason: String,
    },
    /// The key is not a key the crypto provider can sign with.
    #[error("the server key {path} is not a usable private key: {reason}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What rustls said.
        reason: String,
    },
    /// The key is not the certificate's.
    #[error("the server key {key} does not match the server certificate {cert}: {reason}")]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        reason: String,
    },
}

/// A loaded mutual-TLS server configuration; cheap to clone.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls")
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        what,
        path: path.to_path_buf(),
        error,
    })
}

fn certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(what, path)?;
    let pem_err = |reason: String| TlsError::Pem {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_err("no CERTIFICATE block in it".into()));
    }
    Ok(certs)
}

impl ServerTls {
    /// Reads and checks the files: the CA must parse, the key must be the certificate's.
    pub fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());

        let mut roots = RootCertStore::empty();
        for ca in certs("CA certificate", &files.ca)? {
            roots.add(ca).map_err(|e| TlsError::Ca {
                path: files.ca.clone(),
                reason: e.to_string(),
            })?;
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .map_err(|e| TlsError::Ca {
                    path: files.ca.clone(),
                    reason: e.to_string(),
                })?;

        let chain = certs("server certificate", &files.cert)?;
        let key_bytes = read("server key", &files.key)?;
        let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| TlsError::Pem {
            what: "server key",
            path: files.key.clone(),
            reason: match e {
                rustls_pki_types::pem::Error::NoItemsFound => {
                    "no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block in it".into()
                }
                e => e.to_string(),
            },
        })?;
        check_pair(&provider, &chain, key.clone_key(), files)?;

        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Ca {
                path: files.ca.clone(),
                reason: e.to_string(),
            })?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::KeyMismatch {
                cert: files.cert.clone(),
                key: files.key.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// The acceptor that runs the handshake on an accepted connection.
    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

/// Says which file is wrong before rustls' own (less specific) check does.
fn check_pair(
    provider: &CryptoProvider,
    chain: &[CertificateDer<'static>],
    key: PrivateKeyDer<'static>,
    files: &TlsFiles,
) -> Result<(), TlsError> {
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::Key {
            path: files.key.clone(),
            reason: e.to_string(),
        })?;
    CertifiedKey::new(chain.to_vec(), signing)
        .keys_match()
        .map_err(|e| TlsError::KeyMismatch {
            cert: files.cert.clone(),
            key: files.key.clone(),
            reason: match e {
                rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                    "the certificate's public key is another key's".into()
                }
                e => e.to_string(),
            },
        })
}
