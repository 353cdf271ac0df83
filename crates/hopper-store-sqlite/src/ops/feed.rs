//! Reading the event log in order, for the live event stream.
//!
//! Events are written by the single writer in `seq` order (the table's key is
//! AUTOINCREMENT, so a deleted newest row's `seq` is never handed out again), hence a reader's
//! snapshot always holds a prefix of the log and a gap in it is final.

use hopper_store::{EventLogRow, StoreError};
use hopper_types::StreamEvent;
use rusqlite::{Connection, params};

use crate::rows::{decode_event, sql_error};

pub(crate) fn events_after(
    conn: &Connection,
    after: i64,
    limit: usize,
) -> Result<Vec<EventLogRow>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT e.seq, e.job_id, e.from_state, e.to_state, e.at, e.actor, e.reason,
                    e.namespace, j.queue, j.kind
             FROM job_events e LEFT JOIN jobs j ON j.id = e.job_id
             WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2",
        )
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(params![after, limit as i64], |row| {
            let event = decode_event(row)?;
            let seq = event.seq;
            let queue: Option<String> = row.get(8)?;
            let kind: Option<String> = row.get(9)?;
            Ok(EventLogRow {
                seq,
                event: match (queue, kind) {
                    (Some(queue), Some(kind)) => {
                        Some(StreamEvent::new(event, row.get(7)?, queue, kind))
                    }
                    _ => None,
                },
            })
        })
        .map_err(sql_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql_error)
}

pub(crate) fn last_seq(conn: &Connection) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT coalesce(max(seq), 0) FROM job_events")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(sql_error)
}
