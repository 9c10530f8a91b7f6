//! Secrets: Argon2id password hashes, random tokens stored as SHA-256, constant-time
//! comparison, and throttling of failed logins.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use moka::future::Cache;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{Error, Result};

/// The shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;

/// Hashes a password with Argon2id (on the blocking pool: it takes tens of milliseconds).
pub async fn hash_password(password: String) -> Result<String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::InvalidInput(format!("passwords need at least {MIN_PASSWORD_LEN} characters")));
    }
    tokio::task::spawn_blocking(move || {
        Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(Error::backend)
    })
    .await
    .map_err(Error::backend)?
}

/// Checks a password against a stored Argon2 hash (on the blocking pool).
pub async fn verify_password(password: String, hash: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&hash) else { return false };
        Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
    })
    .await
    .map_err(Error::backend)
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
