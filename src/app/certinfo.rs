//! What a person wants to know about a certificate: who it names, who
//! issued it, for which hosts, until when, and its SHA-256 fingerprint;
//! and PEM, for `--show-certs`.
//!
//! Everything in a certificate is chosen by whoever made it, so the text
//! fields are escaped before they can reach a terminal.

use crate::io::tls::{self, hex};
use crate::text::escape_str;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use x509_parser::extensions::GeneralName;

/// A certificate, summarized for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub subject: String,
    pub issuer: String,
    /// Subject alternative names: `DNS:host`, `IP:addr`, `email:…`, `URI:…`.
    pub names: Vec<String>,
    /// Validity, as Unix times.
    pub not_before: i64,
    pub not_after: i64,
    /// `AB:CD:…`, as `openssl x509 -fingerprint -sha256` prints it.
    pub sha256: String,
}

/// Reads a DER certificate. A certificate that does not parse is still
/// worth a fingerprint: the error says what is wrong.
pub fn summarize(der: &[u8]) -> Result<Summary, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("unreadable certificate ({e}); sha256 {}", fingerprint(der)))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            names.push(general_name(n));
        }
    }
    let validity = cert.validity();
    Ok(Summary {
        subject: escape_str(&cert.subject().to_string()),
        issuer: escape_str(&cert.issuer().to_string()),
        names,
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
        sha256: fingerprint(der),
    })
}

fn general_name(n: &GeneralName) -> String {
    match n {
        GeneralName::DNSName(s) => format!("DNS:{}", escape_str(s)),
        GeneralName::RFC822Name(s) => format!("email:{}", escape_str(s)),
        GeneralName::URI(s) => format!("URI:{}", escape_str(s)),
        GeneralName::IPAddress(b) => format!("IP:{}", ip_text(b)),
        other => escape_str(&format!("{other:?}")),
    }
}

fn ip_text(b: &[u8]) -> String {
    if let Ok(v4) = <[u8; 4]>::try_from(b) {
        return std::net::Ipv4Addr::from(v4).to_string();
    }
    if let Ok(v6) = <[u8; 16]>::try_from(b) {
        return std::net::Ipv6Addr::from(v6).to_string();
    }
    hex(b, "")
}

/// SHA-256 of the DER bytes, colon-separated upper-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    hex(&tls::fingerprint(der), ":")
}

/// The `--pin` argument that trusts exactly this certificate.
pub fn pin(der: &[u8]) -> String {
    format!("sha256:{}", hex(&tls::fingerprint(der), ""))
}

/// Whole days from `now` until `not_after`, rounded down; negative once
/// expired (an hour past expiry is day -1).
pub fn days_left(not_after: i64, now: i64) -> i64 {
    (not_after - now).div_euclid(86_400)
}

/// A Unix time for people; times before 1970 (no real certificate) show
/// as the epoch.
pub fn date(t: i64) -> String {
    crate::text::date(t)
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// One certificate as PEM, 64 characters a line, as openssl writes it.
pub fn pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;

    fn leaf(names: &[&str]) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "imap.test\u{1b}[31m");
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2030, 1, 1);
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn summary_fields() {
        let der = leaf(&["imap.test", "127.0.0.1", "::1"]);
        let s = summarize(&der).unwrap();
        // The escape sequence in the name never reaches the terminal.
        assert_eq!(s.subject, "CN=imap.test\\x1b[31m");
        assert_eq!(s.issuer, s.subject);
        assert_eq!(s.names, ["DNS:imap.test", "IP:127.0.0.1", "IP:::1"]);
        assert_eq!(date(s.not_before), "2020-01-01 00:00:00 UTC");
        assert_eq!(date(s.not_after), "2030-01-01 00:00:00 UTC");
        assert_eq!(s.sha256.len(), 32 * 3 - 1);
        assert!(summarize(b"not a certificate").is_err());
    }

    #[test]
    fn a_name_cannot_forge_a_line() {
        let key = rcgen::KeyPair::generate().unwrap();
        let evil = "x\nimaptalk: verification: OK (trusted)\u{202e}\u{7}";
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, evil);
        params.subject_alt_names = vec![rcgen::SanType::DnsName(
            "a\nb".to_string().try_into().unwrap(),
        )];
        let der = params.self_signed(&key).unwrap().der().to_vec();
        let s = summarize(&der).unwrap();
        for field in [&s.subject, &s.issuer, &s.names[0]] {
            assert!(!field.contains('\n'), "{field:?}");
            assert!(field.chars().all(crate::text::shown_as_is), "{field:?}");
        }
        assert_eq!(
            s.subject,
            "CN=x\\x0aimaptalk: verification: OK (trusted)\\u{202e}\\x07"
        );
        assert_eq!(s.names, ["DNS:a\\x0ab"]);
    }

    #[test]
    fn fingerprint_is_sha256_of_der() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            fingerprint(b"abc"),
            "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
    }

    #[test]
    fn days() {
        assert_eq!(days_left(86_400 * 3, 0), 3);
        assert_eq!(days_left(86_400 * 3 - 1, 0), 2);
        assert_eq!(days_left(0, 1), -1);
    }

    #[test]
    fn pem_parses_back() {
        let der = leaf(&["imap.test"]);
        let text = pem(&der);
        assert!(text.lines().all(|l| l.len() <= 64));
        let back: Vec<_> = CertificateDer::pem_slice_iter(text.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, [CertificateDer::from(der)]);
    }
}
