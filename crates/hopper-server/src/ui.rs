//! The web UI: the files of the repository's `web/` directory, embedded in the binary at
//! compile time and served at `/` (the page) and `/ui/...` (its scripts, styles and the
//! vendored chart library). Nothing is built or fetched at run time.
//!
//! The UI routes in the page's URL fragment (`/#/jobs?state=dead`), so every deep link loads
//! the same `/` and the server needs no catch-all. Each file carries a strong `ETag` (a hash of
//! its bytes) and `Cache-Control: no-cache`: browsers revalidate on every load and get a
//! `304` until the binary changes, so a new release is never hidden behind a cached script.
//!
//! The page is sent with a strict Content-Security-Policy: scripts, styles and connections from
//! this server only, no inline scripts or handlers, no `eval`. The UI is written to need
//! nothing more, and the browser tests fail on any violation it would log.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Embeds `web/<path>` for each path given, as `(path, bytes)`.
macro_rules! assets {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/", $path)) as &[u8])),*]
    };
}

/// Every file of `web/`, by its path under it (a unit test keeps this list complete).
static ASSETS: &[(&str, &[u8])] = assets![
    "index.html",
    "favicon.svg",
    "app.css",
    "theme.js",
    "js/main.js",
    "js/api.js",
    "js/live.js",
    "js/dom.js",
    "js/format.js",
    "js/charts.js",
    "js/keys.js",
    "js/session.js",
    "js/pages/overview.js",
    "js/pages/jobs.js",
    "js/pages/job.js",
    "js/pages/dead.js",
    "js/pages/queues.js",
    "js/pages/queue.js",
    "js/pages/schedules.js",
    "js/pages/workflows.js",
    "js/pages/workflow.js",
    "js/pages/audit.js",
    "vendor/uPlot.iife.min.js",
    "vendor/uPlot.min.css",
    "vendor/uPlot.LICENSE",
];

/// The policy the page runs under. `connect-src 'self'` covers the API and the event stream;
/// `style-src 'self'` still lets scripts set element styles (CSSOM), which is how the charts
/// size themselves.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /`: the UI's page.
pub async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /ui/{*path}`: one file of the UI.
pub async fn asset(path: Result<Path<String>, PathRejection>, headers: HeaderMap) -> Response {
    match path {
        Ok(Path(p)) => serve(&p, &headers),
        Err(_) => ApiError::not_found("no such file").into_response(),
    }
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|(p, _)| *p == path) else {
        return ApiError::not_found("no such file").into_response();
    };
    let bytes = ASSETS[i].1;
    let etag = &etags()[i];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, bytes).into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if path.ends_with(".html") {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    resp
}

/// The content type of a file, by extension. Scripts must be JavaScript for the browser to run
/// them as modules (and `nosniff` makes it strict about it).
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        _ => "text/plain; charset=utf-8",
    }
}

/// One strong ETag per asset, in [`ASSETS`] order, computed once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|(_, b)| format!("\"{:016x}\"", fnv1a(b)))
            .collect()
    })
}

/// 64-bit FNV-1a: a stable content hash (the standard library's hasher may change between
/// releases, which would only cost a revalidation, but a fixed function keeps ETags comparable
/// across builds of the same files).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn web_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web")
    }

    fn files_under(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files_under(&path, base, out);
            } else {
                let rel = path.strip_prefix(base).unwrap().to_string_lossy();
                out.push(rel.replace('\\', "/"));
            }
        }
    }

    fn text(path: &str) -> &'static str {
        let (_, bytes) = ASSETS.iter().find(|(p, _)| *p == path).unwrap();
        std::str::from_utf8(bytes).unwrap()
    }

    #[test]
    fn every_web_file_is_embedded() {
        let mut found = Vec::new();
        files_under(&web_dir(), &web_dir(), &mut found);
        for f in &found {
            assert!(
                ASSETS.iter().any(|(p, _)| p == f),
                "web/{f} is not listed in ui.rs ASSETS"
            );
        }
        assert_eq!(found.len(), ASSETS.len(), "ASSETS lists a file twice");
    }

    #[test]
    fn page_has_no_inline_code_or_foreign_origins() {
        let html = text("index.html");
        for (i, _) in html.match_indices("<script") {
            let tag = &html[i..i + html[i..].find('>').unwrap()];
            assert!(tag.contains(" src="), "inline script: {tag}");
        }
        assert!(!html.contains("<style"), "inline style element");
        assert!(!html.contains("style="), "inline style attribute");
        for (p, bytes) in ASSETS {
            if p.starts_with("vendor/") {
                continue;
            }
            let s = std::str::from_utf8(bytes).unwrap();
            for bad in [
                "http://",
                "https://",
                "//cdn",
                "eval(",
                "new Function",
                "innerHTML",
            ] {
                // The SVG namespace URI is an identifier, not a fetch.
                let allowed = bad == "http://"
                    && s.matches(bad).count() == s.matches("http://www.w3.org/").count();
                assert!(allowed || !s.contains(bad), "web/{p} contains `{bad}`");
            }
            assert!(
                !regex_like_handler(s),
                "web/{p} has an inline event handler attribute"
            );
        }
    }

    /// ` onclick=`-style attributes in markup (the UI attaches listeners from its modules).
    fn regex_like_handler(s: &str) -> bool {
        s.match_indices(" on").any(|(i, _)| {
            let rest = &s[i + 3..];
            let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            name_len > 0 && rest[name_len..].starts_with("=\"")
        })
    }

    #[test]
    fn etags_are_stable_and_distinct() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        let tags = etags();
        assert_eq!(tags.len(), ASSETS.len());
        assert!(tags.iter().all(|t| t.len() == 18 && t.starts_with('"')));
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("js/main.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(
            content_type("vendor/uPlot.min.css"),
            "text/css; charset=utf-8"
        );
        assert_eq!(
            content_type("vendor/uPlot.LICENSE"),
            "text/plain; charset=utf-8"
        );
    }
}
