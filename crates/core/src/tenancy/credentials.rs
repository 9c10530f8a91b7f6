//! Secrets: Argon2id password hashes, random tokens stored as SHA-256, constant-time
//! comparison, and throttling of failed logins.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, mpsc};
use std::time::{Duration, Instant};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use moka::future::Cache;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{Error, Result};

/// The shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;

/// Argon2id allocates 19 MiB for every hash and keeps a core busy while it runs. On tokio's
/// blocking pool each hash could land on another thread, whose allocator arena then kept the
/// 19 MiB: eight concurrent logins took the server from 13 to 132 MiB and eight failed ones to
/// 288 MiB. A fixed set of hashing threads, one per core, bounds that memory to one buffer per
/// core (more at once would not be faster); logins queue for them.
type HashJob = Box<dyn FnOnce() + Send>;

fn hashing_threads() -> &'static Mutex<mpsc::Sender<HashJob>> {
    static JOBS: OnceLock<Mutex<mpsc::Sender<HashJob>>> = OnceLock::new();
    JOBS.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<HashJob>();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..std::thread::available_parallelism().map_or(2, usize::from) {
            let receiver = Arc::clone(&receiver);
            let spawned = std::thread::Builder::new().name(format!("berth-argon2-{n}")).spawn(move || {
                loop {
                    // A poisoned lock only means a job panicked; the queue itself is intact.
                    let next = receiver.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    match next {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "starting a password hashing thread failed");
            }
        }
        Mutex::new(sender)
    })
}

/// Runs `work` on the hashing threads.
async fn on_hashing_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let (done, result) = tokio::sync::oneshot::channel();
    let job: HashJob = Box::new(move || {
        let _ = done.send(work());
    });
    hashing_threads()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .send(job)
        .map_err(|_| Error::Backend("the password hashing threads are gone".into()))?;
    result.await.map_err(|_| Error::Backend("a password hash was abandoned".into()))
}

/// Hashes a password with Argon2id (on a hashing thread: it takes tens of milliseconds).
pub async fn hash_password(password: String) -> Result<String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::InvalidInput(format!("passwords need at least {MIN_PASSWORD_LEN} characters")));
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(Error::backend)?;
    on_hashing_thread(move || {
        let params = Params::default();
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        with_thread_memory(params.block_count(), |memory| {
            Argon2::new(Algorithm::Argon2id, Version::default(), params.clone()).hash_password_into_with_memory(
                password.as_bytes(),
                &salt,
                &mut out,
                memory,
            )
        })
        .map_err(Error::backend)?;
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::default().into()),
            params: ParamsString::try_from(&params).map_err(Error::backend)?,
            salt: Some(Salt::new(&salt).map_err(Error::backend)?),
            hash: Some(Output::new(&out).map_err(Error::backend)?),
        };
        Ok(hash.to_string())
    })
    .await?
}

/// Checks a password against a stored Argon2 hash (on a hashing thread).
pub async fn verify_password(password: String, hash: String) -> Result<bool> {
    on_hashing_thread(move || verify_on_this_thread(password.as_bytes(), &hash)).await
}

/// Argon2 working memory kept by each hashing thread, so that every hash reuses the same
/// buffer instead of asking the allocator for 19 MiB again.
fn with_thread_memory<T>(blocks: usize, hash: impl FnOnce(&mut [Block]) -> T) -> T {
    thread_local! {
        static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
    }
    MEMORY.with_borrow_mut(|memory| {
        if memory.len() < blocks {
            memory.resize(blocks, Block::new());
        }
        hash(&mut memory[..blocks])
    })
}

/// Recomputes a stored PHC hash with its own algorithm, version, parameters and salt, and
/// compares in constant time. Anything unparsable does not verify.
fn verify_on_this_thread(password: &[u8], stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else { return false };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else { return false };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else { return false };
    let version = match parsed.version.map(Version::try_from) {
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
        None => Version::default(),
    };
    let Ok(params) = Params::try_from(&parsed) else { return false };
    let mut out = vec![0u8; expected.len()];
    let computed = with_thread_memory(params.block_count(), |memory| {
        Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(password, salt, &mut out, memory)
    });
    computed.is_ok() && bool::from(out.ct_eq(expected.as_bytes()))
}

/// A new secret token: `prefix` followed by 32 random bytes in base64url; returns the token
/// and the SHA-256 to store.
pub fn new_token(prefix: &str) -> Result<(String, Vec<u8>)> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(Error::backend)?;
    let token = format!("{prefix}{}", base64_url(&bytes));
    let hash = token_hash(&token);
    Ok((token, hash))
}

pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Whether `token` hashes to `stored`, compared in constant time.
pub fn token_matches(token: &str, stored: &[u8]) -> bool {
    token_hash(token).ct_eq(stored).into()
}

fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// A key for the verified-credentials cache: the secret itself is never kept.
pub fn credential_key(username: &str, secret: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(username.as_bytes());
    hasher.update([0]);
    hasher.update(secret.as_bytes());
    hasher.finalize().into()
}

/// Counts failed logins per key (a client address or an account) in fixed windows and
/// refuses further attempts once a key reaches its limit in the current window.
pub struct Throttle {
    windows: Cache<String, Arc<Window>>,
    limit: u32,
    window: Duration,
}

pub struct Window {
    started: Instant,
    failures: AtomicU32,
}

impl Throttle {
    pub fn new(limit: u32, window: Duration) -> Throttle {
        Throttle { windows: Cache::builder().max_capacity(100_000).time_to_live(window).build(), limit, window }
    }

    /// `TooManyRequests` with the seconds left in the window when `key` is over its limit.
    pub async fn check(&self, key: &str) -> Result<()> {
        if let Some(w) = self.windows.get(key).await
            && w.failures.load(Ordering::Relaxed) >= self.limit
        {
            let left = self.window.saturating_sub(w.started.elapsed());
            return Err(Error::TooManyRequests { retry_after_secs: left.as_secs().max(1) });
        }
        Ok(())
    }

    pub async fn record_failure(&self, key: &str) {
        let w = self
            .windows
            .get_with(key.to_owned(), async {
                Arc::new(Window { started: Instant::now(), failures: AtomicU32::new(0) })
            })
            .await;
        w.failures.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords() {
        let hash = hash_password("correct horse".into()).await.expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse".into(), hash.clone()).await.expect("verify"));
        assert!(!verify_password("wrong horse".into(), hash).await.expect("verify"));
        assert!(!verify_password("x".into(), "not a hash".into()).await.expect("verify"));
        assert!(matches!(hash_password("short".into()).await, Err(Error::InvalidInput(_))));
    }

    #[tokio::test]
    async fn hashes_are_standard_phc_strings_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        // Ours verify with the argon2 crate's own verifier...
        let ours = hash_password("correct horse".into()).await.expect("hash");
        let parsed = PasswordHash::new(&ours).expect("a PHC string");
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"wrong horse", &parsed).is_err());
        // ...and hashes made by it (as stored before) verify with ours, whatever their costs.
        let params = Params::new(8 * 1024, 1, 1, None).expect("params");
        for theirs in [
            Argon2::default().hash_password(b"correct horse").expect("hash").to_string(),
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(b"correct horse")
                .expect("hash")
                .to_string(),
        ] {
            assert!(verify_password("correct horse".into(), theirs.clone()).await.expect("verify"), "{theirs}");
            assert!(!verify_password("wrong horse".into(), theirs).await.expect("verify"));
        }
    }

    #[test]
    fn tokens() {
        let (token, hash) = new_token("berth_test_").expect("token");
        assert!(token.starts_with("berth_test_") && token.len() == "berth_test_".len() + 43);
        assert!(token_matches(&token, &hash));
        assert!(!token_matches(&format!("{token}x"), &hash));
        assert_ne!(new_token("").expect("token").0, new_token("").expect("token").0);
        assert_eq!(base64_url(b"\xff\xff\xff"), "____");
        assert_eq!(base64_url(b"ab"), "YWI");
    }

    #[tokio::test]
    async fn throttle() {
        let t = Throttle::new(2, Duration::from_secs(60));
        assert!(t.check("ip").await.is_ok());
        t.record_failure("ip").await;
        assert!(t.check("ip").await.is_ok());
        t.record_failure("ip").await;
        match t.check("ip").await {
            Err(Error::TooManyRequests { retry_after_secs }) => assert!((1..=60).contains(&retry_after_secs)),
            other => panic!("expected throttling, got {other:?}"),
        }
        assert!(t.check("other").await.is_ok());
    }
}
