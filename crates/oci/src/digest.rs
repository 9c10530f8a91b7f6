//! Content digests (`algorithm:encoded`) and the streaming hasher that produces them.
//!
//! Grammar (OCI image-spec): `algorithm ::= component ([+._-] component)*`, `component ::=
//! [a-z0-9]+`, `encoded ::= [a-zA-Z0-9=_-]+`. Berth verifies content with sha256 and sha512;
//! any other well-formed algorithm is reported as unsupported rather than malformed.

use std::fmt;

use sha2::digest::common::hazmat::{SerializableState, SerializedState};
use sha2::{Digest as _, Sha256, Sha512};

/// Longest digest string accepted at all; sha512 needs 135 characters.
const MAX_DIGEST_LEN: usize = 255;

/// Version tag stored next to a serialized hash state: the sha2 crate only promises the
/// serialized form to be stable within one minor release.
pub const HASH_STATE_FORMAT: &str = "sha2-0.11";

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn encoded_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    /// Parses a registered algorithm name (`sha256`, `sha512`).
    pub fn parse(name: &str) -> Result<Algorithm, DigestError> {
        match name {
            "sha256" => Ok(Algorithm::Sha256),
            "sha512" => Ok(Algorithm::Sha512),
            other if is_algorithm_grammar(other) => Err(DigestError::Unsupported(other.to_owned())),
            _ => Err(DigestError::Malformed(format!("invalid digest algorithm {name:?}"))),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("{0}")]
    Malformed(String),
    #[error("digest algorithm {0:?} is not supported (use sha256 or sha512)")]
    Unsupported(String),
}

/// A verified-syntax digest such as `sha256:e3b0…`. Ordering is the lexical order of the
/// string form, which is what listings sort by.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    full: String,
    algorithm: Algorithm,
}

impl Digest {
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        if s.len() > MAX_DIGEST_LEN {
            return Err(DigestError::Malformed("digest is too long".into()));
        }
        let Some((algorithm, encoded)) = s.split_once(':') else {
            return Err(DigestError::Malformed(format!("digest {s:?} has no algorithm prefix")));
        };
        if encoded.is_empty() || !encoded.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
        {
            return Err(DigestError::Malformed(format!("digest {s:?} has an invalid encoded part")));
        }
        let algorithm = Algorithm::parse(algorithm)?;
        if encoded.len() != algorithm.encoded_len() || !encoded.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(DigestError::Malformed(format!(
                "a {algorithm} digest needs {} lowercase hex characters",
                algorithm.encoded_len()
            )));
        }
        Ok(Digest { full: s.to_owned(), algorithm })
    }

    /// The digest of `bytes` under `algorithm`.
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut hasher = Hasher::new(algorithm);
        hasher.update(bytes);
        hasher.finish()
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The encoded (hex) part after the colon.
    pub fn hex(&self) -> &str {
        &self.full[self.algorithm.as_str().len() + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.full
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.full)
    }
}

impl std::str::FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

fn is_algorithm_grammar(s: &str) -> bool {
    !s.is_empty()
        && s.split(['+', '.', '_', '-'])
            .all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

/// An incremental hasher for one of the supported algorithms whose state can be saved
/// between requests (a chunked upload spans many) and restored later.
#[derive(Clone)]
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha512(_) => Algorithm::Sha512,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self {
            Hasher::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finalize())),
            Hasher::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize())),
        };
        Digest { full: format!("{algorithm}:{hex}"), algorithm }
    }

    /// The hasher's internal state, to be stored with [`HASH_STATE_FORMAT`].
    pub fn save_state(&self) -> Vec<u8> {
        match self {
            Hasher::Sha256(h) => h.serialize().to_vec(),
            Hasher::Sha512(h) => h.serialize().to_vec(),
        }
    }

    /// Restores a state saved by [`Hasher::save_state`]; `None` when the bytes are not a
    /// valid state for `algorithm` (the caller then re-hashes the data instead).
    pub fn restore(algorithm: Algorithm, state: &[u8]) -> Option<Hasher> {
        match algorithm {
            Algorithm::Sha256 => {
                let state = SerializedState::<Sha256>::try_from(state).ok()?;
                Sha256::deserialize(&state).ok().map(Hasher::Sha256)
            }
            Algorithm::Sha512 => {
                let state = SerializedState::<Sha512>::try_from(state).ok()?;
                Sha512::deserialize(&state).ok().map(Hasher::Sha512)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EMPTY_SHA256: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_computes_sha256() {
        let d = Digest::parse(EMPTY_SHA256).expect("valid");
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d, Digest::of(Algorithm::Sha256, b""));
        assert_eq!(d.hex().len(), 64);
    }

    #[test]
    fn sha512_round_trips() {
        let d = Digest::of(Algorithm::Sha512, b"abc");
        assert!(d.as_str().starts_with("sha512:ddaf35a1"));
        assert_eq!(Digest::parse(d.as_str()).expect("valid"), d);
    }

    #[test]
    fn rejects_bad_digests() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            "sha256:abc",
            "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85z",
            ":abc",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855/x",
        ] {
            assert!(matches!(Digest::parse(bad), Err(DigestError::Malformed(_))), "{bad:?}");
        }
        assert!(matches!(Digest::parse("sha384:abcd"), Err(DigestError::Unsupported(_))));
        assert!(matches!(
            Digest::parse("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8"),
            Err(DigestError::Unsupported(_))
        ));
    }

    #[test]
    fn saved_state_resumes_hashing() {
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let mut h = Hasher::new(algorithm);
            h.update(b"hello ");
            let state = h.save_state();
            let mut resumed = Hasher::restore(algorithm, &state).expect("state restores");
            resumed.update(b"world");
            assert_eq!(resumed.finish(), Digest::of(algorithm, b"hello world"));
            assert!(Hasher::restore(algorithm, &state[1..]).is_none());
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,300}") {
            let _ = Digest::parse(&s);
        }

        #[test]
        fn display_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64), split in 0usize..64) {
            let d = Digest::of(Algorithm::Sha256, &bytes);
            prop_assert_eq!(Digest::parse(&d.to_string()).expect("valid"), d.clone());
            let split = split.min(bytes.len());
            let mut h = Hasher::new(Algorithm::Sha256);
            h.update(&bytes[..split]);
            let mut h = Hasher::restore(Algorithm::Sha256, &h.save_state()).expect("restores");
            h.update(&bytes[split..]);
            prop_assert_eq!(h.finish(), d);
        }
    }
}
