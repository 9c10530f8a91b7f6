//! A certificate authority made in the test, the server certificates it issues, and clients
//! that trust only it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject as _;
use tokio::net::TcpStream;

pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, which clients are given to trust.
    pub pem: String,
}

/// A server certificate chain (leaf, then the CA) and its private key, in PEM.
#[derive(Clone)]
pub struct ServerPair {
    pub cert: String,
    pub key: String,
}

impl TestCa {
    pub fn new() -> TestCa {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name.push(DnType::CommonName, "Berth test CA");
        let pem = params.self_signed(&key).expect("CA certificate").pem();
        TestCa { issuer: Issuer::new(params, key), pem }
    }

    /// A certificate for 127.0.0.1 and localhost, valid from a year ago until `until_year`.
    pub fn issue_until(&self, until_year: i32) -> ServerPair {
        let key = KeyPair::generate().expect("server key");
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("server params");
        params.distinguished_name.push(DnType::CommonName, "berth under test");
        params.not_before = rcgen::date_time_ymd(this_year() - 1, 1, 1);
        params.not_after = rcgen::date_time_ymd(until_year, 1, 1);
        let leaf = params.signed_by(&key, &self.issuer).expect("server certificate").pem();
        ServerPair { cert: format!("{leaf}{}", self.pem), key: key.serialize_pem() }
    }

    /// A certificate valid for the next few years.
    pub fn issue(&self) -> ServerPair {
        self.issue_until(this_year() + 3)
    }

    /// A directory as containers' `--cert-dir` expects: the CA as `ca.crt`.
    pub fn cert_dir(&self, parent: &Path) -> PathBuf {
        let dir = parent.join("certs.d");
        std::fs::create_dir_all(&dir).expect("cert dir");
        std::fs::write(dir.join("ca.crt"), &self.pem).expect("write ca.crt");
        dir
    }

    /// A client that trusts only this CA and sends the test superuser's credentials.
    pub fn client(&self) -> reqwest::Client {
        client_trusting(&self.pem)
    }

    /// A client builder that trusts only this CA, without credentials.
    pub fn anonymous(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder().tls_certs_only([reqwest::Certificate::from_pem(self.pem.as_bytes()).expect("CA")])
    }

    /// Makes such clients, each with connections of its own.
    pub fn client_factory(&self) -> impl Fn() -> reqwest::Client + Send + Sync + 'static {
        let pem = self.pem.clone();
        move || client_trusting(&pem)
    }

    /// The leaf certificate (DER) a fresh TLS handshake with `addr` is answered with.
    pub async fn presented_certificate(&self, addr: &str) -> Vec<u8> {
        let mut roots = rustls::RootCertStore::empty();
        let ca = rustls::pki_types::CertificateDer::from_pem_slice(self.pem.as_bytes()).expect("CA DER");
        roots.add(ca).expect("root");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
        let tls = connector.connect(name, tcp).await.expect("TLS handshake");
        tls.get_ref().1.peer_certificates().and_then(|chain| chain.first()).expect("a certificate").to_vec()
    }
}

fn client_trusting(ca_pem: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let basic = super::base64_basic(super::ADMIN.0, super::ADMIN.1);
    headers.insert(reqwest::header::AUTHORIZATION, basic.parse().expect("header"));
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA")])
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .expect("client")
}

/// The DER of the first certificate in a PEM chain.
pub fn leaf_der(chain_pem: &str) -> Vec<u8> {
    rustls::pki_types::CertificateDer::from_pem_slice(chain_pem.as_bytes()).expect("a PEM certificate").to_vec()
}

/// Writes a pair as `server.crt` and `server.key` in `dir`; returns their paths.
pub fn write_pair(dir: &Path, pair: &ServerPair) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    // Key first: a reload between the two writes sees a mismatch and keeps the old pair.
    std::fs::write(&key, &pair.key).expect("write key");
    std::fs::write(&cert, &pair.cert).expect("write cert");
    (cert, key)
}

pub fn this_year() -> i32 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock");
    1970 + (since_epoch.as_secs() / 31_556_952) as i32
}
