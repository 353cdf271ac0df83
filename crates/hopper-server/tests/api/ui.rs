//! The web UI's files: served at `/` and `/ui/...` with their content types, an ETag that
//! answers `304` when unchanged, and a strict Content-Security-Policy on the page.

use crate::common::TestServer;

fn header<'a>(r: &'a crate::common::Resp, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn page_and_assets_are_served_with_types_and_policy() {
    let s = TestServer::start().await;
    let page = s.get("/").await.expect(200);
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    let csp = header(&page, "content-security-policy");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    let html = page.body.as_str().unwrap();
    assert!(html.contains(r#"<script type="module" src="/ui/js/main.js"></script>"#));

    for (path, ty) in [
        ("/ui/js/main.js", "text/javascript; charset=utf-8"),
        ("/ui/js/pages/jobs.js", "text/javascript; charset=utf-8"),
        ("/ui/app.css", "text/css; charset=utf-8"),
        (
            "/ui/vendor/uPlot.iife.min.js",
            "text/javascript; charset=utf-8",
        ),
        ("/ui/vendor/uPlot.min.css", "text/css; charset=utf-8"),
        ("/ui/favicon.svg", "image/svg+xml"),
    ] {
        let r = s.get(path).await.expect(200);
        assert_eq!(header(&r, "content-type"), ty, "{path}");
        assert_eq!(header(&r, "cache-control"), "no-cache", "{path}");
    }
    let head = s.send(s.client.head(s.url("/"))).await.expect(200);
    assert!(!header(&head, "etag").is_empty());
}

#[tokio::test]
async fn etag_revalidation_answers_not_modified() {
    let s = TestServer::start().await;
    let first = s.get("/ui/js/main.js").await.expect(200);
    let etag = header(&first, "etag").to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let again = s
        .send(
            s.client
                .get(s.url("/ui/js/main.js"))
                .header("if-none-match", &etag),
        )
        .await
        .expect(304);
    assert_eq!(header(&again, "etag"), etag);
    assert!(again.body.is_null());
    // Another file has another tag, and a stale tag gets the file.
    let other = s.get("/ui/app.css").await.expect(200);
    assert_ne!(header(&other, "etag"), etag);
    s.send(
        s.client
            .get(s.url("/ui/app.css"))
            .header("if-none-match", &etag),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn unknown_files_are_json_not_found() {
    let s = TestServer::start().await;
    s.get("/ui/nope.js")
        .await
        .expect_error(404, "not_found", None);
    // Only embedded files exist: no path reaches the file system.
    s.get("/ui/%2e%2e/Cargo.toml")
        .await
        .expect_error(404, "not_found", None);
    s.get("/ui/").await.expect_error(404, "not_found", None);
    s.post_raw("/", "", None)
        .await
        .expect_error(405, "method_not_allowed", None);
}
