//! Reading the event log in order, for the live event stream.
//!
//! `seq` is an identity taken when a row is inserted, not when its transaction commits, so a
//! reader can see seq 6 before a slower transaction commits seq 5; the server's tailer waits a
//! little for such gaps (see `Store::events_visible_in_seq_order`). A job's own events are in
//! order: its transitions hold the job's row lock one after another.

use hopper_store::{EventLogRow, StoreError};
use hopper_types::StreamEvent;
use sqlx::{PgConnection, Row};

use crate::error::db_error;
use crate::rows::decode_event;

pub(crate) async fn events_after(
    conn: &mut PgConnection,
    after: i64,
    limit: usize,
) -> Result<Vec<EventLogRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT e.seq, e.job_id, e.from_state, e.to_state, e.at, e.actor, e.reason,
                e.namespace, j.queue, j.kind
         FROM hopper.job_events e LEFT JOIN hopper.jobs j ON j.id = e.job_id
         WHERE e.seq > $1 ORDER BY e.seq LIMIT $2",
    )
    .bind(after)
    .bind(limit as i64)
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|row| {
            let event = decode_event(row)?;
            let queue: Option<String> = row.try_get(8).map_err(db_error)?;
            let kind: Option<String> = row.try_get(9).map_err(db_error)?;
            let event = match (queue, kind) {
                (Some(queue), Some(kind)) => Some(StreamEvent::new(
                    event,
                    row.try_get(7).map_err(db_error)?,
                    queue,
                    kind,
                )),
                _ => None,
            };
            Ok(EventLogRow {
                seq: row.try_get(0).map_err(db_error)?,
                event,
            })
        })
        .collect()
}

pub(crate) async fn last_seq(conn: &mut PgConnection) -> Result<i64, StoreError> {
    sqlx::query_scalar("SELECT coalesce(max(seq), 0)::bigint FROM hopper.job_events")
        .fetch_one(conn)
        .await
        .map_err(db_error)
}
