//! The web UI's session: the key a person logged in with, held in a cookie the page's scripts
//! cannot read, and the CSRF token that proves a state-changing request came from the page.
//!
//! - `hopper_session` holds the key itself: `HttpOnly` (no script reads it), `SameSite=Strict`
//!   (no other site's page sends it), `Secure` when the server speaks TLS, and it lasts
//!   `session_ttl`. Holding the key rather than a server-side session id means revoking the
//!   key ends its sessions on every node at once, and the store keeps nothing usable.
//! - `hopper_csrf` is a random token the page reads and echoes in `X-CSRF-Token` on every
//!   request that changes state (double-submit): a forged cross-site request can make the
//!   browser send the cookies but cannot read the token to put it in a header.

use axum::http::{HeaderMap, HeaderValue, header};

/// The session cookie.
pub const SESSION_COOKIE: &str = "hopper_session";
/// The CSRF cookie.
pub const CSRF_COOKIE: &str = "hopper_csrf";
/// The header echoing the CSRF cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of cookie `name` in the request, if sent.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the request's `X-CSRF-Token` equals its CSRF cookie (both present, non-empty).
pub fn csrf_ok(headers: &HeaderMap) -> bool {
    let Some(cookie) = cookie(headers, CSRF_COOKIE) else {
        return false;
    };
    let Some(sent) = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    !cookie.is_empty()
        && cookie.len() == sent.len()
        && cookie
            .bytes()
            .zip(sent.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The `Set-Cookie` values that start a session with `key` and `csrf`.
pub fn start_cookies(key: &str, csrf: &str, ttl_s: u64, secure: bool) -> [HeaderValue; 2] {
    let secure = if secure { "; Secure" } else { "" };
    let session = format!(
        "{SESSION_COOKIE}={key}; Path=/; Max-Age={ttl_s}; HttpOnly; SameSite=Strict{secure}"
    );
    let csrf = format!("{CSRF_COOKIE}={csrf}; Path=/; Max-Age={ttl_s}; SameSite=Strict{secure}");
    [session, csrf].map(|c| {
        HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("hopper_session="))
    })
}

/// The `Set-Cookie` values that end a session.
pub fn end_cookies(secure: bool) -> [HeaderValue; 2] {
    let secure = if secure { "; Secure" } else { "" };
    [
        format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}"),
        format!("{CSRF_COOKIE}=; Path=/; Max-Age=0; SameSite=Strict{secure}"),
    ]
    .map(|c| HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("x=")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn cookies_are_found_among_others() {
        let h = headers(&[("cookie", "a=1; hopper_session=hop_x; hopper_csrf=abc")]);
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("hop_x"));
        assert_eq!(cookie(&h, CSRF_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), None);
    }

    #[test]
    fn csrf_needs_the_header_to_echo_the_cookie() {
        assert!(csrf_ok(&headers(&[
            ("cookie", "hopper_csrf=abc"),
            ("x-csrf-token", "abc")
        ])));
        assert!(!csrf_ok(&headers(&[("cookie", "hopper_csrf=abc")])));
        assert!(!csrf_ok(&headers(&[
            ("cookie", "hopper_csrf=abc"),
            ("x-csrf-token", "abd")
        ])));
        assert!(!csrf_ok(&headers(&[("x-csrf-token", "abc")])));
        assert!(!csrf_ok(&headers(&[
            ("cookie", "hopper_csrf="),
            ("x-csrf-token", "")
        ])));
    }

    #[test]
    fn session_cookies_carry_the_protections() {
        let [s, c] = start_cookies("hop_k", "t", 60, true);
        let s = s.to_str().expect("ascii");
        assert!(s.contains("HttpOnly") && s.contains("SameSite=Strict") && s.contains("Secure"));
        let c = c.to_str().expect("ascii");
        assert!(!c.contains("HttpOnly") && c.contains("SameSite=Strict"));
        let [s, _] = start_cookies("hop_k", "t", 60, false);
        assert!(!s.to_str().expect("ascii").contains("Secure"));
    }
}
