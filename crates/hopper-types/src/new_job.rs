//! The enqueue request as it arrives on the wire, its validation, and the validated [`NewJob`]
//! a store inserts.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::{Backoff, JobId, Timestamp};

/// Size and range limits of the semantics document; all configurable.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest serialized `args` (and `result`).
    pub max_args_bytes: usize,
    /// Largest serialized `meta`.
    pub max_meta_bytes: usize,
    /// Largest serialized `progress`.
    pub max_progress_bytes: usize,
    /// Error messages beyond this are truncated.
    pub max_error_message_bytes: usize,
    /// Deepest JSON nesting accepted in a request body.
    pub max_json_depth: usize,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// How long a client has to send a request body, in milliseconds (30 s): a client that
    /// trickles its body would otherwise hold a request open forever.
    pub body_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_args_bytes: 1 << 20,
            max_meta_bytes: 64 << 10,
            max_progress_bytes: 64 << 10,
            max_error_message_bytes: 8 << 10,
            max_json_depth: 64,
            max_body_bytes: 16 << 20,
            body_timeout_ms: 30_000,
        }
    }
}

/// Why a request was refused, naming the field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// Path of the offending field, e.g. `jobs[3].priority`.
    pub field: String,
    /// What is wrong, for a human.
    pub message: String,
    /// True when the value was too big (answered 413), false when it was invalid (400).
    pub too_large: bool,
}

impl ValidationError {
    /// An invalid value.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            message: message.into(),
            too_large: false,
        }
    }

    /// A value over its size limit.
    pub fn too_large(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            message: message.into(),
            too_large: true,
        }
    }

    /// The same error with its field under `prefix` (e.g. `jobs[3]`).
    pub fn under(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

/// Checks a queue or kind name: `^[A-Za-z0-9_.:-]{1,128}$`.
pub fn validate_name(field: &str, name: &str) -> Result<(), ValidationError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::invalid(
            field,
            format!("{field} must match ^[A-Za-z0-9_.:-]{{1,128}}$"),
        ))
    }
}

/// Refuses JSON whose numbers do not fit a 64-bit float (`1e999`): stored as sent, they would
/// make the job unreadable to every client that parses numbers as doubles.
pub fn check_json_numbers(field: &str, value: &RawValue) -> Result<(), ValidationError> {
    let text = value.get().as_bytes();
    // Only an exponent or a very long run of digits can overflow a double; anything else
    // skips the second parse.
    let mut run = 0usize;
    let mut suspicious = false;
    for &b in text {
        if b == b'e' || b == b'E' {
            suspicious = true;
            break;
        }
        run = if b.is_ascii_digit() { run + 1 } else { 0 };
        if run > 300 {
            suspicious = true;
            break;
        }
    }
    if suspicious && serde_json::from_slice::<serde_json::Value>(text).is_err() {
        return Err(ValidationError::invalid(
            field,
            format!("{field} holds a number too large for a 64-bit float"),
        ));
    }
    Ok(())
}

/// A job as a producer asks for it (`POST /v1/jobs`). Unknown fields are refused.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnqueueRequest {
    /// Handler name (required).
    pub kind: String,
    /// Queue name; `default` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Handler arguments; `null` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub args: Option<Box<RawValue>>,
    /// −32768..32767, higher runs first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Not leased before this RFC 3339 time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_at: Option<String>,
    /// Shorthand for `run_at` = now + this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<i64>,
    /// 1..1000, default 25.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<i64>,
    /// Retry delay policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    /// 1 s..7 days, default 30 min.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<i64>,
    /// At most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// At most 32 tags of at most 64 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// A JSON object of at most 64 KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub meta: Option<Box<RawValue>>,
    /// W3C trace context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// Key for the queue's per-key concurrency and rate limits, at most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_key: Option<String>,
    /// Key for a `fair` queue's round robin, at most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairness_key: Option<String>,
    /// Expected run time for a `shortest_first` queue: 0 ms..7 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_ms: Option<i64>,
}

/// When a new job becomes leasable; resolved against the store's clock at insert.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RunAt {
    /// At once.
    Now,
    /// At this time (in the past means now).
    At(Timestamp),
    /// This many milliseconds after the insert.
    After(i64),
}

/// A validated job, ready to insert.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Assigned before insert so batches can be answered in order.
    pub id: JobId,
    /// Tenant.
    pub namespace: String,
    /// Queue name (valid).
    pub queue: String,
    /// Handler name (valid).
    pub kind: String,
    /// Handler arguments (within limits).
    pub args: Box<RawValue>,
    /// −32768..32767.
    pub priority: i32,
    /// When it may first be leased.
    pub run_at: RunAt,
    /// 1..1000.
    pub max_attempts: i32,
    /// Retry delay policy.
    pub backoff: Backoff,
    /// 1 s..7 days.
    pub timeout_ms: i64,
    /// Deduplication key.
    pub idempotency_key: Option<String>,
    /// Labels.
    pub tags: Vec<String>,
    /// Free-form object.
    pub meta: Box<RawValue>,
    /// W3C trace context.
    pub traceparent: Option<String>,
    /// Per-key limit group.
    pub concurrency_key: Option<String>,
    /// Fair-queue group.
    pub fairness_key: Option<String>,
    /// Expected run time.
    pub estimated_ms: Option<i64>,
}

/// Default `max_attempts`.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 25;
/// Default `timeout_ms`: 30 minutes.
pub const DEFAULT_TIMEOUT_MS: i64 = 30 * 60 * 1000;
/// Smallest `timeout_ms`: 1 second.
pub const MIN_TIMEOUT_MS: i64 = 1000;
/// Largest `timeout_ms`: 7 days.
pub const MAX_TIMEOUT_MS: i64 = 7 * 24 * 3_600_000;

fn raw(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_string()).expect("literal JSON is valid")
}

impl EnqueueRequest {
    /// A request for `kind` with JSON `args`, everything else default.
    pub fn new(
        kind: impl Into<String>,
        args: &impl Serialize,
    ) -> Result<EnqueueRequest, serde_json::Error> {
        Ok(EnqueueRequest {
            kind: kind.into(),
            args: Some(serde_json::value::to_raw_value(args)?),
            ..Default::default()
        })
    }

    /// Checks every field against the rules of the semantics document.
    pub fn validate(self, namespace: &str, limits: &Limits) -> Result<NewJob, ValidationError> {
        validate_name("kind", &self.kind)?;
        let queue = self.queue.unwrap_or_else(|| "default".to_string());
        validate_name("queue", &queue)?;

        let args = self.args.unwrap_or_else(|| raw("null"));
        check_json_numbers("args", &args)?;
        if args.get().len() > limits.max_args_bytes {
            return Err(ValidationError::too_large(
                "args",
                format!(
                    "args is {} bytes, over the limit of {}",
                    args.get().len(),
                    limits.max_args_bytes
                ),
            ));
        }

        let priority = match self.priority {
            None => 0,
            Some(p) if (-32768..=32767).contains(&p) => p as i32,
            Some(_) => {
                return Err(ValidationError::invalid(
                    "priority",
                    "priority must be between -32768 and 32767",
                ));
            }
        };

        let run_at = match (self.run_at, self.delay_ms) {
            (Some(_), Some(_)) => {
                return Err(ValidationError::invalid(
                    "delay_ms",
                    "give run_at or delay_ms, not both",
                ));
            }
            (Some(s), None) => match Timestamp::parse_rfc3339(&s) {
                Some(t) => RunAt::At(t),
                None => {
                    return Err(ValidationError::invalid(
                        "run_at",
                        "run_at must be an RFC 3339 time",
                    ));
                }
            },
            (None, Some(ms)) if (0..=crate::backoff::MAX_BACKOFF_MS * 12).contains(&ms) => {
                RunAt::After(ms)
            }
            (None, Some(_)) => {
                return Err(ValidationError::invalid(
                    "delay_ms",
                    "delay_ms must be between 0 and 360 days",
                ));
            }
            (None, None) => RunAt::Now,
        };

        let max_attempts = match self.max_attempts {
            None => DEFAULT_MAX_ATTEMPTS,
            Some(n) if (1..=1000).contains(&n) => n as i32,
            Some(_) => {
                return Err(ValidationError::invalid(
                    "max_attempts",
                    "max_attempts must be between 1 and 1000",
                ));
            }
        };

        let backoff = self.backoff.unwrap_or_default();
        backoff
            .validate()
            .map_err(|(f, m)| ValidationError::invalid(format!("backoff.{f}"), m))?;

        let timeout_ms = match self.timeout_ms {
            None => DEFAULT_TIMEOUT_MS,
            Some(t) if (MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&t) => t,
            Some(_) => {
                return Err(ValidationError::invalid(
                    "timeout_ms",
                    format!("timeout_ms must be between {MIN_TIMEOUT_MS} and {MAX_TIMEOUT_MS}"),
                ));
            }
        };

        if let Some(k) = &self.idempotency_key
            && (k.is_empty() || k.chars().count() > 256)
        {
            return Err(ValidationError::invalid(
                "idempotency_key",
                "idempotency_key must be 1 to 256 characters",
            ));
        }

        let tags = self.tags.unwrap_or_default();
        if tags.len() > 32 {
            return Err(ValidationError::invalid("tags", "at most 32 tags"));
        }
        for (i, t) in tags.iter().enumerate() {
            if t.is_empty() || t.chars().count() > 64 {
                return Err(ValidationError::invalid(
                    format!("tags[{i}]"),
                    "a tag must be 1 to 64 characters",
                ));
            }
        }

        let meta = self.meta.unwrap_or_else(|| raw("{}"));
        check_json_numbers("meta", &meta)?;
        if !meta.get().trim_start().starts_with('{') {
            return Err(ValidationError::invalid(
                "meta",
                "meta must be a JSON object",
            ));
        }
        if meta.get().len() > limits.max_meta_bytes {
            return Err(ValidationError::too_large(
                "meta",
                format!("meta is over the limit of {} bytes", limits.max_meta_bytes),
            ));
        }

        if let Some(tp) = &self.traceparent
            && !is_traceparent(tp)
        {
            return Err(ValidationError::invalid(
                "traceparent",
                "traceparent must be a W3C trace context (00-<32 hex>-<16 hex>-<2 hex>)",
            ));
        }

        for (field, key) in [
            ("concurrency_key", &self.concurrency_key),
            ("fairness_key", &self.fairness_key),
        ] {
            if let Some(k) = key
                && (k.is_empty() || k.chars().count() > 256)
            {
                return Err(ValidationError::invalid(
                    field,
                    format!("{field} must be 1 to 256 characters"),
                ));
            }
        }
        if let Some(ms) = self.estimated_ms
            && !(0..=MAX_TIMEOUT_MS).contains(&ms)
        {
            return Err(ValidationError::invalid(
                "estimated_ms",
                format!("estimated_ms must be between 0 and {MAX_TIMEOUT_MS}"),
            ));
        }

        Ok(NewJob {
            id: JobId::new(),
            namespace: namespace.to_string(),
            queue,
            kind: self.kind,
            args,
            priority,
            run_at,
            max_attempts,
            backoff,
            timeout_ms,
            idempotency_key: self.idempotency_key,
            tags,
            meta,
            traceparent: self.traceparent,
            concurrency_key: self.concurrency_key,
            fairness_key: self.fairness_key,
            estimated_ms: self.estimated_ms,
        })
    }
}

/// `version-traceid-parentid-flags`, lowercase hex, per W3C Trace Context.
fn is_traceparent(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let hex = |p: &str, n: usize| {
        p.len() == n
            && p.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    parts.len() == 4
        && hex(parts[0], 2)
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2)
        && parts[1] != "00000000000000000000000000000000"
}

impl NewJob {
    /// What identifies the content an idempotency key stands for: queue, kind and args
    /// (args compared as JSON values, so key order and spacing do not matter).
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::from_str::<serde_json::Value>(self.args.get())
            .map(|v| v.to_string())
            .unwrap_or_else(|_| self.args.get().to_string());
        let mut h = Sha256::new();
        h.update(self.queue.as_bytes());
        h.update([0]);
        h.update(self.kind.as_bytes());
        h.update([0]);
        h.update(canonical.as_bytes());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Resolves `run_at` against `now`.
    pub fn available_at(&self, now: Timestamp) -> Timestamp {
        match self.run_at {
            RunAt::Now => now,
            RunAt::At(t) => t.max(now),
            RunAt::After(ms) => now.plus_ms(ms),
        }
    }
}

/// Validation under the default namespace: a shorthand for tests and tools.
pub trait EnqueueRequestExt {
    /// `validate(DEFAULT_NAMESPACE, limits)`, panicking on invalid input (tests only).
    fn validate_default(self, limits: &Limits) -> NewJob;
}

impl EnqueueRequestExt for EnqueueRequest {
    fn validate_default(self, limits: &Limits) -> NewJob {
        match self.validate(crate::DEFAULT_NAMESPACE, limits) {
            Ok(j) => j,
            Err(e) => panic!("invalid test job: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> Result<NewJob, ValidationError> {
        let r: EnqueueRequest = serde_json::from_str(json).unwrap();
        r.validate("default", &Limits::default())
    }

    #[test]
    fn numbers_beyond_a_double_are_refused() {
        let raw = |s: &str| RawValue::from_string(s.to_string()).expect("json");
        for bad in [
            r#"{"n":1e999}"#,
            "-1E+400",
            &format!("[{}]", "9".repeat(400)),
        ] {
            assert!(check_json_numbers("args", &raw(bad)).is_err(), "{bad}");
        }
        for good in [
            r#"{"email":"e@x","n":1e300}"#,
            "12345678901234567890123",
            "null",
        ] {
            assert!(check_json_numbers("args", &raw(good)).is_ok(), "{good}");
        }
    }

    #[test]
    fn defaults_apply() {
        let j = req(r#"{"kind":"send_email"}"#).unwrap();
        assert_eq!(j.queue, "default");
        assert_eq!(j.args.get(), "null");
        assert_eq!(j.max_attempts, 25);
        assert_eq!(j.timeout_ms, DEFAULT_TIMEOUT_MS);
        assert_eq!(j.meta.get(), "{}");
    }

    #[test]
    fn out_of_range_fields_are_named() {
        for (body, field) in [
            (r#"{"kind":"a b"}"#, "kind"),
            (r#"{"kind":"k","queue":""}"#, "queue"),
            (r#"{"kind":"k","priority":40000}"#, "priority"),
            (r#"{"kind":"k","max_attempts":0}"#, "max_attempts"),
            (r#"{"kind":"k","timeout_ms":5}"#, "timeout_ms"),
            (r#"{"kind":"k","run_at":"soon"}"#, "run_at"),
            (r#"{"kind":"k","delay_ms":-1}"#, "delay_ms"),
            (r#"{"kind":"k","meta":[1]}"#, "meta"),
            (r#"{"kind":"k","tags":["ok",""]}"#, "tags[1]"),
            (
                r#"{"kind":"k","backoff":{"kind":"fixed","delay_ms":-5}}"#,
                "backoff.delay_ms",
            ),
            (r#"{"kind":"k","traceparent":"nope"}"#, "traceparent"),
            (r#"{"kind":"k","concurrency_key":""}"#, "concurrency_key"),
            (r#"{"kind":"k","fairness_key":""}"#, "fairness_key"),
            (r#"{"kind":"k","estimated_ms":-1}"#, "estimated_ms"),
        ] {
            assert_eq!(req(body).unwrap_err().field, field, "{body}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e =
            serde_json::from_str::<EnqueueRequest>(r#"{"kind":"k","max_attempt":3}"#).unwrap_err();
        assert!(e.to_string().contains("max_attempt"), "{e}");
    }

    #[test]
    fn fingerprint_ignores_key_order_but_not_content() {
        let a = req(r#"{"kind":"k","args":{"a":1,"b":2}}"#).unwrap();
        let b = req(r#"{"kind":"k","args":{"b":2, "a":1}}"#).unwrap();
        let c = req(r#"{"kind":"k","args":{"a":1,"b":3}}"#).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
    }

    #[test]
    fn oversize_args_is_too_large() {
        let limits = Limits {
            max_args_bytes: 10,
            ..Limits::default()
        };
        let r: EnqueueRequest =
            serde_json::from_str(r#"{"kind":"k","args":"0123456789abc"}"#).unwrap();
        let e = r.validate("default", &limits).unwrap_err();
        assert!(e.too_large);
        assert_eq!(e.field, "args");
    }
}
