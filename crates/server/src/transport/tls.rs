//! TLS with rustls (ring provider): loads the configured PEM certificate
//! chain and key into an acceptor, so `wss://` and `https://` work.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;
use crate::error::ServerError;

/// Builds the acceptor for `cfg`.
pub(crate) fn acceptor(cfg: &TlsConfig) -> Result<TlsAcceptor, ServerError> {
    let key_err = |what: &'static str, e: String| ServerError::Key { what, error: e };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.cert_file)
        .map_err(|e| key_err("tls.cert_file", format!("{}: {e}", cfg.cert_file.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| key_err("tls.cert_file", format!("{}: {e}", cfg.cert_file.display())))?;
    if certs.is_empty() {
        return Err(key_err(
            "tls.cert_file",
            format!("{}: no certificate found", cfg.cert_file.display()),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&cfg.key_file)
        .map_err(|e| key_err("tls.key_file", format!("{}: {e}", cfg.key_file.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| key_err("TLS configuration", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| key_err("tls.key_file", e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
