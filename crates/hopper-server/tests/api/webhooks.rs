//! Signed webhooks end to end: a real receiver on a loopback socket gets a POST per matching
//! job event, signed as docs/security.md says; the documented recipe verifies it, and a
//! tampered body or a replay of an old delivery is caught; a receiver that is down gets the
//! delivery again, with backoff, until it answers 2xx, and the delivery log shows each try.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::common::{TestServer, test_config};

/// What the receiver got: each delivery's headers and raw body.
#[derive(Clone, Default)]
struct Received {
    deliveries: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    // Answers 503 to this many deliveries first (a receiver that is down).
    failures_left: Arc<Mutex<u32>>,
}

async fn receiver(failures: u32) -> (String, Received) {
    let got = Received::default();
    *got.failures_left.lock().expect("lock") = failures;
    let state = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move {
                state.deliveries.lock().expect("lock").push((headers, body));
                let mut left = state.failures_left.lock().expect("lock");
                if *left > 0 {
                    *left -= 1;
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), got)
}

/// The receiver's side of docs/security.md, step by step: split the header, recompute
/// HMAC-SHA256(secret, "<t>.<raw body>"), compare in constant time, refuse old timestamps.
fn verify_as_documented(
    secret: &str,
    header: &str,
    body: &[u8],
    now_s: i64,
) -> Result<(), &'static str> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = Some(v.to_string()),
            _ => {}
        }
    }
    let (t, v1) = t.zip(v1).ok_or("malformed")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| "key")?;
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected: Vec<u8> = (0..v1.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&v1[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| "malformed")?;
    mac.verify_slice(&expected).map_err(|_| "mismatch")?;
    if (now_s - t).abs() > 300 {
        return Err("stale");
    }
    Ok(())
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

async fn wait_for<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn fast_webhooks() -> hopper_server::ServerConfig {
    let mut config = test_config();
    config.webhooks.dispatch_interval = Duration::from_millis(50);
    config.webhooks.retry_base_ms = 100;
    config.webhooks.retry_cap_ms = 400;
    // The receivers of these tests listen on loopback.
    config.webhooks.allow_private_targets = true;
    config
}

async fn complete_one(s: &TestServer, queue: &str) -> String {
    let (id, token) = s.enqueue_and_lease(queue, "k").await;
    s.post(
        &format!("/v1/jobs/{id}/complete"),
        json!({"lease_token": token}),
    )
    .await
    .expect(200);
    id
}

#[tokio::test]
async fn deliveries_are_signed_and_the_documented_recipe_verifies_them() {
    let s = TestServer::start_with(fast_webhooks(), None).await;
    let (url, got) = receiver(0).await;
    let created = s
        .post("/v1/webhooks", json!({"url": url, "events": ["completed"]}))
        .await
        .expect(201);
    let secret = created.body["secret"].as_str().expect("secret").to_string();
    let hook_id = created.body["id"].as_str().expect("id").to_string();
    assert_eq!(secret.len(), 64);
    // The list never shows the secret again.
    let listed = s.get("/v1/webhooks").await.expect(200);
    assert!(!listed.body.to_string().contains(&secret));

    let job = complete_one(&s, "hooked").await;
    // Another namespace's completion is not this webhook's business.
    s.send(
        s.client
            .post(s.url("/v1/jobs"))
            .header("x-hopper-namespace", "elsewhere")
            .json(&json!({"kind": "k", "queue": "hooked"})),
    )
    .await
    .expect(201);

    let (headers, body) = wait_for("the delivery", async || {
        got.deliveries.lock().expect("lock").first().cloned()
    })
    .await;
    let signature = headers["hopper-signature"].to_str().expect("ascii");
    verify_as_documented(&secret, signature, &body, now_s()).expect("the recipe verifies it");
    let payload: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(payload["event"], "job.completed");
    assert_eq!(payload["job"]["id"], job);
    assert_eq!(payload["namespace"], "default");
    assert_eq!(headers["hopper-webhook-id"], hook_id.as_str());
    assert_eq!(
        headers["hopper-delivery-id"].to_str().expect("ascii"),
        payload["delivery_id"].as_str().expect("id")
    );

    // Tampering with the body or the timestamp is caught; so is the wrong secret.
    let mut tampered = body.to_vec();
    tampered.extend_from_slice(b" ");
    assert_eq!(
        verify_as_documented(&secret, signature, &tampered, now_s()),
        Err("mismatch")
    );
    let t: i64 = signature
        .split(',')
        .find_map(|p| p.strip_prefix("t="))
        .expect("t")
        .parse()
        .expect("number");
    let moved = signature.replace(&format!("t={t}"), &format!("t={}", t + 1));
    assert_eq!(
        verify_as_documented(&secret, &moved, &body, now_s()),
        Err("mismatch")
    );
    assert_eq!(
        verify_as_documented(&"0".repeat(64), signature, &body, now_s()),
        Err("mismatch")
    );
    // A replay an hour later carries the old timestamp.
    assert_eq!(
        verify_as_documented(&secret, signature, &body, now_s() + 3_600),
        Err("stale")
    );
    // The library's verifier agrees.
    assert!(hopper_types::webhook::verify(&secret, signature, &body, now_s(), 300).is_ok());

    // Only the matching event of this namespace was delivered.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(got.deliveries.lock().expect("lock").len(), 1);
    let log = s
        .get(&format!("/v1/webhooks/{hook_id}/deliveries"))
        .await
        .expect(200);
    assert_eq!(log.body["deliveries"][0]["state"], "completed");

    // Deleting the webhook stops deliveries; another namespace cannot delete it.
    let r = s
        .send(
            s.client
                .delete(s.url(&format!("/v1/webhooks/{hook_id}")))
                .header("x-hopper-namespace", "elsewhere"),
        )
        .await;
    assert_eq!(r.status, 404);
    s.delete(&format!("/v1/webhooks/{hook_id}"))
        .await
        .expect(204);
    complete_one(&s, "hooked").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(got.deliveries.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_retries_until_it_answers() {
    let s = TestServer::start_with(fast_webhooks(), None).await;
    let (url, got) = receiver(2).await;
    let created = s
        .post(
            "/v1/webhooks",
            json!({"url": url, "events": ["completed", "dead"]}),
        )
        .await
        .expect(201);
    let hook_id = created.body["id"].as_str().expect("id").to_string();
    complete_one(&s, "flaky").await;
    let deliveries = wait_for("three tries", async || {
        let d = got.deliveries.lock().expect("lock").clone();
        (d.len() >= 3).then_some(d)
    })
    .await;
    // The same delivery each time (same id, same body), each freshly signed.
    let ids: Vec<&str> = deliveries
        .iter()
        .map(|(h, _)| h["hopper-delivery-id"].to_str().expect("ascii"))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    assert!(deliveries.windows(2).all(|w| w[0].1 == w[1].1));
    let log = wait_for("the log to show it delivered", async || {
        let log = s
            .get(&format!("/v1/webhooks/{hook_id}/deliveries"))
            .await
            .expect(200);
        (log.body["deliveries"][0]["state"] == "completed").then_some(log)
    })
    .await;
    let d = &log.body["deliveries"][0];
    assert_eq!(d["attempts"], 3);
    let errors = d["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 2);
    assert!(
        errors[0]["message"]
            .as_str()
            .expect("message")
            .contains("503")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        got.deliveries.lock().expect("lock").len(),
        3,
        "no more once delivered"
    );
}

#[tokio::test]
async fn bad_webhooks_are_refused_naming_the_field() {
    let s = TestServer::start().await;
    for (body, field) in [
        (json!({"url": "ftp://x", "events": ["dead"]}), "url"),
        (json!({"url": "http://x", "events": []}), "events"),
        (
            json!({"url": "http://x", "events": ["exploded"]}),
            "events[0]",
        ),
        (
            json!({"url": "http://x", "events": ["dead"], "extra": 1}),
            "extra",
        ),
    ] {
        let r = s.post("/v1/webhooks", body).await;
        assert_eq!(r.status, 400, "{r:#?}");
        assert_eq!(r.field(), field);
    }
    assert_eq!(
        s.get("/v1/webhooks").await.expect(200).body["webhooks"],
        json!([])
    );
    s.get("/v1/webhooks/nope/deliveries").await.expect(404);
}

#[tokio::test]
async fn a_private_target_is_refused_unless_allowed() {
    let mut config = fast_webhooks();
    config.webhooks.allow_private_targets = false;
    let s = TestServer::start_with(config, None).await;
    let (url, got) = receiver(0).await;
    let created = s
        .post("/v1/webhooks", json!({"url": url, "events": ["completed"]}))
        .await
        .expect(201);
    let hook_id = created.body["id"].as_str().expect("id").to_string();
    complete_one(&s, "inside").await;
    // The delivery gives up at once (an address does not become public by retrying), and
    // the receiver on loopback never hears of it.
    let log = wait_for("the delivery to be refused", async || {
        let log = s
            .get(&format!("/v1/webhooks/{hook_id}/deliveries"))
            .await
            .expect(200);
        (log.body["deliveries"][0]["state"] == "dead").then_some(log)
    })
    .await;
    let message = log.body["deliveries"][0]["errors"][0]["message"]
        .as_str()
        .expect("message")
        .to_string();
    assert!(message.contains("not a public address"), "{message}");
    assert!(got.deliveries.lock().expect("lock").is_empty());
}
