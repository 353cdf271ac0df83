//! Workflow fan-in across a cluster: three `hopper server` processes on one PostgreSQL
//! database. A run's first step, leased through one node, adds 1,000 children and a join that
//! depends on all of them (dynamic fan-out); workers spread over the nodes finish the children
//! in random order, sending each outcome through a random node, and one node is killed with
//! SIGKILL a third of the way through. The join must become leasable exactly once, after the
//! last child, carrying all 1,000 results; every child completes exactly once; the run
//! completes. The same scenario runs on the embedded store, its one server killed with SIGKILL
//! and restarted on the same data.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use common::Server;

const NODES: usize = 3;
const CHILDREN: usize = 1_000;
const WORKERS: usize = 4;

/// The base URLs of the nodes still alive.
type Live = Arc<Mutex<Vec<String>>>;

fn pick(live: &Live, n: usize) -> String {
    let l = live.lock().unwrap();
    l[n % l.len()].clone()
}

/// A cheap, seedable shuffle (no extra dependency): finishing order unrelated to lease order.
fn shuffle<T>(items: &mut [T], seed: &mut u64) {
    for i in (1..items.len()).rev() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        items.swap(i, (*seed % (i as u64 + 1)) as usize);
    }
}

/// Posts `body` to `path` through live nodes in turn until one answers (a dead node or a lost
/// answer is retried elsewhere); returns the status and body.
async fn post_any(
    client: &reqwest::Client,
    live: &Live,
    start: usize,
    path: &str,
    body: &Value,
) -> (u16, Value) {
    for attempt in 0..1_000 {
        let base = pick(live, start + attempt);
        if let Ok(r) = client.post(format!("{base}{path}")).json(body).send().await {
            let status = r.status().as_u16();
            if status < 500 {
                return (status, r.json().await.unwrap_or(Value::Null));
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no node answered {path}");
}

/// Leases children from random nodes and completes them (result = their index) in random order
/// through random nodes. Records the lease tokens that completed each child.
async fn work(
    client: reqwest::Client,
    live: Live,
    w: usize,
    done: Arc<AtomicBool>,
    completions: Arc<Mutex<HashMap<String, HashSet<String>>>>,
) {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ (w as u64 + 1);
    let mut n = w;
    while !done.load(Ordering::SeqCst) {
        n += 1;
        let lease = json!({"queues": ["children"], "worker_id": format!("wf-worker-{w}"), "max_jobs": 20, "lease_ms": 3000, "wait_ms": 200});
        let (status, answer) = post_any(&client, &live, n, "/v1/leases", &lease).await;
        if status != 200 {
            continue;
        }
        let mut jobs = answer["jobs"].as_array().cloned().unwrap_or_default();
        shuffle(&mut jobs, &mut seed);
        for job in jobs {
            let id = job["id"].as_str().unwrap_or_default().to_string();
            let token = job["lease_token"].as_str().unwrap_or_default().to_string();
            let body = json!({"lease_token": token, "result": job["args"]["i"]});
            n += 1;
            let (status, _) =
                post_any(&client, &live, n, &format!("/v1/jobs/{id}/complete"), &body).await;
            // A repeat through another node after a lost answer is the same completion (same
            // token); two tokens would be two leases completing one child.
            if status == 200 {
                completions
                    .lock()
                    .unwrap()
                    .entry(id)
                    .or_default()
                    .insert(token);
            }
            // 409: the lease ended (rescued after a lost answer); another lease runs it.
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_in_of_1000_fires_exactly_once_across_three_nodes_and_a_node_kill() {
    let database_url = hopper_store_postgres::testing::fresh_database_url().await;
    let mut nodes: Vec<Server> = (0..NODES)
        .map(|_| Server::start_on_postgres(&database_url))
        .collect();
    let live: Live = Arc::new(Mutex::new(nodes.iter().map(|n| n.url.clone()).collect()));
    let killing = live.clone();
    fan_in_across_a_kill(live, move || {
        // One node dies for good; the others carry on.
        let killed_url = killing.lock().unwrap().remove(1);
        let killed = nodes.iter().position(|n| n.url == killed_url).unwrap();
        nodes[killed].kill9();
        nodes
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_in_of_1000_fires_exactly_once_across_a_kill_of_the_embedded_server() {
    let data = tempfile::tempdir().expect("data dir");
    let mut server = Server::start_at(data.path());
    let bind = server.url.trim_start_matches("http://").to_string();
    let live: Live = Arc::new(Mutex::new(vec![server.url.clone()]));
    fan_in_across_a_kill(live, move || {
        // SIGKILL, then a new process on the same data and address.
        server.kill9();
        let restarted = Server::start_at_bind(data.path(), &bind);
        // The data directory must outlive the new server: it goes back with it.
        (restarted, data)
    })
    .await;
}

/// The fan-in scenario over the nodes in `live`; `kill` is called a third of the way through
/// the children (what it returns is kept alive until the end).
async fn fan_in_across_a_kill<T>(live: Live, kill: impl FnOnce() -> T) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // The run: one step that fans out when it runs.
    let (status, run) = post_any(
        &client,
        &live,
        0,
        "/v1/workflows",
        &json!({"name": "fan", "steps": [{"step": "split", "job": {"kind": "split", "queue": "split"}}]}),
    )
    .await;
    assert_eq!(status, 201, "{run}");
    let run_id = run["workflow"]["id"].as_str().unwrap().to_string();
    let (_, split) = post_any(
        &client,
        &live,
        1,
        "/v1/leases",
        &json!({"queues": ["split"], "worker_id": "splitter"}),
    )
    .await;
    let split = split["jobs"][0].clone();
    assert_eq!(split["workflow"]["workflow_id"], run_id.as_str());

    // The running step adds the children and the join, through another node.
    let mut steps: Vec<Value> = (0..CHILDREN)
        .map(|i| json!({"step": format!("c{i}"), "depends_on": ["split"], "job": {"kind": "child", "queue": "children", "args": {"i": i}}}))
        .collect();
    let names: Vec<String> = (0..CHILDREN).map(|i| format!("c{i}")).collect();
    steps.push(
        json!({"step": "join", "depends_on": names, "job": {"kind": "join", "queue": "join"}}),
    );
    let (status, added) = post_any(
        &client,
        &live,
        2,
        &format!("/v1/workflows/{run_id}/steps"),
        &json!({"steps": steps}),
    )
    .await;
    assert_eq!(status, 201, "{added}");
    let split_id = split["id"].as_str().unwrap();
    let (status, _) = post_any(
        &client,
        &live,
        0,
        &format!("/v1/jobs/{split_id}/complete"),
        &json!({"lease_token": split["lease_token"]}),
    )
    .await;
    assert_eq!(status, 200);

    let completions = Arc::new(Mutex::new(HashMap::new()));
    let done = Arc::new(AtomicBool::new(false));
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

    // Kill a node a third of the way through the children.
    let deadline = Instant::now() + Duration::from_secs(120);
    while completions.lock().unwrap().len() < CHILDREN / 3 {
        assert!(Instant::now() < deadline, "children do not complete");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _survivors = kill();
    assert!(
        completions.lock().unwrap().len() < CHILDREN,
        "the node must die mid-run"
    );

    // The join becomes leasable once, after the last child.
    let deadline = Instant::now() + Duration::from_secs(180);
    let join = loop {
        let (_, answer) = post_any(
            &client,
            &live,
            0,
            "/v1/leases",
            &json!({"queues": ["join"], "worker_id": "joiner", "wait_ms": 500}),
        )
        .await;
        if let Some(j) = answer["jobs"].as_array().and_then(|a| a.first()).cloned() {
            break j;
        }
        assert!(Instant::now() < deadline, "the fan-in never fired");
    };
    done.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    for (id, tokens) in completions.lock().unwrap().iter() {
        assert_eq!(
            tokens.len(),
            1,
            "child {id} completed by {} leases",
            tokens.len()
        );
    }
    let parents = join["parents"]
        .as_object()
        .expect("the join carries its parents");
    assert_eq!(parents.len(), CHILDREN);
    for i in 0..CHILDREN {
        assert_eq!(parents[&format!("c{i}")], json!(i), "result of c{i}");
    }

    let base = pick(&live, 0);
    // Every child had completed when the join left `pending` (the store is the judge: a
    // worker may not have noted its last completion yet).
    let run: Value = client
        .get(format!("{base}/v1/workflows/{run_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ms = |v: &Value| {
        hopper_types::Timestamp::parse_rfc3339(v.as_str().unwrap())
            .unwrap()
            .as_millis()
    };
    let mut last_child = 0;
    for s in run["steps"].as_array().unwrap() {
        if s["queue"] == "children" {
            assert_eq!(s["state"], "completed", "{s}");
            last_child = last_child.max(ms(&s["finished_at"]));
        }
    }
    assert!(
        ms(&join["available_at"]) >= last_child,
        "the join became runnable after the last child"
    );
    let join_id = join["id"].as_str().unwrap();
    let events: Value = client
        .get(format!("{base}/v1/jobs/{join_id}/events"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fired = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == "dependencies_done")
        .count();
    assert_eq!(fired, 1, "the fan-in fired exactly once: {events}");
    assert!(
        post_any(
            &client,
            &live,
            0,
            "/v1/leases",
            &json!({"queues": ["join"], "worker_id": "joiner"})
        )
        .await
        .1["jobs"]
            .as_array()
            .unwrap()
            .is_empty(),
        "the join is handed out once"
    );
    let (status, _) = post_any(
        &client,
        &live,
        0,
        &format!("/v1/jobs/{join_id}/complete"),
        &json!({"lease_token": join["lease_token"]}),
    )
    .await;
    assert_eq!(status, 200);
    let run: Value = client
        .get(format!("{base}/v1/workflows/{run_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(run["workflow"]["state"], "completed", "{}", run["workflow"]);
    assert_eq!(run["workflow"]["steps"], CHILDREN + 2);
}
