//! The mail client's side of `--listen`: the listening socket's TLS
//! (`--listen-tls`, or STARTTLS when the client asks), with the
//! certificate of `--listen-cert`/`--listen-key` or one generated at
//! start, and the client's stream, plain or TLS.

use crate::error;
use crate::text::{io_text, secs};
use anyhow::Result;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;

/// `--listen` and the flags of the clients' side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenOptions {
    /// Where to listen (loopback unless `--listen-any`).
    pub listen: std::net::SocketAddr,
    /// `--listen-tls`: TLS from the client's first byte.
    pub tls: bool,
    /// `--listen-cert FILE` and `--listen-key FILE`.
    pub cert: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// `--log-literals`: what the records (stdout and `--log FILE`) keep of
    /// literal data.
    pub literals: crate::io::transcript::Literals,
}

/// The names a generated certificate is valid for: a client pointed at
/// the proxy on this machine connects to one of them.
pub const GENERATED_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// What the proxy presents to mail clients that use TLS.
pub struct ListenTls {
    acceptor: TlsAcceptor,
    /// The certificate sent first (the leaf), for its fingerprint.
    pub leaf: CertificateDer<'static>,
    /// It was generated at start (not read from `--listen-cert`).
    pub generated: bool,
}

impl ListenTls {
    /// `--listen-cert FILE --listen-key FILE`: a PEM chain (leaf first)
    /// and its PEM private key.
    pub fn from_files(cert: &Path, key: &Path) -> Result<ListenTls> {
        let shown = cert.display();
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(|e| error::usage(format!("--listen-cert {shown}: {e}")))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| error::usage(format!("--listen-cert {shown}: {e}")))?;
        if chain.is_empty() {
            return Err(error::usage(format!(
                "--listen-cert {shown}: no PEM certificates in the file"
            )));
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
            error::usage(format!(
                "--listen-key {}: no PEM private key ({e})",
                key.display()
            ))
        })?;
        Self::new(chain, key, false)
    }

    /// A fresh self-signed certificate for [`GENERATED_NAMES`] (ECDSA
    /// P-256), made at start: nothing to set up, and a client trusts it by
    /// its fingerprint for this run only.
    pub fn generate() -> Result<ListenTls> {
        let names: Vec<String> = GENERATED_NAMES.iter().map(|n| n.to_string()).collect();
        let made = rcgen::generate_simple_self_signed(names)
            .map_err(|e| error::usage(format!("cannot generate a certificate: {e}")))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
        Self::new(vec![made.cert.der().clone()], key, true)
    }

    fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        generated: bool,
    ) -> Result<ListenTls> {
        let leaf = chain[0].clone();
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| error::usage(format!("TLS setup failed: {e}")))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| {
                error::usage(format!(
                    "--listen-cert/--listen-key: the key does not fit the certificate, or cannot be used ({e})"
                ))
            })?;
        Ok(ListenTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            leaf,
            generated,
        })
    }

    /// The TLS handshake with a mail client, as the server side.
    pub async fn accept(&self, tcp: TcpStream, timeout: Duration) -> Result<TlsStream<TcpStream>> {
        match tokio::time::timeout(timeout, self.acceptor.accept(tcp)).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(error::connect(handshake_error(&e))),
            Err(_) => Err(error::connect(format!(
                "the client did not complete the TLS handshake within {}",
                secs(timeout)
            ))),
        }
    }
}

/// Why a client's handshake failed, in a sentence: most often the client
/// does not trust the proxy's certificate.
fn handshake_error(e: &io::Error) -> String {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::AlertReceived(a)) => format!(
            "TLS handshake with the client failed: it sent the alert {a:?} (does it trust the proxy's certificate? see its fingerprint above)"
        ),
        Some(rustls::Error::InvalidMessage(_)) => {
            "TLS handshake with the client failed: it did not speak TLS (connect it without TLS, or drop --listen-tls)".to_string()
        }
        Some(other) => format!("TLS handshake with the client failed: {other}"),
        None if e.kind() == io::ErrorKind::UnexpectedEof => {
            "TLS handshake with the client failed: it closed the connection (does it trust the proxy's certificate?)".to_string()
        }
        None => format!("TLS handshake with the client failed: {}", io_text(e)),
    }
}

/// `TLS 1.3, TLS13_AES_256_GCM_SHA384` of a client's TLS session.
pub fn summary(s: &TlsStream<TcpStream>) -> String {
    let (_, conn) = s.get_ref();
    let version = conn
        .protocol_version()
        .map(|v| format!("{v:?}").replace("TLSv1_", "TLS 1."))
        .unwrap_or_default();
    let suite = conn
        .negotiated_cipher_suite()
        .map(|c| format!("{:?}", c.suite()))
        .unwrap_or_default();
    format!("{version}, {suite}")
}

/// A mail client's connection to the proxy.
pub enum ClientStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_certificate_is_for_this_machine() {
        let tls = ListenTls::generate().unwrap();
        assert!(tls.generated);
        let (_, cert) = x509_parser::parse_x509_certificate(&tls.leaf).unwrap();
        let sans = cert.subject_alternative_name().unwrap().unwrap();
        assert_eq!(sans.value.general_names.len(), GENERATED_NAMES.len());
        // Each run makes its own key: a fingerprint trusted once is not
        // trusted again by accident.
        assert_ne!(ListenTls::generate().unwrap().leaf, tls.leaf);
    }

    #[test]
    fn files_that_are_not_pem_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        std::fs::write(&cert, "not a certificate").unwrap();
        std::fs::write(&key, "not a key").unwrap();
        let e = ListenTls::from_files(&cert, &key).err().unwrap();
        assert!(crate::error::message(&e).contains("--listen-cert"), "{e}");
        let made = rcgen::generate_simple_self_signed(vec!["x".to_string()]).unwrap();
        std::fs::write(&cert, made.cert.pem()).unwrap();
        let e = ListenTls::from_files(&cert, &key).err().unwrap();
        assert!(crate::error::message(&e).contains("--listen-key"), "{e}");
        // A key that is not the certificate's.
        let other = rcgen::KeyPair::generate().unwrap();
        std::fs::write(&key, other.serialize_pem()).unwrap();
        let e = ListenTls::from_files(&cert, &key).err().unwrap();
        assert!(crate::error::message(&e).contains("does not fit"), "{e}");
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        assert!(!ListenTls::from_files(&cert, &key).unwrap().generated);
    }
}
