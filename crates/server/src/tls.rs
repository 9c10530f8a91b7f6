//! TLS served by Berth itself: a certificate chain and key read from PEM files, checked at
//! start-up with a clear reason when they cannot serve, and swapped in while serving when the
//! files change. TLS 1.2 and 1.3 only; ALPN offers HTTP/2 and HTTP/1.1.

mod validity;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;

/// Where the certificate chain (leaf first) and its private key are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why a certificate and key cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading the TLS {what} {path}: {reason}")]
    Unreadable { what: &'static str, path: PathBuf, reason: std::io::Error },
    #[error("the TLS certificate file {0} holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")")]
    NoCertificate(PathBuf),
    #[error("the TLS key file {0} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey(PathBuf),
    #[error("the TLS {what} file {path} is not valid PEM: {reason}")]
    BadPem { what: &'static str, path: PathBuf, reason: String },
    #[error("the TLS certificate {path} is not an X.509 certificate Berth can read")]
    BadCertificate { path: PathBuf },
    #[error("the TLS certificate {path} expired at {not_after}")]
    Expired { path: PathBuf, not_after: String },
    #[error("the TLS certificate {path} is not valid before {not_before}")]
    NotYetValid { path: PathBuf, not_before: String },
    #[error("the TLS private key {key} does not belong to the certificate {cert}")]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("the TLS private key {path} cannot be used: {reason}")]
    BadKey { path: PathBuf, reason: String },
}

/// The certificate being served, replaced by [`CertificateSwitch::reload`] when the files
/// change; a replacement that fails its checks leaves the current one in place.
#[derive(Debug)]
pub struct CertificateSwitch {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// The file contents `current` came from, to tell whether they changed.
    loaded_from: Mutex<(Vec<u8>, Vec<u8>)>,
}

impl CertificateSwitch {
    /// Reads and checks the files: the error names the file and what is wrong with it.
    pub fn open(files: TlsFiles) -> Result<CertificateSwitch, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let contents = read_files(&files)?;
        let key = certified_key(&files, &contents, &provider, SystemTime::now())?;
        Ok(CertificateSwitch {
            files,
            provider,
            current: RwLock::new(Arc::new(key)),
            loaded_from: Mutex::new(contents),
        })
    }

    /// Re-reads the files; when they changed and pass the checks, new handshakes use them
    /// (connections already open keep theirs). `Ok(true)` when the certificate was replaced.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let contents = read_files(&self.files)?;
        let mut loaded_from = self.loaded_from.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if *loaded_from == contents {
            return Ok(false);
        }
        let key = certified_key(&self.files, &contents, &self.provider, SystemTime::now())?;
        *self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(key);
        *loaded_from = contents;
        Ok(true)
    }

    /// The files this switch serves from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The rustls configuration handshakes are made with.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        // Pulling clients reconnect often; resuming skips the full handshake's key exchange.
        config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES);
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for CertificateSwitch {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone())
    }
}

/// TLS sessions remembered for resumption (a few hundred bytes each).
const SESSION_CACHE_ENTRIES: usize = 4096;

fn read_files(files: &TlsFiles) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let read = |what: &'static str, path: &Path| {
        std::fs::read(path).map_err(|reason| TlsError::Unreadable { what, path: path.to_owned(), reason })
    };
    Ok((read("certificate", &files.cert)?, read("private key", &files.key)?))
}

/// The chain and key in `contents`, checked: PEM that parses, a leaf valid at `now`, and a
/// key that belongs to the leaf.
fn certified_key(
    files: &TlsFiles,
    (cert_pem, key_pem): &(Vec<u8>, Vec<u8>),
    provider: &CryptoProvider,
    now: SystemTime,
) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem { what: "certificate", path: files.cert.clone(), reason: e.to_string() })?;
    let leaf = chain.first().ok_or_else(|| TlsError::NoCertificate(files.cert.clone()))?;
    let (not_before, not_after) =
        validity::of(leaf).ok_or_else(|| TlsError::BadCertificate { path: files.cert.clone() })?;
    let now = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    if now < not_before.unix {
        return Err(TlsError::NotYetValid { path: files.cert.clone(), not_before: not_before.to_string() });
    }
    if now > not_after.unix {
        return Err(TlsError::Expired { path: files.cert.clone(), not_after: not_after.to_string() });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey(files.key.clone()),
        other => TlsError::BadPem { what: "key", path: files.key.clone(), reason: other.to_string() },
    })?;
    let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => {
            TlsError::KeyMismatch { cert: files.cert.clone(), key: files.key.clone() }
        }
        other => TlsError::BadKey { path: files.key.clone(), reason: other.to_string() },
    })?;
    metrics::gauge!("berth_tls_certificate_expiry_timestamp_seconds").set(not_after.unix as f64);
    Ok(certified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    /// A certificate for 127.0.0.1 valid from the start of a year to the start of another,
    /// counted from this year, and its key.
    fn issue(valid_years: (i32, i32)) -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
        let since_epoch = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("clock");
        let year = 1970 + (since_epoch.as_secs() / 31_556_952) as i32;
        params.not_before = rcgen::date_time_ymd(year + valid_years.0, 1, 1);
        params.not_after = rcgen::date_time_ymd(year + valid_years.1, 1, 1);
        (params.self_signed(&key).expect("certificate").pem(), key.serialize_pem())
    }

    fn write(dir: &Path, (cert, key): &(String, String)) -> TlsFiles {
        let files = TlsFiles { cert: dir.join("cert.pem"), key: dir.join("key.pem") };
        std::fs::write(&files.cert, cert).expect("write cert");
        std::fs::write(&files.key, key).expect("write key");
        files
    }

    fn served(switch: &CertificateSwitch) -> Vec<u8> {
        switch.current.read().expect("lock").cert[0].to_vec()
    }

    #[test]
    fn a_valid_pair_opens_and_every_broken_one_says_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = issue((-1, 2));
        let files = write(dir.path(), &good);
        let switch = Arc::new(CertificateSwitch::open(files.clone()).expect("a valid pair opens"));
        assert!(switch.server_config().is_ok());

        let refused = |pair: &(String, String)| {
            let files = write(dir.path(), pair);
            CertificateSwitch::open(files).expect_err("refused").to_string()
        };
        let expired = refused(&issue((-3, -1)));
        assert!(expired.contains("expired at") && expired.contains("cert.pem"), "{expired}");
        let early = refused(&issue((1, 3)));
        assert!(early.contains("is not valid before"), "{early}");
        let other_key = issue((-1, 2)).1;
        let mismatch = refused(&(good.0.clone(), other_key));
        assert!(mismatch.contains("does not belong to the certificate"), "{mismatch}");
        let swapped = refused(&(good.1.clone(), good.0.clone()));
        assert!(swapped.contains("holds no PEM certificate"), "{swapped}");
        let no_key = refused(&(good.0.clone(), good.0.clone()));
        assert!(no_key.contains("holds no PEM private key"), "{no_key}");
        let garbage = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
        let unreadable = refused(&(garbage.to_owned(), good.1.clone()));
        assert!(unreadable.contains("not an X.509 certificate"), "{unreadable}");

        let missing = TlsFiles { cert: dir.path().join("absent.pem"), key: files.key.clone() };
        let missing = CertificateSwitch::open(missing).expect_err("refused").to_string();
        assert!(missing.contains("reading the TLS certificate") && missing.contains("absent.pem"), "{missing}");
        let directory = TlsFiles { cert: files.cert.clone(), key: dir.path().to_owned() };
        let directory = CertificateSwitch::open(directory).expect_err("refused").to_string();
        assert!(directory.contains("reading the TLS private key"), "{directory}");
    }

    #[test]
    fn reload_swaps_in_changed_files_and_keeps_serving_the_old_pair_when_the_new_one_is_broken() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = issue((-1, 2));
        let switch = CertificateSwitch::open(write(dir.path(), &first)).expect("opens");
        let first_der = served(&switch);
        assert!(!switch.reload().expect("unchanged files reload"), "nothing changed");

        let second = issue((-1, 2));
        write(dir.path(), &second);
        assert!(switch.reload().expect("reloads"), "the new pair is in");
        let second_der = served(&switch);
        assert_ne!(first_der, second_der);

        // Half-written rotation: a new certificate beside the old key.
        std::fs::write(&switch.files().cert, issue((-1, 2)).0).expect("write");
        let refused = switch.reload().expect_err("a mismatched pair is refused");
        assert!(matches!(refused, TlsError::KeyMismatch { .. }), "{refused}");
        assert_eq!(served(&switch), second_der, "the last good pair stays");
    }
}
