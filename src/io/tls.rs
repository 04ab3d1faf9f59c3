//! TLS: the client configuration, certificate verification (and what the
//! server presented, for `-v`), the handshake with readable errors.

use super::READ_SIZE;
use crate::error;
use crate::text::{date, io_text, secs};
use anyhow::Result;
use std::fmt;
use std::fmt::Write as _;
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
    /// `--pin`: SHA-256 fingerprints of leaf certificates trusted as
    /// they are; when given, the leaf must match one of them.
    pub pins: Vec<[u8; 32]>,
    /// The name to verify (and send as SNI unless it is an IP address).
    pub servername: String,
    /// `--tls-min` / `--tls-max`: the TLS versions offered.
    pub min: Version,
    pub max: Version,
    /// `--keylog` or `SSLKEYLOGFILE`: where the session keys are appended.
    pub keylog: Option<PathBuf>,
    /// `--cert` / `--key`: the client certificate, if the server asks.
    pub client_cert: Option<ClientCert>,
}

/// A TLS version imaptalk speaks; older ones are broken and never used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    Tls12,
    Tls13,
}

impl Version {
    pub fn name(self) -> &'static str {
        match self {
            Version::Tls12 => "TLS 1.2",
            Version::Tls13 => "TLS 1.3",
        }
    }

    fn rustls(self) -> &'static rustls::SupportedProtocolVersion {
        match self {
            Version::Tls12 => &rustls::version::TLS12,
            Version::Tls13 => &rustls::version::TLS13,
        }
    }
}

/// `--cert FILE` and `--key FILE` (the same file when the key is in it).
#[derive(Clone, Debug)]
pub struct ClientCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What a TLS handshake needs: the client configuration and the name to
/// verify. Built once, used for implicit TLS or for STARTTLS.
pub struct TlsSetup {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    name_text: String,
    verifier: Arc<Verifier>,
    client: Arc<ClientAuth>,
    min: Version,
    max: Version,
}

fn provider() -> Arc<CryptoProvider> {
    // Passed explicitly everywhere: if another crate ever enables a second
    // rustls provider, the implicit default would panic at runtime.
    Arc::new(ring::default_provider())
}

impl TlsSetup {
    pub fn new(settings: &TlsOptions) -> Result<TlsSetup> {
        TlsSetup::build(settings, false)
    }

    /// For `--check`: the certificate is examined point by point (see
    /// [`Examined`], in [`Presented::examined`]) and the handshake goes on
    /// whatever the verdict, so that the check can report every problem
    /// and what TLS negotiated. Nothing secret may be sent over such a
    /// connection: the server is not authenticated. The handshake's
    /// signatures are still verified against the certificate presented.
    pub fn for_check(settings: &TlsOptions) -> Result<TlsSetup> {
        TlsSetup::build(settings, true)
    }

    fn build(settings: &TlsOptions, examine: bool) -> Result<TlsSetup> {
        let provider = provider();
        let versions: Vec<_> = [Version::Tls13, Version::Tls12]
            .into_iter()
            .filter(|v| (settings.min..=settings.max).contains(v))
            .map(Version::rustls)
            .collect();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| error::connect(format!("TLS setup failed: {e}")))?;
        let client = Arc::new(ClientAuth {
            key: match &settings.client_cert {
                Some(c) => Some(client_key(c, &provider)?),
                None => None,
            },
            file: settings.client_cert.as_ref().map(|c| c.cert.clone()),
            seen: Mutex::new(None),
        });
        let keylog = match &settings.keylog {
            Some(path) => Some(KeyLogWriter::open(path)?),
            None => None,
        };
        let trust = if settings.insecure && !examine {
            error::say(
                "imaptalk: warning: --insecure: the server's certificate is NOT verified; anyone on the path can read and change this session",
            );
            Trust::Insecure
        } else if !settings.pins.is_empty() {
            // The pin decides alone: no chain is built, so the system's
            // roots are not even read.
            Trust::Pins(settings.pins.clone())
        } else {
            let (roots, own) = roots(settings)?;
            let roots = Arc::new(roots);
            let webpki = if roots.is_empty() {
                // webpki refuses an empty store; the handshake must still
                // fail with "unknown authority", which names the fixes.
                None
            } else {
                Some(
                    WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
                        .build()
                        .map_err(|e| error::connect(format!("TLS setup failed: {e}")))?
                        as Arc<dyn ServerCertVerifier>,
                )
            };
            Trust::Roots {
                webpki,
                own,
                store: roots,
            }
        };
        let verifier = Arc::new(Verifier {
            trust,
            provider,
            seen: Mutex::new(None),
            examine,
        });
        let mut config = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_client_cert_resolver(client.clone());
        if let Some(k) = keylog {
            config.key_log = Arc::new(k);
        }
        let host = settings.servername.clone();
        let name = ServerName::try_from(host.clone())
            .map_err(|_| error::usage(format!("'{host}' is not a valid TLS server name")))?;
        Ok(TlsSetup {
            config: Arc::new(config),
            name,
            name_text: host,
            verifier,
            client,
            min: settings.min,
            max: settings.max,
        })
    }

    /// Whether the last handshake asked for a client certificate, and
    /// whether one was sent. None: it did not ask.
    pub fn client_auth(&self) -> Option<ClientAuthSeen> {
        self.client
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// What the last handshake showed: the chain the server sent and the
    /// verdict on it, even when the handshake failed because of it.
    pub fn take_presented(&self) -> Option<Presented> {
        self.verifier
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// `--cert` was given.
    pub fn has_client_cert(&self) -> bool {
        self.client.key.is_some()
    }

    /// The name verified against the certificate.
    pub fn name(&self) -> &str {
        &self.name_text
    }
}

/// What happened to client authentication in a handshake that asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuthSeen {
    /// The certificate of this `--cert` file was sent.
    Sent(PathBuf),
    /// No `--cert` (or none the server could accept): none was sent.
    NoneSent,
}

/// The client certificate, given to rustls when the server asks, and a
/// note that it asked (for `-v`).
#[derive(Debug)]
struct ClientAuth {
    key: Option<Arc<rustls::sign::CertifiedKey>>,
    file: Option<PathBuf>,
    seen: Mutex<Option<ClientAuthSeen>>,
}

impl rustls::client::ResolvesClientCert for ClientAuth {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let usable = self
            .key
            .as_ref()
            .filter(|k| k.key.choose_scheme(sigschemes).is_some());
        let seen = match (usable, &self.file) {
            (Some(_), Some(f)) => ClientAuthSeen::Sent(f.clone()),
            _ => ClientAuthSeen::NoneSent,
        };
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(seen);
        usable.cloned()
    }

    fn has_certs(&self) -> bool {
        self.key.is_some()
    }
}

/// Reads `--cert` (the certificate, then its chain) and `--key` (or the
/// key in the `--cert` file), and checks that they belong together.
fn client_key(
    c: &ClientCert,
    provider: &CryptoProvider,
) -> Result<Arc<rustls::sign::CertifiedKey>> {
    use tokio_rustls::rustls::pki_types::PrivateKeyDer;
    let cert_shown = c.cert.display();
    let chain = CertificateDer::pem_file_iter(&c.cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| error::usage(format!("--cert {cert_shown}: {e}")))?;
    if chain.is_empty() {
        return Err(error::usage(format!(
            "--cert {cert_shown}: no PEM certificate in the file"
        )));
    }
    let flag = if c.key == c.cert { "--cert" } else { "--key" };
    let key_shown = c.key.display();
    let text = std::fs::read(&c.key)
        .map_err(|e| error::usage(format!("{flag} {key_shown}: {}", crate::text::io_text(&e))))?;
    if memchr::memmem::find(&text, b"ENCRYPTED").is_some() {
        return Err(error::usage(format!(
            "{flag} {key_shown}: the private key is encrypted; imaptalk needs it unencrypted (openssl pkey -in {key_shown} -out key.pem, then keep key.pem private)"
        )));
    }
    let key = PrivateKeyDer::from_pem_slice(&text).map_err(|e| {
        let why = match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no private key in the file (PKCS#8, PKCS#1 RSA or SEC1 EC PEM; give the key with --key FILE)".to_string()
            }
            other => other.to_string(),
        };
        error::usage(format!("{flag} {key_shown}: {why}"))
    })?;
    rustls::sign::CertifiedKey::from_der(chain, key, provider)
        .map(Arc::new)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => error::usage(format!(
                "{flag} {key_shown}: the private key does not belong to the certificate in --cert {cert_shown}"
            )),
            other => error::usage(format!(
                "{flag} {key_shown}: the private key cannot be used ({})",
                words(&format!("{other:?}"))
            )),
        })
}

/// `--keylog`: the session secrets in the NSS key log format that
/// Wireshark reads (`LABEL CLIENT_RANDOM SECRET`, hex), appended.
struct KeyLogWriter {
    file: Mutex<Option<std::fs::File>>,
    path: PathBuf,
}

impl fmt::Debug for KeyLogWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyLogWriter({})", self.path.display())
    }
}

impl KeyLogWriter {
    fn open(path: &std::path::Path) -> Result<KeyLogWriter> {
        // The keys decrypt the session: nobody else may read them.
        let file =
            crate::platform::files::private(std::fs::OpenOptions::new().append(true).create(true))
                .open(path)
                .map_err(|e| {
                    error::usage(format!(
                        "--keylog {}: {}",
                        path.display(),
                        crate::text::io_text(&e)
                    ))
                })?;
        error::say(&format!(
            "imaptalk: warning: TLS session keys are written to {} (--keylog or SSLKEYLOGFILE): anyone with that file can decrypt this session",
            path.display()
        ));
        Ok(KeyLogWriter {
            file: Mutex::new(Some(file)),
            path: path.to_path_buf(),
        })
    }
}

impl rustls::KeyLog for KeyLogWriter {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        use std::io::Write as _;
        let line = zeroize::Zeroizing::new(format!(
            "{label} {} {}\n",
            hex(client_random, "").to_ascii_lowercase(),
            hex(secret, "").to_ascii_lowercase()
        ));
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        // One write per line: sessions sharing the file do not interleave.
        if let Some(f) = file.as_mut()
            && let Err(e) = f.write_all(line.as_bytes())
        {
            error::say(&format!(
                "imaptalk: warning: cannot write to the key log {}: {}; no more keys are logged",
                self.path.display(),
                crate::text::io_text(&e)
            ));
            *file = None;
        }
    }
}

/// The certificate chain a server presented, as sent (leaf first).
#[derive(Debug, Clone)]
pub struct Presented {
    pub chain: Vec<CertificateDer<'static>>,
    pub verdict: Verdict,
    /// `--check` ([`TlsSetup::for_check`]): each point on its own.
    pub examined: Option<Examined>,
}

/// What `--check` finds of a chain, each point on its own: the
/// handshake's verdict stops at the first problem, while an admin wants
/// to hear that the certificate is expired *and* its chain incomplete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Examined {
    pub chain: ChainStatus,
    /// Err: why the leaf is not valid for the name (a sentence).
    pub name: Result<(), String>,
}

/// Whether the chain leads to a certificate trusted here. Judged at a
/// time within the leaf's validity, so that an expired certificate still
/// says whether its chain is complete (expiry is a finding of its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainStatus {
    /// It reaches a trusted root (the system's or `--cafile`'s).
    Trusted,
    /// The leaf is trusted as it is (`--pin`, or the leaf is in `--cafile`).
    Pinned(&'static str),
    /// The leaf names itself as its issuer: a self-signed certificate,
    /// which no mail client trusts without being told to.
    SelfSigned,
    /// The chain as sent stops at a certificate whose issuer (this
    /// subject, escaped) is neither sent nor trusted: usually the server
    /// forgot its intermediate certificate.
    Incomplete { issuer: String },
    /// Not trusted for another reason (a sentence).
    Untrusted(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Chained to a trusted root, valid now, and valid for the name.
    Trusted,
    /// The leaf itself is trusted (`--pin`, or it is in `--cafile`), and
    /// valid now; why, in words.
    Pinned(&'static str),
    /// `--insecure`: not checked.
    Unchecked,
    /// Rejected, and why.
    Rejected(String),
}

/// SHA-256 of a certificate's DER bytes: what `--pin` names.
pub fn fingerprint(der: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(::ring::digest::digest(&::ring::digest::SHA256, der).as_ref());
    out
}

/// A fingerprint as `-v` shows it (`AB:CD:…`), or as `--pin` takes it
/// without the colons.
pub fn hex(bytes: &[u8], sep: &str) -> String {
    let mut out = String::with_capacity(bytes.len() * (2 + sep.len()));
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// `--pin`: 64 hex digits, with or without colons (as `-v` prints them),
/// optionally after `sha256:`.
pub fn parse_pin(text: &str) -> Result<[u8; 32], String> {
    let t = text.trim();
    let t = match t.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("sha256:") => &t[7..],
        _ => t,
    };
    let digits: Vec<u8> = t.bytes().filter(|&b| b != b':').collect();
    let bad = || {
        format!(
            "--pin {}: give the certificate's SHA-256 fingerprint: 64 hex digits, with or without colons, optionally after sha256: (--show-certs prints it)",
            crate::text::escape_str(text)
        )
    };
    if digits.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, pair) in digits.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).map_err(|_| bad())?;
        out[i] = u8::from_str_radix(s, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// What decides whether the server's certificate is trusted.
#[derive(Debug)]
enum Trust {
    /// `--insecure`.
    Insecure,
    /// `--pin`: the leaf's fingerprint must be one of these.
    Pins(Vec<[u8; 32]>),
    /// A chain to these roots (None: there are none); or the leaf is one
    /// of the `own` certificates of `--cafile`: a self-signed server
    /// certificate given as its own trust anchor, which webpki refuses
    /// (`CaUsedAsEndEntity` for the CA:TRUE ones `openssl req -x509` makes,
    /// an unknown issuer for the rest).
    Roots {
        webpki: Option<Arc<dyn ServerCertVerifier>>,
        own: Vec<CertificateDer<'static>>,
        /// The same roots, for `--check`'s own examination.
        store: Arc<RootCertStore>,
    },
}

/// The certificate check, which also keeps what it saw: `-v` and
/// `--show-certs` show the chain even when verification fails (that is
/// when people most want to see it), and the error alone does not carry it.
#[derive(Debug)]
struct Verifier {
    trust: Trust,
    provider: Arc<CryptoProvider>,
    seen: Mutex<Option<Presented>>,
    /// `--check`: examine each point, record it, accept whatever it is.
    examine: bool,
}

/// `--pin` was given and the server's leaf matches none of the pins.
#[derive(Debug)]
struct PinMismatch {
    fingerprint: String,
}

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "its SHA-256 fingerprint {} matches no --pin",
            self.fingerprint
        )
    }
}

impl std::error::Error for PinMismatch {}

impl Verifier {
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<(ServerCertVerified, Verdict), rustls::Error> {
        match &self.trust {
            Trust::Insecure => Ok((ServerCertVerified::assertion(), Verdict::Unchecked)),
            Trust::Pins(pins) => {
                let fp = fingerprint(end_entity);
                if !pins.contains(&fp) {
                    return Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                        rustls::OtherError(Arc::new(PinMismatch {
                            fingerprint: hex(&fp, ":"),
                        })),
                    )));
                }
                // Whatever its issuer, CA flag or names: but not expired.
                within_validity(end_entity, now)?;
                Ok((
                    ServerCertVerified::assertion(),
                    Verdict::Pinned("its SHA-256 fingerprint matches --pin"),
                ))
            }
            Trust::Roots { own, .. } if own.iter().any(|c| c.as_ref() == end_entity.as_ref()) => {
                within_validity(end_entity, now)?;
                valid_for_name(end_entity, server_name)?;
                Ok((
                    ServerCertVerified::assertion(),
                    Verdict::Pinned("the server's own certificate is in --cafile"),
                ))
            }
            Trust::Roots {
                webpki: Some(inner),
                ..
            } => inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
                .map(|v| (v, Verdict::Trusted)),
            Trust::Roots { webpki: None, .. } => Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        }
    }
}

impl Verifier {
    /// `--check`: the chain and the name, each judged on its own.
    fn examined(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Examined {
        let name = valid_for_name(end_entity, server_name).map_err(|e| match e {
            rustls::Error::InvalidCertificate(c) => cert_problem(&c).0,
            other => tls_problem(&other),
        });
        Examined {
            chain: self.chain_status(end_entity, intermediates, now),
            name,
        }
    }

    fn chain_status(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> ChainStatus {
        let (store, own) = match &self.trust {
            Trust::Insecure => return ChainStatus::Untrusted("not checked".into()),
            Trust::Pins(pins) => {
                return if pins.contains(&fingerprint(end_entity)) {
                    ChainStatus::Pinned("its SHA-256 fingerprint matches --pin")
                } else {
                    ChainStatus::Untrusted(format!(
                        "its SHA-256 fingerprint {} matches no --pin",
                        hex(&fingerprint(end_entity), ":")
                    ))
                };
            }
            Trust::Roots { store, own, .. } => (store, own),
        };
        if own.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
            return ChainStatus::Pinned("the server's own certificate is in --cafile");
        }
        let parsed = |der: &[u8]| {
            x509_parser::parse_x509_certificate(der).ok().map(|(_, c)| {
                (
                    c.subject().as_raw().to_vec(),
                    c.issuer().as_raw().to_vec(),
                    c.issuer().to_string(),
                    c.validity().not_before.timestamp(),
                    c.validity().not_after.timestamp(),
                )
            })
        };
        let Some((subject, issuer, issuer_text, not_before, not_after)) = parsed(end_entity) else {
            return ChainStatus::Untrusted(cert_problem(&CertificateError::BadEncoding).0);
        };
        // Expiry is reported on its own: judge the chain at a time the
        // leaf is valid.
        let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let at = if secs < not_before || secs > not_after {
            UnixTime::since_unix_epoch(Duration::from_secs(
                (not_before.saturating_add(not_after) / 2)
                    .max(0)
                    .unsigned_abs(),
            ))
        } else {
            now
        };
        let verdict = rustls::server::ParsedCertificate::try_from(end_entity).and_then(|leaf| {
            if store.is_empty() {
                return Err(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer,
                ));
            }
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &leaf,
                store,
                intermediates,
                at,
                self.provider.signature_verification_algorithms.all,
            )
        });
        match verdict {
            Ok(()) => ChainStatus::Trusted,
            Err(_) if subject == issuer => ChainStatus::SelfSigned,
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
                // Follow the chain as sent from the leaf up; where it
                // stops short of a self-signed root, a certificate is
                // missing.
                let sent: Vec<_> = intermediates.iter().filter_map(|c| parsed(c)).collect();
                let (mut wanted, mut wanted_text) = (issuer, issuer_text);
                for _ in 0..sent.len() {
                    match sent.iter().find(|c| c.0 == wanted) {
                        Some(c) if c.0 == c.1 => {
                            return ChainStatus::Untrusted(format!(
                                "its root CA '{}' is not trusted here",
                                crate::text::escape_str(&c.2)
                            ));
                        }
                        Some(c) => (wanted, wanted_text) = (c.1.clone(), c.2.clone()),
                        None => break,
                    }
                }
                ChainStatus::Incomplete {
                    issuer: crate::text::escape_str(&wanted_text),
                }
            }
            Err(rustls::Error::InvalidCertificate(c)) => ChainStatus::Untrusted(cert_problem(&c).0),
            Err(e) => ChainStatus::Untrusted(tls_problem(&e)),
        }
    }
}

/// A trusted leaf must still be within its validity period.
fn within_validity(der: &CertificateDer<'_>, now: UnixTime) -> Result<(), rustls::Error> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let v = cert.validity();
    let at = |t: i64| UnixTime::since_unix_epoch(Duration::from_secs(t.max(0).unsigned_abs()));
    let time = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if time < v.not_before.timestamp() {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYetContext {
                time: now,
                not_before: at(v.not_before.timestamp()),
            },
        ));
    }
    if time > v.not_after.timestamp() {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::ExpiredContext {
                time: now,
                not_after: at(v.not_after.timestamp()),
            },
        ));
    }
    Ok(())
}

/// A leaf trusted through `--cafile` must be for the name connected to,
/// as any certificate from a CA would have to be.
fn valid_for_name(der: &CertificateDer<'_>, name: &ServerName<'_>) -> Result<(), rustls::Error> {
    let cert = webpki::EndEntityCert::try_from(der)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    if cert.verify_is_valid_for_subject_name(name).is_ok() {
        return Ok(());
    }
    use x509_parser::extensions::GeneralName;
    let mut presented = Vec::new();
    if let Ok((_, c)) = x509_parser::parse_x509_certificate(der)
        && let Ok(Some(san)) = c.subject_alternative_name()
    {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => presented.push(format!("DnsName(\"{d}\")")),
                GeneralName::IPAddress(b) => {
                    if let Some(ip) = ip_of(b) {
                        presented.push(format!("IpAddress({ip})"));
                    }
                }
                _ => {}
            }
        }
    }
    Err(rustls::Error::InvalidCertificate(
        CertificateError::NotValidForNameContext {
            expected: name.to_owned(),
            presented,
        },
    ))
}

fn ip_of(b: &[u8]) -> Option<std::net::IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(b) {
        return Some(v4.into());
    }
    <[u8; 16]>::try_from(b).ok().map(Into::into)
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = self.check(end_entity, intermediates, server_name, ocsp, now);
        let verdict = match &result {
            Ok((_, v)) => v.clone(),
            Err(rustls::Error::InvalidCertificate(c)) => Verdict::Rejected(cert_problem(c).0),
            Err(e) => Verdict::Rejected(tls_problem(e)),
        };
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        let examined = self
            .examine
            .then(|| self.examined(end_entity, intermediates, server_name, now));
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(Presented {
            chain,
            verdict,
            examined,
        });
        if self.examine {
            return Ok(ServerCertVerified::assertion());
        }
        result.map(|(v, _)| v)
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Whatever decided the trust, the handshake must be signed by the
        // key of the certificate presented.
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

/// The system's roots plus `--cafile`, and the certificates of
/// `--cafile` themselves (a server's own certificate may be among them).
/// Roots that fail to load are a warning; only an empty store is an error.
fn roots(settings: &TlsOptions) -> Result<(RootCertStore, Vec<CertificateDer<'static>>)> {
    let mut store = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        error::say(&format!(
            "imaptalk: warning: some system certificates could not be loaded: {e}"
        ));
    }
    store.add_parsable_certificates(native.certs);
    let mut own = Vec::new();
    if let Some(path) = &settings.cafile {
        let shown = path.display();
        let iter = CertificateDer::pem_file_iter(path)
            .map_err(|e| error::usage(format!("--cafile {shown}: {e}")))?;
        for cert in iter {
            let cert = cert.map_err(|e| error::usage(format!("--cafile {shown}: {e}")))?;
            store
                .add(cert.clone())
                .map_err(|e| error::usage(format!("--cafile {shown}: {e}")))?;
            own.push(cert);
        }
        if own.is_empty() {
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
    Ok((store, own))
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

/// The socket under a client TLS stream. rustls reads from its socket at
/// most 4 KiB at a time, so unbuffered a 256 MiB literal over TLS cost
/// 65,000 `recvfrom` calls; through this buffer of [`READ_SIZE`] one call
/// takes whatever the kernel holds. Writes pass straight through.
pub type Wire = tokio::io::BufReader<TcpStream>;

/// A client TLS connection to the server.
pub type ClientTls = TlsStream<Wire>;

/// The TLS handshake on a connected socket (implicit TLS), with readable
/// errors.
pub async fn handshake(
    tcp: TcpStream,
    tls: &TlsSetup,
    timeout: Option<Duration>,
) -> Result<ClientTls> {
    handshake_via(tcp, tls, timeout, Via::Implicit).await
}

/// [`handshake`], saying how it came about.
pub async fn handshake_via(
    tcp: TcpStream,
    tls: &TlsSetup,
    timeout: Option<Duration>,
    via: Via,
) -> Result<ClientTls> {
    let connector = TlsConnector::from(tls.config.clone());
    // Nothing has been read from `tcp` yet that the buffer could miss: a
    // STARTTLS caller has checked that no byte came after the server's OK.
    let wire = tokio::io::BufReader::with_capacity(READ_SIZE, tcp);
    let fut = connector.connect(tls.name.clone(), wire);
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
    let cx = Context {
        name: &tls.name_text,
        via,
        min: tls.min,
        max: tls.max,
        client_cert: tls.client.key.is_some(),
    };
    result.map_err(|e| error::connect(handshake_error(&e, &cx)))
}

/// What a handshake error message needs to know of the attempt.
struct Context<'a> {
    name: &'a str,
    via: Via,
    min: Version,
    max: Version,
    /// `--cert` was given.
    client_cert: bool,
}

/// The fixes, by what is wrong.
const TRUST_HINT: &str = "(use --cafile FILE to trust its CA, or --insecure to skip verification)";
const NAME_HINT: &str = "(connect to a name the certificate is valid for, or give the name to verify with --servername NAME; --insecure skips verification)";
const CLOCK_HINT: &str = "(if this machine's clock is right, the server's certificate must be renewed; --insecure skips verification)";
const SELF_SIGNED_HINT: &str = "(to trust this certificate as it is, give it with --cafile FILE or its fingerprint with --pin, both printed by --show-certs; --insecure skips verification)";
const PIN_HINT: &str = "(if the server's certificate was replaced on purpose, look at the new one with --show-certs and pin that)";
const SERVER_HINT: &str = "(the server's certificate must be fixed; --insecure skips verification)";

fn handshake_error(e: &io::Error, cx: &Context) -> String {
    let (name, via) = (cx.name, cx.via);
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
        other => {
            let problem = version_problem(other, cx)
                .or_else(|| client_cert_problem(other, cx))
                .unwrap_or_else(|| tls_problem(other));
            format!("TLS handshake with '{name}' failed: {problem}")
        }
    }
}

/// The versions offered, for messages: `TLS 1.3`, `TLS 1.2 or 1.3`.
fn offered(cx: &Context) -> String {
    if cx.min == cx.max {
        cx.min.name().to_string()
    } else {
        "TLS 1.2 or 1.3".to_string()
    }
}

/// A fatal alert read after the handshake: with TLS 1.3, a server that
/// wanted a client certificate (or refused the one sent) says so only
/// after the client thinks the handshake is done.
pub fn late_alert(e: &io::Error) -> Option<String> {
    let tls = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    let sent = !matches!(
        tls,
        rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired)
    );
    let cx = Context {
        name: "",
        via: Via::Implicit,
        min: Version::Tls12,
        max: Version::Tls13,
        client_cert: sent,
    };
    client_cert_problem(tls, &cx)
}

/// A server and imaptalk with no TLS version in common.
fn version_problem(e: &rustls::Error, cx: &Context) -> Option<String> {
    use rustls::PeerIncompatible as P;
    let limited = (cx.min, cx.max) != (Version::Tls12, Version::Tls13);
    Some(match e {
        rustls::Error::PeerIncompatible(P::ServerDoesNotSupportTls12Or13) => {
            "the server offers only TLS 1.0 or 1.1 (or SSL), which are broken and not supported by imaptalk: the server needs upgrading to TLS 1.2 or 1.3".into()
        }
        rustls::Error::PeerIncompatible(P::ServerTlsVersionIsDisabledByOurConfig) => format!(
            "the server chose a TLS version outside --tls-min/--tls-max ({} offered)",
            offered(cx)
        ),
        rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion) if limited => {
            format!(
                "the server does not speak {} (--tls-min/--tls-max)",
                offered(cx)
            )
        }
        rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion) => {
            "the server speaks no TLS version imaptalk accepts (TLS 1.2 and 1.3); if it speaks only TLS 1.0 or 1.1, which are broken, it needs upgrading".into()
        }
        _ => return None,
    })
}

/// A server that wanted a client certificate, or refused the one sent.
fn client_cert_problem(e: &rustls::Error, cx: &Context) -> Option<String> {
    use rustls::AlertDescription as A;
    let rustls::Error::AlertReceived(
        a @ (A::CertificateRequired
        | A::BadCertificate
        | A::UnknownCA
        | A::AccessDenied
        | A::CertificateUnknown
        | A::CertificateExpired
        | A::CertificateRevoked
        | A::UnsupportedCertificate),
    ) = e
    else {
        return None;
    };
    let alert = words(&format!("{a:?}"));
    Some(if cx.client_cert {
        format!("the server refused the client certificate of --cert ({alert} alert)")
    } else {
        format!(
            "the server requires a client certificate ({alert} alert): give one with --cert FILE (and --key FILE)"
        )
    })
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
            None if other.0.is::<PinMismatch>() => (other.0.to_string(), PIN_HINT),
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
            return (
                "it is a CA certificate, sent as the server's own (a self-signed certificate, or the server must present one issued by that CA)".into(),
                SELF_SIGNED_HINT,
            );
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

/// What a TLS stream negotiated.
pub fn tls_info(s: &ClientTls) -> TlsInfo {
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
        assert_eq!(hint, SELF_SIGNED_HINT);
        let (problem, hint) = cert_problem(&CertificateError::Other(OtherError(Arc::new(
            PinMismatch {
                fingerprint: "AB:CD".into(),
            },
        ))));
        assert_eq!(problem, "its SHA-256 fingerprint AB:CD matches no --pin");
        assert_eq!(hint, PIN_HINT);
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
        let cx = |via| Context {
            name: "mail.test",
            via,
            min: Version::Tls12,
            max: Version::Tls13,
            client_cert: false,
        };
        let starttls = handshake_error(&e, &cx(Via::StartTls));
        assert!(starttls.starts_with("injection detected"), "{starttls}");
        assert!(!starttls.contains("--starttls"), "{starttls}");
        let implicit = handshake_error(&e, &cx(Via::Implicit));
        assert!(
            implicit.contains("try --starttls or drop --tls"),
            "{implicit}"
        );
    }

    #[test]
    fn pins_in_every_spelling() {
        let fp = fingerprint(b"abc");
        let colons = hex(&fp, ":");
        assert!(colons.starts_with("BA:78:16:BF"), "{colons}");
        for text in [
            colons.clone(),
            colons.to_ascii_lowercase(),
            hex(&fp, ""),
            format!("sha256:{}", hex(&fp, "")),
            format!("SHA256:{colons}"),
        ] {
            assert_eq!(parse_pin(&text), Ok(fp), "{text}");
        }
        for bad in [
            "",
            "sha256:",
            "ab",
            &hex(&fp, "")[1..],
            &format!("{}zz", &hex(&fp, "")[2..]),
            "sha1:00",
        ] {
            let e = parse_pin(bad).unwrap_err();
            assert!(e.starts_with("--pin ") && e.contains("--show-certs"), "{e}");
        }
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

    /// A root, an intermediate it issued and a leaf for `localhost` the
    /// intermediate issued (`expired`: long ago), as DER.
    fn chain(expired: bool) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca = |cn: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.distinguished_name = rcgen::DistinguishedName::new();
            p.distinguished_name.push(DnType::CommonName, cn);
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p
        };
        let root_key = KeyPair::generate().unwrap();
        let root_params = ca("root");
        let root = root_params.self_signed(&root_key).unwrap();
        let root_issuer = Issuer::new(root_params, root_key);
        let mid_key = KeyPair::generate().unwrap();
        let mid_params = ca("mid");
        let mid = mid_params.signed_by(&mid_key, &root_issuer).unwrap();
        let mid_issuer = Issuer::new(mid_params, mid_key);
        let leaf_key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, "localhost");
        if expired {
            p.not_before = rcgen::date_time_ymd(2000, 1, 1);
            p.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let leaf = p.signed_by(&leaf_key, &mid_issuer).unwrap();
        (root.der().to_vec(), mid.der().to_vec(), leaf.der().to_vec())
    }

    fn examiner(roots: &[&[u8]]) -> Verifier {
        let mut store = RootCertStore::empty();
        for r in roots {
            store.add(CertificateDer::from(r.to_vec())).unwrap();
        }
        Verifier {
            trust: Trust::Roots {
                webpki: None,
                own: Vec::new(),
                store: Arc::new(store),
            },
            provider: provider(),
            seen: Mutex::new(None),
            examine: true,
        }
    }

    #[test]
    fn the_check_examines_the_chain_on_its_own() {
        let now = UnixTime::now();
        let name = ServerName::try_from("localhost").unwrap();
        let (root, mid, leaf) = chain(false);
        let der = |d: &[u8]| CertificateDer::from(d.to_vec());
        let v = examiner(&[&root]);
        let full = v.examined(&der(&leaf), &[der(&mid)], &name, now);
        assert_eq!(full.chain, ChainStatus::Trusted);
        assert_eq!(full.name, Ok(()));
        // The intermediate missing: the chain stops at its name.
        assert_eq!(
            v.examined(&der(&leaf), &[], &name, now).chain,
            ChainStatus::Incomplete {
                issuer: "CN=mid".into()
            }
        );
        // All of it sent, the root not trusted here.
        let other = examiner(&[&chain(false).2]);
        match other.chain_status(&der(&leaf), &[der(&mid), der(&root)], now) {
            ChainStatus::Untrusted(why) => assert!(why.contains("'CN=root'"), "{why}"),
            s => panic!("{s:?}"),
        }
        // Another name: the chain is still fine, the name is not.
        let elsewhere = ServerName::try_from("imap.example.com").unwrap();
        let x = v.examined(&der(&leaf), &[der(&mid)], &elsewhere, now);
        assert_eq!(x.chain, ChainStatus::Trusted);
        assert!(x.name.unwrap_err().contains("localhost"));
        // An expired leaf still says its chain is complete (expiry is a
        // finding of its own).
        let (root, mid, leaf) = chain(true);
        let v = examiner(&[&root]);
        assert_eq!(
            v.chain_status(&der(&leaf), &[der(&mid)], now),
            ChainStatus::Trusted
        );
        // A self-signed leaf.
        assert_eq!(
            v.chain_status(&der(&root), &[], now),
            ChainStatus::SelfSigned
        );
    }

    #[test]
    fn the_check_accepts_what_it_examines_and_keeps_the_verdict() {
        let (root, mid, leaf) = chain(false);
        let v = examiner(&[&root]);
        let name = ServerName::try_from("localhost").unwrap();
        // webpki: None stands for "no roots" in a session's verifier: the
        // verdict is a rejection, yet the check's handshake goes on.
        let ok = v.verify_server_cert(
            &CertificateDer::from(leaf.clone()),
            &[CertificateDer::from(mid)],
            &name,
            &[],
            UnixTime::now(),
        );
        assert!(ok.is_ok());
        let seen = v.seen.lock().unwrap().take().unwrap();
        assert!(
            matches!(seen.verdict, Verdict::Rejected(_)),
            "{:?}",
            seen.verdict
        );
        assert_eq!(seen.examined.unwrap().chain, ChainStatus::Trusted);
    }
}
