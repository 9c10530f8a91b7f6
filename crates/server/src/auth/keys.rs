//! The signing keys of the token service: Ed25519 keys kept in the metadata database, so
//! every instance sharing it signs and verifies the same tokens. The newest key signs; every
//! stored key verifies, so a rotation never invalidates a live token. Keys superseded longer
//! ago than any token lives are removed at the next rotation.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use berth_core::ports::MetaStore;
use berth_core::time::now_ms;
use ed25519_dalek::{SigningKey, VerifyingKey};

/// A key id: `<creation unix milliseconds, 15 digits>-<8 hex>`. Each new id is greater than
/// every existing one, so ids sort by age even within one millisecond.
pub type KeyId = String;

/// How often at most a token naming an unknown key makes the ring re-read the database.
const UNKNOWN_KEY_RELOAD: Duration = Duration::from_secs(1);

pub struct KeyRing {
    store: Arc<dyn MetaStore>,
    keys: RwLock<Arc<Keys>>,
    /// When the keys were last re-read because a token named an unknown key.
    last_reload: RwLock<Option<Instant>>,
}

struct Keys {
    /// Newest last.
    by_id: BTreeMap<KeyId, SigningKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing keys: {0}")]
    Store(#[from] berth_core::Error),
    #[error("signing key {0} is not a valid key")]
    Invalid(String),
    #[error("signing keys in {dir}: {source}")]
    Legacy { dir: String, source: std::io::Error },
    #[error("no random numbers: {0}")]
    Random(String),
}

impl KeyRing {
    /// Loads the stored keys. With none stored yet, the keys an older Berth kept as files in
    /// `legacy_dir` are moved in (so tokens it issued stay valid), or else a first key is made.
    pub async fn open(store: Arc<dyn MetaStore>, legacy_dir: Option<&Path>) -> Result<KeyRing, KeyError> {
        let ring = KeyRing {
            store,
            keys: RwLock::new(Arc::new(Keys { by_id: BTreeMap::new() })),
            last_reload: RwLock::new(None),
        };
        ring.reload().await?;
        if ring.snapshot().by_id.is_empty() {
            let legacy = match legacy_dir {
                Some(dir) => read_legacy_keys(dir)?,
                None => BTreeMap::new(),
            };
            if legacy.is_empty() {
                ring.add_key(&[]).await?;
            }
            for (id, key) in &legacy {
                ring.store.add_signing_key(id, key.as_bytes(), created_millis(id), &[]).await?;
            }
            ring.reload().await?;
        }
        Ok(ring)
    }

    fn snapshot(&self) -> Arc<Keys> {
        self.keys.read().map_or_else(|p| p.into_inner().clone(), |k| k.clone())
    }

    /// The key that signs new tokens.
    pub fn active(&self) -> Option<(KeyId, SigningKey)> {
        self.snapshot().by_id.iter().next_back().map(|(id, key)| (id.clone(), key.clone()))
    }

    /// The key that verifies tokens signed as `kid`. An unknown id makes the ring re-read the
    /// database (at most every second), so a key another instance rotated in is found the
    /// first time one of its tokens arrives.
    pub async fn verifying(&self, kid: &str) -> Option<VerifyingKey> {
        if let Some(key) = self.snapshot().by_id.get(kid) {
            return Some(key.verifying_key());
        }
        let due = self.last_reload.read().map_or(true, |t| t.is_none_or(|t| t.elapsed() > UNKNOWN_KEY_RELOAD));
        if due {
            if let Ok(mut t) = self.last_reload.write() {
                *t = Some(Instant::now());
            }
            if let Err(e) = self.reload().await {
                tracing::warn!(error = %e, "re-reading the signing keys failed");
            }
        }
        self.snapshot().by_id.get(kid).map(SigningKey::verifying_key)
    }

    /// Re-reads the keys (picking up keys another instance rotated in).
    pub async fn reload(&self) -> Result<(), KeyError> {
        let mut keys = BTreeMap::new();
        for (id, seed) in self.store.signing_keys().await? {
            let seed: [u8; 32] = seed.try_into().map_err(|_| KeyError::Invalid(id.clone()))?;
            keys.insert(id, SigningKey::from_bytes(&seed));
        }
        if let Ok(mut current) = self.keys.write() {
            *current = Arc::new(Keys { by_id: keys });
        }
        Ok(())
    }

    /// Adds a new signing key; keys superseded more than `token_lifetime` ago are removed.
    /// Returns the new key's id.
    pub async fn rotate(&self, token_lifetime: Duration) -> Result<KeyId, KeyError> {
        self.reload().await?;
        let ids: Vec<KeyId> = self.snapshot().by_id.keys().cloned().collect();
        // A key may go once its successor has been signing for longer than a token lives.
        let retired: Vec<KeyId> = ids
            .windows(2)
            .filter(|pair| {
                now_ms().saturating_sub(created_millis(&pair[1])) / 1000
                    > i64::try_from(token_lifetime.as_secs()).unwrap_or(i64::MAX).saturating_add(60)
            })
            .map(|pair| pair[0].clone())
            .collect();
        let id = self.add_key(&retired).await?;
        self.reload().await?;
        Ok(id)
    }

    /// Stores a new key whose id sorts after every key held, retiring `retired`.
    async fn add_key(&self, retired: &[KeyId]) -> Result<KeyId, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        let mut suffix = [0u8; 4];
        getrandom::fill(&mut suffix).map_err(|e| KeyError::Random(e.to_string()))?;
        let newest = self.snapshot().by_id.keys().next_back().map_or(0, |id| created_millis(id) + 1);
        let created = now_ms().max(newest);
        let id = format!("{created:015}-{}", hex::encode(suffix));
        self.store.add_signing_key(&id, &seed, created, retired).await?;
        Ok(id)
    }
}

fn created_millis(id: &str) -> i64 {
    id.split('-').next().and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The `<id>.key` files (hex seeds) an older Berth kept in the data directory; none when the
/// directory does not exist.
fn read_legacy_keys(dir: &Path) -> Result<BTreeMap<KeyId, SigningKey>, KeyError> {
    let io = |source| KeyError::Legacy { dir: dir.display().to_string(), source };
    let mut keys = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(keys),
        Err(e) => return Err(io(e)),
    };
    for entry in entries {
        let path = entry.map_err(io)?.path();
        let Some(id) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".key")) else { continue };
        let text = std::fs::read_to_string(&path).map_err(io)?;
        let seed: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| KeyError::Invalid(path.display().to_string()))?;
        keys.insert(id.to_owned(), SigningKey::from_bytes(&seed));
    }
    Ok(keys)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A key ring on a fresh SQLite database in `dir`.
    pub(crate) async fn ring_in(dir: &Path) -> (KeyRing, Arc<dyn MetaStore>) {
        let store: Arc<dyn MetaStore> = Arc::new(
            berth_meta::SqliteMetaStore::open(&dir.join("meta.db"), &berth_meta::DatabaseLimits::default())
                .await
                .expect("store"),
        );
        (KeyRing::open(store.clone(), None).await.expect("keys"), store)
    }

    #[tokio::test]
    async fn keys_persist_and_rotate_across_instances() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ring, store) = ring_in(dir.path()).await;
        let (first, _) = ring.active().expect("a key");
        let other_instance = KeyRing::open(store.clone(), None).await.expect("reopen");
        assert_eq!(other_instance.active().map(|(id, _)| id), Some(first.clone()), "keys are shared");
        let second = ring.rotate(Duration::from_secs(300)).await.expect("rotate");
        assert_ne!(second, first);
        assert_eq!(ring.active().map(|(id, _)| id), Some(second.clone()));
        assert!(ring.verifying(&first).await.is_some(), "the old key still verifies");
        // The other instance finds the rotated key when a token names it.
        assert!(other_instance.verifying(&second).await.is_some());
        // A key is kept while tokens it signed may still be alive.
        other_instance.rotate(Duration::from_secs(300)).await.expect("rotate again");
        ring.reload().await.expect("reload");
        assert!(ring.verifying(&first).await.is_some());
        // Rotations in quick succession each make the newest key the signing one.
        for _ in 0..20 {
            let id = ring.rotate(Duration::from_secs(300)).await.expect("rotate");
            assert_eq!(ring.active().map(|(active, _)| active), Some(id));
        }
        // A key goes once its successor has signed for longer than a token lives (plus a
        // minute): of two ancient keys the older goes, the younger (succeeded just now) stays.
        for (id, created) in [("000000000001000-00000001", 1000), ("000000000002000-00000002", 2000)] {
            store.add_signing_key(id, &[1; 32], created, &[]).await.expect("an ancient key");
        }
        let before = store.signing_keys().await.expect("keys").len();
        ring.rotate(Duration::ZERO).await.expect("rotate");
        let ids: Vec<String> = store.signing_keys().await.expect("keys").into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids.len(), before, "one key in, one out");
        assert!(!ids.contains(&"000000000001000-00000001".to_owned()));
        assert!(ids.contains(&"000000000002000-00000002".to_owned()));
    }

    #[tokio::test]
    async fn file_keys_of_an_older_berth_move_into_the_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        let legacy = dir.path().join("keys");
        std::fs::create_dir(&legacy).expect("mkdir");
        let id = "001700000000000-0a0b0c0d";
        std::fs::write(legacy.join(format!("{id}.key")), hex::encode([7u8; 32])).expect("write");
        let store: Arc<dyn MetaStore> = Arc::new(
            berth_meta::SqliteMetaStore::open(&dir.path().join("meta.db"), &berth_meta::DatabaseLimits::default())
                .await
                .expect("store"),
        );
        let ring = KeyRing::open(store.clone(), Some(&legacy)).await.expect("open");
        assert_eq!(ring.active().map(|(active, _)| active).as_deref(), Some(id));
        assert_eq!(ring.verifying(id).await, Some(SigningKey::from_bytes(&[7u8; 32]).verifying_key()));
        std::fs::write(legacy.join("bad.key"), "not hex").expect("write");
        let again =
            KeyRing::open(store, Some(&legacy)).await.expect("files are read only while the database has no key");
        assert!(again.verifying(id).await.is_some());
    }
}
