//! Path and query extractors that reject with the JSON error body (axum's own rejections answer
//! plain text), and that validate what they extract: a job id must be a UUID, a queue name must
//! be a valid name.

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use hopper_types::{JobId, validate_name};

use crate::error::ApiError;
use crate::state::AppState;

/// The `{id}` of a job route.
#[derive(Debug, Clone, Copy)]
pub struct JobIdPath(pub JobId);

impl FromRequestParts<AppState> for JobIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid("id", e.body_text()))?;
        raw.parse::<JobId>()
            .map(JobIdPath)
            .map_err(|_| ApiError::invalid("id", format!("`{raw}` is not a job id (a UUID)")))
    }
}

/// The `{id}` of a workflow run route.
#[derive(Debug, Clone, Copy)]
pub struct WorkflowIdPath(pub hopper_types::workflow_run::WorkflowId);

impl FromRequestParts<AppState> for WorkflowIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid("id", e.body_text()))?;
        raw.parse().map(WorkflowIdPath).map_err(|_| {
            ApiError::invalid("id", format!("`{raw}` is not a workflow run id (a UUID)"))
        })
    }
}

/// The `{name}` of a queue route. Queues exist implicitly, so any valid name is accepted.
#[derive(Debug, Clone)]
pub struct QueueNamePath(pub String);

impl FromRequestParts<AppState> for QueueNamePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid("name", e.body_text()))?;
        validate_name("name", &raw)?;
        Ok(QueueNamePath(raw))
    }
}

/// The query string as ordered pairs, so repeatable parameters (`state=a&state=b`) survive and
/// each handler can refuse parameters it does not know. `namespace` is not among them: it
/// belongs to every request and is read by [`crate::auth::Authorized`].
#[derive(Debug, Clone, Default)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl FromRequestParts<AppState> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid("query", e.body_text()))?;
        Ok(QueryPairs(
            pairs
                .into_iter()
                .filter(|(k, _)| k != "namespace")
                .collect(),
        ))
    }
}

impl QueryPairs {
    /// Refuses any parameter not in `known`, naming it: a typo such as `limt=5` must not be
    /// silently ignored.
    pub fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self.0.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            Some((k, _)) => Err(ApiError::invalid(
                k.clone(),
                format!("unknown query parameter `{k}`; expected one of {known:?}"),
            )),
            None => Ok(()),
        }
    }

    /// Every value of `key`, in order.
    pub fn all<'a, 'k>(&'a self, key: &'k str) -> impl Iterator<Item = &'a str> + use<'a, 'k> {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The page a list asks for: `limit` (1..=`max`, `default` when absent) and `cursor` (the
    /// previous page's `next_cursor`, an id), each named when bad.
    pub fn page(&self, default: usize, max: usize) -> Result<(usize, Option<JobId>), ApiError> {
        let limit = match self.single("limit")? {
            None => default,
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => n,
                _ => {
                    return Err(ApiError::invalid(
                        "limit",
                        format!("limit must be an integer between 1 and {max}"),
                    ));
                }
            },
        };
        let cursor = match self.single("cursor")? {
            None | Some("") => None,
            Some(c) => Some(c.parse::<JobId>().map_err(|_| {
                ApiError::invalid(
                    "cursor",
                    "cursor must be the next_cursor of a previous page",
                )
            })?),
        };
        Ok((limit, cursor))
    }

    /// The value of a parameter given at most once.
    pub fn single(&self, key: &str) -> Result<Option<&str>, ApiError> {
        let mut it = self.all(key);
        let first = it.next();
        if it.next().is_some() {
            return Err(ApiError::invalid(
                key,
                format!("`{key}` may be given only once"),
            ));
        }
        Ok(first)
    }
}
