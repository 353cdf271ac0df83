//! Named workflow definitions: a run's steps as a template with parameters, triggered by hand
//! (API, CLI), by its own cron expression, or over a range of dates by a backfill. Each run of a
//! definition has a logical date, and a definition has at most one run per logical date, which
//! is what makes triggers and backfills idempotent.
//!
//! Templates: in a step's `job.args`, a string that is exactly `{{params.NAME}}` is replaced by
//! the parameter's JSON value, `{{logical_date}}` by the run's logical date, and either inside a
//! longer string by its text. Parameters are the definition's defaults overlaid with those of
//! the trigger.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::cron::CronSchedule;
use crate::workflow::{StepRequest, validate_steps};
use crate::{JobId, Limits, Timestamp, ValidationError, validate_name};

/// Most dates one backfill covers.
pub const MAX_BACKFILL_DATES: usize = 1_000;
/// How many runs of a backfill run at once when the request does not say.
pub const DEFAULT_MAX_RUNNING: u32 = 4;
/// Most runs of one backfill allowed to run at once.
pub const MAX_MAX_RUNNING: u32 = 100;

/// `PUT /v1/workflows/definitions/{name}` body. Unknown fields are refused.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DefinitionRequest {
    /// The steps, as a run would be submitted, with `{{params.NAME}}` and `{{logical_date}}`
    /// in job args.
    pub steps: Vec<StepRequest>,
    /// Parameter defaults.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
    /// Runs the definition at every tick of this cron expression (5 or 6 fields, or an alias
    /// like `@daily`), the tick's time as logical date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// The IANA time zone `cron` is read in; `UTC` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// A stored definition.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkflowDefinition {
    /// Tenant.
    pub namespace: String,
    /// Unique in the namespace.
    pub name: String,
    /// The step templates.
    #[schema(value_type = Vec<Object>)]
    pub steps: Vec<StepRequest>,
    /// Parameter defaults.
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
    /// Its cron expression, if it runs on one.
    pub cron: Option<String>,
    /// The zone of `cron`.
    pub timezone: String,
    /// When the cron expression next fires (none without one).
    pub next_fire_at: Option<Timestamp>,
    /// When it was first stored.
    pub created_at: Timestamp,
    /// When it was last replaced.
    pub updated_at: Timestamp,
}

/// `POST /v1/workflows/definitions/{name}/runs` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerRequest {
    /// Parameters over the definition's defaults.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
    /// The run's logical date (any label up to 64 characters, typically `YYYY-MM-DD` or an
    /// RFC 3339 time); the current time when absent. A second trigger with the same logical
    /// date answers the existing run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logical_date: Option<String>,
}

/// `POST /v1/workflows/definitions/{name}/backfill` body.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackfillRequest {
    /// First logical date, `YYYY-MM-DD`.
    pub from: String,
    /// Last logical date (inclusive), `YYYY-MM-DD`.
    pub to: String,
    /// Parameters over the definition's defaults, for every run.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
    /// How many of its runs may run at once (1..=100, default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_running: Option<u32>,
}

/// A stored backfill: one run per date from `from` to `to`, at most `max_running` at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Backfill {
    /// UUIDv7.
    pub id: JobId,
    /// Tenant.
    pub namespace: String,
    /// The definition.
    pub definition: String,
    /// First date.
    pub from: String,
    /// Last date, inclusive.
    pub to: String,
    /// Parameters over the definition's defaults.
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
    /// Runs at once, at most.
    pub max_running: u32,
    /// When it was submitted.
    pub created_at: Timestamp,
    /// When its last run was created (none while dates are left).
    pub finished_at: Option<Timestamp>,
}

impl DefinitionRequest {
    /// Checks the definition: its name, its cron expression, and its steps as a run would be
    /// checked, rendered with the default parameters. Answers the definition to store at `now`.
    pub fn validate(
        self,
        name: &str,
        namespace: &str,
        limits: &Limits,
        now: Timestamp,
    ) -> Result<WorkflowDefinition, ValidationError> {
        validate_name("name", name)?;
        let timezone = self.timezone.unwrap_or_else(|| "UTC".to_string());
        let next_fire_at = match &self.cron {
            Some(expr) => {
                let cron = CronSchedule::parse(expr, &timezone)
                    .map_err(|e| ValidationError::invalid(e.field(), e.to_string()))?;
                cron.next_after(now)
            }
            None => None,
        };
        let rendered = render(&self.steps, &self.params, "2000-01-01")?;
        validate_steps(rendered, &|_| false, 0, namespace, limits)?;
        Ok(WorkflowDefinition {
            namespace: namespace.to_string(),
            name: name.to_string(),
            steps: self.steps,
            params: self.params,
            cron: self.cron,
            timezone,
            next_fire_at,
            created_at: now,
            updated_at: now,
        })
    }
}

impl WorkflowDefinition {
    /// The steps of its run for `logical_date`, with `params` over the defaults.
    pub fn steps_for(
        &self,
        params: &Map<String, Value>,
        logical_date: &str,
    ) -> Result<Vec<StepRequest>, ValidationError> {
        let mut all = self.params.clone();
        for (k, v) in params {
            all.insert(k.clone(), v.clone());
        }
        render(&self.steps, &all, logical_date)
    }
}

/// A logical date: 1 to 64 characters, no control characters.
pub fn validate_logical_date(field: &str, date: &str) -> Result<(), ValidationError> {
    if date.is_empty() || date.chars().count() > 64 || date.chars().any(char::is_control) {
        return Err(ValidationError::invalid(
            field,
            "a logical date is 1 to 64 printable characters (e.g. 2026-11-30)",
        ));
    }
    Ok(())
}

/// Every date from `from` to `to` inclusive, as `YYYY-MM-DD`.
pub fn backfill_dates(from: &str, to: &str) -> Result<Vec<String>, ValidationError> {
    let parse = |field: &str, s: &str| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
            ValidationError::invalid(field, format!("`{s}` is not a date (YYYY-MM-DD)"))
        })
    };
    let (start, end) = (parse("from", from)?, parse("to", to)?);
    if end < start {
        return Err(ValidationError::invalid("to", "`to` comes before `from`"));
    }
    let days = (end - start).num_days() + 1;
    if days > MAX_BACKFILL_DATES as i64 {
        return Err(ValidationError::invalid(
            "to",
            format!("a backfill covers at most {MAX_BACKFILL_DATES} dates ({days} asked)"),
        ));
    }
    Ok(start
        .iter_days()
        .take(days as usize)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .collect())
}

/// The steps with every placeholder in their jobs' args replaced.
fn render(
    steps: &[StepRequest],
    params: &Map<String, Value>,
    logical_date: &str,
) -> Result<Vec<StepRequest>, ValidationError> {
    let mut out = steps.to_vec();
    for (i, s) in out.iter_mut().enumerate() {
        let Some(args) = &s.job.args else { continue };
        let field = format!("steps[{i}].job.args");
        let value: Value = serde_json::from_str(args.get())
            .map_err(|e| ValidationError::invalid(&field, e.to_string()))?;
        let rendered = substitute(value, params, logical_date, &field)?;
        let text = serde_json::to_string(&rendered)
            .map_err(|e| ValidationError::invalid(&field, e.to_string()))?;
        s.job.args = Some(
            RawValue::from_string(text)
                .map_err(|e| ValidationError::invalid(&field, e.to_string()))?,
        );
    }
    Ok(out)
}

fn substitute(
    v: Value,
    params: &Map<String, Value>,
    logical_date: &str,
    field: &str,
) -> Result<Value, ValidationError> {
    Ok(match v {
        Value::String(s) => {
            let whole = s.trim();
            if whole == "{{logical_date}}" {
                return Ok(Value::String(logical_date.to_string()));
            }
            if let Some(name) = whole
                .strip_prefix("{{params.")
                .and_then(|r| r.strip_suffix("}}"))
                && !name.contains("{{")
            {
                return params.get(name).cloned().ok_or_else(|| {
                    ValidationError::invalid(field, format!("no parameter `{name}` is given"))
                });
            }
            let mut text = s.replace("{{logical_date}}", logical_date);
            while let Some(start) = text.find("{{params.") {
                let Some(len) = text[start..].find("}}") else {
                    break;
                };
                let name = &text[start + 9..start + len];
                let value = params.get(name).ok_or_else(|| {
                    ValidationError::invalid(field, format!("no parameter `{name}` is given"))
                })?;
                let shown = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                text.replace_range(start..start + len + 2, &shown);
            }
            Value::String(text)
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|x| substitute(x, params, logical_date, field))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, x)| Ok((k, substitute(x, params, logical_date, field)?)))
                .collect::<Result<_, ValidationError>>()?,
        ),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(json: &str) -> Result<WorkflowDefinition, ValidationError> {
        let r: DefinitionRequest = serde_json::from_str(json).expect("request");
        r.validate("nightly", "default", &Limits::default(), Timestamp(0))
    }

    #[test]
    fn placeholders_take_parameters_and_the_logical_date() {
        let d = definition(
            r#"{"params": {"table": "users", "limit": 10},
                "steps": [{"step": "a", "job": {"kind": "k", "args": {
                    "table": "{{params.table}}", "limit": "{{params.limit}}",
                    "day": "{{logical_date}}", "path": "s3://x/{{params.table}}/{{logical_date}}.csv",
                    "list": ["{{params.limit}}", 1]}}}]}"#,
        )
        .unwrap();
        let mut over = Map::new();
        over.insert("limit".into(), Value::from(99));
        let steps = d.steps_for(&over, "2026-11-30").unwrap();
        let args: Value = serde_json::from_str(steps[0].job.args.as_ref().unwrap().get()).unwrap();
        assert_eq!(
            args,
            serde_json::json!({"table": "users", "limit": 99, "day": "2026-11-30",
                "path": "s3://x/users/2026-11-30.csv", "list": [99, 1]})
        );
    }

    #[test]
    fn a_definition_is_checked_like_a_run_and_its_cron_parsed() {
        let e =
            definition(r#"{"steps": [{"step": "a", "depends_on": ["a"], "job": {"kind": "k"}}]}"#)
                .unwrap_err();
        assert!(e.message.contains("cycle"), "{e}");
        let e = definition(
            r#"{"steps": [{"step": "a", "job": {"kind": "k", "args": {"x": "{{params.nope}}"}}}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.field, "steps[0].job.args");
        let e =
            definition(r#"{"cron": "not cron", "steps": [{"step": "a", "job": {"kind": "k"}}]}"#)
                .unwrap_err();
        assert_eq!(e.field, "cron");
        let d = definition(r#"{"cron": "@daily", "steps": [{"step": "a", "job": {"kind": "k"}}]}"#)
            .unwrap();
        assert_eq!(d.next_fire_at, Some(Timestamp(86_400_000)));
    }

    #[test]
    fn backfill_dates_are_inclusive_and_bounded() {
        let d = backfill_dates("2026-02-27", "2026-03-02").unwrap();
        assert_eq!(
            d,
            vec!["2026-02-27", "2026-02-28", "2026-03-01", "2026-03-02"]
        );
        assert_eq!(
            backfill_dates("2026-01-02", "2026-01-01")
                .unwrap_err()
                .field,
            "to"
        );
        assert_eq!(
            backfill_dates("2026-13-01", "2026-01-01")
                .unwrap_err()
                .field,
            "from"
        );
        assert!(backfill_dates("2020-01-01", "2026-01-01").is_err());
    }
}
