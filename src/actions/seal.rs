//! Secrets at rest: what integrations hand back (a database URL) is kept
//! in the store sealed, never in plain text.
//!
//! A sealed value is `1 || nonce || ciphertext+tag`: a format version
//! byte, a fresh random 96-bit nonce, and the plaintext encrypted and
//! authenticated with ChaCha20-Poly1305 (ring). The caller's `context`
//! is the AEAD's associated data: it is not stored, but opening needs the
//! same bytes, so a value sealed for one deployment's action cannot be
//! passed off as another's.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox};

/// The only format so far; a new one gets a new byte.
const VERSION: u8 = 1;

const KEY_LEN: usize = 32;

/// Poly1305's tag, appended to the ciphertext.
const TAG_LEN: usize = 16;

/// The shortest sealed value: a version, a nonce and the tag of an empty
/// plaintext.
const MIN_SEALED_LEN: usize = 1 + NONCE_LEN + TAG_LEN;

/// Why a sealed value cannot be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("a sealed value cannot be read: it is too short to be one")]
    TooShort,
    #[error("a sealed value cannot be read: its format ({0}) is not one this hoist knows")]
    UnknownVersion(u8),
    #[error("a sealed value cannot be read: sealed with another key or altered")]
    Rejected,
}

/// The 32-byte key values are sealed with. Zeroed when dropped, and never
/// printed.
pub struct SealKey(SecretBox<[u8; KEY_LEN]>);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey([REDACTED])")
    }
}

impl SealKey {
    /// A key written as 64 hexadecimal characters (what `openssl rand
    /// -hex 32` prints). The error never repeats the text: it is a key.
    pub fn from_hex(text: &str) -> Result<Self, String> {
        // Decoded straight into the box, so no copy is left behind.
        let mut key = SecretBox::new(Box::new([0; KEY_LEN]));
        hex::decode_to_slice(text.trim(), key.expose_secret_mut()).map_err(|_| {
            "a seal key must be 64 hexadecimal characters (32 bytes), as `openssl rand -hex 32` prints"
                .to_owned()
        })?;
        Ok(Self(key))
    }

    /// A fresh key from the operating system's generator.
    ///
    /// # Panics
    /// If the operating system cannot give random bytes, when nothing can
    /// be sealed safely anyway.
    pub fn random() -> Self {
        let mut key = SecretBox::new(Box::new([0; KEY_LEN]));
        fill_random(key.expose_secret_mut());
        Self(key)
    }

    /// `plaintext` encrypted and authenticated, bound to `context`.
    ///
    /// # Panics
    /// If the operating system cannot give random bytes for the nonce.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        let mut nonce = [0; NONCE_LEN];
        fill_random(&mut nonce);
        let mut sealed = Vec::with_capacity(MIN_SEALED_LEN + plaintext.len());
        sealed.push(VERSION);
        sealed.extend_from_slice(&nonce);
        let mut ciphertext = plaintext.to_vec();
        self.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut ciphertext,
            )
            // ring refuses only plaintexts of more than 256 GiB.
            .expect("a plaintext hoist seals is small enough for ChaCha20-Poly1305");
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// The plaintext of what [`seal`](Self::seal) made with this key and
    /// the same `context`.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, SealError> {
        let (&version, rest) = sealed.split_first().ok_or(SealError::TooShort)?;
        if version != VERSION {
            return Err(SealError::UnknownVersion(version));
        }
        if sealed.len() < MIN_SEALED_LEN {
            return Err(SealError::TooShort);
        }
        let (nonce, ciphertext) = rest
            .split_at_checked(NONCE_LEN)
            .ok_or(SealError::TooShort)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::TooShort)?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = self
            .aead()
            .open_in_place(nonce, Aad::from(context), &mut in_out)
            .map_err(|_| SealError::Rejected)?;
        Ok(plaintext.to_vec())
    }

    /// ring's key, made for each call: for ChaCha20 that costs nothing,
    /// and the key bytes stay only in the box that zeroes them.
    fn aead(&self) -> LessSafeKey {
        let key = UnboundKey::new(&CHACHA20_POLY1305, self.0.expose_secret())
            .expect("a seal key is 32 bytes, ChaCha20-Poly1305's key length");
        LessSafeKey::new(key)
    }
}

fn fill_random(bytes: &mut [u8]) {
    SystemRandom::new()
        .fill(bytes)
        .expect("the operating system gives random bytes");
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const CONTEXT: &[u8] = b"acme/api#12/branch-db";

    fn key() -> SealKey {
        SealKey::from_hex(KEY).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_with_its_key_and_context() {
        let sealed = key().seal(b"postgres://user:pw@db/branch", CONTEXT);
        assert_eq!(sealed[0], VERSION);
        assert_eq!(sealed.len(), MIN_SEALED_LEN + 28);
        assert!(
            !sealed.windows(8).any(|window| window == b"postgres"),
            "the plaintext is not in the sealed value"
        );
        assert_eq!(
            key().open(&sealed, CONTEXT).unwrap(),
            b"postgres://user:pw@db/branch"
        );
        let empty = key().seal(b"", CONTEXT);
        assert_eq!(key().open(&empty, CONTEXT).unwrap(), b"");
    }

    #[test]
    fn two_seals_of_the_same_text_differ() {
        let key = key();
        assert_ne!(key.seal(b"secret", CONTEXT), key.seal(b"secret", CONTEXT));
    }

    #[test]
    fn any_flipped_bit_is_refused() {
        let key = key();
        let sealed = key.seal(b"secret", CONTEXT);
        // The version byte is read first; every other byte is authenticated.
        for at in 1..sealed.len() {
            let mut altered = sealed.clone();
            altered[at] ^= 0x01;
            assert_eq!(
                key.open(&altered, CONTEXT),
                Err(SealError::Rejected),
                "byte {at}"
            );
        }
        let mut versioned = sealed;
        versioned[0] = 2;
        assert_eq!(
            key.open(&versioned, CONTEXT),
            Err(SealError::UnknownVersion(2))
        );
    }

    #[test]
    fn another_context_or_key_is_refused() {
        let sealed = key().seal(b"secret", CONTEXT);
        assert_eq!(
            key().open(&sealed, b"acme/api#13/branch-db"),
            Err(SealError::Rejected)
        );
        assert_eq!(
            SealKey::random().open(&sealed, CONTEXT),
            Err(SealError::Rejected)
        );
        assert_eq!(
            SealError::Rejected.to_string(),
            "a sealed value cannot be read: sealed with another key or altered"
        );
    }

    #[test]
    fn short_or_garbage_input_is_refused_without_panicking() {
        let key = key();
        let sealed = key.seal(b"secret", CONTEXT);
        for len in 0..sealed.len() {
            assert!(key.open(&sealed[..len], CONTEXT).is_err(), "length {len}");
        }
        assert_eq!(key.open(&[], CONTEXT), Err(SealError::TooShort));
        assert_eq!(key.open(&[1; 28], CONTEXT), Err(SealError::TooShort));
        assert_eq!(key.open(&[1; 29], CONTEXT), Err(SealError::Rejected));
        assert_eq!(
            key.open(&[0xff; 64], CONTEXT),
            Err(SealError::UnknownVersion(0xff))
        );
    }

    #[test]
    fn a_key_is_64_hex_characters_and_never_shown() {
        assert!(
            SealKey::from_hex(&format!("  {KEY}\n")).is_ok(),
            "a trailing newline is fine"
        );
        for bad in [
            "",
            "00",
            &KEY[..62],
            &format!("{KEY}00"),
            &KEY.replace('0', "g"),
        ] {
            let error = SealKey::from_hex(bad).unwrap_err();
            assert!(error.contains("64 hexadecimal characters"), "{error}");
            assert!(bad.len() < 8 || !error.contains(bad), "{error}");
        }
        assert_eq!(format!("{:?}", key()), "SealKey([REDACTED])");
        let other = SealKey::random();
        assert!(key().open(&other.seal(b"x", CONTEXT), CONTEXT).is_err());
    }
}
