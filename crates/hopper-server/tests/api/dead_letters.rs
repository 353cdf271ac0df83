//! Dead letters: `GET /v1/dead-letters` groups, `POST /v1/dead-letters/retry` and `/purge`.

use serde_json::{Value, json};

use crate::common::TestServer;

/// Makes `n` dead jobs of `queue` whose last error is `message`; returns their ids in
/// creation order.
async fn kill(s: &TestServer, queue: &str, message: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let (id, token) = s.enqueue_and_lease(queue, "k").await;
        s.post(
            &format!("/v1/jobs/{id}/fail"),
            json!({"lease_token": token, "error": {"message": message, "retryable": false}}),
        )
        .await
        .expect(200);
        ids.push(id);
    }
    ids
}

fn group<'a>(answer: &'a Value, queue: &str, error: &str) -> &'a Value {
    answer["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["queue"] == queue && g["error"] == error)
        .unwrap_or_else(|| panic!("no group {queue}/{error} in {answer:#}"))
}

#[tokio::test]
async fn groups_by_queue_and_last_error_newest_first() {
    let s = TestServer::start().await;
    let smtp = kill(&s, "mail", "smtp timeout", 12).await;
    let sms = kill(&s, "sms", "smtp timeout", 1).await;
    let bad = kill(&s, "mail", "bad address", 1).await;
    // Not dead: not counted.
    s.enqueue(json!({"kind": "k", "queue": "mail"})).await;

    let all = s.get("/v1/dead-letters").await.expect(200).body;
    assert_eq!(all["total_groups"], 3);
    assert_eq!(all["scanned"], 14);
    assert_eq!(all["truncated"], false);
    let groups = all["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 3);
    // Newest group first: the last job to die was the bad address one.
    assert_eq!(groups[0]["error"], "bad address");
    assert_eq!(groups[0]["job_ids"], json!(bad));
    assert_eq!(groups[1]["queue"], "sms");
    assert_eq!(groups[1]["job_ids"], json!(sms));

    let g = group(&all, "mail", "smtp timeout");
    assert_eq!(g["count"], 12);
    // At most 10 samples, newest first.
    let newest: Vec<&String> = smtp.iter().rev().take(10).collect();
    assert_eq!(g["job_ids"], json!(newest));
    let latest = g["latest_at"].as_str().unwrap();
    let newest_job = s
        .get(&format!("/v1/jobs/{}", smtp[11]))
        .await
        .expect(200)
        .body;
    assert_eq!(latest, newest_job["finished_at"].as_str().unwrap());

    // Filtered by queue.
    let mail = s.get("/v1/dead-letters?queue=mail").await.expect(200).body;
    assert_eq!(mail["total_groups"], 2);
    assert!(
        mail["groups"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["queue"] == "mail")
    );
    let none = s.get("/v1/dead-letters?queue=quiet").await.expect(200).body;
    assert_eq!(none["groups"], json!([]));
    assert_eq!(none["scanned"], 0);
}

#[tokio::test]
async fn retry_and_purge_one_group() {
    let s = TestServer::start().await;
    let smtp = kill(&s, "mail", "smtp timeout", 3).await;
    let bad = kill(&s, "mail", "bad address", 2).await;
    let other = kill(&s, "sms", "smtp timeout", 1).await;

    let r = s
        .post(
            "/v1/dead-letters/retry",
            json!({"queue": "mail", "error": "smtp timeout"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(r, json!({"retried": 3, "truncated": false}));
    for id in &smtp {
        let job = s.get(&format!("/v1/jobs/{id}")).await.expect(200).body;
        assert_eq!(job["state"], "available");
        assert_eq!(job["attempt"], 0);
    }
    // The other groups are untouched; the same message in another queue is another group.
    for id in bad.iter().chain(&other) {
        let job = s.get(&format!("/v1/jobs/{id}")).await.expect(200).body;
        assert_eq!(job["state"], "dead");
    }
    // Nothing is left in the group: a second call retries nothing.
    let r = s
        .post(
            "/v1/dead-letters/retry",
            json!({"queue": "mail", "error": "smtp timeout"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(r["retried"], 0);

    let r = s
        .post(
            "/v1/dead-letters/purge",
            json!({"queue": "mail", "error": "bad address"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(r, json!({"purged": 2, "truncated": false}));
    for id in &bad {
        s.get(&format!("/v1/jobs/{id}"))
            .await
            .expect_error(404, "not_found", None);
    }
    // An error message must match exactly.
    let r = s
        .post(
            "/v1/dead-letters/purge",
            json!({"queue": "sms", "error": "smtp"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(r["purged"], 0);
    let left = s.get("/v1/dead-letters").await.expect(200).body;
    assert_eq!(left["total_groups"], 1);
    assert_eq!(group(&left, "sms", "smtp timeout")["count"], 1);
}

#[tokio::test]
async fn bad_dead_letter_requests_name_the_field() {
    let s = TestServer::start().await;
    s.get("/v1/dead-letters?queue=a%20b").await.expect_error(
        400,
        "invalid_argument",
        Some("queue"),
    );
    s.get("/v1/dead-letters?limit=5")
        .await
        .expect_error(400, "invalid_argument", Some("limit"));
    s.get("/v1/dead-letters?queue=a&queue=b")
        .await
        .expect_error(400, "invalid_argument", Some("queue"));
    for path in ["/v1/dead-letters/retry", "/v1/dead-letters/purge"] {
        s.post(path, json!({"queue": "mail"})).await.expect_error(
            400,
            "invalid_argument",
            Some("error"),
        );
        s.post(path, json!({"error": "x"})).await.expect_error(
            400,
            "invalid_argument",
            Some("queue"),
        );
        s.post(path, json!({"queue": "a b", "error": "x"}))
            .await
            .expect_error(400, "invalid_argument", Some("queue"));
        s.post(path, json!({"queue": "mail", "error": 5}))
            .await
            .expect_error(400, "invalid_argument", Some("error"));
        s.post(
            path,
            json!({"queue": "mail", "error": "x", "state": "dead"}),
        )
        .await
        .expect_error(400, "invalid_argument", Some("state"));
        s.post_raw(path, "", None)
            .await
            .expect_error(400, "invalid_argument", Some("body"));
        s.post_raw(path, r#"{"queue":"mail","error":"x"}"#, Some("text/plain"))
            .await
            .expect_error(400, "invalid_argument", Some("content-type"));
    }
    s.delete("/v1/dead-letters")
        .await
        .expect_error(405, "method_not_allowed", None);
}
