//! Crash test: producers and workers run while the server is killed with SIGKILL at random
//! moments and restarted on the same data. At the end every acknowledged enqueue exists, every
//! job is completed exactly once as far as the store is concerned, no acknowledged completion
//! was lost, nothing is left running, and idempotent retries of enqueues created no duplicates.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use rand::Rng;
use serde_json::{Value, json};

const PRODUCERS: usize = 4;
const JOBS_PER_PRODUCER: usize = 300;
const WORKERS: usize = 4;
const KILLS: usize = 6;
const QUEUE: &str = "crash";

/// The address of the live server, swapped at every restart.
type Addr = Arc<Mutex<String>>;

fn url(addr: &Addr, path: &str) -> String {
    format!("{}{}", addr.lock().unwrap(), path)
}

/// GET `url`, as JSON.
async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// The crash queue as `GET /v1/queues` lists it on the server at `base`.
async fn crash_queue(client: &reqwest::Client, base: &str) -> Value {
    let q = get_json(client, &format!("{base}/v1/queues")).await;
    q["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == QUEUE)
        .cloned()
        .unwrap_or_default()
}

async fn produce(
    client: reqwest::Client,
    addr: Addr,
    p: usize,
    acked: Arc<Mutex<HashMap<String, String>>>,
) {
    for i in 0..JOBS_PER_PRODUCER {
        let key = format!("p{p}-{i}");
        let body = json!({"kind": "noop", "queue": QUEUE, "args": {"p": p, "i": i}, "idempotency_key": key});
        // Retry with the same key until the server answers 2xx: a retry after a lost answer
        // must return the job the first attempt created.
        loop {
            match client.post(url(&addr, "/v1/jobs")).json(&body).send().await {
                Ok(r) if r.status().is_success() => {
                    let job: Value = r.json().await.unwrap_or(Value::Null);
                    if let Some(id) = job["id"].as_str() {
                        let mut acked = acked.lock().unwrap();
                        if let Some(previous) = acked.insert(key.clone(), id.to_string()) {
                            assert_eq!(previous, id, "a key answered two different jobs");
                        }
                        break;
                    }
                }
                Ok(r) if r.status().is_client_error() => panic!("enqueue refused: {}", r.status()),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
}

async fn work(
    client: reqwest::Client,
    addr: Addr,
    w: usize,
    done: Arc<std::sync::atomic::AtomicBool>,
    completed: Arc<Mutex<HashSet<String>>>,
) {
    let worker_id = format!("crash-worker-{w}");
    while !done.load(std::sync::atomic::Ordering::SeqCst) {
        let lease = json!({"queues": [QUEUE], "worker_id": worker_id, "max_jobs": 10, "lease_ms": 2000, "wait_ms": 200});
        let jobs = match client
            .post(url(&addr, "/v1/leases"))
            .json(&lease)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => match r.json::<Value>().await {
                Ok(v) => v["jobs"].as_array().cloned().unwrap_or_default(),
                Err(_) => continue,
            },
            _ => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        for job in jobs {
            let id = job["id"].as_str().unwrap_or_default().to_string();
            let token = job["lease_token"].as_str().unwrap_or_default().to_string();
            let body = json!({"lease_token": token, "result": {"ok": true}});
            // Retry a lost answer with the same token: a repeated completion answers 200.
            for _ in 0..50 {
                match client
                    .post(url(&addr, &format!("/v1/jobs/{id}/complete")))
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        completed.lock().unwrap().insert(id.clone());
                        break;
                    }
                    // The lease ended (rescued after a restart): another worker will run it.
                    Ok(r) if r.status().as_u16() == 409 => break,
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_acknowledged_and_sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(dir.path(), &["--durability", "full"]).await;
    let addr: Addr = Arc::new(Mutex::new(server.base_url.clone()));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    let acked = Arc::new(Mutex::new(HashMap::new()));
    let completed = Arc::new(Mutex::new(HashSet::new()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));

    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| tokio::spawn(produce(client.clone(), addr.clone(), p, acked.clone())))
        .collect();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            tokio::spawn(work(
                client.clone(),
                addr.clone(),
                w,
                done.clone(),
                completed.clone(),
            ))
        })
        .collect();

    // Kill at points spread over the enqueue phase, whatever the machine's speed: each kill
    // waits for the next share of acknowledged enqueues, then a random moment more.
    let total = PRODUCERS * JOBS_PER_PRODUCER;
    let mut kills_mid_enqueue = 0;
    for k in 1..=KILLS {
        let threshold = total * k / (KILLS + 2);
        let deadline = Instant::now() + Duration::from_secs(60);
        while acked.lock().unwrap().len() < threshold && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let pause = rand::rng().random_range(0..40);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        if acked.lock().unwrap().len() < total {
            kills_mid_enqueue += 1;
        }
        server.kill9();
        server = ServerProcess::start(dir.path(), &["--durability", "full"]).await;
        *addr.lock().unwrap() = server.base_url.clone();
    }
    for p in producers {
        p.await.unwrap();
    }
    // The test means something only if the kills landed while work was in flight.
    assert!(
        kills_mid_enqueue >= KILLS - 1,
        "only {kills_mid_enqueue} kills happened while producers ran"
    );

    // Let the workers finish everything (expired leases are rescued and re-run).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let queue = crash_queue(&client, &url(&addr, "")).await;
        let count = |s: &str| queue["counts"][s].as_u64().unwrap_or(0);
        if count("completed") as usize == total {
            for s in [
                "pending",
                "scheduled",
                "available",
                "running",
                "retryable",
                "dead",
                "cancelled",
            ] {
                assert_eq!(count(s), 0, "jobs left in {s}");
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every job completed: {queue}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }

    // Every acknowledged enqueue exists and completed; no key made two jobs.
    let acked = acked.lock().unwrap().clone();
    assert_eq!(
        acked.len(),
        total,
        "every enqueue was eventually acknowledged"
    );
    let distinct: HashSet<&String> = acked.values().collect();
    assert_eq!(
        distinct.len(),
        total,
        "idempotent retries created duplicates"
    );
    for id in acked.values() {
        let job = get_json(&client, &url(&addr, &format!("/v1/jobs/{id}"))).await;
        assert_eq!(
            job["state"], "completed",
            "acknowledged job {id} is {}",
            job["state"]
        );
    }
    // Every acknowledged completion stuck.
    let completed: Vec<String> = completed.lock().unwrap().iter().cloned().collect();
    for id in &completed {
        let job = get_json(&client, &url(&addr, &format!("/v1/jobs/{id}"))).await;
        assert_eq!(
            job["state"], "completed",
            "acknowledged completion of {id} was lost"
        );
    }
    // The queue holds exactly the acknowledged jobs: nothing extra was created.
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut u = url(&addr, &format!("/v1/jobs?queue={QUEUE}&limit=500"));
        if let Some(c) = &cursor {
            u.push_str(&format!("&cursor={c}"));
        }
        let page = get_json(&client, &u).await;
        seen += page["jobs"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, total);

    // A graceful stop exits 0, and everything is still there after it.
    let status = server.terminate_and_wait();
    assert!(status.success(), "SIGTERM exit: {status}");
    let server = ServerProcess::start(dir.path(), &["--durability", "full"]).await;
    let queue = crash_queue(&client, &server.base_url).await;
    assert_eq!(
        queue["counts"]["completed"].as_u64(),
        Some(total as u64),
        "{queue}"
    );
}

/// A `hopper server` child process on a loopback port of its own.
pub struct ServerProcess {
    pub child: Child,
    pub base_url: String,
}

impl ServerProcess {
    /// Starts `hopper server` on 127.0.0.1:0 with `data_dir`, and waits until it listens.
    pub async fn start(data_dir: &Path, extra: &[&str]) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hopper"))
            .arg("server")
            .args(["--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start hopper server");
        let stdout = child.stdout.take().expect("stdout");
        let base_url = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stdout).lines();
            let url = loop {
                let line = lines
                    .next()
                    .expect("server exited before listening")
                    .expect("read stdout");
                if let Some(rest) = line.strip_prefix("hopper listening on ") {
                    break rest.trim().to_string();
                }
            };
            // Keep draining so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            url
        })
        .await
        .expect("read address");
        ServerProcess { child, base_url }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate_and_wait(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "server did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
