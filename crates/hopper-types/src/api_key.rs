//! API keys: their roles, the namespaces they see, and their wire format.
//!
//! A key reads `hop_<id>_<secret>`: `id` (16 hex digits) names the key in lists, logs and the
//! audit log; `secret` (64 hex digits, 32 random bytes) is shown once, when the key is created,
//! and only its SHA-256 is stored ([`StoredApiKey::secret_hash`]). A slow password hash buys
//! nothing here: the secret has 256 bits of entropy, so the digest alone cannot be reversed,
//! and the server checks it on every request. Comparison is constant-time.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Timestamp;

/// The prefix of every key: lets secret scanners and people recognise one.
pub const KEY_PREFIX: &str = "hop_";
/// The namespace entry of a key that sees every namespace.
pub const ALL_NAMESPACES: &str = "*";

/// What a key may do. Each role's calls are listed in api-v1.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including keys, queue changes, purges and the audit log.
    Admin,
    /// Enqueues jobs and runs, reads its namespaces' jobs, cancels them.
    Producer,
    /// Leases jobs, heartbeats and acknowledges them, adds steps to its runs; reads.
    Worker,
    /// Reads only.
    Viewer,
}

impl Role {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Producer => "producer",
            Role::Worker => "worker",
            Role::Viewer => "viewer",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "producer" => Some(Role::Producer),
            "worker" => Some(Role::Worker),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// A key as lists and the API show it: everything but its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKey {
    /// 16 hex digits; the `<id>` of `hop_<id>_<secret>`.
    pub id: String,
    /// A label for people ("billing-workers").
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The namespaces it sees; `["*"]` for all.
    pub namespaces: Vec<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// Who created it: a key id, or `bootstrap` / `anonymous`.
    pub created_by: String,
    /// After this it is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// When it was revoked; refused from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
    /// Requests per second this key may make on each node; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_s: Option<u32>,
}

/// Whether a key's namespace list covers `namespace` (`*` covers all).
pub fn namespaces_include(list: &[String], namespace: &str) -> bool {
    list.iter().any(|n| n == ALL_NAMESPACES || n == namespace)
}

/// Whether a key's namespace list covers every namespace.
pub fn namespaces_include_all(list: &[String]) -> bool {
    list.iter().any(|n| n == ALL_NAMESPACES)
}

impl ApiKey {
    /// Whether the key sees `namespace`.
    pub fn sees(&self, namespace: &str) -> bool {
        namespaces_include(&self.namespaces, namespace)
    }

    /// Whether the key sees every namespace.
    pub fn sees_all(&self) -> bool {
        namespaces_include_all(&self.namespaces)
    }

    /// Why the key cannot be used at `now`, if it cannot.
    pub fn unusable_at(&self, now: Timestamp) -> Option<&'static str> {
        if self.revoked_at.is_some() {
            Some("the API key was revoked")
        } else if self.expires_at.is_some_and(|e| e <= now) {
            Some("the API key has expired")
        } else {
            None
        }
    }
}

/// A key as the store keeps it: never the secret, only its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredApiKey {
    /// The key.
    pub key: ApiKey,
    /// SHA-256 of the secret part.
    pub secret_hash: [u8; 32],
}

/// A freshly generated key: the text to hand out once, and what to store.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    /// `hop_<id>_<secret>`: shown once, never stored.
    pub token: String,
    /// The id part.
    pub id: String,
    /// The digest to store.
    pub secret_hash: [u8; 32],
}

/// Makes a new random key.
pub fn generate_key() -> GeneratedKey {
    let mut rng = rand::rng();
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut id);
    rng.fill_bytes(&mut secret);
    let id = hex(&id);
    let secret = hex(&secret);
    GeneratedKey {
        token: format!("{KEY_PREFIX}{id}_{secret}"),
        secret_hash: hash_secret(&secret),
        id,
    }
}

/// Splits `hop_<id>_<secret>` into its id and secret; `None` when it has another shape.
pub fn parse_key(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex_of = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex_of(id, 16) && hex_of(secret, 64)).then_some((id, secret))
}

/// SHA-256 of a key's secret part.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Whether `secret` hashes to `hash`, in time independent of where they differ.
pub fn secret_matches(secret: &str, hash: &[u8; 32]) -> bool {
    let candidate = hash_secret(secret);
    // XOR-fold over the full length: no early exit reveals the first differing byte. The
    // digests are fixed-length, so length is no secret either.
    let diff = candidate
        .iter()
        .zip(hash.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(diff) == 0
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_parses_and_matches_only_its_own_hash() {
        let k = generate_key();
        let (id, secret) = parse_key(&k.token).expect("parses");
        assert_eq!(id, k.id);
        assert!(secret_matches(secret, &k.secret_hash));
        let other = generate_key();
        let (_, other_secret) = parse_key(&other.token).expect("parses");
        assert!(!secret_matches(other_secret, &k.secret_hash));
        // The stored digest is not the secret and does not work as one.
        assert!(!k.token.contains(&hex(&k.secret_hash)));
        assert!(!secret_matches(&hex(&k.secret_hash), &k.secret_hash));
    }

    #[test]
    fn malformed_keys_do_not_parse() {
        for bad in [
            "",
            "hop_",
            "hop_abc_def",
            "xop_0123456789abcdef_0000000000000000000000000000000000000000000000000000000000000000",
            "hop_0123456789abcdeg_0000000000000000000000000000000000000000000000000000000000000000",
            "hop_0123456789abcdef_000000000000000000000000000000000000000000000000000000000000000",
            "hop_0123456789abcdef_0000000000000000000000000000000000000000000000000000000000000000_",
        ] {
            assert!(parse_key(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn usability_follows_revocation_and_expiry() {
        let mut key = ApiKey {
            id: "0123456789abcdef".into(),
            name: "k".into(),
            role: Role::Viewer,
            namespaces: vec!["a".into()],
            created_at: Timestamp(0),
            created_by: "bootstrap".into(),
            expires_at: Some(Timestamp(100)),
            revoked_at: None,
            rate_limit_per_s: None,
        };
        assert!(key.unusable_at(Timestamp(99)).is_none());
        assert!(key.unusable_at(Timestamp(100)).is_some());
        key.expires_at = None;
        key.revoked_at = Some(Timestamp(5));
        assert!(key.unusable_at(Timestamp(0)).is_some());
        assert!(key.sees("a") && !key.sees("b") && !key.sees_all());
    }
}
