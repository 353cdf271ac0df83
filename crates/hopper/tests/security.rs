//! The binary's security settings, end to end: the bind policy (loopback only while there is
//! no key, `--insecure` to override), an admin key installed from `HOPPER_ADMIN_KEY` or
//! created by `--create-admin-key` (printed once), HTTPS with `--tls-cert`/`--tls-key`, and
//! `hopper keys` managing keys through the admin API.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{HOPPER, Server};

fn server(args: &[&str], env: &[(&str, &str)], dir: tempfile::TempDir) -> Server {
    common::Server::start_with(dir, args, env)
}

fn cli(url: &str, key: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut c = Command::new(HOPPER);
    c.args(args).env("HOPPER_URL", url).env("RUST_LOG", "warn");
    match key {
        Some(k) => c.env("HOPPER_API_KEY", k),
        None => c.env_remove("HOPPER_API_KEY"),
    };
    c.output().expect("run hopper")
}

fn fresh_key() -> String {
    hopper_types::api_key::generate_key().token
}

#[test]
fn a_public_address_without_keys_is_refused_before_listening() {
    let dir = tempfile::tempdir().expect("dir");
    let out = Command::new(HOPPER)
        .args(["server", "--bind", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env_remove("HOPPER_ADMIN_KEY")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "it never announced an address");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("without API keys") && err.contains("--insecure"),
        "{err}"
    );
}

#[tokio::test]
async fn an_admin_key_from_the_environment_turns_authentication_on() {
    let key = fresh_key();
    let s = server(
        &[],
        &[("HOPPER_ADMIN_KEY", &key)],
        tempfile::tempdir().expect("dir"),
    );
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/v1/jobs", s.url))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 401);
    let r = http
        .get(format!("{}/v1/jobs", s.url))
        .bearer_auth(&key)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    // Health and readiness stay open for load balancers.
    let r = http
        .get(format!("{}/readyz", s.url))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);

    // The CLI sends --api-key / HOPPER_API_KEY.
    let out = cli(&s.url, None, &["queues", "ls"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unauthenticated"));
    let out = cli(&s.url, Some(&key), &["queues", "ls"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // `hopper keys`: create a producer key, list it, revoke it.
    let out = cli(
        &s.url,
        Some(&key),
        &[
            "keys",
            "create",
            "--name",
            "billing",
            "--role",
            "producer",
            "--key-namespace",
            "billing",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let producer = String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string();
    assert!(
        hopper_types::api_key::parse_key(&producer).is_some(),
        "{producer}"
    );
    let out = cli(
        &s.url,
        Some(&producer),
        &["enqueue", "invoice", "--queue", "q"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = cli(&s.url, Some(&key), &["--json", "keys", "ls"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    let keys = listed["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2);
    assert!(
        !listed.to_string().contains(&producer[21..]),
        "no secret in the list"
    );
    let out = cli(&s.url, Some(&key), &["keys", "revoke", &producer[4..20]]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&s.url, Some(&producer), &["enqueue", "invoice"]);
    assert!(!out.status.success(), "a revoked key is refused");
}

#[tokio::test]
async fn create_admin_key_prints_one_key_once() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let run = |data: &std::path::Path| {
        let mut child = Command::new(HOPPER)
            .args([
                "server",
                "--bind",
                "127.0.0.1:0",
                "--create-admin-key",
                "--data-dir",
            ])
            .arg(data)
            .env_remove("HOPPER_ADMIN_KEY")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("announcement");
        common::terminate(&mut child, Duration::from_secs(10));
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
            .expect("stderr");
        (line.trim().to_string(), err)
    };
    let (_, first) = run(&data);
    let printed: Vec<&str> = first
        .split_whitespace()
        .filter(|w| hopper_types::api_key::parse_key(w).is_some())
        .collect();
    assert_eq!(printed.len(), 1, "{first}");
    let (_, second) = run(&data);
    assert!(
        !second.split_whitespace().any(|w| w.starts_with("hop_")),
        "a store that has keys gets no new one: {second}"
    );
    // The printed key works against the same store.
    let key = printed[0].to_string();
    let s = server(&[], &[], dir);
    let r = reqwest::Client::new()
        .get(format!("{}/v1/keys", s.url))
        .bearer_auth(&key)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn tls_serves_https_with_secure_cookies_and_hsts() {
    let dir = tempfile::tempdir().expect("dir");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("certificate");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write key");
    let key = fresh_key();
    let s = server(
        &[
            "--tls-cert",
            cert_path.to_str().expect("utf8"),
            "--tls-key",
            key_path.to_str().expect("utf8"),
        ],
        &[("HOPPER_ADMIN_KEY", &key)],
        dir,
    );
    assert!(s.url.starts_with("https://"), "{}", s.url);
    let trusted = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).expect("pem");
    let https = reqwest::Client::builder()
        .add_root_certificate(trusted)
        .build()
        .expect("client");
    let r = https
        .get(format!("{}/v1/jobs", s.url))
        .bearer_auth(&key)
        .send()
        .await
        .expect("an https request");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
    let r = https
        .post(format!("{}/v1/session", s.url))
        .json(&serde_json::json!({"key": key}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 200);
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_string())
        .find(|c| c.starts_with("hopper_session="))
        .expect("session cookie");
    assert!(session.contains("; Secure"), "{session}");
    // An untrusting client refuses the certificate, and plain HTTP gets no answer.
    assert!(
        reqwest::Client::new()
            .get(format!("{}/healthz", s.url))
            .send()
            .await
            .is_err()
    );
    let plain = s.url.replace("https://", "http://");
    let r = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
        .get(format!("{plain}/healthz"))
        .send()
        .await;
    assert!(r.is_err(), "plain HTTP is not served: {r:?}");
    // The SDK speaks HTTPS too.
    let client = hopper_worker::Client::with_http(
        reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).expect("pem"),
            )
            .default_headers(
                [(
                    reqwest::header::AUTHORIZATION,
                    format!("Bearer {key}").parse().expect("header"),
                )]
                .into_iter()
                .collect(),
            )
            .build()
            .expect("client"),
        &s.url,
    )
    .expect("sdk client");
    assert!(client.queues().await.expect("queues over https").is_empty());
}
