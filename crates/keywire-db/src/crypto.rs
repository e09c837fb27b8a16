//! Encryption at rest: XChaCha20-Poly1305 with a random 24-byte nonce per value.
//!
//! A stored value reads `kw1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`. The key id (a
//! hash of the key) says which master key sealed it, for rotation and for a clear error when
//! the configured key is not the one the data was written with. The associated data binds the
//! ciphertext to its row (`<table>/<row id>`), so a ciphertext copied into another row does
//! not decrypt.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sha2::Digest;
use zeroize::Zeroizing;

use crate::db::transaction;
use crate::schema::{encryption_keys, entries, entry_versions, integrations};
use crate::tokens::now;
use crate::{Db, DbError};

const FORMAT: &str = "kw1";
const CHECK_PLAINTEXT: &[u8] = b"keywire master key check";

/// A master key, ready to seal and open values. Debug never shows the key.
#[derive(Clone)]
pub struct Cipher {
    aead: XChaCha20Poly1305,
    key_id: String,
    hash_key: [u8; 32],
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cipher")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// A value that could not be decrypted. Says why, never what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The master key is not 32 bytes of base64.
    #[error("the master key must be 32 bytes, base64-encoded (got {0})")]
    BadKey(String),
    /// The value was sealed with another master key.
    #[error("sealed with master key {found}, but the configured key is {configured}")]
    WrongKey {
        /// The key id in the value.
        found: String,
        /// The configured key's id.
        configured: String,
    },
    /// The value is not in the stored format, was altered, or belongs to another row.
    #[error("the stored value is damaged or belongs to another row")]
    Damaged,
}

impl Cipher {
    /// A cipher from 32 raw key bytes.
    pub fn from_bytes(key: &[u8]) -> Result<Cipher, CryptoError> {
        if key.len() != 32 {
            return Err(CryptoError::BadKey(format!("{} bytes", key.len())));
        }
        let aead = XChaCha20Poly1305::new_from_slice(key)
            .map_err(|_| CryptoError::BadKey("an unusable key".into()))?;
        let mut hasher = sha2::Sha256::new();
        hasher.update(b"keywire key id\0");
        hasher.update(key);
        let digest = hasher.finalize();
        let key_id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let mut hasher = sha2::Sha256::new();
        hasher.update(b"keywire value hash key\0");
        hasher.update(key);
        let hash_key = hasher.finalize().into();
        Ok(Cipher {
            aead,
            key_id,
            hash_key,
        })
    }

    /// A cipher from base64 (standard or URL-safe) of 32 bytes: `KEYWIRE_MASTER_KEY`.
    pub fn from_base64(encoded: &str) -> Result<Cipher, CryptoError> {
        let trimmed = encoded.trim();
        let bytes = Zeroizing::new(
            STANDARD
                .decode(trimmed)
                .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed.trim_end_matches('=')))
                .map_err(|_| CryptoError::BadKey("text that is not base64".into()))?,
        );
        Cipher::from_bytes(&bytes)
    }

    /// 32 fresh random bytes, base64-encoded: a new master key.
    pub fn generate_base64() -> Zeroizing<String> {
        let mut key = Zeroizing::new([0_u8; 32]);
        getrandom::fill(key.as_mut_slice())
            .expect("the operating system's random generator failed");
        Zeroizing::new(STANDARD.encode(key.as_slice()))
    }

    /// A keyed hash of `value` in `context` (hex): lets a sync tell whether a value changed
    /// without keeping it. Without the master key it says nothing about the value (no
    /// dictionary attack on short secrets); a new master key changes every hash, which costs
    /// one rewrite of each synced key.
    pub fn value_hash(&self, context: &str, value: &str) -> String {
        let mut hasher = sha2::Sha256::new();
        hasher.update(self.hash_key);
        hasher.update((context.len() as u64).to_be_bytes());
        hasher.update(context.as_bytes());
        hasher.update(value.as_bytes());
        let digest = hasher.finalize();
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The key's id (16 hex digits of a hash of the key).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Seals `plaintext` for the row named by `aad` (`entry_versions/<id>`).
    pub fn seal(&self, plaintext: &[u8], aad: &str) -> String {
        let mut nonce = [0_u8; 24];
        getrandom::fill(&mut nonce).expect("the operating system's random generator failed");
        let sealed = self
            .aead
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 seals any message that fits in memory");
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&sealed);
        format!("{FORMAT}:{}:{}", self.key_id, URL_SAFE_NO_PAD.encode(blob))
    }

    /// Opens a value sealed by [`Cipher::seal`] for the same `aad`.
    pub fn open(&self, stored: &str, aad: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let mut parts = stored.splitn(3, ':');
        let (Some(FORMAT), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(CryptoError::Damaged);
        };
        if key_id != self.key_id {
            return Err(CryptoError::WrongKey {
                found: key_id.to_owned(),
                configured: self.key_id.clone(),
            });
        }
        let blob = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| CryptoError::Damaged)?;
        if blob.len() < 24 + 16 {
            return Err(CryptoError::Damaged);
        }
        let (nonce, sealed) = blob.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().map_err(|_| CryptoError::Damaged)?;
        self.aead
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Damaged)
    }

    /// Opens a value as UTF-8 text.
    pub fn open_text(&self, stored: &str, aad: &str) -> Result<Zeroizing<String>, CryptoError> {
        let bytes = self.open(stored, aad)?;
        String::from_utf8(bytes.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Damaged)
    }
}

impl Db {
    /// Checks at start-up that `cipher` is a key this database knows, or records it when the
    /// database has none yet. Fails with a message naming both key ids (never the keys) when
    /// the data was encrypted with another key.
    ///
    /// # Errors
    ///
    /// [`DbError::Config`] for a key that does not match the data, or any other [`DbError`].
    pub async fn check_master_key(&self, cipher: &Cipher) -> Result<(), DbError> {
        let key_id = cipher.key_id().to_owned();
        let check = cipher.seal(CHECK_PLAINTEXT, "encryption_keys/check");
        let known: Vec<(String, String)> = transaction!(self, |conn| {
            let known: Vec<(String, String)> = encryption_keys::table
                .select((encryption_keys::key_id, encryption_keys::check_value))
                .load(conn)
                .await?;
            if known.is_empty() {
                diesel::insert_into(encryption_keys::table)
                    .values((
                        encryption_keys::key_id.eq(&key_id),
                        encryption_keys::check_value.eq(&check),
                        encryption_keys::created_at.eq(now()),
                    ))
                    .execute(conn)
                    .await?;
            }
            Ok(known)
        })?;
        if known.is_empty() {
            return Ok(());
        }
        match known.iter().find(|(id, _)| *id == key_id) {
            Some((_, value))
                if cipher
                    .open(value, "encryption_keys/check")
                    .is_ok_and(|p| p.as_slice() == CHECK_PLAINTEXT) =>
            {
                Ok(())
            }
            Some(_) => Err(DbError::Config(format!(
                "the check value of master key {key_id} does not decrypt"
            ))),
            None => Err(DbError::Config(format!(
                "the configured master key (id {key_id}) is not the key this database was encrypted with (id {}); \
                 set KEYWIRE_MASTER_KEY to that key",
                known
                    .iter()
                    .map(|(id, _)| id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

/// What a master key rotation re-encrypted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotated {
    /// Secret values (every version).
    pub secret_values: usize,
    /// Integration settings.
    pub integrations: usize,
}

impl Db {
    /// Re-encrypts every sealed value (secret versions, integration settings, the key check)
    /// from `old` to `new`, in one transaction: either everything moves to the new key or
    /// nothing does. No server may run against the database meanwhile.
    ///
    /// # Errors
    ///
    /// [`DbError::Config`] when `old` is not the database's key or a value does not open
    /// with it (naming the row, never its content), or any other [`DbError`].
    pub async fn rotate_master_key(&self, old: &Cipher, new: &Cipher) -> Result<Rotated, DbError> {
        self.check_master_key(old).await?;
        let check = new.seal(CHECK_PLAINTEXT, "encryption_keys/check");
        let new_id = new.key_id().to_owned();
        transaction!(self, |conn| {
            let mut rotated = Rotated::default();
            let secrets: Vec<(String, String)> = entry_versions::table
                .inner_join(entries::table)
                .filter(entries::kind.eq("secret"))
                .select((entry_versions::id, entry_versions::value))
                .load(conn)
                .await?;
            for (id, value) in secrets {
                let aad = format!("entry_versions/{id}");
                let clear = old.open(&value, &aad).map_err(|why| {
                    DbError::Config(format!(
                        "secret version {id} does not open with the old key: {why}"
                    ))
                })?;
                diesel::update(entry_versions::table.find(&id))
                    .set(entry_versions::value.eq(new.seal(&clear, &aad)))
                    .execute(conn)
                    .await?;
                rotated.secret_values += 1;
            }
            let settings: Vec<(String, String)> = integrations::table
                .select((integrations::id, integrations::metadata))
                .load(conn)
                .await?;
            for (id, sealed) in settings {
                let aad = format!("integrations/{id}");
                let clear = old.open(&sealed, &aad).map_err(|why| {
                    DbError::Config(format!(
                        "the settings of integration {id} do not open with the old key: {why}"
                    ))
                })?;
                diesel::update(integrations::table.find(&id))
                    .set(integrations::metadata.eq(new.seal(&clear, &aad)))
                    .execute(conn)
                    .await?;
                rotated.integrations += 1;
            }
            diesel::delete(encryption_keys::table).execute(conn).await?;
            diesel::insert_into(encryption_keys::table)
                .values((
                    encryption_keys::key_id.eq(&new_id),
                    encryption_keys::check_value.eq(&check),
                    encryption_keys::created_at.eq(now()),
                ))
                .execute(conn)
                .await?;
            Ok(rotated)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_bound_to_the_row() {
        let cipher = Cipher::from_base64(&Cipher::generate_base64()).unwrap();
        let sealed = cipher.seal(b"hunter2", "entry_versions/a");
        assert!(!sealed.contains("hunter2"));
        assert!(sealed.starts_with(&format!("kw1:{}:", cipher.key_id())));
        assert_eq!(
            cipher.open(&sealed, "entry_versions/a").unwrap().as_slice(),
            b"hunter2"
        );
        assert_eq!(
            cipher.open(&sealed, "entry_versions/b").unwrap_err(),
            CryptoError::Damaged
        );
        assert_ne!(
            cipher.seal(b"hunter2", "entry_versions/a"),
            sealed,
            "fresh nonce each time"
        );
        let mut tampered = sealed.clone();
        tampered.replace_range(sealed.len() - 3.., "AAA");
        assert_eq!(
            cipher.open(&tampered, "entry_versions/a").unwrap_err(),
            CryptoError::Damaged
        );
    }

    #[test]
    fn another_key_is_named_by_id_only() {
        let one = Cipher::from_bytes(&[1; 32]).unwrap();
        let two = Cipher::from_bytes(&[2; 32]).unwrap();
        let err = two.open(&one.seal(b"x", "r"), "r").unwrap_err();
        assert!(matches!(err, CryptoError::WrongKey { .. }));
        assert!(Cipher::from_base64("c2hvcnQ=").is_err());
        assert!(Cipher::from_base64("not base64 at all!").is_err());
        assert!(!format!("{one:?}").contains("0101"));
    }
}
