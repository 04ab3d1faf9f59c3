//! TLS: the client configuration, certificate verification (and what the
//! server presented, for `-v`), the handshake with readable errors.

use crate::error;
use crate::text::{date, io_text, secs};
use anyhow::Result;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// How the server's certificate is checked.
#[derive(Clone, Debug)]
pub struct TlsOptions {
    /// `--cafile`: more CA certificates to trust, beside the system's.
    pub cafile: Option<PathBuf>,
    /// `--insecure`: the certificate is not verified at all.
    pub insecure: bool,
    /// The name to verify (and send as SNI unless it is an IP address).
    pub servername: String,
}

/// What a TLS handshake needs: the client configuration and the name to
/// verify. Built once, used for implicit TLS or for STARTTLS.
pub struct TlsSetup {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    name_text: String,
    recorder: Arc<Recorder>,
}

fn provider() -> Arc<CryptoProvider> {
    // Passed explicitly everywhere: if another crate ever enables a second
    // rustls provider, the implicit default would panic at runtime.
    Arc::new(ring::default_provider())
}

impl TlsSetup {
    pub fn new(settings: &TlsOptions) -> Result<TlsSetup> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| error::connect(format!("TLS setup failed: {e}")))?;
        let inner: Arc<dyn ServerCertVerifier> = if settings.insecure {
            error::say(
                "imaptalk: warning: --insecure: the server's certificate is NOT verified; anyone on the path can read and change this session",
            );
            Arc::new(NoVerify {
                provider: provider.clone(),
                accept: true,
            })
        } else {
            let roots = roots(settings)?;
            if roots.is_empty() {
                // webpki refuses an empty store; the handshake must still
                // fail with "unknown authority", which names the fixes.
                Arc::new(NoVerify {
                    provider: provider.clone(),
                    accept: false,
                })
            } else {
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| error::connect(format!("TLS setup failed: {e}")))?
            }
        };
        let recorder = Arc::new(Recorder {
            inner,
            insecure: settings.insecure,
            seen: Mutex::new(None),
        });
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(recorder.clone())
            .with_no_client_auth();
        let host = settings.servername.clone();
        let name = ServerName::try_from(host.clone())
            .map_err(|_| error::usage(format!("'{host}' is not a valid TLS server name")))?;
        Ok(TlsSetup {
            config: Arc::new(config),
            name,
            name_text: host,
            recorder,
        })
    }

    /// What the last handshake showed: the chain the server sent and the
    /// verdict on it, even when the handshake failed because of it.
    pub fn take_presented(&self) -> Option<Presented> {
        self.recorder
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// The name verified against the certificate.
    pub fn name(&self) -> &str {
        &self.name_text
    }
}

/// The certificate chain a server presented, as sent (leaf first).
#[derive(Debug, Clone)]
pub struct Presented {
    pub chain: Vec<CertificateDer<'static>>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Chained to a trusted root, valid now, and valid for the name.
    Trusted,
    /// `--insecure`: not checked.
    Unchecked,
    /// Rejected, and why.
    Rejected(String),
}

/// Wraps the real verifier to keep what it saw: `-v` and `--show-certs`
/// show the chain even when verification fails (that is when people most
/// want to see it), and the error alone does not carry it.
#[derive(Debug)]
struct Recorder {
    inner: Arc<dyn ServerCertVerifier>,
    insecure: bool,
    seen: Mutex<Option<Presented>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result =
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now);
        let verdict = match (&result, self.insecure) {
            (Ok(_), true) => Verdict::Unchecked,
            (Ok(_), false) => Verdict::Trusted,
            (Err(rustls::Error::InvalidCertificate(c)), _) => Verdict::Rejected(cert_problem(c)),
            (Err(e), _) => Verdict::Rejected(e.to_string()),
        };
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(Presented { chain, verdict });
        result
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }
    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

/// The system's roots plus `--cafile`. Roots that fail to load are a
/// warning; only an empty store is an error.
fn roots(settings: &TlsOptions) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        error::say(&format!(
            "imaptalk: warning: some system certificates could not be loaded: {e}"
        ));
    }
    store.add_parsable_certificates(native.certs);
    if let Some(path) = &settings.cafile {
        let shown = path.display();
        let mut added = 0;
        let iter = CertificateDer::pem_file_iter(path)
            .map_err(|e| error::usage(format!("--cafile {shown}: {e}")))?;
        for cert in iter {
            let cert = cert.map_err(|e| error::usage(format!("--cafile {shown}: {e}")))?;
            store
                .add(cert)
                .map_err(|e| error::usage(format!("--cafile {shown}: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(error::usage(format!(
                "--cafile {shown}: no PEM certificates in the file"
            )));
        }
    }
    if store.is_empty() {
        // Go on: the handshake then fails with "unknown authority", which
        // says what is wrong, and --insecure/--cafile are the fixes.
        error::say("imaptalk: warning: no trusted CA certificates found on this system");
    }
    Ok(store)
}

/// The TLS handshake on a connected socket, with readable errors.
pub async fn handshake(
    tcp: TcpStream,
    tls: &TlsSetup,
    timeout: Option<Duration>,
) -> Result<TlsStream<TcpStream>> {
    let connector = TlsConnector::from(tls.config.clone());
    let fut = connector.connect(tls.name.clone(), tcp);
    let result = match timeout {
        Some(d) => tokio::time::timeout(d, fut).await.map_err(|_| {
            error::connect(format!(
                "timed out after {} in the TLS handshake with '{}'",
                secs(d),
                tls.name_text
            ))
        })?,
        None => fut.await,
    };
    result.map_err(|e| error::connect(handshake_error(&e, &tls.name_text)))
}

const CERT_HINT: &str = "(use --cafile FILE to trust its CA, or --insecure to skip verification)";

fn handshake_error(e: &io::Error, name: &str) -> String {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            return format!(
                "TLS handshake with '{name}' failed: the server closed the connection (is this port plaintext? try --starttls or without --tls)"
            );
        }
        return format!("TLS handshake with '{name}' failed: {}", io_text(e));
    };
    match tls {
        rustls::Error::InvalidCertificate(c) => {
            format!(
                "certificate of '{name}' rejected: {} {CERT_HINT}",
                cert_problem(c)
            )
        }
        rustls::Error::InvalidMessage(_) => format!(
            "TLS handshake with '{name}' failed: the server did not answer with TLS ({tls}); is this a plaintext port? try --starttls or drop --tls"
        ),
        other => format!("TLS handshake with '{name}' failed: {other}"),
    }
}

fn cert_problem(c: &CertificateError) -> String {
    match c {
        CertificateError::UnknownIssuer => "issued by an unknown authority".into(),
        CertificateError::Expired => "expired".into(),
        CertificateError::ExpiredContext { time, not_after } => format!(
            "expired on {} (now {})",
            unix_date(*not_after),
            unix_date(*time)
        ),
        CertificateError::NotValidYet => "not valid yet".into(),
        CertificateError::NotValidYetContext { not_before, .. } => {
            format!("not valid before {}", unix_date(*not_before))
        }
        CertificateError::NotValidForName => "not valid for this name".into(),
        CertificateError::NotValidForNameContext { presented, .. } => {
            let names: Vec<String> = presented.iter().map(|p| presented_name(p)).collect();
            if names.is_empty() {
                "name mismatch: it names no host".into()
            } else {
                format!("name mismatch: it is only valid for {}", names.join(", "))
            }
        }
        CertificateError::Revoked => "revoked".into(),
        CertificateError::BadSignature => "bad signature".into(),
        other => format!("{other:?}"),
    }
}

fn unix_date(t: UnixTime) -> String {
    date(i64::try_from(t.as_secs()).unwrap_or(i64::MAX))
}

/// webpki describes names as `DnsName("x")` / `IpAddress(1.2.3.4)`;
/// users want `x` and `1.2.3.4`. The name is whatever the certificate
/// holds, quotes, line feeds and escape sequences included: escaped.
fn presented_name(p: &str) -> String {
    let inner = p
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or(p);
    let inner = inner
        .strip_prefix('"')
        .and_then(|i| i.strip_suffix('"'))
        .unwrap_or(inner);
    crate::text::escape_str(inner)
}

/// `--insecure`: accept any certificate, but still check the handshake
/// signatures, so only the trust decision is skipped. With `accept` false
/// (no trusted roots at all), every certificate has an unknown issuer.
#[derive(Debug)]
struct NoVerify {
    provider: Arc<CryptoProvider>,
    accept: bool,
}

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.accept {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// What a TLS stream negotiated.
pub fn tls_info(s: &TlsStream<TcpStream>) -> TlsInfo {
    let (_, conn) = s.get_ref();
    TlsInfo {
        version: conn
            .protocol_version()
            .map(|v| format!("{v:?}").replace("TLSv1_", "TLS 1."))
            .unwrap_or_default(),
        suite: conn
            .negotiated_cipher_suite()
            .map(|c| format!("{:?}", c.suite()))
            .unwrap_or_default(),
        group: conn
            .negotiated_key_exchange_group()
            .map(|g| format!("{:?}", g.name())),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
    }
}

/// The parameters a TLS session was set up with.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    /// `TLS 1.3`.
    pub version: String,
    /// `TLS13_AES_256_GCM_SHA384`.
    pub suite: String,
    /// Key exchange group, `X25519` (None when rustls does not say).
    pub group: Option<String>,
    pub alpn: Option<Vec<u8>>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn presented_names_are_escaped() {
        assert_eq!(super::presented_name("DnsName(\"a.example\")"), "a.example");
        assert_eq!(super::presented_name("IpAddress(192.0.2.1)"), "192.0.2.1");
        assert_eq!(
            super::presented_name("DnsName(\"x\x1b]0;PWN\x07\u{202e}\nimaptalk: OK\")"),
            "x\\x1b]0;PWN\\x07\\u{202e}\\x0aimaptalk: OK"
        );
    }
}
