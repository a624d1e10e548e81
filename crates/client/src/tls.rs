//! TLS for `wss://` URLs: the rustls client configuration built from
//! [`ClientConfig`]'s trust settings, and the one stream type the socket
//! code works on, plain TCP or TLS over TCP.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::RootCertStore;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::{ClientConfig, ClientError};

/// Builds the rustls configuration for `wss://` from `config`: its
/// [`ClientConfig::tls`] as is, else the web roots (unless disabled) plus
/// [`ClientConfig::root_certificates`], ring provider, TLS 1.2 and 1.3.
pub(crate) fn client_config(
    config: &ClientConfig,
) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    if let Some(tls) = &config.tls {
        return Ok(tls.clone());
    }
    let mut roots = RootCertStore::empty();
    if config.web_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for (i, cert) in config.root_certificates.iter().enumerate() {
        roots.add(cert.clone()).map_err(|e| {
            ClientError::Config(format!(
                "root_certificates[{i}] is not a usable CA certificate: {e}"
            ))
        })?;
    }
    if roots.is_empty() {
        return Err(ClientError::Config(
            "wss:// with web_roots disabled needs at least one root certificate".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Config(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // The upgrade is HTTP/1.1; a server that also speaks h2 must not pick it
    // (WebSocket over h2 is a different handshake, RFC 8441).
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}

/// Parses every `CERTIFICATE` block of a PEM document.
pub(crate) fn certificates_from_pem(
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    use rustls::pki_types::pem::PemObject;
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ClientError::Config(format!("root certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(ClientError::Config(
            "root certificate PEM holds no CERTIFICATE block".into(),
        ));
    }
    Ok(certs)
}

/// Runs the TLS handshake for `host` (a DNS name or an IP address, without
/// brackets or port) over `tcp`.
pub(crate) async fn connect(
    tcp: TcpStream,
    host: &str,
    config: Arc<rustls::ClientConfig>,
) -> io::Result<Stream> {
    let name = ServerName::try_from(host.to_string()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("TLS server name `{host}`: {e}"),
        )
    })?;
    let tls = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake with {host} failed: {e}")))?;
    Ok(Stream::Tls(Box::new(tls)))
}

/// The socket under the WebSocket: plain for `ws://`, TLS for `wss://`.
/// (The TLS state is boxed: it is about 1 KiB and plain sockets should not
/// pay for it.)
pub enum Stream {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://`.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_parsing_reports_empty_and_broken_documents() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let two = format!("{}{}", cert.cert.pem(), cert.cert.pem());
        let parsed = certificates_from_pem(two.as_bytes()).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].as_ref(), cert.cert.der().as_ref());
        assert!(matches!(
            certificates_from_pem(b"not pem"),
            Err(ClientError::Config(_))
        ));
        let broken = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            certificates_from_pem(broken.as_bytes()),
            Err(ClientError::Config(_))
        ));
    }

    #[test]
    fn trust_settings_are_checked_up_front() {
        let mut config = ClientConfig::new("wss://localhost/ws");
        assert!(client_config(&config).is_ok(), "web roots alone are enough");
        config.web_roots(false);
        assert!(
            matches!(client_config(&config), Err(ClientError::Config(m)) if m.contains("root certificate"))
        );
        config.add_root_certificate(b"garbage".to_vec());
        assert!(
            matches!(client_config(&config), Err(ClientError::Config(m)) if m.contains("root_certificates[0]"))
        );
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        config.root_certificates.clear();
        config.add_root_certificate(cert.cert.der().clone());
        let tls = client_config(&config).unwrap();
        assert_eq!(tls.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}
