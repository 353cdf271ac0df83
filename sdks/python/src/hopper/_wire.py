"""The calls of the v1 API as plain values, shared by the sync and the asyncio client.

Each public client method builds a `Call` here (method, path, JSON body, how to read the
answer), and each client only knows how to send one. That keeps the two flavours identical
by construction.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import (
    Any,
    Callable,
    Dict,
    Generic,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)
from urllib.parse import quote

from .errors import ProtocolError, api_error
from .models import (
    AckResult,
    BackfillStatus,
    Backoff,
    HeartbeatAnswer,
    Job,
    JobEvent,
    JobPage,
    Misfire,
    QueueInfo,
    Schedule,
    WorkerInfo,
    Workflow,
    WorkflowDefinition,
    WorkflowPage,
    WorkflowRun,
    format_time,
)

T = TypeVar("T")

#: Headers of a request with a body; the server refuses a body of any other type.
JSON_HEADERS = {"content-type": "application/json"}

#: A long poll may legitimately take `wait_ms`; this much more means the server is gone.
LONG_POLL_SLACK = 30.0


def dumps(value: Any) -> bytes:
    """Compact JSON; NaN and infinities are refused here, as the server would refuse them."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and how to read its answer."""

    method: str
    path: str
    parse: Callable[[Any], T]
    body: Optional[bytes] = None
    params: Optional[List[Tuple[str, str]]] = None
    #: Seconds, instead of the client's default (long polls).
    timeout: Optional[float] = None
    #: Safe to send again after a transport error or a 503 (enqueues carry a key).
    retry: bool = False
    #: Reads the answer knowing its success status (to tell `201` from `200`); `parse` when
    #: not given.
    parse_status: Optional[Callable[[int, Any], T]] = None

    def answer(self, status: int, headers: Mapping[str, str], content: bytes) -> T:
        """The parsed answer, or the exception an error answer stands for."""
        if status >= 400:
            raise api_error(status, content, headers)
        if status == 204 or not content:
            return self.parse(None)
        try:
            data = json.loads(content)
        except ValueError as e:
            raise ProtocolError(status, f"cannot read the answer: {e}") from None
        try:
            if self.parse_status is not None:
                return self.parse_status(status, data)
            return self.parse(data)
        except (KeyError, TypeError, ValueError) as e:
            raise ProtocolError(status, f"unexpected answer {e!r}") from None


def _path(*segments: str) -> str:
    return "/" + "/".join(quote(s, safe="") for s in segments)


def _post(path: str, body: Any, parse: Callable[[Any], T], **kw: Any) -> Call[T]:
    return Call("POST", path, parse, body=dumps(body), **kw)


def _none(_: Any) -> None:
    return None


def job_body(
    kind: str,
    args: Any = None,
    *,
    queue: Optional[str] = None,
    priority: Optional[int] = None,
    run_at: Union[datetime, str, None] = None,
    delay_ms: Optional[int] = None,
    max_attempts: Optional[int] = None,
    backoff: Union[Backoff, Mapping[str, Any], None] = None,
    timeout_ms: Optional[int] = None,
    idempotency_key: Optional[str] = None,
    tags: Optional[Iterable[str]] = None,
    meta: Optional[Mapping[str, Any]] = None,
    traceparent: Optional[str] = None,
    concurrency_key: Optional[str] = None,
    fairness_key: Optional[str] = None,
    estimated_ms: Optional[int] = None,
) -> Dict[str, Any]:
    """The wire form of one job to enqueue, with a fresh idempotency key when none is given:
    the key is what makes retrying an enqueue after a lost answer safe."""
    body: Dict[str, Any] = {"kind": kind}
    if args is not None:
        body["args"] = args
    if queue is not None:
        body["queue"] = queue
    if priority is not None:
        body["priority"] = priority
    if run_at is not None:
        body["run_at"] = format_time(run_at) if isinstance(run_at, datetime) else run_at
    if delay_ms is not None:
        body["delay_ms"] = delay_ms
    if max_attempts is not None:
        body["max_attempts"] = max_attempts
    if backoff is not None:
        body["backoff"] = backoff.to_json() if isinstance(backoff, Backoff) else dict(backoff)
    if timeout_ms is not None:
        body["timeout_ms"] = timeout_ms
    body["idempotency_key"] = idempotency_key if idempotency_key is not None else str(uuid.uuid4())
    if tags is not None:
        body["tags"] = list(tags)
    if meta is not None:
        body["meta"] = dict(meta)
    if traceparent is not None:
        body["traceparent"] = traceparent
    if concurrency_key is not None:
        body["concurrency_key"] = concurrency_key
    if fairness_key is not None:
        body["fairness_key"] = fairness_key
    if estimated_ms is not None:
        body["estimated_ms"] = estimated_ms
    return body


def enqueue(kind: str, args: Any, options: Mapping[str, Any]) -> Call[Job]:
    return _post("/v1/jobs", job_body(kind, args, **options), Job.from_json, retry=True)


def enqueue_batch(jobs: Iterable[Mapping[str, Any]]) -> Call[List[Job]]:
    bodies = [job_body(**j) for j in jobs]
    if not 1 <= len(bodies) <= 1000:
        raise ValueError(f"a batch holds 1 to 1000 jobs, not {len(bodies)}")
    return _post(
        "/v1/jobs/batch",
        {"jobs": bodies},
        lambda d: [Job.from_json(j) for j in d["jobs"]],
        retry=True,
    )


def get(job_id: str) -> Call[Job]:
    return Call("GET", _path("v1", "jobs", job_id), Job.from_json)


def events(job_id: str) -> Call[List[JobEvent]]:
    return Call(
        "GET",
        _path("v1", "jobs", job_id, "events"),
        lambda d: [JobEvent.from_json(e) for e in d["events"]],
    )


def list_jobs(
    queue: Optional[str],
    state: Union[str, Sequence[str], None],
    kind: Optional[str],
    tag: Optional[str],
    q: Optional[str],
    limit: Optional[int],
    cursor: Optional[str],
) -> Call[JobPage]:
    params: List[Tuple[str, str]] = []
    states = [state] if isinstance(state, str) else list(state or [])
    for name, value in (("queue", queue), ("kind", kind), ("tag", tag), ("q", q)):
        if value is not None:
            params.append((name, value))
    params.extend(("state", s) for s in states)
    if limit is not None:
        params.append(("limit", str(limit)))
    if cursor is not None:
        params.append(("cursor", cursor))
    return Call("GET", "/v1/jobs", JobPage.from_json, params=params)


def job_action(job_id: str, action: str) -> Call[Job]:
    """`cancel` or `retry`: a POST whose body the API makes optional, sent empty."""
    return Call("POST", _path("v1", "jobs", job_id, action), Job.from_json)


def delete(job_id: str) -> Call[None]:
    return Call("DELETE", _path("v1", "jobs", job_id), _none)


def queues() -> Call[List[QueueInfo]]:
    return Call("GET", "/v1/queues", lambda d: [QueueInfo.from_json(q) for q in d["queues"]])


def queue_action(name: str, action: str) -> Call[QueueInfo]:
    return Call("POST", _path("v1", "queues", name, action), QueueInfo.from_json)


def retry_queue(name: str) -> Call[int]:
    return Call("POST", _path("v1", "queues", name, "retry"), lambda d: int(d["count"]))


def purge_queue(name: str, state: str) -> Call[int]:
    return Call(
        "DELETE",
        _path("v1", "queues", name, "jobs"),
        lambda d: int(d["count"]),
        params=[("state", state)],
    )


def workers() -> Call[List[WorkerInfo]]:
    return Call("GET", "/v1/workers", lambda d: [WorkerInfo.from_json(w) for w in d["workers"]])


def job_template(job: Union[str, Mapping[str, Any]]) -> Dict[str, Any]:
    """The wire form of a schedule's job: a kind, or a mapping of `enqueue`'s arguments
    (`{"kind": ..., "args": ..., "queue": ...}`). No idempotency key is made up: the scheduler
    sets each job's. Options the scheduler sets itself (`run_at`, `delay_ms`,
    `idempotency_key`, `traceparent`) are sent as given, for the server to refuse by name."""
    fields: Dict[str, Any] = {"kind": job} if isinstance(job, str) else dict(job)
    body = job_body(**fields)
    if fields.get("idempotency_key") is None:
        del body["idempotency_key"]
    return body


def schedule_body(
    name: Optional[str],
    cron: str,
    job: Union[str, Mapping[str, Any]],
    timezone: Optional[str],
    misfire: Union[Misfire, str, Mapping[str, Any], None],
    jitter_ms: Optional[int],
    paused: Optional[bool],
) -> Dict[str, Any]:
    """The body of a schedule's create or replace; options left as `None` are left out (the
    server's defaults: `UTC`, `run_once`, no jitter, not paused)."""
    body: Dict[str, Any] = {}
    if name is not None:
        body["name"] = name
    body["cron"] = cron
    if timezone is not None:
        body["timezone"] = timezone
    body["job"] = job_template(job)
    if jitter_ms is not None:
        body["jitter_ms"] = jitter_ms
    if misfire is not None:
        if isinstance(misfire, Misfire):
            body["misfire"] = misfire.to_json()
        elif isinstance(misfire, str):
            body["misfire"] = {"policy": misfire}
        else:
            body["misfire"] = dict(misfire)
    if paused is not None:
        body["paused"] = paused
    return body


def create_schedule(body: Dict[str, Any]) -> Call[Schedule]:
    return _post("/v1/schedules", body, Schedule.from_json)


def replace_schedule(name: str, body: Dict[str, Any]) -> Call[Schedule]:
    return Call("PUT", _path("v1", "schedules", name), Schedule.from_json, body=dumps(body))


def get_schedule(name: str) -> Call[Schedule]:
    return Call("GET", _path("v1", "schedules", name), Schedule.from_json)


def list_schedules() -> Call[List[Schedule]]:
    return Call(
        "GET", "/v1/schedules", lambda d: [Schedule.from_json(s) for s in d["schedules"]]
    )


def delete_schedule(name: str) -> Call[None]:
    return Call("DELETE", _path("v1", "schedules", name), _none)


def schedule_action(name: str, action: str) -> Call[Schedule]:
    """`pause` or `resume`: a POST whose body the API makes optional, sent empty."""
    return Call("POST", _path("v1", "schedules", name, action), Schedule.from_json)


def trigger_schedule(name: str) -> Call[Job]:
    return Call("POST", _path("v1", "schedules", name, "trigger"), Job.from_json)


def step_body(step: Mapping[str, Any]) -> Dict[str, Any]:
    """The wire form of one workflow step given as a dict: `{"step": "load", "depends_on":
    ["extract"], "on_failure": "continue", "job": {...}}`. The job is a kind, or a mapping of
    `enqueue`'s arguments (`Task.spec(...)` makes one); like a schedule's template, no
    idempotency key is made up for it. Other keys go as given, for the server to refuse by
    name."""
    if not isinstance(step, Mapping):
        raise TypeError(f"a workflow step is a dict with `step` and `job`, not {step!r}")
    body = dict(step)
    if "job" in body:
        body["job"] = job_template(body["job"])
    if body.get("depends_on") is not None:
        depends_on = body["depends_on"]
        body["depends_on"] = [depends_on] if isinstance(depends_on, str) else list(depends_on)
    else:
        body.pop("depends_on", None)
    if body.get("on_failure") is None:
        body.pop("on_failure", None)
    return body


def submit_workflow(
    steps: Iterable[Mapping[str, Any]], name: Optional[str]
) -> Call[WorkflowRun]:
    body: Dict[str, Any] = {"steps": [step_body(s) for s in steps]}
    if name is not None:
        body["name"] = name
    return _post("/v1/workflows", body, WorkflowRun.from_json)


def get_workflow(workflow_id: str) -> Call[WorkflowRun]:
    return Call("GET", _path("v1", "workflows", workflow_id), WorkflowRun.from_json)


def list_workflows(
    state: Optional[str], limit: Optional[int], cursor: Optional[str]
) -> Call[WorkflowPage]:
    params: List[Tuple[str, str]] = []
    if state is not None:
        params.append(("state", state))
    if limit is not None:
        params.append(("limit", str(limit)))
    if cursor is not None:
        params.append(("cursor", cursor))
    return Call("GET", "/v1/workflows", WorkflowPage.from_json, params=params)


def workflow_action(workflow_id: str, action: str) -> Call[Workflow]:
    """`cancel` or `retry`: a POST whose body the API makes optional, sent empty."""
    return Call("POST", _path("v1", "workflows", workflow_id, action), Workflow.from_json)


def add_workflow_steps(
    workflow_id: str, steps: Iterable[Mapping[str, Any]]
) -> Call[List[Job]]:
    return _post(
        _path("v1", "workflows", workflow_id, "steps"),
        {"steps": [step_body(s) for s in steps]},
        lambda d: [Job.from_json(j) for j in d["steps"]],
    )


def definition_body(
    steps: Iterable[Mapping[str, Any]],
    params: Optional[Mapping[str, Any]],
    cron: Optional[str],
    timezone: Optional[str],
) -> Dict[str, Any]:
    """The body of `PUT /v1/workflows/definitions/{name}`; options left as `None` are left out
    (no parameters, no cron expression, `UTC`)."""
    body: Dict[str, Any] = {"steps": [step_body(s) for s in steps]}
    if params is not None:
        body["params"] = dict(params)
    if cron is not None:
        body["cron"] = cron
    if timezone is not None:
        body["timezone"] = timezone
    return body


def day(value: Union[str, date]) -> str:
    """A backfill bound as the server takes it: `YYYY-MM-DD` (a `datetime` counts as its
    date)."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def logical_date_text(value: Union[str, date]) -> str:
    """A logical date as the server takes it: a `date` as `YYYY-MM-DD`, an aware `datetime` as
    RFC 3339, a string as given."""
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def put_workflow_definition(name: str, body: Dict[str, Any]) -> Call[WorkflowDefinition]:
    return Call(
        "PUT",
        _path("v1", "workflows", "definitions", name),
        WorkflowDefinition.from_json,
        body=dumps(body),
    )


def list_workflow_definitions() -> Call[List[WorkflowDefinition]]:
    return Call(
        "GET",
        "/v1/workflows/definitions",
        lambda d: [WorkflowDefinition.from_json(x) for x in d["definitions"]],
    )


def get_workflow_definition(name: str) -> Call[WorkflowDefinition]:
    return Call(
        "GET", _path("v1", "workflows", "definitions", name), WorkflowDefinition.from_json
    )


def delete_workflow_definition(name: str) -> Call[None]:
    return Call("DELETE", _path("v1", "workflows", "definitions", name), _none)


def trigger_workflow(
    name: str, params: Optional[Mapping[str, Any]], logical_date: Union[str, date, None]
) -> Call[WorkflowRun]:
    """The answer's `created` says whether this trigger made the run (`201`) or the
    definition already had one for that logical date (`200`)."""
    body: Dict[str, Any] = {}
    if params is not None:
        body["params"] = dict(params)
    if logical_date is not None:
        body["logical_date"] = logical_date_text(logical_date)
    return _post(
        _path("v1", "workflows", "definitions", name, "runs"),
        body,
        WorkflowRun.from_json,
        parse_status=lambda status, d: WorkflowRun.from_json(d, created=status == 201),
    )


def backfill_workflow(
    name: str,
    from_: Union[str, date],
    to: Union[str, date],
    params: Optional[Mapping[str, Any]],
    max_running: Optional[int],
) -> Call[BackfillStatus]:
    body: Dict[str, Any] = {"from": day(from_), "to": day(to)}
    if params is not None:
        body["params"] = dict(params)
    if max_running is not None:
        body["max_running"] = max_running
    return _post(
        _path("v1", "workflows", "definitions", name, "backfill"),
        body,
        BackfillStatus.from_json,
        parse_status=lambda status, d: BackfillStatus.from_json(d, created=status == 201),
    )


def get_backfill(backfill_id: str) -> Call[BackfillStatus]:
    return Call("GET", _path("v1", "workflows", "backfills", backfill_id), BackfillStatus.from_json)


def lease(
    queues: Sequence[str], worker_id: str, max_jobs: int, lease_ms: int, wait_ms: int
) -> Call[List[Dict[str, Any]]]:
    """Leased jobs stay plain dicts here: the worker reads a few fields of each, fast."""
    body = {
        "queues": list(queues),
        "worker_id": worker_id,
        "max_jobs": max_jobs,
        "lease_ms": lease_ms,
        "wait_ms": wait_ms,
    }
    return _post(
        "/v1/leases", body, lambda d: list(d["jobs"]), timeout=wait_ms / 1000 + LONG_POLL_SLACK
    )


def heartbeat(
    job_id: str, lease_token: str, lease_ms: Optional[int], progress: Any = None
) -> Call[HeartbeatAnswer]:
    body: Dict[str, Any] = {"lease_token": lease_token}
    if lease_ms is not None:
        body["lease_ms"] = lease_ms
    if progress is not None:
        body["progress"] = progress
    return _post(_path("v1", "jobs", job_id, "heartbeat"), body, HeartbeatAnswer.from_json)


def complete(job_id: str, lease_token: str, result: Any) -> Call[Job]:
    body = {"lease_token": lease_token, "result": result}
    return _post(_path("v1", "jobs", job_id, "complete"), body, Job.from_json)


def fail(
    job_id: str,
    lease_token: str,
    message: str,
    kind: str,
    retryable: bool,
    retry_in_ms: Optional[int],
) -> Call[Job]:
    body: Dict[str, Any] = {
        "lease_token": lease_token,
        "error": {"message": message, "kind": kind, "retryable": retryable},
    }
    if retry_in_ms is not None:
        body["retry_in_ms"] = retry_in_ms
    return _post(_path("v1", "jobs", job_id, "fail"), body, Job.from_json)


def lease_outcome(job_id: str, lease_token: str, outcome: str) -> Call[Job]:
    """`release` or `cancelled`: outcomes that carry nothing but the token."""
    return _post(_path("v1", "jobs", job_id, outcome), {"lease_token": lease_token}, Job.from_json)


def acks(items: Sequence[Mapping[str, Any]]) -> Call[List[AckResult]]:
    return acks_encoded([dumps(dict(a)) for a in items])


def acks_encoded(fragments: Sequence[bytes]) -> Call[List[AckResult]]:
    """Acks each already encoded on its own (the worker encodes an outcome when it is made,
    so an unencodable result fails that job alone, not the batch it would have joined)."""
    body = b'{"acks":[' + b",".join(fragments) + b"]}"
    return Call(
        "POST",
        "/v1/acks",
        lambda d: [AckResult.from_json(r) for r in d["results"]],
        body=body,
    )
