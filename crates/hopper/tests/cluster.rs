//! Cluster test: three `hopper server` processes on one PostgreSQL database, producers and
//! workers spread over them, the maintenance leader killed with SIGKILL mid-work and later
//! another node too. At the end every acknowledged job completed; no job was completed by two
//! different leases (fencing holds across nodes); a new leader took over the maintenance
//! services (it promoted delayed jobs and rescued abandoned leases after the first leader
//! died); and concurrent enqueues of one idempotency key through different nodes made one job.
//! A second test runs an every-second cron schedule across a leader kill: each tick second
//! gets exactly one job, the takeover gap caught up.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use common::Server;

const NODES: usize = 3;
const PRODUCERS: usize = 3;
const JOBS_PER_PRODUCER: usize = 200;
const WORKERS: usize = 3;
const QUEUE: &str = "cluster";

/// The base URLs of the nodes still alive; clients rotate over them.
type Live = Arc<Mutex<Vec<String>>>;

fn pick(live: &Live, n: usize) -> String {
    let l = live.lock().unwrap();
    l[n % l.len()].clone()
}

async fn leader_gauge(client: &reqwest::Client, base: &str) -> Option<i64> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("hopper_leader "))
        .and_then(|v| v.trim().parse().ok())
}

/// Waits for exactly one live node to report leading; returns its index in `live`.
async fn the_leader(client: &reqwest::Client, live: &Live, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let urls = live.lock().unwrap().clone();
        let mut leading = Vec::new();
        for (i, u) in urls.iter().enumerate() {
            if leader_gauge(client, u).await == Some(1) {
                leading.push(i);
            }
        }
        if leading.len() == 1 {
            return leading[0];
        }
        assert!(
            Instant::now() < deadline,
            "no single leader among {urls:?}: {leading:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn produce(
    client: reqwest::Client,
    live: Live,
    p: usize,
    acked: Arc<Mutex<HashMap<String, String>>>,
) {
    for i in 0..JOBS_PER_PRODUCER {
        let key = format!("p{p}-{i}");
        let body = json!({"kind": "noop", "queue": QUEUE, "idempotency_key": key});
        let mut attempt = p + i;
        loop {
            let base = pick(&live, attempt);
            match client
                .post(format!("{base}/v1/jobs"))
                .json(&body)
                .send()
                .await
            {
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
                // A dead node or a lost answer: the same key through the next node.
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
            attempt += 1;
        }
    }
}

/// Successful, first-time completions: job id → the lease tokens that completed it.
type Completions = Arc<Mutex<HashMap<String, HashSet<String>>>>;

async fn work(
    client: reqwest::Client,
    live: Live,
    w: usize,
    done: Arc<AtomicBool>,
    completions: Completions,
) {
    let worker_id = format!("cluster-worker-{w}");
    let mut n = w;
    while !done.load(Ordering::SeqCst) {
        n += 1;
        let base = pick(&live, n);
        let lease = json!({"queues": [QUEUE], "worker_id": worker_id, "max_jobs": 10, "lease_ms": 3000, "wait_ms": 200});
        let jobs = match client
            .post(format!("{base}/v1/leases"))
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
            let body = json!({"lease_token": token});
            for retry in 0..100 {
                // Outcomes may go to any node: the lease lives in the shared database.
                let base = pick(&live, n + retry);
                match client
                    .post(format!("{base}/v1/jobs/{id}/complete"))
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        let answer: Value = r.json().await.unwrap_or(Value::Null);
                        if answer["duplicate"] != json!(true) {
                            completions
                                .lock()
                                .unwrap()
                                .entry(id.clone())
                                .or_default()
                                .insert(token.clone());
                        }
                        break;
                    }
                    // The lease ended (rescued): another lease will run it.
                    Ok(r) if r.status().as_u16() == 409 => break,
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_survive_killing_the_leader_and_another_node() {
    let database_url = hopper_store_postgres::testing::fresh_database_url().await;
    let mut nodes = Vec::new();
    for _ in 0..NODES {
        nodes.push(Server::start_on_postgres(&database_url));
    }
    let live: Live = Arc::new(Mutex::new(nodes.iter().map(|n| n.url.clone()).collect()));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    // Idempotency across nodes: each key sent through all three nodes at once.
    for k in 0..10 {
        let body =
            json!({"kind": "noop", "queue": "keys", "idempotency_key": format!("shared-{k}")});
        let sends = (0..NODES).map(|i| {
            let (client, url, body) = (client.clone(), nodes[i].url.clone(), body.clone());
            async move {
                let r = client
                    .post(format!("{url}/v1/jobs"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                (
                    r.status().as_u16(),
                    r.json::<Value>().await.unwrap()["id"].clone(),
                )
            }
        });
        let answers = futures::future::join_all(sends).await;
        assert_eq!(
            answers.iter().filter(|(s, _)| *s == 201).count(),
            1,
            "{answers:?}"
        );
        assert!(
            answers.iter().all(|(_, id)| *id == answers[0].1),
            "{answers:?}"
        );
    }

    let first_leader = the_leader(&client, &live, Duration::from_secs(15)).await;

    let acked = Arc::new(Mutex::new(HashMap::new()));
    let completions: Completions = Arc::new(Mutex::new(HashMap::new()));
    let done = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| tokio::spawn(produce(client.clone(), live.clone(), p, acked.clone())))
        .collect();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            tokio::spawn(work(
                client.clone(),
                live.clone(),
                w,
                done.clone(),
                completions.clone(),
            ))
        })
        .collect();

    // Kill the leader a third of the way through the enqueues.
    let total = PRODUCERS * JOBS_PER_PRODUCER;
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < total / 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let killed_url = live.lock().unwrap().remove(first_leader);
    let killed = nodes.iter().position(|n| n.url == killed_url).unwrap();
    nodes[killed].kill9();
    assert!(
        acked.lock().unwrap().len() < total,
        "the leader must die while producers still run"
    );

    // Work only the maintenance leader does: delayed jobs need the promoter, abandoned leases
    // the rescuer. Both must happen on the new leader.
    let mut delayed = Vec::new();
    for i in 0..10 {
        let base = pick(&live, i);
        let r = client
            .post(format!("{base}/v1/jobs"))
            .json(&json!({"kind": "noop", "queue": QUEUE, "delay_ms": 300}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        delayed.push(
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let abandoned: Vec<String> = {
        let base = pick(&live, 0);
        let r = client
            .post(format!("{base}/v1/leases"))
            .json(&json!({"queues": [QUEUE], "worker_id": "crashed-worker", "max_jobs": 5, "lease_ms": 1000}))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_string())
            .collect()
    };
    let second_leader = the_leader(&client, &live, Duration::from_secs(20)).await;

    // Then kill another node (the new leader) while work goes on.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed_url = live.lock().unwrap().remove(second_leader);
    let killed = nodes.iter().position(|n| n.url == killed_url).unwrap();
    nodes[killed].kill9();
    the_leader(&client, &live, Duration::from_secs(20)).await;

    for p in producers {
        p.await.unwrap();
    }
    let expected: HashSet<String> = acked
        .lock()
        .unwrap()
        .values()
        .cloned()
        .chain(delayed.iter().cloned())
        .collect();
    assert_eq!(
        expected.len(),
        total + delayed.len(),
        "no key made two jobs"
    );

    // Everything completes on the last node standing.
    let base = pick(&live, 0);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let all: Value = client
            .get(format!("{base}/v1/queues"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let q = all["queues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["name"] == QUEUE)
            .cloned()
            .unwrap_or_default();
        if q["counts"]["completed"].as_u64() == Some(expected.len() as u64) {
            break;
        }
        assert!(Instant::now() < deadline, "not everything completed: {q}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    done.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }

    for id in &expected {
        let job: Value = client
            .get(format!("{base}/v1/jobs/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(job["state"], "completed", "acknowledged job {id}: {job}");
    }
    // Fencing across nodes: no job was completed by two different leases.
    let completions = completions.lock().unwrap().clone();
    for (id, tokens) in completions.iter() {
        assert_eq!(
            tokens.len(),
            1,
            "job {id} completed by {} leases",
            tokens.len()
        );
    }
    // The abandoned leases were rescued (by a leader elected after the first one died) and run
    // again by another worker.
    for id in &abandoned {
        let job: Value = client
            .get(format!("{base}/v1/jobs/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(job["state"], "completed", "{job}");
        assert!(
            job["attempts"].as_array().unwrap().len() >= 2,
            "rescued and re-run: {job}"
        );
    }
}

/// Milliseconds since the epoch on this machine's clock (the nodes' clock too).
fn epoch_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The tick of every job of `queue` (from its idempotency key `schedule:<name>:<ms>`), with
/// how late it was enqueued, read through `base`.
async fn scheduled_ticks(client: &reqwest::Client, base: &str, queue: &str) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/v1/jobs?queue={queue}&limit=500");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = client.get(url).send().await.unwrap().json().await.unwrap();
        for j in page["jobs"].as_array().unwrap() {
            let key = j["idempotency_key"].as_str().unwrap_or_default();
            let tick: i64 = key
                .rsplit(':')
                .next()
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("a scheduled job carries its tick key: {j}"));
            let created = chrono_ms(j["created_at"].as_str().unwrap());
            out.push((tick, created - tick));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    out.sort();
    out
}

fn chrono_ms(rfc3339: &str) -> i64 {
    hopper_worker::Timestamp::parse_rfc3339(rfc3339)
        .expect("an RFC 3339 time")
        .as_millis()
}

/// An every-second schedule on three nodes: the maintenance leader is killed (SIGKILL) eight
/// seconds in, and another node takes over the scheduler. Every tick second of the run has
/// exactly one job: none twice (the cursor compare-and-set and the tick keys), none missing
/// (the ticks of the takeover gap are caught up by the `catch_up` misfire policy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_fires_every_tick_once_across_a_leader_kill() {
    const TICKS: &str = "ticks";
    let started = Instant::now();
    let database_url = hopper_store_postgres::testing::fresh_database_url().await;
    let mut nodes: Vec<Server> = (0..NODES)
        .map(|_| Server::start_on_postgres(&database_url))
        .collect();
    let live: Live = Arc::new(Mutex::new(nodes.iter().map(|n| n.url.clone()).collect()));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let leader = the_leader(&client, &live, Duration::from_secs(15)).await;

    // Created through a node that does not lead: the leader learns of it from the database.
    let via = pick(&live, leader + 1);
    let r = client
        .post(format!("{via}/v1/schedules"))
        .json(&json!({"name": "every-second", "cron": "* * * * * *",
                      "misfire": {"policy": "catch_up", "max": 100},
                      "job": {"kind": "noop", "queue": TICKS}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let created: Value = r.json().await.unwrap();
    let created_at = chrono_ms(created["created_at"].as_str().unwrap());

    tokio::time::sleep(Duration::from_secs(8)).await;
    let killed_url = live.lock().unwrap().remove(leader);
    let killed = nodes.iter().position(|n| n.url == killed_url).unwrap();
    nodes[killed].kill9();
    let killed_at = epoch_ms();

    tokio::time::sleep(Duration::from_secs(8)).await;
    the_leader(&client, &live, Duration::from_secs(10)).await;
    // Wait for the new leader to be firing on time (the gap caught up), then stop looking.
    let base = pick(&live, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let ticks = loop {
        let ticks = scheduled_ticks(&client, &base, TICKS).await;
        let newest = ticks.last().map_or(0, |(t, _)| *t);
        if newest >= epoch_ms() - 2_000 {
            break ticks;
        }
        assert!(
            Instant::now() < deadline,
            "the new leader does not fire on time: newest tick {newest}, {} ticks",
            ticks.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // No tick twice.
    let mut per_tick: HashMap<i64, usize> = HashMap::new();
    for (tick, _) in &ticks {
        *per_tick.entry(*tick).or_default() += 1;
    }
    let doubled: Vec<_> = per_tick.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        doubled.is_empty(),
        "ticks with more than one job: {doubled:?}"
    );
    // No tick missing: every second from the first tick after creation to the newest.
    let first = (created_at / 1000 + 1) * 1000;
    let newest = ticks.last().unwrap().0;
    let expected: Vec<i64> = (first / 1000..=newest / 1000).map(|s| s * 1000).collect();
    let got: Vec<i64> = ticks.iter().map(|(t, _)| *t).collect();
    assert_eq!(got, expected, "one job per tick second, none missing");
    assert!(
        newest > killed_at + 5_000,
        "the run goes on well past the kill"
    );
    // The takeover left a gap, which the new leader caught up: ticks around the kill were
    // enqueued seconds late, yet each once.
    // (A successor takes the lease at least ttl - renew interval = 4 s after the dead leader's
    // last renewal, so the first tick after the kill is at least 2 s late.)
    assert!(
        ticks
            .iter()
            .any(|(t, lateness)| *t > killed_at && *lateness >= 2_000),
        "the takeover gap was caught up: {ticks:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "took {:?}",
        started.elapsed()
    );
}
