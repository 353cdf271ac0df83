//! Leader leases: `leader_acquire`, `leader_resign`.
//!
//! Semantics: a named lease has at most one live holder. `leader_acquire` takes it when it is
//! free or expired, renews it when the caller already holds it (until `ttl_ms` from now, by
//! the store's clock), and is refused (false, not an error) while another holder's lease is
//! live, that is while its expiry is later than now. `leader_resign` frees it at once when
//! called by its holder and does nothing when called by anyone else. Nodes sharing a store run
//! their singleton services (promotion, rescue, pruning) only while they hold `maintenance`.

use crate::Harness;
use crate::support::*;

/// The lease every test contends for.
const NAME: &str = "maintenance";

/// How long the test leases last.
const TTL_MS: i64 = 10_000;

/// `leader_acquire` as a test asks it: whether `holder` holds `name` afterwards.
async fn acquire(env: &Env, name: &str, holder: &str, ttl_ms: i64) -> bool {
    env.store()
        .leader_acquire(name, holder, ttl_ms)
        .await
        .unwrap_or_else(|e| panic!("leader_acquire({name}, {holder}): {e:?}"))
}

/// `leader_resign`, which must succeed whoever calls it.
async fn resign(env: &Env, name: &str, holder: &str) {
    env.store()
        .leader_resign(name, holder)
        .await
        .unwrap_or_else(|e| panic!("leader_resign({name}, {holder}): {e:?}"));
}

/// The first to ask for a free lease gets it; leases of other names are independent.
pub async fn leader_first_acquire_wins(h: &dyn Harness) {
    let env = Env::new(h).await;
    assert!(
        acquire(&env, NAME, "a", TTL_MS).await,
        "a free lease is taken"
    );
    assert!(!acquire(&env, NAME, "b", TTL_MS).await, "a holds it now");
    assert!(
        acquire(&env, "other-role", "b", TTL_MS).await,
        "another name is another lease"
    );
    assert!(
        !acquire(&env, "other-role", "a", TTL_MS).await,
        "b holds the other name"
    );
}

/// While the holder's lease is live, up to its last millisecond, nobody else gets it.
pub async fn leader_second_holder_is_refused_while_live(h: &dyn Harness) {
    let env = Env::new(h).await;
    assert!(acquire(&env, NAME, "a", TTL_MS).await);
    assert!(!acquire(&env, NAME, "b", TTL_MS).await, "refused at once");
    env.advance(TTL_MS - 1);
    assert!(
        !acquire(&env, NAME, "b", TTL_MS).await,
        "refused one millisecond before expiry"
    );
    assert!(
        !acquire(&env, NAME, "c", 1).await,
        "refused whatever ttl is asked for"
    );
}

/// The holder asking again renews its lease from now: others stay refused past the first
/// expiry, until the renewed one.
pub async fn leader_renew_by_holder_extends(h: &dyn Harness) {
    let env = Env::new(h).await;
    assert!(acquire(&env, NAME, "a", TTL_MS).await);
    env.advance(6_000);
    assert!(acquire(&env, NAME, "a", TTL_MS).await, "the holder renews");
    env.advance(6_000); // past the first expiry, before the renewed one
    assert!(
        !acquire(&env, NAME, "b", TTL_MS).await,
        "the renewed lease is live"
    );
    env.advance(3_999);
    assert!(!acquire(&env, NAME, "b", TTL_MS).await);
    env.advance(1);
    assert!(
        acquire(&env, NAME, "b", TTL_MS).await,
        "taken once the renewed lease expired"
    );
}

/// An expired lease goes to whoever asks next; the old holder is then refused.
pub async fn leader_takeover_after_expiry(h: &dyn Harness) {
    let env = Env::new(h).await;
    assert!(acquire(&env, NAME, "a", TTL_MS).await);
    env.advance(TTL_MS);
    assert!(
        acquire(&env, NAME, "b", TTL_MS).await,
        "a lease is not live at its expiry"
    );
    assert!(
        !acquire(&env, NAME, "a", TTL_MS).await,
        "the old holder lost it"
    );
    env.advance(TTL_MS - 1);
    assert!(
        acquire(&env, NAME, "b", TTL_MS).await,
        "the new holder renews"
    );
    env.advance(TTL_MS + 1);
    assert!(
        acquire(&env, NAME, "a", TTL_MS).await,
        "and the old holder may take it back once it expires"
    );
}

/// The holder resigning frees the lease at once, with no wait for its expiry.
pub async fn leader_resign_lets_another_take_it_at_once(h: &dyn Harness) {
    let env = Env::new(h).await;
    assert!(acquire(&env, NAME, "a", TTL_MS).await);
    resign(&env, NAME, "a").await;
    assert!(
        acquire(&env, NAME, "b", TTL_MS).await,
        "free right after the resignation"
    );
    assert!(!acquire(&env, NAME, "a", TTL_MS).await, "b holds it now");
}

/// A resignation by anyone but the holder changes nothing; resigning a lease nobody holds
/// is not an error.
pub async fn leader_resign_by_a_non_holder_does_nothing(h: &dyn Harness) {
    let env = Env::new(h).await;
    resign(&env, NAME, "a").await;
    assert!(acquire(&env, NAME, "a", TTL_MS).await);
    resign(&env, NAME, "b").await;
    resign(&env, "other-role", "a").await;
    assert!(
        !acquire(&env, NAME, "b", TTL_MS).await,
        "a still holds it after b's resignation"
    );
    env.advance(TTL_MS - 1);
    assert!(
        !acquire(&env, NAME, "b", TTL_MS).await,
        "and keeps it until its expiry"
    );
    assert!(
        acquire(&env, NAME, "a", TTL_MS).await,
        "a can still renew it"
    );
}
