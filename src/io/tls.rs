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
            (Err(rustls::Error::InvalidCertificate(c)), _) => Verdict::Rejected(cert_problem(c).0),
            (Err(e), _) => Verdict::Rejected(tls_problem(e)),
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

/// How the handshake came about: the fix for a server that does not
/// answer with TLS depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// `--tls` or port 993: TLS from the first byte.
    Implicit,
    /// After the server's OK to STARTTLS.
    StartTls,
}

/// The TLS handshake on a connected socket (implicit TLS), with readable
/// errors.
pub async fn handshake(
    tcp: TcpStream,
    tls: &TlsSetup,
    timeout: Option<Duration>,
) -> Result<TlsStream<TcpStream>> {
    handshake_via(tcp, tls, timeout, Via::Implicit).await
}

/// [`handshake`], saying how it came about.
pub async fn handshake_via(
    tcp: TcpStream,
    tls: &TlsSetup,
    timeout: Option<Duration>,
    via: Via,
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
    result.map_err(|e| error::connect(handshake_error(&e, &tls.name_text, via)))
}

/// The fixes, by what is wrong.
const TRUST_HINT: &str = "(use --cafile FILE to trust its CA, or --insecure to skip verification)";
const NAME_HINT: &str = "(connect to a name the certificate is valid for, or give the name to verify with --servername NAME; --insecure skips verification)";
const CLOCK_HINT: &str = "(if this machine's clock is right, the server's certificate must be renewed; --insecure skips verification)";
const SERVER_HINT: &str = "(the server's certificate must be fixed; --insecure skips verification)";

fn handshake_error(e: &io::Error, name: &str, via: Via) -> String {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            return match via {
                Via::Implicit => format!(
                    "TLS handshake with '{name}' failed: the server closed the connection (is this port plaintext? try --starttls or without --tls)"
                ),
                Via::StartTls => format!(
                    "TLS handshake with '{name}' after STARTTLS failed: the server closed the connection"
                ),
            };
        }
        return format!("TLS handshake with '{name}' failed: {}", io_text(e));
    };
    match tls {
        rustls::Error::InvalidCertificate(c) => {
            let (problem, hint) = cert_problem(c);
            format!("certificate of '{name}' rejected: {problem} {hint}")
        }
        rustls::Error::InvalidMessage(_) => match via {
            // The server said OK to STARTTLS, and then what came was not
            // TLS: plaintext slipped in after the OK (by whoever is on the
            // path, or a broken server), meant to be read as coming from
            // inside the TLS session.
            Via::StartTls => format!(
                "injection detected: after its OK to STARTTLS, '{name}' sent plaintext instead of a TLS handshake (possible response injection, CVE-2011-0411); aborted, nothing was sent"
            ),
            Via::Implicit => format!(
                "TLS handshake with '{name}' failed: the server did not answer with TLS; is this a plaintext port? try --starttls or drop --tls"
            ),
        },
        other => format!("TLS handshake with '{name}' failed: {}", tls_problem(other)),
    }
}

/// A TLS failure other than the certificate, as a sentence.
fn tls_problem(e: &rustls::Error) -> String {
    use rustls::AlertDescription as A;
    match e {
        rustls::Error::AlertReceived(A::ProtocolVersion) => {
            "the server speaks no TLS version imaptalk accepts (TLS 1.2 and 1.3)".into()
        }
        rustls::Error::AlertReceived(A::HandshakeFailure | A::InsufficientSecurity) => {
            "the server and imaptalk have no cipher suite or key exchange in common (the server may accept only old, weak ones)".into()
        }
        rustls::Error::AlertReceived(A::UnrecognisedName) => {
            "the server does not serve the name imaptalk asked for (try --servername NAME)".into()
        }
        rustls::Error::AlertReceived(
            A::CertificateRequired | A::BadCertificate | A::UnknownCA | A::AccessDenied,
        ) => "the server wants a client certificate, which imaptalk does not send".into(),
        rustls::Error::AlertReceived(a) => {
            format!("the server ended the handshake ({} alert)", words(&format!("{a:?}")))
        }
        rustls::Error::NoCertificatesPresented => "the server presented no certificate".into(),
        rustls::Error::PeerIncompatible(p) => format!(
            "the server's TLS is incompatible with imaptalk's ({})",
            words(&format!("{p:?}"))
        ),
        rustls::Error::PeerMisbehaved(p) => format!(
            "the server broke the TLS protocol ({})",
            words(&format!("{p:?}"))
        ),
        rustls::Error::DecryptError => {
            "a TLS record did not decrypt: the data was changed on the way, or the server is broken".into()
        }
        rustls::Error::InvalidMessage(m) => format!(
            "the server sent something that is not TLS ({})",
            words(&format!("{m:?}"))
        ),
        rustls::Error::General(text) => crate::text::escape_str(text),
        other => words(&format!("{other:?}")),
    }
}

/// What is wrong with a certificate, and the likely fix.
fn cert_problem(c: &CertificateError) -> (String, &'static str) {
    match c {
        CertificateError::UnknownIssuer => ("issued by an unknown authority".into(), TRUST_HINT),
        CertificateError::Expired => ("expired".into(), CLOCK_HINT),
        CertificateError::ExpiredContext { time, not_after } => (
            format!(
                "expired on {} (now {})",
                unix_date(*not_after),
                unix_date(*time)
            ),
            CLOCK_HINT,
        ),
        CertificateError::NotValidYet => ("not valid yet".into(), CLOCK_HINT),
        CertificateError::NotValidYetContext { not_before, time } => (
            format!(
                "not valid before {} (now {})",
                unix_date(*not_before),
                unix_date(*time)
            ),
            CLOCK_HINT,
        ),
        CertificateError::NotValidForName => ("not valid for this name".into(), NAME_HINT),
        CertificateError::NotValidForNameContext { presented, .. } => {
            let names: Vec<String> = presented.iter().map(|p| presented_name(p)).collect();
            let problem = if names.is_empty() {
                "name mismatch: it names no host".into()
            } else {
                format!("name mismatch: it is only valid for {}", names.join(", "))
            };
            (problem, NAME_HINT)
        }
        CertificateError::Revoked => ("revoked by its issuer".into(), SERVER_HINT),
        CertificateError::UnknownRevocationStatus => (
            "its revocation status cannot be checked".into(),
            SERVER_HINT,
        ),
        CertificateError::ExpiredRevocationList
        | CertificateError::ExpiredRevocationListContext { .. } => (
            "the revocation list to check it against has expired".into(),
            SERVER_HINT,
        ),
        CertificateError::BadEncoding => (
            "it is not a well-formed certificate (bad DER encoding)".into(),
            SERVER_HINT,
        ),
        CertificateError::BadSignature => (
            "its signature does not verify: it was altered, or not issued by the CA it names".into(),
            TRUST_HINT,
        ),
        #[allow(deprecated)]
        CertificateError::UnsupportedSignatureAlgorithm
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. } => (
            "it is signed with an algorithm imaptalk does not accept (such as SHA-1 or MD5)".into(),
            SERVER_HINT,
        ),
        CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => (
            "its signature algorithm does not fit the key of its issuer".into(),
            SERVER_HINT,
        ),
        CertificateError::UnhandledCriticalExtension => (
            "it has a critical extension imaptalk cannot check".into(),
            SERVER_HINT,
        ),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => (
            "it is not issued for TLS servers (its extended key usage does not allow server authentication)".into(),
            SERVER_HINT,
        ),
        CertificateError::InvalidOcspResponse => (
            "the server's OCSP response about it is invalid".into(),
            SERVER_HINT,
        ),
        CertificateError::ApplicationVerificationFailure => {
            ("imaptalk's verifier rejected it".into(), TRUST_HINT)
        }
        CertificateError::Other(other) => match other.0.downcast_ref::<webpki::Error>() {
            Some(e) => webpki_problem(e),
            None => (
                format!("it failed verification ({})", crate::text::escape_str(&other.to_string())),
                TRUST_HINT,
            ),
        },
        other => (
            format!("it failed verification ({})", words(&format!("{other:?}"))),
            TRUST_HINT,
        ),
    }
}

/// webpki's errors that rustls passes on as `Other`.
fn webpki_problem(e: &webpki::Error) -> (String, &'static str) {
    use webpki::Error as W;
    let problem = match e {
        W::CaUsedAsEndEntity => {
            "it is a CA certificate, sent as the server's own (the server must present a certificate issued by that CA)"
        }
        W::EndEntityUsedAsCa => "a server certificate in the chain is used as a CA",
        W::CertDistrusted => "its issuer is no longer trusted",
        W::NameConstraintViolation => "its names are outside what its CA may issue for",
        W::PathLenConstraintViolated => "the chain is longer than its CA allows",
        W::MaximumPathDepthExceeded
        | W::MaximumPathBuildCallsExceeded
        | W::MaximumSignatureChecksExceeded
        | W::MaximumNameConstraintComparisonsExceeded => {
            "the chain is too long or too complex to verify"
        }
        W::SignatureAlgorithmMismatch => "its two signature algorithm fields disagree",
        W::UnsupportedCertVersion => "it is not an X.509 version 3 certificate",
        W::UnsupportedCriticalExtension => "it has a critical extension imaptalk cannot check",
        W::EmptyEkuExtension => "its extended key usage allows nothing",
        W::UnsupportedNameType => "it names the server in a form imaptalk cannot check",
        W::MalformedDnsIdentifier => "a host name in it is malformed",
        W::BadDer
        | W::BadDerTime
        | W::TrailingData(_)
        | W::ExtensionValueInvalid
        | W::MalformedExtensions
        | W::MalformedNameConstraint
        | W::InvalidNetworkMaskConstraint
        | W::InvalidSerialNumber
        | W::InvalidCertValidity => "it is not a well-formed certificate",
        other => {
            return (
                format!("it failed verification ({})", words(&format!("{other:?}"))),
                TRUST_HINT,
            );
        }
    };
    (problem.into(), SERVER_HINT)
}

fn unix_date(t: UnixTime) -> String {
    date(i64::try_from(t.as_secs()).unwrap_or(i64::MAX))
}

/// A Rust variant name as words: `CaUsedAsEndEntity { .. }` becomes
/// `ca used as end entity`. For errors without a sentence of their own.
fn words(debug: &str) -> String {
    let name = debug
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or(debug);
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
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
    use super::*;
    use tokio_rustls::rustls::OtherError;

    /// Rust's names for things (`CaUsedAsEndEntity`, `Other(`, `{ … }`)
    /// must not reach a person.
    fn reads_as_a_sentence(text: &str) {
        assert!(!text.contains(['{', '}', '[', '_']), "{text}");
        let camel = text.split(|c: char| !c.is_ascii_alphabetic()).any(|w| {
            w.chars().skip(1).any(|c| c.is_ascii_uppercase())
                && w.chars().any(|c| c.is_ascii_lowercase())
        });
        assert!(!camel, "{text}");
    }

    #[test]
    fn every_certificate_error_is_a_sentence_with_a_fix() {
        let t = UnixTime::since_unix_epoch(Duration::from_secs(1_800_000_000));
        let webpki_errors = [
            webpki::Error::CaUsedAsEndEntity,
            webpki::Error::EndEntityUsedAsCa,
            webpki::Error::CertDistrusted,
            webpki::Error::NameConstraintViolation,
            webpki::Error::PathLenConstraintViolated,
            webpki::Error::MaximumPathDepthExceeded,
            webpki::Error::UnsupportedCertVersion,
            webpki::Error::MalformedExtensions,
            webpki::Error::UnsupportedCrlVersion,
        ];
        #[allow(deprecated)]
        let mut all = vec![
            CertificateError::BadEncoding,
            CertificateError::Expired,
            CertificateError::ExpiredContext {
                time: t,
                not_after: t,
            },
            CertificateError::NotValidYet,
            CertificateError::NotValidYetContext {
                time: t,
                not_before: t,
            },
            CertificateError::Revoked,
            CertificateError::UnhandledCriticalExtension,
            CertificateError::UnknownIssuer,
            CertificateError::UnknownRevocationStatus,
            CertificateError::ExpiredRevocationList,
            CertificateError::BadSignature,
            CertificateError::UnsupportedSignatureAlgorithm,
            CertificateError::UnsupportedSignatureAlgorithmContext {
                signature_algorithm_id: vec![6, 8, 42],
                supported_algorithms: Vec::new(),
            },
            CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext {
                signature_algorithm_id: vec![6, 8, 42],
                public_key_algorithm_id: vec![6, 7],
            },
            CertificateError::NotValidForName,
            CertificateError::InvalidPurpose,
            CertificateError::InvalidOcspResponse,
            CertificateError::ApplicationVerificationFailure,
        ];
        for e in webpki_errors {
            all.push(CertificateError::Other(OtherError(Arc::new(e))));
        }
        for c in all {
            let (problem, hint) = cert_problem(&c);
            let line = format!("{problem} {hint}");
            reads_as_a_sentence(&line);
            assert!(hint.starts_with('(') && hint.ends_with(')'), "{line}");
        }
        let (problem, hint) = cert_problem(&CertificateError::Other(OtherError(Arc::new(
            webpki::Error::CaUsedAsEndEntity,
        ))));
        assert!(problem.starts_with("it is a CA certificate"), "{problem}");
        assert_eq!(hint, SERVER_HINT);
    }

    #[test]
    fn a_name_mismatch_points_at_the_name_not_at_the_ca() {
        let c = CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("localhost").unwrap(),
            presented: vec!["DnsName(\"imap.test\")".into()],
        };
        let (problem, hint) = cert_problem(&c);
        assert_eq!(problem, "name mismatch: it is only valid for imap.test");
        assert!(
            hint.contains("--servername") && !hint.contains("--cafile"),
            "{hint}"
        );
        assert_eq!(cert_problem(&CertificateError::UnknownIssuer).1, TRUST_HINT);
    }

    #[test]
    fn other_tls_errors_are_sentences() {
        use rustls::{AlertDescription, InvalidMessage, PeerIncompatible, PeerMisbehaved};
        for e in [
            rustls::Error::AlertReceived(AlertDescription::ProtocolVersion),
            rustls::Error::AlertReceived(AlertDescription::HandshakeFailure),
            rustls::Error::AlertReceived(AlertDescription::DecodeError),
            rustls::Error::PeerIncompatible(PeerIncompatible::Tls12NotOffered),
            rustls::Error::PeerMisbehaved(PeerMisbehaved::IllegalMiddleboxChangeCipherSpec),
            rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType),
            rustls::Error::DecryptError,
            rustls::Error::NoCertificatesPresented,
            rustls::Error::HandshakeNotComplete,
        ] {
            reads_as_a_sentence(&tls_problem(&e));
        }
        assert_eq!(words("CaUsedAsEndEntity"), "ca used as end entity");
        assert_eq!(words("DecodeError"), "decode error");
    }

    #[test]
    fn plaintext_after_starttls_is_called_injection() {
        let e = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
        );
        let starttls = handshake_error(&e, "mail.test", Via::StartTls);
        assert!(starttls.starts_with("injection detected"), "{starttls}");
        assert!(!starttls.contains("--starttls"), "{starttls}");
        let implicit = handshake_error(&e, "mail.test", Via::Implicit);
        assert!(
            implicit.contains("try --starttls or drop --tls"),
            "{implicit}"
        );
    }

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
