//! The one JSON body extractor every endpoint uses, so every endpoint refuses bad input the same
//! way: [`JsonBody`] for required bodies, [`OptionalJsonBody`] for the calls whose body the wire
//! contract makes optional (cancel, retry, pause, resume, a queue's retry).
//!
//! In order, and before any handler code runs:
//! 1. the body is read up to `limits.max_body_bytes` (over it: 413 `too_large`);
//! 2. a non-empty body with a content type other than JSON is refused, so a browser on another
//!    site cannot post a "simple" cross-origin request (a text/plain form) to a local server;
//! 3. nesting deeper than `limits.max_json_depth` is refused by a byte scan, before the parser
//!    could recurse on hostile input;
//! 4. the JSON is parsed with `serde_path_to_error`, so a wrong type, a missing field or an
//!    unknown field (every request struct denies them) names its path, e.g. `jobs[3].priority`.

use axum::body::{Body, HttpBody};
use axum::extract::{FromRequest, Request};
use axum::http::header;
use hopper_types::Limits;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A required JSON body, parsed into `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// An optional JSON body: `None` when the request has no body (or only whitespace).
#[derive(Debug)]
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        match read_json(req, &state.config().limits).await? {
            Some(v) => Ok(JsonBody(v)),
            None => Err(ApiError::invalid("body", "a JSON request body is required")),
        }
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        read_json(req, &state.config().limits)
            .await
            .map(OptionalJsonBody)
    }
}

/// Reads and parses the body; `None` for an empty one.
async fn read_json<T: DeserializeOwned>(
    req: Request,
    limits: &Limits,
) -> Result<Option<T>, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("?").to_string());
    // A client that trickles its body would hold the request (and a connection) forever.
    let within = std::time::Duration::from_millis(limits.body_timeout_ms);
    let bytes = tokio::time::timeout(within, read_limited(req.into_body(), limits.max_body_bytes))
        .await
        .map_err(|_| {
            ApiError::invalid(
                "body",
                format!(
                    "the request body did not arrive within {} ms",
                    limits.body_timeout_ms
                ),
            )
        })??;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if let Some(ct) = content_type
        && !is_json_content_type(&ct)
    {
        return Err(ApiError::invalid(
            "content-type",
            format!("the body must be sent as application/json, not {ct}"),
        ));
    }
    if exceeds_depth(&bytes, limits.max_json_depth) {
        return Err(ApiError::invalid(
            "body",
            format!(
                "JSON is nested deeper than {} levels",
                limits.max_json_depth
            ),
        ));
    }
    parse_json(&bytes).map(Some)
}

/// `application/json`, any `+json` type, with or without parameters.
fn is_json_content_type(ct: &str) -> bool {
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Collects the body, refusing it as soon as it grows past `max` bytes (so a huge chunked upload
/// is never buffered whole).
async fn read_limited(mut body: Body, max: usize) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::too_large(
            "body",
            format!("the request body is over the limit of {max} bytes"),
        )
    };
    if let Some(len) = body.size_hint().exact()
        && len > max as u64
    {
        return Err(too_large());
    }
    let mut buf = Vec::new();
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        let frame = frame.map_err(|e| {
            tracing::debug!(error = %e, "reading a request body failed");
            ApiError::invalid("body", "the request body could not be read")
        })?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > max {
                return Err(too_large());
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf)
}

/// True when `bytes` nests arrays/objects deeper than `max`. Strings are skipped (with their
/// escapes), so brackets inside them do not count. Malformed JSON is left for the parser.
pub fn exceeds_depth(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Parses `bytes` as `T`, naming the path of whatever is wrong.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every request body is an object; serde would also accept a struct as an array of its
    // field values, which no client means to send.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::invalid("body", "the body must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = field_of(&path, &inner);
        ApiError::invalid(field, clean_message(&inner))
    })?;
    de.end()
        .map_err(|e| ApiError::invalid("body", clean_message(&e)))?;
    Ok(value)
}

/// The path to report. Syntax errors concern the body as a whole; for a missing or unknown
/// field serde reports the enclosing object, so the field's own name is appended.
fn field_of(path: &str, e: &serde_json::Error) -> String {
    if !e.is_data() {
        return "body".to_string();
    }
    let base = if path == "." { "" } else { path };
    let msg = e.to_string();
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| msg.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    match named {
        Some(name) if !base.ends_with(name) => {
            if base.is_empty() {
                name.to_string()
            } else {
                format!("{base}.{name}")
            }
        }
        _ if base.is_empty() => "body".to_string(),
        _ => base.to_string(),
    }
}

/// serde_json's message without the "at line 1 column 17" suffix for data errors (the field path
/// says where), kept for syntax errors (where the position is all there is).
fn clean_message(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    if e.is_data() {
        match msg.rfind(" at line ") {
            Some(i) => msg[..i].to_string(),
            None => msg,
        }
    } else {
        format!("malformed JSON: {msg}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[allow(dead_code)]
        priority: i32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        #[allow(dead_code)]
        jobs: Vec<Inner>,
    }

    fn field(json: &str) -> String {
        parse_json::<Outer>(json.as_bytes())
            .unwrap_err()
            .detail
            .field
            .unwrap_or_default()
    }

    #[test]
    fn errors_name_the_path() {
        assert_eq!(
            field(r#"{"jobs":[{"priority":1},{"priority":"x"}]}"#),
            "jobs[1].priority"
        );
        assert_eq!(
            field(r#"{"jobs":[{"priority":1,"prio":2}]}"#),
            "jobs[0].prio"
        );
        assert_eq!(field(r#"{"jobs":[{}]}"#), "jobs[0].priority");
        assert_eq!(field(r#"{"jobz":[]}"#), "jobz");
        assert_eq!(field(r#"{}"#), "jobs");
        assert_eq!(field(r#"{"jobs":["#), "body");
        assert_eq!(field(r#"{"jobs":[]} x"#), "body");
        assert_eq!(field(r#"[1]"#), "body");
    }

    #[test]
    fn raw_values_survive_path_tracking() {
        let r: hopper_types::EnqueueRequest =
            parse_json(br#"{"kind":"k","args":{"a":[1,2]}}"#).unwrap();
        assert_eq!(r.args.unwrap().get(), r#"{"a":[1,2]}"#);
        let e = parse_json::<hopper_types::EnqueueRequest>(br#"{"kind":"k","max_attempt":3}"#)
            .unwrap_err();
        assert_eq!(e.detail.field.as_deref(), Some("max_attempt"));
    }

    #[test]
    fn depth_scan_ignores_strings() {
        assert!(!exceeds_depth(br#"{"a":[[1]]}"#, 3));
        assert!(exceeds_depth(br#"{"a":[[[1]]]}"#, 3));
        assert!(!exceeds_depth(br#"{"a":"[[[[[\"[["}"#, 1));
        let deep = "[".repeat(10_000);
        assert!(exceeds_depth(deep.as_bytes(), 64));
    }

    #[test]
    fn json_content_types() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("Application/JSON; charset=utf-8"));
        assert!(is_json_content_type("application/vnd.hopper+json"));
        assert!(!is_json_content_type("text/plain"));
        assert!(!is_json_content_type("application/x-www-form-urlencoded"));
    }
}
