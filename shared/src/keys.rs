//! Ed25519 signing keys for access tokens: a key ring whose first key signs and whose other
//! keys are still published and accepted, so keys rotate without logging anyone out.
//!
//! Serialized form (env `JWT_SIGNING_KEYS`, or `DATA_DIR/jwt-keys.json` on the embedded default):
//! `{"keys": [{"kid": "...", "pkcs8": "<base64 PKCS#8 v2 Ed25519 private key>"}, ...]}`.
//! Rotation: prepend a new key, deploy, and drop the oldest once tokens signed by it expired (15 min).

use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key ring is empty")]
    Empty,
    #[error("malformed key ring: {0}")]
    Malformed(String),
    #[error("key ring file: {0}")]
    Io(#[from] std::io::Error),
}

pub struct SigningKey {
    pub kid: String,
    pub encoding: jsonwebtoken::EncodingKey,
    /// Raw 32-byte Ed25519 public key.
    pub public: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct KeyRing {
    keys: Vec<SigningKey>,
}

#[derive(Serialize, Deserialize)]
struct StoredRing {
    keys: Vec<StoredKey>,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    pkcs8: String,
}

impl KeyRing {
    pub fn from_json(json: &str) -> Result<Self, KeyError> {
        let stored: StoredRing = serde_json::from_str(json).map_err(|e| KeyError::Malformed(e.to_string()))?;
        let keys = stored
            .keys
            .into_iter()
            .map(|k| {
                let der = STANDARD.decode(k.pkcs8.trim()).map_err(|e| KeyError::Malformed(format!("kid {}: {e}", k.kid)))?;
                let pair = Ed25519KeyPair::from_pkcs8(&der).map_err(|e| KeyError::Malformed(format!("kid {}: {e}", k.kid)))?;
                Ok(SigningKey { kid: k.kid, public: pair.public_key().as_ref().to_vec(), encoding: jsonwebtoken::EncodingKey::from_ed_der(&der) })
            })
            .collect::<Result<Vec<_>, KeyError>>()?;
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Self { keys })
    }

    /// A fresh ring of one key, serialized; used for dev data dirs and by ops tooling.
    pub fn generate_json() -> Result<String, KeyError> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Malformed("key generation failed".into()))?;
        let stored = StoredRing { keys: vec![StoredKey { kid: ulid::Ulid::new().to_string().to_lowercase(), pkcs8: STANDARD.encode(doc.as_ref()) }] };
        serde_json::to_string_pretty(&stored).map_err(|e| KeyError::Malformed(e.to_string()))
    }

    /// Loads `path`, creating it with a new key (mode 0600) when absent.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        if !path.exists() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let json = Self::generate_json()?;
            write_private(path, json.as_bytes())?;
        }
        Self::from_json(&std::fs::read_to_string(path)?)
    }

    pub fn current(&self) -> &SigningKey {
        &self.keys[0]
    }

    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// The public JWK set (RFC 8037 OKP keys) for `/.well-known/jwks.json`.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self
            .keys
            .iter()
            .map(|k| serde_json::json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": k.kid, "x": URL_SAFE_NO_PAD.encode(&k.public)}))
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

/// The server secret that keys lookup hashes and backup-code hashes (HMAC-SHA256), so a dump
/// of the store cannot be reversed by hashing candidates: every phone number, every SNILS and
/// every 8-digit backup code are few enough to enumerate. Env `INDEX_KEY` (base64 of 32 bytes,
/// the template's `IndexKey`), or `DATA_DIR/index-key` generated on the embedded default.
/// It cannot rotate without re-keying the login index, unlike the JWT key ring.
pub struct IndexKey([u8; 32]);

impl std::fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IndexKey(..)")
    }
}

impl IndexKey {
    pub fn from_base64(encoded: &str) -> Result<Self, KeyError> {
        let bytes = STANDARD.decode(encoded.trim()).map_err(|_| KeyError::Malformed("INDEX_KEY is not base64".into()))?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Malformed("INDEX_KEY must be 32 bytes".into()))?;
        Ok(Self(key))
    }

    /// A fresh key, base64; for dev data dirs and ops tooling.
    pub fn generate_base64() -> String {
        let mut key = [0u8; 32];
        aws_lc_rs::rand::fill(&mut key).expect("the system RNG works");
        STANDARD.encode(key)
    }

    /// Loads `path`, creating it with a new key (mode 0600) when absent.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        if !path.exists() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            write_private(path, Self::generate_base64().as_bytes())?;
        }
        Self::from_base64(&std::fs::read_to_string(path)?)
    }

    /// HMAC-SHA256 of `data` under this key, separated by `purpose`, as lower-case hex.
    pub fn mac_hex(&self, purpose: &str, data: &str) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(data.as_bytes());
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

/// Constant-time equality of two strings (hashes, tokens, fingerprints).
pub fn ct_eq_str(a: &str, b: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ring_round_trips_and_publishes_okp_keys() {
        let json = KeyRing::generate_json().unwrap();
        let ring = KeyRing::from_json(&json).unwrap();
        let jwks = ring.jwks();
        assert_eq!(jwks["keys"][0]["kty"], "OKP");
        assert_eq!(jwks["keys"][0]["kid"], ring.current().kid.as_str());
        assert_eq!(URL_SAFE_NO_PAD.decode(jwks["keys"][0]["x"].as_str().unwrap()).unwrap().len(), 32);
    }

    #[test]
    fn index_macs_depend_on_the_key_and_the_purpose() {
        let (a, b) = (IndexKey::from_base64(&IndexKey::generate_base64()).unwrap(), IndexKey::from_base64(&IndexKey::generate_base64()).unwrap());
        assert_eq!(a.mac_hex("login", "+79990000000"), a.mac_hex("login", "+79990000000"));
        assert_ne!(a.mac_hex("login", "+79990000000"), b.mac_hex("login", "+79990000000"));
        assert_ne!(a.mac_hex("login", "12345678"), a.mac_hex("backup", "12345678"));
        assert!(IndexKey::from_base64("c2hvcnQ=").is_err());
    }

    #[test]
    fn empty_or_corrupt_rings_are_refused() {
        assert!(matches!(KeyRing::from_json(r#"{"keys": []}"#), Err(KeyError::Empty)));
        assert!(KeyRing::from_json(r#"{"keys": [{"kid": "a", "pkcs8": "AAAA"}]}"#).is_err());
    }
}
