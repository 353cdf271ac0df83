//! Workflow definitions, runs per logical date and backfills under concurrency across nodes:
//! several `PgStore`s (as several Hopper nodes) over one database trigger the same date,
//! advance the same cron tick, store the same definition and submit the same backfill at
//! once. Each must come out exactly once.

use std::collections::HashSet;
use std::sync::Arc;

use hopper_store::{Store, WorkflowInsert, WorkflowListParams, WorkflowRun};
use hopper_store_postgres::{PgConfig, PgStore, testing};
use hopper_types::workflow::{WorkflowRequest, validate_steps};
use hopper_types::workflow_definition::{Backfill, DefinitionRequest, WorkflowDefinition};
use hopper_types::workflow_run::WorkflowId;
use hopper_types::{JobId, Limits, Timestamp};

const NS: &str = "default";
const TASKS: usize = 8;

/// Two nodes over one fresh database.
async fn nodes() -> [Arc<PgStore>; 2] {
    let url = testing::fresh_database_url().await;
    let open = |url: &str| {
        let mut config = PgConfig::new(url);
        config.pool_size = 8;
        PgStore::connect(config)
    };
    let a = Arc::new(open(&url).await.expect("node a"));
    let b = Arc::new(open(&url).await.expect("node b"));
    [a, b]
}

fn definition(name: &str, cron: Option<&str>, at: Timestamp) -> WorkflowDefinition {
    let cron = cron.map_or(String::new(), |c| format!(r#""cron": "{c}","#));
    let r: DefinitionRequest = serde_json::from_str(&format!(
        r#"{{{cron} "steps": [{{"step": "a", "job": {{"kind": "k"}}}}]}}"#
    ))
    .expect("definition request");
    r.validate(name, NS, &Limits::default(), at).expect("valid")
}

async fn insert_of(store: &PgStore, definition: &str, date: &str) -> WorkflowRun {
    let req: WorkflowRequest = serde_json::from_str(
        r#"{"steps": [{"step": "a", "job": {"kind": "k"}},
                      {"step": "b", "depends_on": ["a"], "job": {"kind": "k"}}]}"#,
    )
    .expect("request");
    let steps = validate_steps(req.steps, &|_| false, 0, NS, &Limits::default()).expect("valid");
    store
        .workflow_insert(WorkflowInsert {
            id: WorkflowId::new(),
            namespace: NS.into(),
            name: Some(definition.into()),
            steps,
            actor: "scheduler".into(),
            definition: Some((definition.into(), date.into())),
        })
        .await
        .expect("insert")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_logical_date_triggered_on_two_nodes_makes_one_run() {
    let nodes = nodes().await;
    for round in 0..20 {
        let date = format!("2026-11-{:02}", round + 1);
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let node = nodes[i % 2].clone();
                let date = date.clone();
                tokio::spawn(async move { insert_of(&node, "nightly", &date).await })
            })
            .collect();
        let mut runs = Vec::new();
        for t in tasks {
            runs.push(t.await.expect("task"));
        }
        let ids: HashSet<WorkflowId> = runs.iter().map(|r| r.workflow.id).collect();
        assert_eq!(ids.len(), 1, "round {round}: one run");
        assert_eq!(
            runs.iter().filter(|r| !r.duplicate).count(),
            1,
            "round {round}: one insert stored it"
        );
        for r in &runs {
            assert_eq!(
                r.steps.len(),
                2,
                "round {round}: every answer has its steps"
            );
            assert_eq!(r.workflow.logical_date.as_deref(), Some(date.as_str()));
        }
    }
    let runs = nodes[0]
        .workflow_list(&WorkflowListParams {
            namespace: NS.into(),
            state: None,
            definition: Some("nightly".into()),
            limit: 100,
            before: None,
        })
        .await
        .expect("list");
    assert_eq!(runs.len(), 20);
    let totals = nodes[1].totals().await.expect("totals");
    assert_eq!(totals.jobs, 40, "the duplicates stored no step");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cron_tick_advanced_on_two_nodes_moves_once() {
    let nodes = nodes().await;
    let d = nodes[0]
        .workflow_definition_put(definition("daily", Some("@daily"), Timestamp(0)))
        .await
        .expect("put");
    let mut expected = d.next_fire_at.expect("fires");
    for round in 0..20 {
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let node = nodes[i % 2].clone();
                let next = Timestamp(expected.as_millis() + 86_400_000 + i as i64);
                tokio::spawn(async move {
                    let moved = node
                        .workflow_definition_advance(NS, "daily", expected, Some(next))
                        .await
                        .expect("advance");
                    (moved, next)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            let (moved, next) = t.await.expect("task");
            if moved {
                winners.push(next);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: one advance moved it");
        let next = winners[0];
        let stored = nodes[1]
            .workflow_definition_get(NS, "daily")
            .await
            .expect("get");
        assert_eq!(stored.next_fire_at, Some(next), "round {round}");
        let due = nodes[0]
            .workflow_definition_due(next, 10)
            .await
            .expect("due");
        assert_eq!(due.len(), 1, "round {round}");
        assert_eq!(due[0].next_fire_at, Some(next), "round {round}");
        assert!(
            nodes[0]
                .workflow_definition_due(Timestamp(next.as_millis() - 1), 10)
                .await
                .expect("due")
                .is_empty(),
            "round {round}"
        );
        expected = next;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_definition_stored_on_two_nodes_keeps_one_creation_time() {
    let nodes = nodes().await;
    for round in 0..20 {
        let name = format!("d{round}");
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let node = nodes[i % 2].clone();
                let d = definition(&name, None, Timestamp(1_000 + i as i64));
                tokio::spawn(async move { node.workflow_definition_put(d).await.expect("put") })
            })
            .collect();
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.expect("task"));
        }
        let created: HashSet<Timestamp> = answers.iter().map(|d| d.created_at).collect();
        assert_eq!(created.len(), 1, "round {round}: {created:?}");
        let stored = nodes[0]
            .workflow_definition_get(NS, &name)
            .await
            .expect("get");
        assert!(created.contains(&stored.created_at), "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_backfill_submitted_on_two_nodes_is_stored_once() {
    let nodes = nodes().await;
    for round in 0..20 {
        let to = format!("2026-12-{:02}", round + 1);
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let node = nodes[i % 2].clone();
                let b = Backfill {
                    id: JobId::new(),
                    namespace: NS.into(),
                    definition: "nightly".into(),
                    from: "2026-12-01".into(),
                    to: to.clone(),
                    params: serde_json::Map::new(),
                    max_running: 2,
                    created_at: Timestamp(i as i64),
                    finished_at: None,
                };
                tokio::spawn(async move { node.backfill_create(b).await.expect("create") })
            })
            .collect();
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.expect("task"));
        }
        let ids: HashSet<JobId> = answers.iter().map(|(b, _)| b.id).collect();
        assert_eq!(ids.len(), 1, "round {round}");
        assert_eq!(
            answers.iter().filter(|(_, dup)| !dup).count(),
            1,
            "round {round}"
        );
    }
    let all = nodes[0].backfill_list(Some(NS), true).await.expect("list");
    assert_eq!(all.len(), 20);
}
