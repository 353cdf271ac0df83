//! Workers seen: `workers_seen_record`, `workers_seen_list`, `workers_seen_prune`.
//!
//! Semantics: one row per (namespace, worker id); a sighting replaces an older one and never a
//! newer one (nodes flush at different moments); listing is per namespace, from a time on, by
//! id; pruning forgets workers last seen before a time.

use hopper_store::WorkerSeen;
use hopper_types::Timestamp;

use crate::Harness;
use crate::support::*;

fn seen(namespace: &str, id: &str, queues: &[&str], at: Timestamp, node: &str) -> WorkerSeen {
    WorkerSeen {
        namespace: namespace.into(),
        worker_id: id.into(),
        queues: queues.iter().map(|q| q.to_string()).collect(),
        last_seen_at: at,
        node: node.into(),
    }
}

/// What was recorded is listed back, by id, per namespace, from a time on.
pub async fn workers_seen_are_listed_per_namespace_since_a_time(h: &dyn Harness) {
    let env = Env::new(h).await;
    let s = env.store();
    s.workers_seen_record(vec![
        seen(NS, "w2", &["a", "b"], T0.plus_ms(2_000), "n1"),
        seen(NS, "w1", &["a"], T0.plus_ms(1_000), "n2"),
        seen("other", "w3", &["a"], T0.plus_ms(3_000), "n1"),
    ])
    .await
    .expect("record");
    let all = s.workers_seen_list(Some(NS), T0).await.expect("list");
    assert_eq!(
        all,
        vec![
            seen(NS, "w1", &["a"], T0.plus_ms(1_000), "n2"),
            seen(NS, "w2", &["a", "b"], T0.plus_ms(2_000), "n1"),
        ]
    );
    let recent = s
        .workers_seen_list(Some(NS), T0.plus_ms(1_500))
        .await
        .expect("list");
    assert_eq!(
        recent
            .iter()
            .map(|w| w.worker_id.as_str())
            .collect::<Vec<_>>(),
        vec!["w2"]
    );
    assert_eq!(
        s.workers_seen_list(Some("other"), T0)
            .await
            .expect("list")
            .len(),
        1
    );
    let every = s.workers_seen_list(None, T0).await.expect("list");
    assert_eq!(
        every
            .iter()
            .map(|w| (w.namespace.as_str(), w.worker_id.as_str()))
            .collect::<Vec<_>>(),
        vec![(NS, "w1"), (NS, "w2"), ("other", "w3")],
        "every namespace, by namespace then id"
    );
    s.workers_seen_record(Vec::new())
        .await
        .expect("an empty batch is fine");
}

/// A later sighting replaces the row; an older one (another node's slower flush) does not.
pub async fn a_later_sighting_wins_whatever_the_order_of_writes(h: &dyn Harness) {
    let env = Env::new(h).await;
    let s = env.store();
    s.workers_seen_record(vec![seen(NS, "w", &["a"], T0.plus_ms(5_000), "n1")])
        .await
        .expect("record");
    s.workers_seen_record(vec![seen(NS, "w", &["b"], T0.plus_ms(4_000), "n2")])
        .await
        .expect("record");
    assert_eq!(
        s.workers_seen_list(Some(NS), T0).await.expect("list"),
        vec![seen(NS, "w", &["a"], T0.plus_ms(5_000), "n1")],
        "the older sighting changed nothing"
    );
    s.workers_seen_record(vec![seen(NS, "w", &["c"], T0.plus_ms(6_000), "n2")])
        .await
        .expect("record");
    assert_eq!(
        s.workers_seen_list(Some(NS), T0).await.expect("list"),
        vec![seen(NS, "w", &["c"], T0.plus_ms(6_000), "n2")]
    );
}

/// Pruning forgets exactly the workers last seen before the given time.
pub async fn workers_seen_prune_forgets_the_old_ones(h: &dyn Harness) {
    let env = Env::new(h).await;
    let s = env.store();
    s.workers_seen_record(vec![
        seen(NS, "old", &[], T0, "n1"),
        seen(NS, "new", &["q"], T0.plus_ms(10_000), "n1"),
    ])
    .await
    .expect("record");
    assert_eq!(s.workers_seen_prune(T0.plus_ms(1)).await.expect("prune"), 1);
    let left = s.workers_seen_list(Some(NS), T0).await.expect("list");
    assert_eq!(
        left.iter()
            .map(|w| w.worker_id.as_str())
            .collect::<Vec<_>>(),
        vec!["new"]
    );
    assert_eq!(s.workers_seen_prune(T0.plus_ms(1)).await.expect("prune"), 0);
}
