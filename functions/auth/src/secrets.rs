//! Secret material: passwords (argon2id), one-time codes, refresh tokens and backup codes.
//! Everything secret is stored hashed and compared in constant time.

use std::sync::LazyLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::{Rng, RngCore};
use subtle::ConstantTimeEq;

/// OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane (SPEC §3.2).
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("static argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes on a blocking thread: argon2id is deliberately CPU-heavy.
pub async fn hash_password(password: impl Into<String>) -> Result<String, String> {
    let password: String = password.into();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

pub async fn verify_password(password: impl Into<String>, phc: String) -> bool {
    let password: String = password.into();
    tokio::task::spawn_blocking(move || match PasswordHash::new(&phc) {
        Ok(parsed) => argon2().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    })
    .await
    .unwrap_or(false)
}

/// A hash of nothing in particular, verified against for unknown logins so that an unknown
/// login costs the same time as a wrong password.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    argon2().hash_password(b"dummy password for timing", &salt).map(|h| h.to_string()).unwrap_or_default()
});

pub async fn burn_password_check(password: impl Into<String>) {
    let _ = verify_password(password, DUMMY_HASH.clone()).await;
}

/// Warms the dummy hash at start-up so the first unknown login is not faster than later ones.
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

/// A 6-digit one-time code from the OS CSPRNG.
pub fn new_code() -> String {
    format!("{:06}", OsRng.gen_range(0..1_000_000u32))
}

/// Codes are bound to their flow: the same digits in another flow hash differently.
pub fn code_hash(flow_id: &str, code: &str) -> String {
    crate::store::sha256_hex(&format!("{flow_id}:{code}"))
}

pub fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// An opaque token of `bytes` random bytes, base64url.
pub fn random_token(bytes: usize) -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(bytes))
}

pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    OsRng.fill_bytes(&mut buf);
    buf
}

/// Ten backup codes `xxxx-xxxx` (digits), shown once; only their hashes are kept.
pub fn new_backup_codes() -> Vec<String> {
    (0..10).map(|_| format!("{:04}-{:04}", OsRng.gen_range(0..10_000u32), OsRng.gen_range(0..10_000u32))).collect()
}

/// Keyed with the server's index key and salted with the account, so the 10^8 possible codes
/// cannot be tried against a dump of the store.
pub fn backup_code_hash(key: &shared::keys::IndexKey, user_id: &str, code: &str) -> String {
    let digits: String = code.chars().filter(char::is_ascii_digit).collect();
    key.mac_hex("backup_code", &format!("{user_id}:{digits}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn password_hash_is_argon2id_with_policy_parameters_and_verifies() {
        let phc = hash_password("Верный-пароль-9").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("Верный-пароль-9", phc.clone()).await);
        assert!(!verify_password("Неверный-пароль-9", phc).await);
    }

    #[test]
    fn codes_are_six_digits_and_bound_to_their_flow() {
        for _ in 0..200 {
            let code = new_code();
            assert_eq!(code.len(), 6);
            assert!(code.chars().all(|c| c.is_ascii_digit()));
        }
        assert_ne!(code_hash("flow-a", "123456"), code_hash("flow-b", "123456"));
    }

    #[test]
    fn refresh_tokens_carry_at_least_256_bits() {
        let token = random_token(32);
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), 32);
        assert_ne!(token, random_token(32));
    }

    #[test]
    fn backup_codes_hash_the_same_with_or_without_dash() {
        let codes = new_backup_codes();
        assert_eq!(codes.len(), 10);
        let key = shared::keys::IndexKey::from_base64(&shared::keys::IndexKey::generate_base64()).unwrap();
        assert_eq!(backup_code_hash(&key, "u1", &codes[0]), backup_code_hash(&key, "u1", &codes[0].replace('-', "")));
        assert_ne!(backup_code_hash(&key, "u1", &codes[0]), backup_code_hash(&key, "u2", &codes[0]), "salted by account");
        assert_ne!(backup_code_hash(&key, "u1", &codes[0]), crate::store::sha256_hex(&format!("backup:{}", codes[0].replace('-', ""))), "not plain SHA-256");
    }
}
