//! Workflow definitions and backfills: `workflow_definition_*`, `backfill_*`, and runs of a
//! definition (`workflow_insert` with a logical date).
//!
//! Semantics: a definition is stored whole and replaced whole (keeping when it was created);
//! its cron fire time moves only by compare-and-set; a definition has at most one run per
//! logical date, so inserting that run again answers the existing one and stores nothing; a
//! backfill is unique per definition and date range.

use hopper_store::{StoreError, WorkflowInsert, WorkflowListParams};
use hopper_types::workflow::{WorkflowRequest, validate_steps};
use hopper_types::workflow_definition::{Backfill, DefinitionRequest, WorkflowDefinition};
use hopper_types::workflow_run::WorkflowId;
use hopper_types::{JobId, Limits, Timestamp};

use crate::Harness;
use crate::support::*;

fn definition(name: &str, cron: Option<&str>, at: Timestamp) -> WorkflowDefinition {
    let cron = cron.map_or(String::new(), |c| format!(r#""cron": "{c}","#));
    let r: DefinitionRequest = serde_json::from_str(&format!(
        r#"{{{cron} "params": {{"n": 1}}, "steps": [{{"step": "a", "job": {{"kind": "k", "args": {{"n": "{{{{params.n}}}}"}}}}}}]}}"#
    ))
    .expect("definition request");
    r.validate(name, NS, &Limits::default(), at).expect("valid")
}

/// Definitions are stored, listed by name, replaced whole (keeping `created_at`) and deleted.
pub async fn workflow_definition_put_get_list_delete(h: &dyn Harness) {
    let env = Env::new(h).await;
    let s = env.store();
    s.workflow_definition_put(definition("b", None, T0))
        .await
        .expect("put");
    s.workflow_definition_put(definition("a", Some("@daily"), T0))
        .await
        .expect("put");
    let names: Vec<String> = s
        .workflow_definition_list(NS)
        .await
        .expect("list")
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, vec!["a", "b"]);
    assert!(
        s.workflow_definition_list("other")
            .await
            .expect("list")
            .is_empty()
    );
    let later = T0.plus_ms(5_000);
    let replaced = s
        .workflow_definition_put(definition("a", None, later))
        .await
        .expect("replace");
    assert_eq!(
        (replaced.created_at, replaced.updated_at, replaced.cron),
        (T0, later, None)
    );
    let got = s.workflow_definition_get(NS, "a").await.expect("get");
    assert_eq!(
        (got.created_at, got.updated_at, got.next_fire_at),
        (T0, later, None)
    );
    assert_eq!(got.params["n"], serde_json::json!(1));
    assert_eq!(got.steps.len(), 1);
    assert_not_found(s.workflow_definition_get("other", "a").await);
    s.workflow_definition_delete(NS, "a").await.expect("delete");
    assert_not_found(s.workflow_definition_get(NS, "a").await);
    assert_not_found(s.workflow_definition_delete(NS, "a").await);
}

/// Due definitions are those whose cron fire time came; the fire time moves only from the
/// value the mover saw.
pub async fn workflow_definition_due_and_advance_by_compare_and_set(h: &dyn Harness) {
    let env = Env::new(h).await;
    let s = env.store();
    let d = s
        .workflow_definition_put(definition("daily", Some("@daily"), T0))
        .await
        .expect("put");
    s.workflow_definition_put(definition("never", None, T0))
        .await
        .expect("put");
    let next = d.next_fire_at.expect("a cron definition fires");
    assert!(
        s.workflow_definition_due(next.plus_ms(-1), 10)
            .await
            .expect("due")
            .is_empty()
    );
    let due = s.workflow_definition_due(next, 10).await.expect("due");
    assert_eq!(
        due.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
        vec!["daily"]
    );
    let after = next.plus_ms(86_400_000);
    assert!(
        s.workflow_definition_advance(NS, "daily", next, Some(after))
            .await
            .expect("advance")
    );
    assert!(
        !s.workflow_definition_advance(NS, "daily", next, Some(after.plus_ms(1)))
            .await
            .expect("stale"),
        "a stale advance moves nothing"
    );
    assert_eq!(
        s.workflow_definition_get(NS, "daily")
            .await
            .expect("get")
            .next_fire_at,
        Some(after)
    );
    assert!(
        s.workflow_definition_due(after.plus_ms(-1), 10)
            .await
            .expect("due")
            .is_empty()
    );
    assert!(
        !s.workflow_definition_advance(NS, "gone", next, None)
            .await
            .expect("unknown")
    );
}

async fn insert_of(env: &Env, definition: &str, date: &str) -> hopper_store::WorkflowRun {
    insert_into(env.store_arc(), definition, date).await
}

async fn insert_into(
    store: std::sync::Arc<dyn hopper_store::Store>,
    definition: &str,
    date: &str,
) -> hopper_store::WorkflowRun {
    let req: WorkflowRequest = serde_json::from_str(
        r#"{"steps": [{"step": "a", "job": {"kind": "k"}}, {"step": "b", "depends_on": ["a"], "job": {"kind": "k"}}]}"#,
    )
    .expect("request");
    let steps = validate_steps(req.steps, &|_| false, 0, NS, &Limits::default()).expect("valid");
    store
        .workflow_insert(WorkflowInsert {
            id: WorkflowId::new(),
            namespace: NS.into(),
            name: Some(definition.into()),
            steps,
            actor: API.into(),
            definition: Some((definition.into(), date.into())),
        })
        .await
        .expect("insert")
}

/// A definition has one run per logical date: inserting it again answers the first run and
/// stores nothing; runs are listed by definition.
pub async fn workflow_insert_is_idempotent_per_logical_date(h: &dyn Harness) {
    let env = Env::new(h).await;
    let first = insert_of(&env, "nightly", "2026-11-01").await;
    assert!(!first.duplicate);
    assert_eq!(first.workflow.definition.as_deref(), Some("nightly"));
    assert_eq!(first.workflow.logical_date.as_deref(), Some("2026-11-01"));
    let again = insert_of(&env, "nightly", "2026-11-01").await;
    assert!(again.duplicate);
    assert_eq!(again.workflow.id, first.workflow.id);
    assert_eq!(again.steps.len(), 2);
    insert_of(&env, "nightly", "2026-11-02").await;
    insert_of(&env, "other", "2026-11-01").await;
    let jobs = env.list_all(&list_params()).await;
    assert_eq!(
        jobs.len(),
        6,
        "three runs of two steps; the repeat stored nothing"
    );
    let runs = env
        .store()
        .workflow_list(&WorkflowListParams {
            namespace: NS.into(),
            state: None,
            definition: Some("nightly".into()),
            limit: 10,
            before: None,
        })
        .await
        .expect("list");
    let mut dates: Vec<_> = runs.iter().filter_map(|w| w.logical_date.clone()).collect();
    dates.sort();
    assert_eq!(dates, vec!["2026-11-01", "2026-11-02"]);
    let got = env
        .store()
        .workflow_get(NS, &first.workflow.id)
        .await
        .expect("get");
    assert_eq!(got.workflow.logical_date.as_deref(), Some("2026-11-01"));
}

/// Concurrent inserts of one logical date make one run.
pub async fn concurrent_inserts_of_one_logical_date_make_one_run(h: &dyn Harness) {
    let env = Env::new(h).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| tokio::spawn(insert_into(env.store_arc(), "nightly", "2026-11-03")))
        .collect();
    let mut runs = Vec::new();
    for t in tasks {
        runs.push(t.await.expect("task"));
    }
    let ids: std::collections::HashSet<_> = runs.iter().map(|r| r.workflow.id).collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(runs.iter().filter(|r| !r.duplicate).count(), 1);
    assert_eq!(env.list_all(&list_params()).await.len(), 2);
}

fn backfill(definition: &str, from: &str, to: &str) -> Backfill {
    Backfill {
        id: JobId::new(),
        namespace: NS.into(),
        definition: definition.into(),
        from: from.into(),
        to: to.into(),
        params: serde_json::Map::new(),
        max_running: 3,
        created_at: T0,
        finished_at: None,
    }
}

/// A backfill is unique per definition and date range; unfinished ones are listed until
/// finished.
pub async fn backfill_create_is_idempotent_and_finishes(h: &dyn Harness) {
    let env = Env::new(h).await;
    let s = env.store();
    let (b, dup) = s
        .backfill_create(backfill("nightly", "2026-11-01", "2026-11-30"))
        .await
        .expect("create");
    assert!(!dup);
    let (again, dup) = s
        .backfill_create(backfill("nightly", "2026-11-01", "2026-11-30"))
        .await
        .expect("again");
    assert!(dup);
    assert_eq!(again.id, b.id);
    let (other, _) = s
        .backfill_create(backfill("nightly", "2026-12-01", "2026-12-02"))
        .await
        .expect("other");
    assert_eq!(s.backfill_get(NS, &b.id).await.expect("get"), b);
    assert_not_found(s.backfill_get("other", &b.id).await);
    let all: Vec<JobId> = s
        .backfill_list(Some(NS), false)
        .await
        .expect("list")
        .iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(all, vec![other.id, b.id], "newest first");
    s.backfill_finish(&b.id, T0.plus_ms(9))
        .await
        .expect("finish");
    let open: Vec<JobId> = s
        .backfill_list(None, true)
        .await
        .expect("list")
        .iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(open, vec![other.id]);
    assert_eq!(
        s.backfill_get(NS, &b.id).await.expect("get").finished_at,
        Some(T0.plus_ms(9))
    );
    assert!(matches!(
        s.backfill_finish(&JobId::new(), T0).await,
        Err(StoreError::NotFound)
    ));
}
