//! Webhooks: per-namespace subscriptions to job events, and how deliveries are signed.
//!
//! A delivery is an HTTP POST of a JSON body with the headers
//! `Hopper-Webhook-Id`, `Hopper-Delivery-Id` and
//! `Hopper-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//! A receiver recomputes the HMAC over the timestamp and the raw body, compares in constant
//! time, refuses timestamps older than its tolerance (5 minutes is the documented default), and
//! remembers delivery ids it has accepted within that window to refuse replays.

use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::api_key::hex;
use crate::{JobState, Timestamp, ValidationError};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Hopper-Signature";
/// The header naming the subscription.
pub const WEBHOOK_ID_HEADER: &str = "Hopper-Webhook-Id";
/// The header naming the delivery (the same on every retry of it).
pub const DELIVERY_ID_HEADER: &str = "Hopper-Delivery-Id";
/// Largest `url`.
pub const MAX_URL_LEN: usize = 2048;

/// A subscription as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Webhook {
    /// Its id (a UUID, simple form).
    pub id: String,
    /// The namespace whose events it receives.
    pub namespace: String,
    /// Where deliveries are posted.
    pub url: String,
    /// The job states whose entry is delivered (`dead`, `completed`, ...).
    pub events: Vec<JobState>,
    /// The signing secret (hex); shown when the webhook is created and to admins.
    pub secret: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// The last event-log position it has dispatched.
    pub cursor: i64,
}

/// The body of `POST /v1/webhooks`. Unknown fields are refused.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    /// `http://` or `https://` URL deliveries are posted to.
    pub url: String,
    /// Job states whose entry is delivered; at least one.
    pub events: Vec<JobState>,
}

impl WebhookRequest {
    /// The subscription it asks for in `namespace`, starting after event `cursor`, with a
    /// fresh id and secret.
    pub fn validate(
        self,
        namespace: &str,
        now: Timestamp,
        cursor: i64,
    ) -> Result<Webhook, ValidationError> {
        if self.url.len() > MAX_URL_LEN {
            return Err(ValidationError::invalid("url", "url is too long"));
        }
        let scheme_ok = (self.url.starts_with("http://") && self.url.len() > 7)
            || (self.url.starts_with("https://") && self.url.len() > 8);
        if !scheme_ok
            || self
                .url
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ValidationError::invalid(
                "url",
                "url must be an http:// or https:// URL",
            ));
        }
        if self.events.is_empty() {
            return Err(ValidationError::invalid(
                "events",
                "events must name at least one job state",
            ));
        }
        let mut events = self.events;
        events.sort_by_key(|s| s.as_str());
        events.dedup();
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        Ok(Webhook {
            id: uuid::Uuid::now_v7().simple().to_string(),
            namespace: namespace.to_string(),
            url: self.url,
            events,
            secret: hex(&secret),
            created_at: now,
            cursor,
        })
    }
}

/// The `Hopper-Signature` value of `body` sent at `unix_seconds`.
pub fn sign(secret: &str, unix_seconds: i64, body: &[u8]) -> String {
    format!(
        "t={unix_seconds},v1={}",
        hex(&mac(secret, unix_seconds, body))
    )
}

/// Checks a `Hopper-Signature` value against `body` the way a receiver should: the HMAC must
/// match (constant-time) and the timestamp must be within `tolerance_s` of `now_unix_s`.
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now_unix_s: i64,
    tolerance_s: i64,
) -> Result<(), SignatureError> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = Some(v),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err(SignatureError::Malformed);
    };
    let mut m =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| SignatureError::Malformed)?;
    m.update(format!("{t}.").as_bytes());
    m.update(body);
    let given = unhex(v1).ok_or(SignatureError::Malformed)?;
    m.verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch)?;
    if (now_unix_s - t).abs() > tolerance_s {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not `t=...,v1=...`.
    #[error("malformed signature header")]
    Malformed,
    /// The body or timestamp was changed, or the secret is another.
    #[error("signature does not match")]
    Mismatch,
    /// Signed too long ago (or in the future): possibly a replay.
    #[error("signature timestamp outside the tolerance")]
    Stale,
}

fn mac(secret: &str, unix_seconds: i64, body: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length, so this cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    m.update(format!("{unix_seconds}.").as_bytes());
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_tampering_or_age_is_detected() {
        let body = br#"{"event":"job.dead"}"#;
        let sig = sign("s3cret", 1_000, body);
        assert_eq!(verify("s3cret", &sig, body, 1_010, 300), Ok(()));
        assert_eq!(
            verify("s3cret", &sig, br#"{"event":"job.done"}"#, 1_010, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("other", &sig, body, 1_010, 300),
            Err(SignatureError::Mismatch)
        );
        // A replay an hour later carries the old timestamp.
        assert_eq!(
            verify("s3cret", &sig, body, 4_600, 300),
            Err(SignatureError::Stale)
        );
        // Changing the timestamp breaks the MAC.
        let forged = sig.replace("t=1000", "t=4600");
        assert_eq!(
            verify("s3cret", &forged, body, 4_600, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("s3cret", "v1=zz", body, 1_000, 300),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn requests_are_validated() {
        let ok = WebhookRequest {
            url: "https://example.test/hook".into(),
            events: vec![JobState::Dead, JobState::Dead],
        }
        .validate("a", Timestamp(0), 7)
        .expect("valid");
        assert_eq!(ok.events, vec![JobState::Dead]);
        assert_eq!(ok.secret.len(), 64);
        assert_eq!(ok.cursor, 7);
        for (url, events) in [
            ("ftp://x", vec![JobState::Dead]),
            ("https://", vec![JobState::Dead]),
            ("https://x y", vec![JobState::Dead]),
            ("https://x", vec![]),
        ] {
            let r = WebhookRequest {
                url: url.into(),
                events,
            };
            assert!(r.validate("a", Timestamp(0), 0).is_err(), "{url}");
        }
    }
}
