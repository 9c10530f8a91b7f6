//! The signing keys of the token service: Ed25519 keys kept in the data directory, one file
//! per key named after its key id. The newest key signs; every key on disk verifies, so a
//! rotation never invalidates a live token. Keys that were superseded longer ago than any
//! token lives are removed at the next rotation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ed25519_dalek::{SigningKey, VerifyingKey};

/// A key id: `<creation unix milliseconds, 15 digits>-<8 hex>`. Each new id is greater than
/// every existing one, so ids sort by age even within one millisecond.
pub type KeyId = String;

pub struct KeyRing {
    dir: PathBuf,
    keys: RwLock<Arc<Keys>>,
    /// When the directory was last re-read because a token named an unknown key.
    last_reload: RwLock<Option<Instant>>,
}

struct Keys {
    /// Newest last.
    by_id: BTreeMap<KeyId, SigningKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing keys in {dir}: {source}")]
    Io { dir: String, source: std::io::Error },
    #[error("signing key file {0} is not a valid key")]
    Invalid(String),
    #[error("no random numbers: {0}")]
    Random(String),
}

fn io(dir: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io { dir: dir.display().to_string(), source }
}

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl KeyRing {
    /// Loads the keys in `dir`, creating the directory and a first key when there is none.
    pub fn open(dir: impl Into<PathBuf>) -> Result<KeyRing, KeyError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let mut keys = read_keys(&dir)?;
        if keys.is_empty() {
            let (id, key) = write_new_key(&dir, None)?;
            keys.insert(id, key);
        }
        Ok(KeyRing { dir, keys: RwLock::new(Arc::new(Keys { by_id: keys })), last_reload: RwLock::new(None) })
    }

    fn snapshot(&self) -> Arc<Keys> {
        self.keys.read().map_or_else(|p| p.into_inner().clone(), |k| k.clone())
    }

    /// The key that signs new tokens.
    pub fn active(&self) -> Option<(KeyId, SigningKey)> {
        self.snapshot().by_id.iter().next_back().map(|(id, key)| (id.clone(), key.clone()))
    }

    /// The key that verifies tokens signed as `kid`. An unknown id makes the ring re-read its
    /// directory (at most every few seconds), so keys rotated by another process are found.
    pub fn verifying(&self, kid: &str) -> Option<VerifyingKey> {
        if let Some(key) = self.snapshot().by_id.get(kid) {
            return Some(key.verifying_key());
        }
        let due = self.last_reload.read().map_or(true, |t| t.is_none_or(|t| t.elapsed() > Duration::from_secs(5)));
        if due {
            if let Ok(mut t) = self.last_reload.write() {
                *t = Some(Instant::now());
            }
            if let Err(e) = self.reload() {
                tracing::warn!(error = %e, "re-reading the signing keys failed");
            }
        }
        self.snapshot().by_id.get(kid).map(SigningKey::verifying_key)
    }

    /// Re-reads the directory (picking up keys another process rotated in).
    pub fn reload(&self) -> Result<(), KeyError> {
        let keys = read_keys(&self.dir)?;
        if !keys.is_empty()
            && let Ok(mut current) = self.keys.write()
        {
            *current = Arc::new(Keys { by_id: keys });
        }
        Ok(())
    }

    /// Adds a new signing key; keys superseded more than `token_lifetime` ago are removed.
    /// Returns the new key's id.
    pub fn rotate(&self, token_lifetime: Duration) -> Result<KeyId, KeyError> {
        rotate_dir(&self.dir, token_lifetime)?;
        self.reload()?;
        self.active().map(|(id, _)| id).ok_or_else(|| KeyError::Invalid("no key after rotation".into()))
    }
}

/// Rotation on a data directory, for a process that is not serving (the admin command).
pub fn rotate_dir(dir: &Path, token_lifetime: Duration) -> Result<KeyId, KeyError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let newest = read_keys(dir)?.into_keys().next_back();
    let (id, _) = write_new_key(dir, newest.as_deref())?;
    // A key may go once its successor has been signing for longer than a token lives.
    let ids: Vec<KeyId> = read_keys(dir)?.into_keys().collect();
    for pair in ids.windows(2) {
        let successor_age = now_millis().saturating_sub(created_millis(&pair[1])) / 1000;
        if successor_age > token_lifetime.as_secs() + 60 {
            std::fs::remove_file(dir.join(format!("{}.key", pair[0]))).map_err(io(dir))?;
        }
    }
    Ok(id)
}

fn created_millis(id: &str) -> u64 {
    id.split('-').next().and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn read_keys(dir: &Path) -> Result<BTreeMap<KeyId, SigningKey>, KeyError> {
    let mut keys = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        let Some(id) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".key")) else { continue };
        let text = std::fs::read_to_string(&path).map_err(io(dir))?;
        let seed: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| KeyError::Invalid(path.display().to_string()))?;
        keys.insert(id.to_owned(), SigningKey::from_bytes(&seed));
    }
    Ok(keys)
}

/// Writes a key whose id sorts after `newest`.
fn write_new_key(dir: &Path, newest: Option<&str>) -> Result<(KeyId, SigningKey), KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
    let mut suffix = [0u8; 4];
    getrandom::fill(&mut suffix).map_err(|e| KeyError::Random(e.to_string()))?;
    let created = now_millis().max(newest.map_or(0, |n| created_millis(n) + 1));
    let id = format!("{created:015}-{}", hex::encode(suffix));
    let path = dir.join(format!("{id}.key"));
    let tmp = dir.join(format!(".{id}.tmp"));
    write_private(&tmp, hex::encode(seed).as_bytes()).map_err(io(dir))?;
    std::fs::rename(&tmp, &path).map_err(io(dir))?;
    Ok((id, SigningKey::from_bytes(&seed)))
}

/// Writes a file only its owner can read, durably.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_persist_and_rotate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ring = KeyRing::open(dir.path()).expect("open");
        let (first, _) = ring.active().expect("a key");
        let reopened = KeyRing::open(dir.path()).expect("reopen");
        assert_eq!(reopened.active().map(|(id, _)| id), Some(first.clone()), "keys persist");
        let second = ring.rotate(Duration::from_secs(300)).expect("rotate");
        assert_ne!(second, first);
        assert_eq!(ring.active().map(|(id, _)| id), Some(second.clone()));
        assert!(ring.verifying(&first).is_some(), "the old key still verifies");
        // The other process finds the rotated key when a token names it.
        assert!(reopened.verifying(&second).is_some());
        // A key is kept while tokens it signed may still be alive.
        rotate_dir(dir.path(), Duration::from_secs(300)).expect("rotate again");
        ring.reload().expect("reload");
        assert!(ring.verifying(&first).is_some());
        // Rotations in quick succession each make the newest key the signing one.
        for _ in 0..20 {
            let id = ring.rotate(Duration::from_secs(300)).expect("rotate");
            assert_eq!(ring.active().map(|(active, _)| active), Some(id));
        }
        let mode = std::fs::metadata(dir.path().join(format!("{first}.key"))).expect("meta");
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777, 0o600);
    }
}
