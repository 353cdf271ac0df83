"""Typed values of the v1 API: jobs and their parts, pages, queues, workers, backoff policies,
schedules, workflow runs, workflow definitions and backfills, and the events of the live
stream.

Answers are read leniently: fields this SDK does not know are ignored (and kept in `raw`), so a
newer server that adds fields never breaks an older SDK. Times are timezone-aware `datetime`s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Union

#: States a job never leaves by itself: it ran, it died, or it was cancelled.
TERMINAL_STATES = frozenset({"completed", "dead", "cancelled"})

#: Every job state of the semantics document.
STATES = frozenset({"pending", "scheduled", "available", "running", "retryable"}) | TERMINAL_STATES

_FRACTION = re.compile(r"\.(\d+)")


def parse_time(value: Optional[str]) -> Optional[datetime]:
    """An RFC 3339 UTC string of the server as an aware `datetime`; `None` stays `None`."""
    if value is None:
        return None
    text = value.replace("Z", "+00:00").replace("z", "+00:00")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        # Python before 3.11 takes only 3 or 6 fraction digits.
        text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
        return datetime.fromisoformat(text)


def format_time(value: datetime) -> str:
    """An aware `datetime` as the RFC 3339 UTC string the server takes."""
    if value.tzinfo is None:
        # A naive time is ambiguous (local or UTC?); guessing would silently shift schedules.
        raise ValueError("run_at/eta must be timezone-aware, e.g. datetime.now(timezone.utc)")
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Backoff:
    """A retry delay policy: `Backoff.exponential(...)` or `Backoff.fixed(delay_ms)`."""

    kind: str
    base_ms: Optional[int] = None
    cap_ms: Optional[int] = None
    jitter: Optional[float] = None
    delay_ms: Optional[int] = None

    @classmethod
    def exponential(
        cls, base_ms: int = 1000, cap_ms: int = 3_600_000, jitter: float = 0.2
    ) -> Backoff:
        """`min(cap_ms, base_ms * 2**(attempt-1))`, times a random factor in `1 ± jitter`."""
        return cls("exponential", base_ms=base_ms, cap_ms=cap_ms, jitter=jitter)

    @classmethod
    def fixed(cls, delay_ms: int) -> Backoff:
        """The same delay after every failed attempt."""
        return cls("fixed", delay_ms=delay_ms)

    def to_json(self) -> Dict[str, Any]:
        """The wire form."""
        if self.kind == "fixed":
            return {"kind": "fixed", "delay_ms": self.delay_ms}
        out: Dict[str, Any] = {"kind": self.kind}
        for name in ("base_ms", "cap_ms", "jitter"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Backoff:
        """Reads the wire form."""
        return cls(
            kind=str(data.get("kind", "exponential")),
            base_ms=data.get("base_ms"),
            cap_ms=data.get("cap_ms"),
            jitter=data.get("jitter"),
            delay_ms=data.get("delay_ms"),
        )


@dataclass(frozen=True)
class JobError:
    """The error of one failed attempt, as the job keeps it (the last 50)."""

    attempt: int
    at: Optional[datetime]
    kind: str
    message: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobError:
        return cls(
            attempt=int(data.get("attempt", 0)),
            at=parse_time(data.get("at")),
            kind=str(data.get("kind", "")),
            message=str(data.get("message", "")),
        )


@dataclass(frozen=True)
class Attempt:
    """One lease of a job: who held it, when, and how it ended (`None` while it runs)."""

    lease_seq: int
    worker_id: str
    started_at: Optional[datetime]
    finished_at: Optional[datetime]
    outcome: Optional[str]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Attempt:
        return cls(
            lease_seq=int(data.get("lease_seq", 0)),
            worker_id=str(data.get("worker_id", "")),
            started_at=parse_time(data.get("started_at")),
            finished_at=parse_time(data.get("finished_at")),
            outcome=data.get("outcome"),
        )


@dataclass(frozen=True)
class StepInfo:
    """What makes a job a step of a workflow run: the run, the step's name, what it waits
    for, and what its failure does downstream."""

    workflow_id: str
    step: str
    depends_on: List[str] = field(default_factory=list)
    #: `cancel_dependents`, `continue` or `ignore`.
    on_failure: str = "cancel_dependents"
    #: How many of `depends_on` are not done yet; the step leaves `pending` at zero.
    waiting_on: int = 0
    #: Cancelled because a step upstream failed.
    upstream_failed: bool = False

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StepInfo:
        return cls(
            workflow_id=str(data["workflow_id"]),
            step=str(data["step"]),
            depends_on=[str(d) for d in data.get("depends_on") or []],
            on_failure=str(data.get("on_failure", "cancel_dependents")),
            waiting_on=int(data.get("waiting_on", 0)),
            upstream_failed=bool(data.get("upstream_failed", False)),
        )


@dataclass(frozen=True)
class Job:
    """A job as the server answers it (semantics.md, Job)."""

    id: str
    queue: str
    kind: str
    args: Any
    state: str
    priority: int = 0
    attempt: int = 0
    max_attempts: int = 25
    backoff: Optional[Backoff] = None
    timeout_ms: int = 0
    idempotency_key: Optional[str] = None
    tags: List[str] = field(default_factory=list)
    meta: Dict[str, Any] = field(default_factory=dict)
    traceparent: Optional[str] = None
    concurrency_key: Optional[str] = None
    fairness_key: Optional[str] = None
    estimated_ms: Optional[int] = None
    namespace: str = "default"
    lease_seq: int = 0
    errors: List[JobError] = field(default_factory=list)
    attempts: List[Attempt] = field(default_factory=list)
    result: Any = None
    progress: Any = None
    created_at: Optional[datetime] = None
    available_at: Optional[datetime] = None
    started_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None
    lease_expires_at: Optional[datetime] = None
    worker_id: Optional[str] = None
    cancel_requested: bool = False
    #: True when an enqueue matched an existing job's idempotency key, or an outcome repeated.
    duplicate: bool = False
    #: Set only on jobs handed out by a lease.
    lease_token: Optional[str] = None
    #: Set when the job is a step of a workflow run.
    workflow: Optional[StepInfo] = None
    #: For a leased workflow step with dependencies: each parent's result by step name
    #: (`None` for a parent that returned nothing, or that failed under a policy that let this
    #: step run). Empty for any other job.
    parents: Dict[str, Any] = field(default_factory=dict)
    #: For a leased workflow step some of whose parents failed under `continue` or `ignore`:
    #: how each ended, by step name (`{"state": "dead", "error": "..."}`). Empty otherwise.
    failed_parents: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    #: The answer as received, including fields this SDK does not know.
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def step(self) -> Optional[str]:
        """The step's name, for a step of a workflow run."""
        return self.workflow.step if self.workflow is not None else None

    @property
    def finished(self) -> bool:
        """True in a terminal state: `completed`, `dead` or `cancelled`."""
        return self.state in TERMINAL_STATES

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Job:
        backoff = data.get("backoff")
        workflow = data.get("workflow")
        return cls(
            id=str(data["id"]),
            queue=str(data.get("queue", "default")),
            kind=str(data["kind"]),
            args=data.get("args"),
            state=str(data["state"]),
            priority=int(data.get("priority", 0)),
            attempt=int(data.get("attempt", 0)),
            max_attempts=int(data.get("max_attempts", 25)),
            backoff=Backoff.from_json(backoff) if isinstance(backoff, dict) else None,
            timeout_ms=int(data.get("timeout_ms", 0)),
            idempotency_key=data.get("idempotency_key"),
            tags=list(data.get("tags") or []),
            meta=dict(data.get("meta") or {}),
            traceparent=data.get("traceparent"),
            concurrency_key=data.get("concurrency_key"),
            fairness_key=data.get("fairness_key"),
            estimated_ms=data.get("estimated_ms"),
            namespace=str(data.get("namespace", "default")),
            lease_seq=int(data.get("lease_seq", 0)),
            errors=[JobError.from_json(e) for e in data.get("errors") or []],
            attempts=[Attempt.from_json(a) for a in data.get("attempts") or []],
            result=data.get("result"),
            progress=data.get("progress"),
            created_at=parse_time(data.get("created_at")),
            available_at=parse_time(data.get("available_at")),
            started_at=parse_time(data.get("started_at")),
            finished_at=parse_time(data.get("finished_at")),
            lease_expires_at=parse_time(data.get("lease_expires_at")),
            worker_id=data.get("worker_id"),
            cancel_requested=bool(data.get("cancel_requested", False)),
            duplicate=bool(data.get("duplicate", False)),
            lease_token=data.get("lease_token"),
            workflow=StepInfo.from_json(workflow) if isinstance(workflow, dict) else None,
            parents=dict(data.get("parents") or {}),
            failed_parents=dict(data.get("failed_parents") or {}),
            raw=dict(data),
        )


@dataclass(frozen=True)
class JobPage:
    """One page of `GET /v1/jobs`, newest first; pass `next_cursor` for the next one."""

    jobs: List[Job]
    next_cursor: Optional[str]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobPage:
        return cls([Job.from_json(j) for j in data["jobs"]], data.get("next_cursor"))


@dataclass(frozen=True)
class JobEvent:
    """One transition of a job (`GET /v1/jobs/{id}/events`)."""

    seq: int
    job_id: str
    from_state: Optional[str]
    to_state: str
    at: Optional[datetime]
    actor: str
    reason: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobEvent:
        return cls(
            seq=int(data["seq"]),
            job_id=str(data["job_id"]),
            from_state=data.get("from"),
            to_state=str(data["to"]),
            at=parse_time(data.get("at")),
            actor=str(data.get("actor", "")),
            reason=str(data.get("reason", "")),
        )


@dataclass(frozen=True)
class QueueInfo:
    """A queue as `GET /v1/queues` lists it."""

    name: str
    paused: bool
    counts: Dict[str, int]
    oldest_available_age_ms: Optional[int] = None

    def count(self, state: str) -> int:
        """How many jobs of the queue are in `state` (0 when none are listed)."""
        return self.counts.get(state, 0)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> QueueInfo:
        return cls(
            name=str(data["name"]),
            paused=bool(data.get("paused", False)),
            counts={str(k): int(v) for k, v in (data.get("counts") or {}).items()},
            oldest_available_age_ms=data.get("oldest_available_age_ms"),
        )


@dataclass(frozen=True)
class WorkerInfo:
    """A worker seen in the last minute (`GET /v1/workers`)."""

    id: str
    queues: List[str]
    running: int
    last_seen_at: Optional[datetime]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WorkerInfo:
        return cls(
            id=str(data["id"]),
            queues=list(data.get("queues") or []),
            running=int(data.get("running", 0)),
            last_seen_at=parse_time(data.get("last_seen_at")),
        )


@dataclass(frozen=True)
class HeartbeatAnswer:
    """The answer to a heartbeat: the lease's new end, and whether a cancel was requested."""

    lease_expires_at: Optional[datetime]
    cancel_requested: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HeartbeatAnswer:
        return cls(parse_time(data.get("lease_expires_at")), bool(data.get("cancel_requested")))


@dataclass(frozen=True)
class AckResult:
    """The result of one outcome of `POST /v1/acks`, in request order."""

    id: str
    ok: bool
    code: Optional[str] = None
    message: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AckResult:
        err = data.get("error") or {}
        return cls(str(data["id"]), bool(data["ok"]), err.get("code"), str(err.get("message", "")))


@dataclass(frozen=True)
class Misfire:
    """What a schedule does about ticks missed while no scheduler ran or it was paused:
    `Misfire.skip()`, `Misfire.run_once()` (the server's default) or `Misfire.catch_up(max)`."""

    #: `skip`, `run_once` or `catch_up`.
    policy: str
    #: For `catch_up`: how many of the latest missed ticks fire (1..1000).
    max: Optional[int] = None

    @classmethod
    def skip(cls) -> Misfire:
        """Fire none of the missed ticks."""
        return cls("skip")

    @classmethod
    def run_once(cls) -> Misfire:
        """Fire the latest missed tick only: one job stands for all of them."""
        return cls("run_once")

    @classmethod
    def catch_up(cls, max: int) -> Misfire:
        """Fire the latest `max` missed ticks, oldest first, and skip the older ones."""
        return cls("catch_up", max=max)

    def to_json(self) -> Dict[str, Any]:
        """The wire form, `{"policy": ..., "max": ...}`."""
        out: Dict[str, Any] = {"policy": self.policy}
        if self.max is not None:
            out["max"] = self.max
        return out

    @classmethod
    def from_json(cls, data: Union[Mapping[str, Any], str]) -> Misfire:
        """Reads the wire form (or a bare policy name)."""
        if isinstance(data, str):
            return cls(data)
        return cls(str(data.get("policy", "run_once")), data.get("max"))


@dataclass(frozen=True)
class ScheduleRun:
    """One job a schedule enqueued for one of its ticks."""

    tick_at: Optional[datetime]
    job_id: str
    enqueued_at: Optional[datetime]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScheduleRun:
        return cls(
            tick_at=parse_time(data.get("tick_at")),
            job_id=str(data["job_id"]),
            enqueued_at=parse_time(data.get("enqueued_at")),
        )


@dataclass(frozen=True)
class Schedule:
    """A cron schedule as the server answers it (`GET /v1/schedules/{name}`)."""

    name: str
    cron: str
    #: The IANA time zone the expression is read in.
    timezone: str
    #: The job template each tick enqueues, in its wire form (`{"kind", "queue", "args",
    #: ...}`): pass it back as `job=` to `replace_schedule`.
    job: Dict[str, Any]
    jitter_ms: int = 0
    misfire: Misfire = field(default_factory=Misfire.run_once)
    paused: bool = False
    namespace: str = "default"
    created_at: Optional[datetime] = None
    #: When the definition last changed (created, replaced, paused or resumed).
    updated_at: Optional[datetime] = None
    #: The last tick the scheduler handled (fired or skipped); the creation time before that.
    cursor: Optional[datetime] = None
    #: The next tick the scheduler will handle (a missed one, right after a resume); `None`
    #: when the expression never fires again.
    next_fire_at: Optional[datetime] = None
    #: The next (at most 5) fire times from the moment it was read; empty while paused.
    next_fire_times: List[datetime] = field(default_factory=list)
    #: The newest (at most 10) jobs it enqueued, newest first.
    last_runs: List[ScheduleRun] = field(default_factory=list)
    #: The answer as received, including fields this SDK does not know.
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Schedule:
        misfire = data.get("misfire")
        return cls(
            name=str(data["name"]),
            cron=str(data["cron"]),
            timezone=str(data.get("timezone", "UTC")),
            job=dict(data["job"]),
            jitter_ms=int(data.get("jitter_ms", 0)),
            misfire=Misfire.from_json(misfire) if misfire is not None else Misfire.run_once(),
            paused=bool(data.get("paused", False)),
            namespace=str(data.get("namespace", "default")),
            created_at=parse_time(data.get("created_at")),
            updated_at=parse_time(data.get("updated_at")),
            cursor=parse_time(data.get("cursor")),
            next_fire_at=parse_time(data.get("next_fire_at")),
            next_fire_times=[
                t for t in (parse_time(v) for v in data.get("next_fire_times") or []) if t
            ],
            last_runs=[ScheduleRun.from_json(r) for r in data.get("last_runs") or []],
            raw=dict(data),
        )


#: States a workflow run never leaves by itself (a retry reopens a failed or cancelled one).
WORKFLOW_FINISHED_STATES = frozenset({"completed", "failed", "cancelled"})


@dataclass(frozen=True)
class Workflow:
    """A workflow run as the server answers it, without its steps."""

    id: str
    #: `running`, `completed`, `failed` or `cancelled`.
    state: str
    name: Optional[str] = None
    namespace: str = "default"
    #: How many steps the run has, counting those added while it ran.
    steps: int = 0
    #: Steps not finished yet.
    open_steps: int = 0
    #: Finished steps that failed under `cancel_dependents` or `continue`.
    failed_steps: int = 0
    #: A cancel was asked and steps may still be finishing.
    cancel_requested: bool = False
    created_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None
    #: The workflow definition this run was made from, if any.
    definition: Optional[str] = None
    #: The run's logical date, for a run of a definition (e.g. one day of a backfill).
    logical_date: Optional[str] = None
    #: The answer as received, including fields this SDK does not know.
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def finished(self) -> bool:
        """True once every step has finished: `completed`, `failed` or `cancelled`."""
        return self.state in WORKFLOW_FINISHED_STATES

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Workflow:
        return cls(
            id=str(data["id"]),
            state=str(data["state"]),
            name=data.get("name"),
            namespace=str(data.get("namespace", "default")),
            steps=int(data.get("steps", 0)),
            open_steps=int(data.get("open_steps", 0)),
            failed_steps=int(data.get("failed_steps", 0)),
            cancel_requested=bool(data.get("cancel_requested", False)),
            created_at=parse_time(data.get("created_at")),
            finished_at=parse_time(data.get("finished_at")),
            definition=data.get("definition"),
            logical_date=data.get("logical_date"),
            raw=dict(data),
        )


@dataclass(frozen=True)
class WorkflowRun:
    """A workflow run with every step's job, oldest first (each after its parents)."""

    workflow: Workflow
    steps: List[Job]
    #: Set by `trigger_workflow` only: `True` when the trigger made the run, `False` when the
    #: definition already had a run for that logical date (the run answered). `None` otherwise.
    created: Optional[bool] = field(default=None, compare=False)

    @property
    def id(self) -> str:
        return self.workflow.id

    @property
    def state(self) -> str:
        return self.workflow.state

    def step(self, name: str) -> Job:
        """The job of the step named `name`; `KeyError` when the run has none."""
        for job in self.steps:
            if job.step == name:
                return job
        raise KeyError(name)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], created: Optional[bool] = None) -> WorkflowRun:
        return cls(
            Workflow.from_json(data["workflow"]),
            [Job.from_json(j) for j in data.get("steps") or []],
            created,
        )


@dataclass(frozen=True)
class WorkflowPage:
    """One page of `GET /v1/workflows`, newest first; pass `next_cursor` for the next one."""

    workflows: List[Workflow]
    next_cursor: Optional[str]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WorkflowPage:
        return cls(
            [Workflow.from_json(w) for w in data["workflows"]], data.get("next_cursor")
        )


@dataclass(frozen=True)
class WorkflowDefinition:
    """A named workflow definition (`GET /v1/workflows/definitions/{name}`): a run's steps as
    a template, with `{{params.NAME}}` and `{{logical_date}}` in job args."""

    name: str
    #: The step templates in their wire form (`{"step", "depends_on", "on_failure", "job"}`):
    #: pass them back as `steps=` to `put_workflow_definition`.
    steps: List[Dict[str, Any]]
    #: Parameter defaults.
    params: Dict[str, Any] = field(default_factory=dict)
    #: Its cron expression, if it runs on one.
    cron: Optional[str] = None
    #: The IANA time zone of `cron`.
    timezone: str = "UTC"
    #: When `cron` next fires (`None` without one).
    next_fire_at: Optional[datetime] = None
    namespace: str = "default"
    created_at: Optional[datetime] = None
    #: When it was last replaced.
    updated_at: Optional[datetime] = None
    #: The answer as received, including fields this SDK does not know.
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WorkflowDefinition:
        return cls(
            name=str(data["name"]),
            steps=[dict(s) for s in data.get("steps") or []],
            params=dict(data.get("params") or {}),
            cron=data.get("cron"),
            timezone=str(data.get("timezone") or "UTC"),
            next_fire_at=parse_time(data.get("next_fire_at")),
            namespace=str(data.get("namespace", "default")),
            created_at=parse_time(data.get("created_at")),
            updated_at=parse_time(data.get("updated_at")),
            raw=dict(data),
        )


@dataclass(frozen=True)
class Backfill:
    """A backfill: one run of `definition` per date from `from_` to `to` (inclusive), at most
    `max_running` at a time."""

    id: str
    definition: str
    #: First date, `YYYY-MM-DD` (`from` on the wire).
    from_: str
    #: Last date, inclusive.
    to: str
    #: Parameters over the definition's defaults, for every run.
    params: Dict[str, Any] = field(default_factory=dict)
    max_running: int = 4
    namespace: str = "default"
    created_at: Optional[datetime] = None
    #: When its last run was created (`None` while dates are left).
    finished_at: Optional[datetime] = None
    #: The answer as received, including fields this SDK does not know.
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Backfill:
        return cls(
            id=str(data["id"]),
            definition=str(data["definition"]),
            from_=str(data["from"]),
            to=str(data["to"]),
            params=dict(data.get("params") or {}),
            max_running=int(data.get("max_running", 4)),
            namespace=str(data.get("namespace", "default")),
            created_at=parse_time(data.get("created_at")),
            finished_at=parse_time(data.get("finished_at")),
            raw=dict(data),
        )


@dataclass(frozen=True)
class BackfillProgress:
    """How far a backfill has come, in dates."""

    #: Dates it covers.
    dates: int = 0
    #: Dates whose run exists.
    created: int = 0
    #: Runs running now.
    running: int = 0
    #: Runs completed.
    completed: int = 0
    #: Runs failed or cancelled.
    failed: int = 0

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BackfillProgress:
        return cls(
            dates=int(data.get("dates", 0)),
            created=int(data.get("created", 0)),
            running=int(data.get("running", 0)),
            completed=int(data.get("completed", 0)),
            failed=int(data.get("failed", 0)),
        )


@dataclass(frozen=True)
class BackfillStatus:
    """A backfill and where it stands: the answer of `backfill_workflow` and `backfill`."""

    backfill: Backfill
    progress: BackfillProgress
    #: Set by `backfill_workflow` only: `True` when the call made the backfill, `False` when
    #: the same definition and range already had one (the one answered). `None` from
    #: `backfill(id)`.
    created: Optional[bool] = field(default=None, compare=False)

    @property
    def id(self) -> str:
        return self.backfill.id

    @property
    def finished(self) -> bool:
        """True once every date has a run and none of them is still running."""
        p = self.progress
        return p.created >= p.dates and p.running == 0

    @classmethod
    def from_json(cls, data: Mapping[str, Any], created: Optional[bool] = None) -> BackfillStatus:
        return cls(
            Backfill.from_json(data["backfill"]),
            BackfillProgress.from_json(data.get("progress") or {}),
            created,
        )


@dataclass(frozen=True)
class StreamEvent:
    """One job transition of the live stream (`GET /v1/events`), any job's.

    `seq` is its place in the server's event log: strictly increasing, and every event of a
    job comes after the job's earlier ones. `type` is the state reached (the same as
    `to_state`), what the `type=` filter matches.
    """

    seq: int
    type: str
    job_id: str
    queue: str
    kind: str
    #: The state before (`from` on the wire); `None` at enqueue.
    from_state: Optional[str]
    #: The state after (`to` on the wire).
    to_state: str
    at: Optional[datetime]
    #: Who: `api`, `worker:<id>` or `system:<service>`.
    actor: str
    #: What happened, in a word or two: `enqueue`, `lease`, `complete`, ...
    reason: str
    namespace: str = "default"
    #: The event as received, including fields this SDK does not know.
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StreamEvent:
        to_state = str(data.get("to", data.get("type", "")))
        return cls(
            seq=int(data["seq"]),
            type=str(data.get("type", to_state)),
            job_id=str(data["job_id"]),
            queue=str(data.get("queue", "")),
            kind=str(data.get("kind", "")),
            from_state=data.get("from"),
            to_state=to_state,
            at=parse_time(data.get("at")),
            actor=str(data.get("actor", "")),
            reason=str(data.get("reason", "")),
            namespace=str(data.get("namespace", "default")),
            raw=dict(data),
        )


@dataclass(frozen=True)
class Gap:
    """A break in the live stream: events after `after` may be missing (the consumer fell
    further behind than the server's history reaches, or resumed from a point older than
    it). Refetch whatever the events were keeping up to date; the stream goes on after it."""

    #: The last seq the server had offered before the break.
    after: int
