//! Throwaway PKI for tests: a fresh CA per call and a leaf signed by it
//! (rustls rejects a CA certificate used directly as a server certificate).
#![allow(dead_code)] // shared by several test binaries and examples; each uses a subset

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio_rustls::rustls::{
    self, ClientConfig, RootCertStore, ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
};

pub struct TestPki {
    pub ca_pem: String,
    /// The leaf only; the CA is what clients must trust, it is not sent.
    pub cert_chain_pem: String,
    /// PKCS#8 PEM ("PRIVATE KEY"), ECDSA P-256.
    pub key_pem: String,
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
    pub ca_der: Vec<u8>,
}

/// Leaf valid for `names` (DNS names, or IP addresses such as "127.0.0.1"),
/// signed by a fresh CA.
pub fn pki_for(names: &[&str]) -> TestPki {
    build(names, false)
}

/// Like [`pki_for`], but the leaf expired long ago (the CA is still valid).
pub fn expired_pki_for(names: &[&str]) -> TestPki {
    build(names, true)
}

/// Like [`pki_for`], but the leaf is valid from a day ago until `days`
/// days from now (an `--expiry-warn` test).
pub fn short_lived_pki_for(names: &[&str], days: u64) -> TestPki {
    build_with(names, Lifetime::Days(days))
}

/// A leaf for `names` issued by an intermediate CA, itself issued by a
/// fresh root: `ca_pem` is the root (what clients trust),
/// `cert_chain_pem` the leaf followed by the intermediate (what a server
/// must send). The second value is the leaf alone: a server that sends
/// only that has forgotten its intermediate; the third the intermediate
/// (DER), which a client can trust to talk to such a server anyway.
pub fn pki_with_intermediate(names: &[&str]) -> (TestPki, String, Vec<u8>) {
    let ca = |cn: &str| {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        p
    };
    let root_key = KeyPair::generate().expect("root key");
    let root_params = ca("imaptalk test root CA");
    let root = root_params.self_signed(&root_key).expect("self-sign root");
    let root_issuer = Issuer::new(root_params, root_key);
    let mid_key = KeyPair::generate().expect("intermediate key");
    let mut mid_params = ca("imaptalk test intermediate CA");
    mid_params.use_authority_key_identifier_extension = true;
    let mid = mid_params
        .signed_by(&mid_key, &root_issuer)
        .expect("sign intermediate");
    let mid_issuer = Issuer::new(mid_params, mid_key);
    let leaf_key = KeyPair::generate().expect("leaf key");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names.clone()).expect("leaf params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(first) = names.first() {
        params
            .distinguished_name
            .push(DnType::CommonName, first.as_str());
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let leaf = params.signed_by(&leaf_key, &mid_issuer).expect("sign leaf");
    let pki = TestPki {
        ca_pem: root.pem(),
        cert_chain_pem: format!("{}{}", leaf.pem(), mid.pem()),
        key_pem: leaf_key.serialize_pem(),
        cert_der: leaf.der().to_vec(),
        key_der: leaf_key.serialize_der(),
        ca_der: root.der().to_vec(),
    };
    (pki, leaf.pem(), mid.der().to_vec())
}

/// A self-signed server certificate as `openssl req -x509` makes it:
/// CA:TRUE, no separate CA. `ca_pem` is the certificate itself.
pub fn self_signed_for(names: &[&str]) -> TestPki {
    self_signed_with(names, false)
}

/// Like [`self_signed_for`], but it expired long ago.
pub fn expired_self_signed_for(names: &[&str]) -> TestPki {
    self_signed_with(names, true)
}

fn self_signed_with(names: &[&str], expired: bool) -> TestPki {
    let key = KeyPair::generate().expect("key");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names.clone()).expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(first) = names.first() {
        params
            .distinguished_name
            .push(DnType::CommonName, first.as_str());
    }
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    if expired {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let cert = params.self_signed(&key).expect("self-sign");
    TestPki {
        ca_pem: cert.pem(),
        cert_chain_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
        ca_der: cert.der().to_vec(),
    }
}

/// The SHA-256 fingerprint of a DER certificate, as `--pin` takes it.
pub fn pin_of(der: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A client certificate for `cn` (EKU clientAuth), signed by a fresh CA
/// (`ca_pem`/`ca_der`), with a PKCS#8 ECDSA key.
pub fn client_pki_for(cn: &str) -> TestPki {
    client_pki_with_key(cn, KeyPair::generate().expect("client key"))
}

/// [`client_pki_for`] with a given key (RSA from openssl, say).
pub fn client_pki_with_key(cn: &str, key: KeyPair) -> TestPki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params.distinguished_name.push(
        DnType::CommonName,
        format!("imaptalk test client CA for {cn}"),
    );
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer).expect("sign client cert");
    TestPki {
        ca_pem: ca_cert.pem(),
        cert_chain_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
        ca_der: ca_cert.der().to_vec(),
    }
}

/// A server config that asks for a client certificate issued by
/// `client_ca_der`, and refuses the handshake without one if `required`.
pub fn rustls_server_config_client_auth(
    pki: &TestPki,
    client_ca_der: &[u8],
    required: bool,
) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(client_ca_der.to_vec()))
        .expect("client CA");
    let builder = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    );
    let verifier = if required {
        builder.build()
    } else {
        builder.allow_unauthenticated().build()
    }
    .expect("client verifier");
    let certs = vec![CertificateDer::from(pki.cert_der.clone())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key_der.clone()));
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .expect("server cert");
    Arc::new(config)
}

/// A server config limited to some TLS versions, with its key log.
pub fn rustls_server_config_versions(
    pki: &TestPki,
    versions: &[&'static rustls::SupportedProtocolVersion],
    key_log: Option<Arc<dyn rustls::KeyLog>>,
) -> Arc<ServerConfig> {
    let certs = vec![CertificateDer::from(pki.cert_der.clone())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key_der.clone()));
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server cert");
    if let Some(k) = key_log {
        config.key_log = k;
    }
    Arc::new(config)
}

/// Writes `ca.pem` into `dir` and returns its path.
pub fn write_ca(dir: &Path, pki: &TestPki) -> PathBuf {
    let path = dir.join("ca.pem");
    std::fs::write(&path, &pki.ca_pem).expect("write ca.pem");
    path
}

pub fn rustls_server_config(pki: &TestPki) -> Arc<ServerConfig> {
    let certs = vec![CertificateDer::from(pki.cert_der.clone())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key_der.clone()));
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server cert");
    Arc::new(config)
}

/// Client config that trusts only the given CA (DER).
pub fn rustls_client_config(ca_der: &[u8]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca_der.to_vec()))
        .expect("add test CA");
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    Arc::new(config)
}

enum Lifetime {
    Default,
    Expired,
    Days(u64),
}

fn build(names: &[&str], expired: bool) -> TestPki {
    build_with(
        names,
        if expired {
            Lifetime::Expired
        } else {
            Lifetime::Default
        },
    )
}

fn build_with(names: &[&str], lifetime: Lifetime) -> TestPki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "imaptalk test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign CA");
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().expect("leaf key");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    // rcgen turns names that parse as IP addresses into IP SANs.
    let mut leaf_params = CertificateParams::new(names.clone()).expect("leaf params");
    leaf_params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(first) = names.first() {
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, first.as_str());
    }
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.use_authority_key_identifier_extension = true;
    match lifetime {
        Lifetime::Default => {}
        Lifetime::Expired => {
            leaf_params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            leaf_params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        Lifetime::Days(days) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_secs();
            let epoch = rcgen::date_time_ymd(1970, 1, 1);
            let at = |secs: u64| epoch + std::time::Duration::from_secs(secs);
            leaf_params.not_before = at(now - 86_400);
            leaf_params.not_after = at(now + days * 86_400);
        }
    }
    let leaf_cert = leaf_params
        .signed_by(&leaf_key, &issuer)
        .expect("sign leaf");

    TestPki {
        ca_pem: ca_cert.pem(),
        cert_chain_pem: leaf_cert.pem(),
        key_pem: leaf_key.serialize_pem(),
        cert_der: leaf_cert.der().to_vec(),
        key_der: leaf_key.serialize_der(),
        ca_der: ca_cert.der().to_vec(),
    }
}
