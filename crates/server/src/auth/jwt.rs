//! Registry tokens: compact JWS (JWT) signed with Ed25519 ("EdDSA"), as the Docker token
//! specification describes. Only Berth verifies them, so exactly one algorithm is accepted:
//! `alg: none`, HMAC or anything else is refused before any signature work.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer};
use serde::{Deserialize, Serialize};

use super::keys::KeyRing;

const ISSUER: &str = "berth";
/// Clock skew tolerated on `nbf` and `exp`, in seconds.
const LEEWAY: i64 = 30;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Access {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// Who the token was issued to, so requests need no lookup to know.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Subject {
    pub kind: String,
    pub id: i64,
    #[serde(default)]
    pub superuser: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub access: Vec<Access>,
    pub berth: Subject,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    kid: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("unsupported token algorithm")]
    Algorithm,
    #[error("token signed by an unknown key")]
    UnknownKey,
    #[error("bad token signature")]
    Signature,
    #[error("token expired or not yet valid")]
    Expired,
    #[error("token issued for another service")]
    Audience,
    #[error("no signing key")]
    NoKey,
}

pub fn sign(keys: &KeyRing, claims: &Claims) -> Result<String, TokenError> {
    let (kid, key) = keys.active().ok_or(TokenError::NoKey)?;
    let header = Header { alg: "EdDSA".into(), typ: Some("JWT".into()), kid };
    let signing_input = format!("{}.{}", base64_json(&header), base64_json(claims));
    let signature = key.sign(signing_input.as_bytes());
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes())))
}

/// Verifies signature, issuer, audience and validity window; returns the claims.
pub async fn verify(keys: &KeyRing, token: &str, audience: &str, now: i64) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|_| TokenError::Malformed);
    let header: Header = serde_json::from_slice(&decode(header)?).map_err(|_| TokenError::Malformed)?;
    if header.alg != "EdDSA" {
        return Err(TokenError::Algorithm);
    }
    let key = keys.verifying(&header.kid).await.ok_or(TokenError::UnknownKey)?;
    let signature: [u8; 64] = decode(signature)?.try_into().map_err(|_| TokenError::Signature)?;
    let signing_input = &token[..token.len() - token.rsplit('.').next().map_or(0, str::len) - 1];
    key.verify_strict(signing_input.as_bytes(), &Signature::from_bytes(&signature))
        .map_err(|_| TokenError::Signature)?;
    let claims: Claims = serde_json::from_slice(&decode(payload)?).map_err(|_| TokenError::Malformed)?;
    if claims.iss != ISSUER {
        return Err(TokenError::Malformed);
    }
    if claims.aud != audience {
        return Err(TokenError::Audience);
    }
    if now + LEEWAY < claims.nbf || now - LEEWAY >= claims.exp {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

pub fn issuer() -> &'static str {
    ISSUER
}

fn base64_json(value: &impl Serialize) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::tests::ring_in;

    fn claims(now: i64) -> Claims {
        Claims {
            iss: ISSUER.into(),
            sub: "alice".into(),
            aud: "berth".into(),
            exp: now + 300,
            nbf: now,
            iat: now,
            jti: "1".into(),
            access: vec![Access { kind: "repository".into(), name: "acme/app".into(), actions: vec!["pull".into()] }],
            berth: Subject { kind: "user".into(), id: 7, superuser: false },
        }
    }

    fn forge(header: &str, payload: &Claims, signature: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).expect("json")),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    #[tokio::test]
    async fn round_trip_and_refusals() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (keys, _) = ring_in(dir.path()).await;
        let now = 1_800_000_000;
        let token = sign(&keys, &claims(now)).expect("sign");
        assert_eq!(verify(&keys, &token, "berth", now).await, Ok(claims(now)));
        assert_eq!(verify(&keys, &token, "other", now).await, Err(TokenError::Audience));
        assert_eq!(verify(&keys, &token, "berth", now + 400).await, Err(TokenError::Expired));
        assert_eq!(verify(&keys, &token, "berth", now - 400).await, Err(TokenError::Expired));
        // Tampered payload: the signature no longer matches.
        let mut tampered = claims(now);
        tampered.access[0].actions.push("push".into());
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&tampered).expect("json")),
            parts[2]
        );
        assert_eq!(verify(&keys, &forged, "berth", now).await, Err(TokenError::Signature));
        // alg none, HMAC, unknown key, garbage.
        let kid = keys.active().expect("key").0;
        assert_eq!(
            verify(&keys, &forge(&format!(r#"{{"alg":"none","kid":"{kid}"}}"#), &claims(now), b""), "berth", now).await,
            Err(TokenError::Algorithm)
        );
        assert_eq!(
            verify(&keys, &forge(&format!(r#"{{"alg":"HS256","kid":"{kid}"}}"#), &claims(now), b"x"), "berth", now)
                .await,
            Err(TokenError::Algorithm)
        );
        assert_eq!(
            verify(&keys, &forge(r#"{"alg":"EdDSA","kid":"nope"}"#, &claims(now), &[0; 64]), "berth", now).await,
            Err(TokenError::UnknownKey)
        );
        // Signed by a key this registry does not have.
        let other_dir = tempfile::tempdir().expect("tempdir");
        let (other, _) = ring_in(other_dir.path()).await;
        let foreign = sign(&other, &claims(now)).expect("sign");
        assert!(matches!(verify(&keys, &foreign, "berth", now).await, Err(TokenError::UnknownKey)));
        for garbage in ["", "a.b", "a.b.c.d", "!!!.???.***"] {
            assert!(verify(&keys, garbage, "berth", now).await.is_err(), "{garbage}");
        }
    }
}
