//! The states a job moves through, and which part of Hopper moves it in and out of each.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A job's state. See the transition table in the semantics document; the functions of
/// [`crate::lifecycle`] are the only code that changes it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waits for its dependencies (workflows). Left when every parent is terminal.
    Pending,
    /// Waits for `run_at`. Entered at enqueue; left by the promoter when the time comes, or by retry.
    Scheduled,
    /// Can be leased now. Entered at enqueue, by the promoter, by release and by retry; left by a lease.
    Available,
    /// Leased by exactly one worker. Left by the worker's outcome or by the rescuer when the lease
    /// expires or the attempt times out.
    Running,
    /// Waits for its backoff after a failed attempt. Left by the promoter, by retry or by cancel.
    Retryable,
    /// Finished: the handler succeeded. Left only by retry, delete or retention.
    Completed,
    /// Finished: no attempts left or a non-retryable failure (the dead-letter queue).
    Dead,
    /// Finished: cancelled before or while it ran.
    Cancelled,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 8] = [
        JobState::Pending,
        JobState::Scheduled,
        JobState::Available,
        JobState::Running,
        JobState::Retryable,
        JobState::Completed,
        JobState::Dead,
        JobState::Cancelled,
    ];

    /// The state's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Scheduled => "scheduled",
            JobState::Available => "available",
            JobState::Running => "running",
            JobState::Retryable => "retryable",
            JobState::Completed => "completed",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Completed, dead or cancelled: nothing more happens unless someone retries it.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Dead | JobState::Cancelled
        )
    }

    /// Pending, scheduled, available or retryable: not running and not finished.
    pub fn is_waiting(self) -> bool {
        matches!(
            self,
            JobState::Pending | JobState::Scheduled | JobState::Available | JobState::Retryable
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not a state name.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown job state `{0}`")]
pub struct UnknownState(pub String);

impl FromStr for JobState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for st in JobState::ALL {
            assert_eq!(st.as_str().parse::<JobState>().unwrap(), st);
            assert_eq!(
                serde_json::to_string(&st).unwrap(),
                format!("\"{}\"", st.as_str())
            );
        }
        assert!("done".parse::<JobState>().is_err());
    }
}
