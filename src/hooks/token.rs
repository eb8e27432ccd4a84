//! Deploy hook tokens: `dh_<id>_<secret>`.
//!
//! The id is public (it finds the hook, and may be logged); the secret is
//! 32 random bytes, base64url without padding. hoist keeps the id and the
//! SHA-256 of the secret, so its database deploys nothing if it leaks. A
//! plain hash is enough (no password hashing): the secret is 256 random
//! bits, not something a person chose, so there is nothing to guess.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PREFIX: &str = "dh_";
/// 9 random bytes: 12 base64url characters, 72 bits, so two hooks'
/// ids never meet, and short enough to read.
const ID_BYTES: usize = 9;
const ID_CHARS: usize = 12;
const SECRET_BYTES: usize = 32;
const SECRET_CHARS: usize = 43;

/// A new token, to be shown once.
pub struct IssuedToken {
    pub id: String,
    secret: String,
}

impl IssuedToken {
    /// A token from the system's random generator.
    pub fn generate() -> anyhow::Result<Self> {
        let random = SystemRandom::new();
        let mut id = [0u8; ID_BYTES];
        let mut secret = [0u8; SECRET_BYTES];
        random
            .fill(&mut id)
            .and_then(|()| random.fill(&mut secret))
            .map_err(|_| anyhow::anyhow!("the system's random generator failed"))?;
        Ok(Self {
            id: URL_SAFE_NO_PAD.encode(id),
            secret: URL_SAFE_NO_PAD.encode(secret),
        })
    }

    /// The whole token, as CI sends it.
    pub fn token(&self) -> String {
        format!("{PREFIX}{}_{}", self.id, self.secret)
    }

    /// What hoist keeps instead of the secret.
    pub fn secret_sha256(&self) -> String {
        sha256_hex(&self.secret)
    }
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IssuedToken({}, [REDACTED])", self.id)
    }
}

/// A token as a caller sent it, split into its parts.
pub struct PresentedToken<'a> {
    pub id: &'a str,
    secret: &'a str,
}

impl<'a> PresentedToken<'a> {
    /// `None` for anything that is not shaped like a token. The parts
    /// have fixed lengths: base64url has `_` in its alphabet, so the
    /// separators alone cannot split it.
    pub fn parse(token: &'a str) -> Option<Self> {
        let rest = token.strip_prefix(PREFIX)?;
        if rest.len() != ID_CHARS + 1 + SECRET_CHARS || !rest.is_ascii() {
            return None;
        }
        let (id, rest) = rest.split_at(ID_CHARS);
        let secret = rest.strip_prefix('_')?;
        let url_safe = |part: &str| {
            part.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        (url_safe(id) && url_safe(secret)).then_some(Self { id, secret })
    }

    /// Whether the secret is the one whose SHA-256 hoist keeps, compared
    /// in constant time so the answer's timing tells nothing about it.
    pub fn matches(&self, secret_sha256: &str) -> bool {
        sha256_hex(self.secret)
            .as_bytes()
            .ct_eq(secret_sha256.as_bytes())
            .into()
    }
}

impl std::fmt::Debug for PresentedToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PresentedToken({}, [REDACTED])", self.id)
    }
}

fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_token_parses_back_and_matches_its_own_hash_only() {
        let issued = IssuedToken::generate().expect("random");
        let other = IssuedToken::generate().expect("random");
        let token = issued.token();
        assert_eq!(token.len(), PREFIX.len() + ID_CHARS + 1 + SECRET_CHARS);
        let presented = PresentedToken::parse(&token).expect("a token");
        assert_eq!(presented.id, issued.id);
        assert!(presented.matches(&issued.secret_sha256()));
        assert!(!presented.matches(&other.secret_sha256()));
        assert!(!presented.matches(""));
        assert_ne!(issued.id, other.id);
    }

    #[test]
    fn the_hash_is_not_the_secret_and_debug_hides_it() {
        let issued = IssuedToken::generate().expect("random");
        let token = issued.token();
        let secret = &token[token.len() - SECRET_CHARS..];
        assert!(!issued.secret_sha256().contains(secret));
        assert!(!format!("{issued:?}").contains(secret));
        let presented = PresentedToken::parse(&token).expect("a token");
        assert!(!format!("{presented:?}").contains(secret));
    }

    #[test]
    fn anything_else_is_not_a_token() {
        let good = IssuedToken::generate().expect("random").token();
        let cut = &good[..good.len() - 1];
        let longer = format!("{good}A");
        let wrong_prefix = good.replacen("dh_", "dk_", 1);
        let no_separator = format!("{}X{}", &good[..15], &good[16..]);
        let bad_char = format!("{}+{}", &good[..20], &good[21..]);
        let non_ascii = format!("{}é{}", &good[..20], &good[22..]);
        for bad in [
            "",
            "dh_",
            "secret",
            cut,
            &longer,
            &wrong_prefix,
            &no_separator,
            &bad_char,
            &non_ascii,
        ] {
            assert!(PresentedToken::parse(bad).is_none(), "{bad:?}");
        }
    }
}
