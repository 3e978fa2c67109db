//! TLS for the query server (`--tls-cert`, `--tls-key`) and its clients
//! (`grpc+tls://`, `--tls-ca`), on rustls with the ring provider that the
//! object stores' HTTPS already builds.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn usage(flag: &str, path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Usage(format!("{flag} {}: {what}", path.display()))
}

fn certificates(flag: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| usage(flag, path, e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| usage(flag, path, e))?;
    if certs.is_empty() {
        return Err(usage(flag, path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// The server's TLS: its certificate chain and key (PEM), HTTP/2 only.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>> {
    let certs = certificates("--tls-cert", cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| usage("--tls-key", key, e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::Usage(format!("--tls-cert/--tls-key: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// A client's TLS: the server's certificate checked against `ca` (PEM), or
/// against the system's roots without one.
pub fn client_config(ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            for cert in certificates("--tls-ca", path)? {
                roots.add(cert).map_err(|e| usage("--tls-ca", path, e))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}
