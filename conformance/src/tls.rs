//! TLS for `wss://` targets (rustls with the ring provider, the project's
//! one TLS stack): the public web roots plus the profile's `tls_ca_file`.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use crate::case::{fail, CaseError};
use crate::conn::Io;

/// The host part of `host:port` or `[v6]:port`.
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(authority)
}

/// Runs the TLS handshake on `tcp` for `authority`, trusting the web roots
/// and the certificates in `ca_file`.
pub async fn wrap(
    tcp: tokio::net::TcpStream,
    authority: &str,
    ca_file: Option<&Path>,
) -> Result<Box<dyn Io>, CaseError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| fail(format!("tls_ca_file {}: {e}", path.display())))?;
        for cert in certs {
            let cert = cert.map_err(|e| fail(format!("tls_ca_file {}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| fail(format!("tls_ca_file {}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host_of(authority).to_string())
        .map_err(|e| fail(format!("TLS server name {authority}: {e}")))?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| fail(format!("TLS handshake with {authority} failed: {e}")))?;
    Ok(Box::new(stream))
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_of_strips_ports_and_brackets() {
        assert_eq!(super::host_of("example.com:443"), "example.com");
        assert_eq!(super::host_of("[::1]:8443"), "::1");
        assert_eq!(super::host_of("localhost"), "localhost");
    }
}
