//! The conformance suite every Hopper storage backend must pass.
//!
//! [`hopper_store::Store`] is one contract with several implementations (embedded SQLite,
//! PostgreSQL). This crate states that contract once, as tests, and every backend runs the very
//! same tests against a real instance of itself. A change to the `Store` trait or to the
//! semantics document extends this suite, never a backend's private tests.
//!
//! A backend provides a [`Harness`] (how to create a fresh, isolated database and open a store
//! over it) and expands [`conformance_suite!`] in one integration test file:
//!
//! ```text
//! struct MyHarness;
//!
//! #[hopper_store_tests::async_trait]
//! impl hopper_store_tests::Harness for MyHarness {
//!     async fn new_database(&self) -> Box<dyn hopper_store_tests::TestDatabase> { ... }
//! }
//!
//! hopper_store_tests::conformance_suite!(MyHarness);
//! ```
//!
//! Every test gets its own database and its own [`hopper_types::ManualClock`], so time-based
//! behaviour (leases, backoff, `run_at`, retention) is tested by moving the clock, never by
//! sleeping, and tests run in parallel without seeing each other.
//!
//! Layout, one area per module (as River's `riverdrivertest`):
//! - [`support`]: the test environment and readable helpers (`enqueue`, `lease_one`, ...).
//! - [`job_insert`]: enqueue, batches, idempotency keys.
//! - [`job_read`]: get, list filters, pagination, events.
//! - [`job_lease`]: lease fields, ordering, batching, pause, namespaces.
//! - [`job_outcome`]: complete, fail, release, cancelled; backoff; fencing; repeats; heartbeat.
//! - [`job_admin`]: cancel, retry, delete, and the state table for them.
//! - [`maintenance`]: promotion, rescue, retention, idempotency key pruning, restart grace.
//! - [`queue`]: queue listing and counts, pause and resume, retrying dead jobs, purge, workers.
//! - [`concurrency`]: many tasks at once against one store.
//! - [`signals`]: long-poll wake-ups after commits that make jobs available.
//! - [`durability`]: reopening a store, closing it.
//! - [`leadership`]: leader leases (take, renew, expire, resign).
//! - [`export`]: export, import and totals, what `hopper migrate` copies a store with.
//! - [`schedule`]: cron schedules, their due selection and the compare-and-set fire.
//! - [`feed`]: the event log in order, as the live event stream tails it.
//! - [`workers_seen`]: the workers every node saw, shared through the store.
//! - [`workflow`]: workflow runs, their steps' dependencies, failure policies, fan-in.
//! - [`workflow_definition`]: definitions, their cron fire times, runs per logical date, backfills.
//! - [`security`]: API keys (never their secrets), namespace quotas, the audit log, webhooks.

pub mod concurrency;
pub mod durability;
pub mod export;
pub mod feed;
pub mod flow;
pub mod job_admin;
pub mod job_insert;
pub mod job_lease;
pub mod job_outcome;
pub mod job_read;
pub mod leadership;
pub mod maintenance;
pub mod queue;
pub mod schedule;
pub mod security;
pub mod signals;
pub mod support;
pub mod workers_seen;
pub mod workflow;
pub mod workflow_definition;

use std::sync::Arc;

pub use async_trait::async_trait;
pub use hopper_store::{Store, StoreError};
pub use hopper_types::Clock;

/// What a backend gives the suite: fresh, isolated databases.
#[async_trait]
pub trait Harness: Send + Sync {
    /// Creates a new, empty database that no other test sees (a temporary directory, a fresh
    /// PostgreSQL schema or database). It lives as long as the returned value.
    async fn new_database(&self) -> Box<dyn TestDatabase>;
}

/// One database created by a [`Harness`].
#[async_trait]
pub trait TestDatabase: Send + Sync {
    /// Opens a store over this database whose every timestamp comes from `clock`.
    ///
    /// The suite opens the same database again after closing and dropping the previous store
    /// (to test that data survives a restart): the new store must see everything the old one
    /// committed.
    async fn open(&self, clock: Arc<dyn Clock>) -> Result<Arc<dyn Store>, StoreError>;
}

/// Expands to one `#[tokio::test]` per conformance test, grouped in one module per area, each
/// running against a fresh database of the given harness.
///
/// ```text
/// hopper_store_tests::conformance_suite!(SqliteHarness);
/// ```
///
/// The harness expression is evaluated once per test, inside modules that `use super::*`, so
/// it may name items of the calling file. The calling crate needs `tokio` (with the
/// multi-threaded runtime) among its dev-dependencies.
#[macro_export]
macro_rules! conformance_suite {
    ($harness:expr) => {
        $crate::__conformance_tests! { $harness;
            job_insert: [
                insert_creates_an_available_job_with_defaults,
                insert_keeps_every_field_as_given,
                insert_with_run_at_in_the_future_is_scheduled,
                insert_with_run_at_in_the_past_is_available_now,
                insert_many_answers_in_request_order,
                idempotency_key_with_same_content_answers_the_existing_job,
                idempotency_key_compares_args_as_json_values,
                idempotency_key_with_different_content_conflicts,
                idempotency_key_answers_the_job_in_its_current_state,
                batch_with_one_conflicting_key_creates_nothing,
                batch_mixing_duplicates_and_new_jobs,
                idempotency_key_outlives_its_deleted_job,
                idempotency_keys_are_per_namespace,
                insert_records_an_enqueue_event,
            ],
            job_read: [
                get_unknown_job_is_not_found,
                get_job_of_another_namespace_is_not_found,
                list_is_newest_first_and_per_namespace,
                list_filters_by_state,
                list_filters_by_queue_kind_and_tag,
                list_searches_kind_id_and_tags,
                list_combines_filters,
                list_pages_through_every_job,
                list_pages_are_stable_while_jobs_are_inserted,
                events_record_every_transition_with_time_and_actor,
                events_of_an_unknown_job_are_empty_or_not_found,
            ],
            job_lease: [
                lease_marks_the_job_running,
                lease_of_empty_or_unlisted_queues_is_empty,
                lease_takes_only_available_jobs,
                lease_orders_by_priority_then_available_at_then_id_across_queues,
                lease_batch_takes_the_first_jobs_in_order,
                lease_batch_takes_what_there_is,
                lease_again_grows_lease_seq_and_changes_token,
                paused_queue_hands_out_nothing_and_resume_restarts_it,
                pause_keeps_running_leases_alive,
                lease_is_per_namespace,
            ],
            job_outcome: [
                complete_keeps_result_and_ends_the_lease,
                fail_with_attempts_left_is_retryable_after_fixed_backoff,
                fail_backoff_is_exponential_within_jitter_bounds,
                fail_backoff_is_capped,
                fail_default_backoff_is_one_second_within_jitter,
                fail_backoff_jitter_spreads_retries,
                fail_retry_in_ms_overrides_backoff,
                fail_not_retryable_is_dead,
                fail_without_attempts_left_is_dead,
                release_hands_back_without_counting_the_attempt,
                cancel_requested_then_cancelled_outcome_is_cancelled,
                cancel_requested_then_fail_is_cancelled,
                cancel_requested_then_release_is_cancelled,
                cancel_requested_then_complete_is_completed,
                outcome_with_a_bogus_token_is_lease_lost,
                outcome_with_a_stale_token_is_lease_lost,
                repeated_outcome_is_ok_and_changes_nothing,
                different_outcome_for_a_token_is_invalid_state,
                outcomes_on_jobs_that_are_not_running_follow_the_state_table,
                heartbeat_extends_the_lease,
                heartbeat_records_progress,
                heartbeat_reports_cancel_requested,
                heartbeat_is_refused_after_the_attempt_timed_out,
                heartbeat_renews_an_expired_lease_not_yet_rescued,
                complete_after_lease_expiry_before_rescue_succeeds,
                ack_many_answers_each_ack_alone_in_order,
                outcome_for_a_job_of_another_namespace_is_not_found,
            ],
            job_admin: [
                cancel_waiting_jobs_ends_them_at_once,
                cancel_running_job_requests_cancellation,
                cancel_finished_job_is_invalid_state,
                retry_finished_jobs_starts_over,
                retry_waiting_jobs_runs_them_now,
                retry_available_or_running_job_is_invalid_state,
                delete_finished_job_removes_it_and_its_events,
                delete_unfinished_job_is_invalid_state,
                delete_unknown_job_is_not_found,
                admin_triggers_follow_the_state_table,
                admin_on_another_namespace_is_not_found,
            ],
            maintenance: [
                promote_moves_a_scheduled_job_when_its_time_comes_not_before,
                promote_moves_due_retryable_jobs,
                promote_respects_limit,
                next_due_at_is_the_earliest_scheduled_or_retryable_job,
                rescue_waits_until_the_lease_expires,
                rescue_of_timed_out_attempt_is_kind_timeout,
                rescue_of_a_cancel_requested_job_cancels_it,
                rescue_without_attempts_left_is_dead,
                rescue_spares_leases_kept_alive_by_heartbeats,
                rescue_respects_limit,
                prune_removes_finished_jobs_per_state_retention,
                prune_removes_events_and_keeps_idempotency_keys,
                prune_respects_limit,
                idempotency_key_prune_forgets_old_keys,
                max_outstanding_lease_is_the_longest_running_lease,
            ],
            queue: [
                queue_list_counts_jobs_per_state,
                queue_list_reports_oldest_available_age,
                queue_get_of_an_unknown_queue_is_empty,
                queue_pause_and_resume,
                queue_pause_is_per_namespace,
                queue_retry_dead_retries_only_that_queues_dead_jobs,
                queue_purge_deletes_one_finished_state,
                queue_purge_refuses_unfinished_states,
                worker_running_list_counts_running_jobs_per_worker,
            ],
            concurrency: [
                concurrent_enqueues_of_one_key_create_one_job,
                concurrent_batches_sharing_keys_create_one_job_per_key,
                concurrent_leases_never_hand_out_a_job_twice,
                concurrent_repeats_of_one_outcome_apply_once,
                rescue_racing_complete_applies_exactly_one,
            ],
            signals: [
                insert_wakes_listeners_of_its_queue,
                promote_wakes_listeners,
                release_wakes_listeners,
                retry_wakes_listeners,
                queue_retry_dead_wakes_listeners,
            ],
            durability: [
                data_survives_reopening,
                lease_tokens_survive_reopening,
                closed_store_refuses_changes,
                ping_answers,
            ],
            leadership: [
                leader_first_acquire_wins,
                leader_second_holder_is_refused_while_live,
                leader_renew_by_holder_extends,
                leader_takeover_after_expiry,
                leader_resign_lets_another_take_it_at_once,
                leader_resign_by_a_non_holder_does_nothing,
            ],
            flow: [
                queue_configure_stores_and_replaces_the_whole_config,
                flow_global_concurrency_caps_running_jobs,
                flow_key_concurrency_holds_back_only_the_full_key,
                flow_rate_limits_starts_per_period,
                flow_key_rate_is_per_key,
                flow_fair_queue_serves_keys_in_turn,
                flow_shortest_first_orders_by_estimate,
                flow_limits_compose,
                flow_concurrent_leases_respect_the_cap,
                prune_follows_a_queues_own_retention,
                explain_counts_the_jobs_ahead_and_the_running,
                flow_state_of_idle_keys_is_pruned,
            ],
            export: [
                export_pages_through_every_job_in_id_order_with_events,
                export_idempotency_keys_pages_in_namespace_key_order,
                export_queues_lists_every_configured_queue,
                totals_count_every_row,
                export_audit_pages_through_the_log_oldest_first,
                import_reproduces_keys_quotas_audit_and_webhooks,
                import_keeps_audit_seqs_and_cursors_beyond_the_logs_end,
                import_merges_security_rows_into_a_store_with_its_own,
                import_into_a_fresh_store_reproduces_everything,
                import_of_the_same_rows_again_adds_nothing,
                import_never_overwrites_rows_already_present,
                import_wakes_listeners_of_queues_it_fills,
                import_reproduces_workflows_that_finish_on_the_new_store,
            ],
            schedule: [
                schedule_create_get_list_and_delete,
                schedule_update_replaces_the_definition_and_keeps_runs,
                schedule_pause_hides_it_from_due_and_resume_restores_it,
                schedule_due_selects_unpaused_schedules_whose_time_came,
                schedule_fire_inserts_jobs_and_advances,
                schedule_fire_with_a_stale_cursor_inserts_nothing,
                schedule_fire_honours_tick_idempotency_keys,
                schedule_fire_is_atomic,
                schedule_concurrent_fires_of_one_tick_create_one_job,
                schedule_survives_reopening,
            ],
            feed: [
                feed_of_an_empty_store_is_empty,
                feed_reads_every_event_in_seq_order_with_queue_and_kind,
                feed_pages_after_a_cursor_with_a_limit,
                feed_never_reuses_a_seq_after_deleting_the_newest_event,
            ],
            workers_seen: [
                workers_seen_are_listed_per_namespace_since_a_time,
                a_later_sighting_wins_whatever_the_order_of_writes,
                workers_seen_prune_forgets_the_old_ones,
            ],
            workflow: [
                workflow_diamond_runs_in_dependency_order_and_passes_results,
                workflow_cancel_dependents_cancels_everything_downstream,
                workflow_continue_and_ignore_let_dependents_run,
                workflow_cancelled_step_follows_its_policy,
                workflow_cancel_cancels_what_has_not_finished,
                workflow_retry_reruns_failed_and_cancelled_steps_only,
                workflow_running_step_adds_a_fan_out_and_fan_in,
                workflow_added_steps_are_validated_against_the_run,
                workflow_concurrent_fan_in_fires_exactly_once,
                workflow_rescued_dead_step_cancels_its_dependents,
                workflow_list_get_and_namespaces,
                workflow_steps_are_left_out_of_queue_retry_dead,
            ],
            workflow_definition: [
                workflow_definition_put_get_list_delete,
                workflow_definition_due_and_advance_by_compare_and_set,
                workflow_insert_is_idempotent_per_logical_date,
                concurrent_inserts_of_one_logical_date_make_one_run,
                backfill_create_is_idempotent_and_finishes,
            ],
            security: [
                api_key_insert_and_list_round_trip,
                api_key_revoke_keeps_the_first_time,
                the_store_never_holds_a_usable_key,
                namespace_put_replaces_and_lists_by_name,
                audit_append_numbers_increase_and_list_is_newest_first,
                audit_list_pages_with_before_and_limit,
                audit_list_filters_by_namespace,
                webhook_insert_list_and_delete_by_namespace,
                webhook_advance_is_a_compare_and_set,
                concurrent_webhook_advances_from_one_cursor_move_it_once,
            ],
        }
    };
}

/// The expansion of [`conformance_suite!`]; not for direct use.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($harness:expr; $($module:ident: [$($test:ident),* $(,)?]),* $(,)?) => {
        $(
            mod $module {
                #[allow(unused_imports)]
                use super::*;
                $(
                    #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $test() {
                        $crate::$module::$test(&$harness).await;
                    }
                )*
            }
        )*
    };
}

#[cfg(test)]
mod self_check {
    //! Every test function of the suite is listed in [`conformance_suite!`], and nothing else.

    const LIB: &str = include_str!("lib.rs");

    const MODULES: &[(&str, &str)] = &[
        ("job_insert", include_str!("job_insert.rs")),
        ("job_read", include_str!("job_read.rs")),
        ("job_lease", include_str!("job_lease.rs")),
        ("job_outcome", include_str!("job_outcome.rs")),
        ("job_admin", include_str!("job_admin.rs")),
        ("maintenance", include_str!("maintenance.rs")),
        ("queue", include_str!("queue.rs")),
        ("concurrency", include_str!("concurrency.rs")),
        ("signals", include_str!("signals.rs")),
        ("durability", include_str!("durability.rs")),
        ("leadership", include_str!("leadership.rs")),
        ("export", include_str!("export.rs")),
        ("schedule", include_str!("schedule.rs")),
        ("feed", include_str!("feed.rs")),
        ("workers_seen", include_str!("workers_seen.rs")),
        ("workflow", include_str!("workflow.rs")),
        (
            "workflow_definition",
            include_str!("workflow_definition.rs"),
        ),
        ("security", include_str!("security.rs")),
    ];

    fn defined(source: &str) -> Vec<String> {
        source
            .lines()
            .filter_map(|l| l.trim().strip_prefix("pub async fn "))
            .filter(|l| l.contains("(h: &dyn Harness)"))
            .map(|l| l.split('(').next().unwrap().to_string())
            .collect()
    }

    fn listed(module: &str) -> Vec<String> {
        let start = LIB
            .find(&format!("            {module}: ["))
            .unwrap_or_else(|| panic!("{module} is not in conformance_suite!"));
        let body = &LIB[start..];
        let body = &body[body.find('[').unwrap() + 1..body.find(']').unwrap()];
        body.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    #[test]
    fn every_test_is_listed_in_the_macro() {
        for (module, source) in MODULES {
            let mut defined = defined(source);
            let mut listed = listed(module);
            defined.sort();
            listed.sort();
            assert_eq!(defined, listed, "tests of {module} vs conformance_suite!");
        }
    }
}
