"""`Client` and `AsyncClient`: every call of the v1 HTTP API, for producers, operators and
workers, in a blocking and an asyncio flavour with the same methods.

A client holds one pool of keep-alive connections, so one client per process (or per event
loop for `AsyncClient`) serves everything without a new connection per call. Enqueues always
carry an idempotency key (one is generated when none is given), which makes them safe to retry:
transport errors and `503 unavailable` answers are retried with backoff per `RetryPolicy`.
Every error answer raises the `ApiError` subclass of its code (`NotFoundError`, ...).

`events(...)` opens the live event stream (`hopper.events`) on a connection of its own.
"""

from __future__ import annotations

import asyncio
import os
import time
import warnings
from dataclasses import dataclass
from datetime import date, datetime
from typing import (
    Any,
    Awaitable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    TypeVar,
    Union,
    overload,
)

from . import _wire as wire
from ._http import AsyncTransport, SyncTransport
from .errors import HopperError
from .events import DEFAULT_IDLE_TIMEOUT, AsyncEventStream, EventStream, stream_params
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
)

__all__ = [
    "DEFAULT_RECONNECT",
    "DEFAULT_URL",
    "AsyncClient",
    "Client",
    "RetryPolicy",
    "default_url",
]

T = TypeVar("T")

#: The server's address when none is given and `HOPPER_URL` is not set.
DEFAULT_URL = "http://127.0.0.1:7480"

#: Longest wait for an answer but a long poll's. Generous: a server under a write burst may
#: take seconds, and a caller that wants less passes its own `timeout`.
DEFAULT_TIMEOUT = 60.0

_USER_AGENT = "hopper-py/0.1.0"


def default_url() -> str:
    """`HOPPER_URL` from the environment, else `DEFAULT_URL`."""
    return os.environ.get("HOPPER_URL") or DEFAULT_URL


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for calls that are safe to repeat (enqueues)."""

    #: Tries in all, the first included; 1 means never retry.
    max_attempts: int = 6
    #: Seconds to wait after the first failure; doubles at every try.
    initial_delay: float = 0.05
    #: Longest wait between two tries. The defaults wait 1.55 s in all: enough to ride out a
    #: server restart, short enough that a producer notices a real outage quickly.
    max_delay: float = 2.0

    def delay(self, attempt: int, error: HopperError) -> float:
        """The wait after failed try number `attempt` (1-based); a server's `Retry-After`
        wins when it is longer."""
        wait = min(self.max_delay, self.initial_delay * 2.0 ** (attempt - 1))
        return max(wait, error.retry_after or 0.0)


#: How an event stream connects again after a drop: first after the server's `retry:` time
#: (1 s; `initial_delay` when the server gave none), doubling at every failed try up to 30 s,
#: giving up after 8 failed tries in a row (about 90 s of outage).
DEFAULT_RECONNECT = RetryPolicy(max_attempts=8, initial_delay=1.0, max_delay=30.0)

Filter = Union[str, Sequence[str], None]

_JOB_EVENTS_POSITIONAL = (
    "events(job_id) is deprecated: use job_events(job_id) for a job's transitions; "
    "events() with keyword filters is the live stream of every job's"
)


class _Base:
    """What both flavours share: the server's address, headers and retry policy."""

    def __init__(
        self,
        url: Optional[str],
        api_key: Optional[str],
        namespace: Optional[str],
        headers: Optional[Mapping[str, str]],
        retry: RetryPolicy,
    ) -> None:
        self.url = (url or default_url()).rstrip("/")
        self.retry_policy = retry
        self._headers: Dict[str, str] = {"user-agent": _USER_AGENT}
        api_key = api_key or os.environ.get("HOPPER_API_KEY")
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        namespace = namespace or os.environ.get("HOPPER_NAMESPACE")
        if namespace:
            self._headers["x-hopper-namespace"] = namespace
        self._headers.update(headers or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


class Client(_Base):
    """A blocking connection to one Hopper server. Thread-safe; use one per process.

    >>> client = Client("http://127.0.0.1:7480")
    >>> job = client.enqueue("send_email", {"to": "ada@example.com"}, priority=5)
    """

    def __init__(
        self,
        url: Optional[str] = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        api_key: Optional[str] = None,
        namespace: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        super().__init__(url, api_key, namespace, headers, retry)
        self._http = SyncTransport(self.url, self._headers, timeout)

    def close(self) -> None:
        """Closes the pooled connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _send(self, call: wire.Call[T]) -> T:
        attempt = 1
        while True:
            try:
                return self._once(call)
            except HopperError as e:
                if not (call.retry and e.retryable and attempt < self.retry_policy.max_attempts):
                    raise
                time.sleep(self.retry_policy.delay(attempt, e))
                attempt += 1

    def _once(self, call: wire.Call[T]) -> T:
        r = self._http.request(
            call.method,
            call.path,
            call.body,
            call.params,
            wire.JSON_HEADERS if call.body is not None else None,
            call.timeout,
        )
        return call.answer(r.status, r.headers, r.body)

    # ---- producers -----------------------------------------------------------------------

    def enqueue(
        self,
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
    ) -> Job:
        """`POST /v1/jobs`: enqueues one job. A job whose `idempotency_key` matched an existing
        one returns that job with `duplicate=True`; without a key, one is generated."""
        return self._send(wire.enqueue(kind, args, _options(locals())))

    def enqueue_batch(self, jobs: Iterable[Mapping[str, Any]]) -> List[Job]:
        """`POST /v1/jobs/batch`: 1..1000 jobs, atomically, answered in order. Each job is a
        mapping of `enqueue`'s arguments: `{"kind": ..., "args": ..., "priority": ...}`."""
        return self._send(wire.enqueue_batch(jobs))

    def get(self, job_id: str) -> Job:
        """`GET /v1/jobs/{id}`, with `errors`, `attempts`, `result` and `progress`."""
        return self._send(wire.get(job_id))

    def job_events(self, job_id: str) -> List[JobEvent]:
        """`GET /v1/jobs/{id}/events`: the job's transitions, oldest first."""
        return self._send(wire.events(job_id))

    @overload
    def events(self, job_id_: str, /) -> List[JobEvent]: ...

    @overload
    def events(
        self,
        _job_id: None = None,
        /,
        *,
        queue: Filter = None,
        kind: Filter = None,
        job_id: Filter = None,
        type: Filter = None,
        after: Optional[int] = None,
        reconnect: RetryPolicy = DEFAULT_RECONNECT,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> EventStream: ...

    def events(
        self,
        _job_id: Optional[str] = None,
        /,
        *,
        queue: Filter = None,
        kind: Filter = None,
        job_id: Filter = None,
        type: Filter = None,
        after: Optional[int] = None,
        reconnect: RetryPolicy = DEFAULT_RECONNECT,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> Union[EventStream, List[JobEvent]]:
        """`GET /v1/events`: the live stream of job transitions, connected before this returns
        (so it holds every event from now on; `after=<seq>` resumes after that event instead).

        Each filter takes one value or a list (any listed value matches; none means all):
        `queue`, `kind`, `job_id`, and `type` (the state reached: `available`, `running`,
        `completed`, ...). The stream yields `StreamEvent`s, and a `Gap` where events may be
        missing; it reconnects by itself after a drop, resuming where it was, per `reconnect`
        (the server's `retry:` time replaces its initial delay), and takes a connection silent
        for `idle_timeout` seconds for dead. Close it (or use `with`) to hang up.

        The old form `events(job_id)`, positional, still answers the job's transitions
        (deprecated: use `job_events`).
        """
        if _job_id is not None:
            warnings.warn(_JOB_EVENTS_POSITIONAL, DeprecationWarning, stacklevel=2)
            return self.job_events(_job_id)
        stream = EventStream(
            self._http,
            stream_params(queue, kind, job_id, type),
            after=after,
            reconnect=reconnect,
            idle_timeout=idle_timeout,
        )
        stream.connect()
        return stream

    def list(
        self,
        *,
        queue: Optional[str] = None,
        state: Union[str, Sequence[str], None] = None,
        kind: Optional[str] = None,
        tag: Optional[str] = None,
        q: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> JobPage:
        """`GET /v1/jobs`: one page, newest first; `state` may name several states."""
        return self._send(wire.list_jobs(queue, state, kind, tag, q, limit, cursor))

    def cancel(self, job_id: str) -> Job:
        """`POST /v1/jobs/{id}/cancel`: a waiting job ends `cancelled`, a running one is
        flagged `cancel_requested` and its worker stops it."""
        return self._send(wire.job_action(job_id, "cancel"))

    def retry(self, job_id: str) -> Job:
        """`POST /v1/jobs/{id}/retry`: a finished job runs again from scratch, a waiting one
        now."""
        return self._send(wire.job_action(job_id, "retry"))

    def delete(self, job_id: str) -> None:
        """`DELETE /v1/jobs/{id}`: removes a finished job."""
        self._send(wire.delete(job_id))

    def wait(self, job_id: str, *, timeout: float = 60.0, interval: float = 0.05) -> Job:
        """Polls the job until it is finished (completed, dead or cancelled) and returns it;
        raises `TimeoutError` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job.finished:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job.state} after {timeout} s")
            time.sleep(interval)

    # ---- queues and workers --------------------------------------------------------------

    def queues(self) -> List[QueueInfo]:
        """`GET /v1/queues`: every queue with jobs or configuration."""
        return self._send(wire.queues())

    def pause_queue(self, name: str) -> QueueInfo:
        """`POST /v1/queues/{name}/pause`: no new leases from the queue."""
        return self._send(wire.queue_action(name, "pause"))

    def resume_queue(self, name: str) -> QueueInfo:
        """`POST /v1/queues/{name}/resume`."""
        return self._send(wire.queue_action(name, "resume"))

    def retry_queue(self, name: str) -> int:
        """`POST /v1/queues/{name}/retry`: retries every dead job of the queue; how many."""
        return self._send(wire.retry_queue(name))

    def purge_queue(self, name: str, state: str) -> int:
        """`DELETE /v1/queues/{name}/jobs?state=S`: deletes finished jobs; how many."""
        return self._send(wire.purge_queue(name, state))

    def workers(self) -> List[WorkerInfo]:
        """`GET /v1/workers`: workers seen in the last minute."""
        return self._send(wire.workers())

    # ---- schedules ------------------------------------------------------------------------

    def create_schedule(
        self,
        name: str,
        cron: str,
        job: Union[str, Mapping[str, Any]],
        *,
        timezone: Optional[str] = None,
        misfire: Union[Misfire, str, Mapping[str, Any], None] = None,
        jitter_ms: Optional[int] = None,
        paused: Optional[bool] = None,
    ) -> Schedule:
        """`POST /v1/schedules`: a job enqueued at every tick of `cron` (5 fields, 6 with
        seconds first, or `@daily` ...) read in `timezone` (IANA; `UTC` when left out).

        `job` is the template: a kind, or a mapping of `enqueue`'s arguments (`{"kind":
        "report", "queue": "reports", "args": {...}, "priority": 5}`) without `run_at`,
        `delay_ms`, `idempotency_key` or `traceparent`, which the scheduler sets. `misfire`
        (`Misfire.run_once()` when left out) says which ticks missed while nothing ran fire;
        each tick's job runs up to `jitter_ms` after it. A name in use is an
        `InvalidStateError`, a bad field an `InvalidArgumentError` naming it (`cron`,
        `timezone`, `job.priority`, ...)."""
        body = wire.schedule_body(name, cron, job, timezone, misfire, jitter_ms, paused)
        return self._send(wire.create_schedule(body))

    def get_schedule(self, name: str) -> Schedule:
        """`GET /v1/schedules/{name}`, with its next fire times and last runs."""
        return self._send(wire.get_schedule(name))

    def list_schedules(self) -> List[Schedule]:
        """`GET /v1/schedules`: every schedule, by name."""
        return self._send(wire.list_schedules())

    def replace_schedule(
        self,
        name: str,
        cron: str,
        job: Union[str, Mapping[str, Any]],
        *,
        timezone: Optional[str] = None,
        misfire: Union[Misfire, str, Mapping[str, Any], None] = None,
        jitter_ms: Optional[int] = None,
        paused: Optional[bool] = None,
    ) -> Schedule:
        """`PUT /v1/schedules/{name}`: a new definition, as `create_schedule` takes it.
        Options left out take their defaults (so `paused` left out resumes); what it fired
        stays, and a new `cron` or `timezone` counts from now."""
        body = wire.schedule_body(None, cron, job, timezone, misfire, jitter_ms, paused)
        return self._send(wire.replace_schedule(name, body))

    def delete_schedule(self, name: str) -> None:
        """`DELETE /v1/schedules/{name}`; the jobs it enqueued stay."""
        self._send(wire.delete_schedule(name))

    def pause_schedule(self, name: str) -> Schedule:
        """`POST /v1/schedules/{name}/pause`: fires nothing until resumed."""
        return self._send(wire.schedule_action(name, "pause"))

    def resume_schedule(self, name: str) -> Schedule:
        """`POST /v1/schedules/{name}/resume`: the ticks missed while paused are handled by
        its misfire policy."""
        return self._send(wire.schedule_action(name, "resume"))

    def trigger_schedule(self, name: str) -> Job:
        """`POST /v1/schedules/{name}/trigger`: enqueues one job from the template now (also
        while paused; its own ticks are unaffected). The job's `meta["schedule"]` is
        `{"name": name, "manual": True}`."""
        return self._send(wire.trigger_schedule(name))

    # ---- workflows ------------------------------------------------------------------------

    def submit_workflow(
        self, steps: Iterable[Mapping[str, Any]], name: Optional[str] = None
    ) -> WorkflowRun:
        """`POST /v1/workflows`: a workflow run, a DAG of steps stored atomically; a step with
        dependencies waits in `pending` until its parents are done.

        Each step is a dict: `{"step": "load", "depends_on": ["extract"], "on_failure":
        "continue", "job": {"kind": "load", "queue": "etl", "args": {...}}}`. `job` is a kind
        or a mapping of `enqueue`'s arguments (`task.spec(args)` makes one); `on_failure` is
        `cancel_dependents` (the default: a failed step cancels everything downstream),
        `continue` (dependents run, the run fails) or `ignore` (dependents run, the run can
        still succeed). A cycle, an unknown dependency or a duplicate name is an
        `InvalidArgumentError` naming the field, e.g. `steps[1].depends_on[0]`. Not retried: a
        lost answer is best checked with `workflows()`."""
        return self._send(wire.submit_workflow(steps, name))

    def workflow(self, workflow_id: str) -> WorkflowRun:
        """`GET /v1/workflows/{id}`: the run with every step's job (`run.step("load")`)."""
        return self._send(wire.get_workflow(workflow_id))

    def workflows(
        self,
        state: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> WorkflowPage:
        """`GET /v1/workflows`: one page of runs, newest first; `state` is `running`,
        `completed`, `failed` or `cancelled`."""
        return self._send(wire.list_workflows(state, limit, cursor))

    def cancel_workflow(self, workflow_id: str) -> Workflow:
        """`POST /v1/workflows/{id}/cancel`: waiting steps end `cancelled` at once, running
        ones are flagged; the run ends `cancelled` when its last step has finished. An
        `InvalidStateError` once it has finished."""
        return self._send(wire.workflow_action(workflow_id, "cancel"))

    def retry_workflow(self, workflow_id: str) -> Workflow:
        """`POST /v1/workflows/{id}/retry`: a finished run's dead and cancelled steps start
        over; completed steps keep their results. An `InvalidStateError` while it runs or
        when no step failed."""
        return self._send(wire.workflow_action(workflow_id, "retry"))

    def add_workflow_steps(
        self, workflow_id: str, steps: Iterable[Mapping[str, Any]]
    ) -> List[Job]:
        """`POST /v1/workflows/{id}/steps`: adds steps (dicts, as `submit_workflow` takes) to
        a running run, e.g. a fan-out from one of its steps (`ctx.add_steps`). They may depend
        on each other and on the run's steps. Returns the new steps' jobs."""
        return self._send(wire.add_workflow_steps(workflow_id, steps))

    # ---- workflow definitions, triggers and backfills ------------------------------------

    def put_workflow_definition(
        self,
        name: str,
        steps: Iterable[Mapping[str, Any]],
        *,
        params: Optional[Mapping[str, Any]] = None,
        cron: Optional[str] = None,
        timezone: Optional[str] = None,
    ) -> WorkflowDefinition:
        """`PUT /v1/workflows/definitions/{name}`: stores a named definition, replacing one of
        the same name (its runs stay).

        `steps` are dicts as `submit_workflow` takes them; in their jobs' args a string that
        is exactly `"{{params.NAME}}"` becomes the parameter's JSON value, `"{{logical_date}}"`
        the run's logical date, and either inside a longer string its text. `params` are the
        defaults a trigger's parameters go over. With `cron` (read in `timezone`, `UTC` when
        left out) the server starts a run at every tick, the tick's time as logical date. The
        steps are checked as a run would be, rendered with the defaults: a missing parameter
        or a bad graph is an `InvalidArgumentError` naming the field."""
        body = wire.definition_body(steps, params, cron, timezone)
        return self._send(wire.put_workflow_definition(name, body))

    def workflow_definitions(self) -> List[WorkflowDefinition]:
        """`GET /v1/workflows/definitions`: every definition, by name."""
        return self._send(wire.list_workflow_definitions())

    def workflow_definition(self, name: str) -> WorkflowDefinition:
        """`GET /v1/workflows/definitions/{name}`; a `NotFoundError` when there is none."""
        return self._send(wire.get_workflow_definition(name))

    def delete_workflow_definition(self, name: str) -> None:
        """`DELETE /v1/workflows/definitions/{name}`; its runs stay."""
        self._send(wire.delete_workflow_definition(name))

    def trigger_workflow(
        self,
        name: str,
        params: Optional[Mapping[str, Any]] = None,
        logical_date: Union[str, date, None] = None,
    ) -> WorkflowRun:
        """`POST /v1/workflows/definitions/{name}/runs`: starts a run of the definition for
        `logical_date` (a string up to 64 characters, a `date`, or an aware `datetime`; the
        current time when left out), with `params` over its defaults.

        A definition has one run per logical date, so this is idempotent per date: the
        answer's `created` is `True` when this call made the run, `False` when the run of
        that date existed (it is the run answered, whatever `params` this call gave)."""
        return self._send(wire.trigger_workflow(name, params, logical_date))

    def backfill_workflow(
        self,
        name: str,
        from_: Union[str, date],
        to: Union[str, date],
        params: Optional[Mapping[str, Any]] = None,
        max_running: Optional[int] = None,
    ) -> BackfillStatus:
        """`POST /v1/workflows/definitions/{name}/backfill`: one run per date from `from_` to
        `to` (`YYYY-MM-DD` or `date`s, inclusive), started in date order by the server, at
        most `max_running` (1..100, 4 when left out) at a time, each with `params` over the
        definition's defaults.

        Idempotent: the same definition and range answers the existing backfill (`created`
        is `False`), and a date that already has a run gets no second one. Follow it with
        `backfill(status.id)`."""
        return self._send(wire.backfill_workflow(name, from_, to, params, max_running))

    def backfill(self, backfill_id: str) -> BackfillStatus:
        """`GET /v1/workflows/backfills/{id}`: the backfill and how many of its dates have a
        run, running, completed or failed (`status.finished` once all are done)."""
        return self._send(wire.get_backfill(backfill_id))

    # ---- the worker's side (the `Worker` runtime uses these through `AsyncClient`) ---------

    def lease(
        self,
        queues: Sequence[str],
        *,
        worker_id: str,
        max_jobs: int = 1,
        lease_ms: int = 30_000,
        wait_ms: int = 0,
    ) -> List[Job]:
        """`POST /v1/leases`: up to `max_jobs` jobs, each with its `lease_token`."""
        raw = self._send(wire.lease(queues, worker_id, max_jobs, lease_ms, wait_ms))
        return [Job.from_json(j) for j in raw]

    def heartbeat(
        self, job_id: str, lease_token: str, *, lease_ms: Optional[int] = None, progress: Any = None
    ) -> HeartbeatAnswer:
        """`POST /v1/jobs/{id}/heartbeat`: extends the lease, records progress, and says
        whether a cancel was requested."""
        return self._send(wire.heartbeat(job_id, lease_token, lease_ms, progress))

    def complete(self, job_id: str, lease_token: str, result: Any = None) -> Job:
        """`POST /v1/jobs/{id}/complete`."""
        return self._send(wire.complete(job_id, lease_token, result))

    def fail(
        self,
        job_id: str,
        lease_token: str,
        message: str,
        *,
        kind: str = "error",
        retryable: bool = True,
        retry_in_ms: Optional[int] = None,
    ) -> Job:
        """`POST /v1/jobs/{id}/fail`: a failed attempt; `retry_in_ms` overrides the backoff."""
        return self._send(wire.fail(job_id, lease_token, message, kind, retryable, retry_in_ms))

    def release(self, job_id: str, lease_token: str) -> Job:
        """`POST /v1/jobs/{id}/release`: hands the job back without counting the attempt."""
        return self._send(wire.lease_outcome(job_id, lease_token, "release"))

    def cancelled(self, job_id: str, lease_token: str) -> Job:
        """`POST /v1/jobs/{id}/cancelled`: the worker honoured a cancel."""
        return self._send(wire.lease_outcome(job_id, lease_token, "cancelled"))

    def acks(self, acks: Sequence[Mapping[str, Any]]) -> List[AckResult]:
        """`POST /v1/acks`: many outcomes (`{"id", "lease_token", "outcome", ...}`) in one
        call; each stands alone, results in order."""
        return self._send(wire.acks(acks))


class AsyncClient(_Base):
    """The asyncio flavour of `Client`: the same methods, awaited. Use it from one event loop.

    >>> async with AsyncClient() as client:
    ...     job = await client.enqueue("send_email", {"to": "ada@example.com"})
    """

    def __init__(
        self,
        url: Optional[str] = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        api_key: Optional[str] = None,
        namespace: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        retry: RetryPolicy = RetryPolicy(),
        max_connections: int = 100,
    ) -> None:
        super().__init__(url, api_key, namespace, headers, retry)
        self._http = AsyncTransport(self.url, self._headers, timeout, max_connections)

    async def aclose(self) -> None:
        """Closes the pooled connections."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def _send(self, call: wire.Call[T]) -> T:
        attempt = 1
        while True:
            try:
                return await self._once(call)
            except HopperError as e:
                if not (call.retry and e.retryable and attempt < self.retry_policy.max_attempts):
                    raise
                await asyncio.sleep(self.retry_policy.delay(attempt, e))
                attempt += 1

    async def _once(self, call: wire.Call[T]) -> T:
        r = await self._http.request(
            call.method,
            call.path,
            call.body,
            call.params,
            wire.JSON_HEADERS if call.body is not None else None,
            call.timeout,
        )
        return call.answer(r.status, r.headers, r.body)

    # ---- producers -----------------------------------------------------------------------

    async def enqueue(
        self,
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
    ) -> Job:
        """See `Client.enqueue`."""
        return await self._send(wire.enqueue(kind, args, _options(locals())))

    async def enqueue_batch(self, jobs: Iterable[Mapping[str, Any]]) -> List[Job]:
        """See `Client.enqueue_batch`."""
        return await self._send(wire.enqueue_batch(jobs))

    async def get(self, job_id: str) -> Job:
        """See `Client.get`."""
        return await self._send(wire.get(job_id))

    async def job_events(self, job_id: str) -> List[JobEvent]:
        """See `Client.job_events`."""
        return await self._send(wire.events(job_id))

    @overload
    def events(self, job_id_: str, /) -> Awaitable[List[JobEvent]]: ...

    @overload
    def events(
        self,
        _job_id: None = None,
        /,
        *,
        queue: Filter = None,
        kind: Filter = None,
        job_id: Filter = None,
        type: Filter = None,
        after: Optional[int] = None,
        reconnect: RetryPolicy = DEFAULT_RECONNECT,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> AsyncEventStream: ...

    def events(
        self,
        _job_id: Optional[str] = None,
        /,
        *,
        queue: Filter = None,
        kind: Filter = None,
        job_id: Filter = None,
        type: Filter = None,
        after: Optional[int] = None,
        reconnect: RetryPolicy = DEFAULT_RECONNECT,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> Union[AsyncEventStream, Awaitable[List[JobEvent]]]:
        """See `Client.events`; iterate with `async for`. The stream connects at `async with`,
        `await stream.connect()` or the first step of the iteration, whichever comes first:
        without `after`, it holds the events from then on.

        >>> async with client.events(queue="emails") as stream:
        ...     async for event in stream:
        ...         print(event)
        """
        if _job_id is not None:
            warnings.warn(_JOB_EVENTS_POSITIONAL, DeprecationWarning, stacklevel=2)
            return self.job_events(_job_id)
        return AsyncEventStream(
            self._http,
            stream_params(queue, kind, job_id, type),
            after=after,
            reconnect=reconnect,
            idle_timeout=idle_timeout,
        )

    async def list(
        self,
        *,
        queue: Optional[str] = None,
        state: Union[str, Sequence[str], None] = None,
        kind: Optional[str] = None,
        tag: Optional[str] = None,
        q: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> JobPage:
        """See `Client.list`."""
        return await self._send(wire.list_jobs(queue, state, kind, tag, q, limit, cursor))

    async def cancel(self, job_id: str) -> Job:
        """See `Client.cancel`."""
        return await self._send(wire.job_action(job_id, "cancel"))

    async def retry(self, job_id: str) -> Job:
        """See `Client.retry`."""
        return await self._send(wire.job_action(job_id, "retry"))

    async def delete(self, job_id: str) -> None:
        """See `Client.delete`."""
        await self._send(wire.delete(job_id))

    async def wait(self, job_id: str, *, timeout: float = 60.0, interval: float = 0.05) -> Job:
        """See `Client.wait`."""
        deadline = time.monotonic() + timeout
        while True:
            job = await self.get(job_id)
            if job.finished:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job.state} after {timeout} s")
            await asyncio.sleep(interval)

    # ---- queues and workers --------------------------------------------------------------

    async def queues(self) -> List[QueueInfo]:
        """See `Client.queues`."""
        return await self._send(wire.queues())

    async def pause_queue(self, name: str) -> QueueInfo:
        """See `Client.pause_queue`."""
        return await self._send(wire.queue_action(name, "pause"))

    async def resume_queue(self, name: str) -> QueueInfo:
        """See `Client.resume_queue`."""
        return await self._send(wire.queue_action(name, "resume"))

    async def retry_queue(self, name: str) -> int:
        """See `Client.retry_queue`."""
        return await self._send(wire.retry_queue(name))

    async def purge_queue(self, name: str, state: str) -> int:
        """See `Client.purge_queue`."""
        return await self._send(wire.purge_queue(name, state))

    async def workers(self) -> List[WorkerInfo]:
        """See `Client.workers`."""
        return await self._send(wire.workers())

    # ---- schedules ------------------------------------------------------------------------

    async def create_schedule(
        self,
        name: str,
        cron: str,
        job: Union[str, Mapping[str, Any]],
        *,
        timezone: Optional[str] = None,
        misfire: Union[Misfire, str, Mapping[str, Any], None] = None,
        jitter_ms: Optional[int] = None,
        paused: Optional[bool] = None,
    ) -> Schedule:
        """See `Client.create_schedule`."""
        body = wire.schedule_body(name, cron, job, timezone, misfire, jitter_ms, paused)
        return await self._send(wire.create_schedule(body))

    async def get_schedule(self, name: str) -> Schedule:
        """See `Client.get_schedule`."""
        return await self._send(wire.get_schedule(name))

    async def list_schedules(self) -> List[Schedule]:
        """See `Client.list_schedules`."""
        return await self._send(wire.list_schedules())

    async def replace_schedule(
        self,
        name: str,
        cron: str,
        job: Union[str, Mapping[str, Any]],
        *,
        timezone: Optional[str] = None,
        misfire: Union[Misfire, str, Mapping[str, Any], None] = None,
        jitter_ms: Optional[int] = None,
        paused: Optional[bool] = None,
    ) -> Schedule:
        """See `Client.replace_schedule`."""
        body = wire.schedule_body(None, cron, job, timezone, misfire, jitter_ms, paused)
        return await self._send(wire.replace_schedule(name, body))

    async def delete_schedule(self, name: str) -> None:
        """See `Client.delete_schedule`."""
        await self._send(wire.delete_schedule(name))

    async def pause_schedule(self, name: str) -> Schedule:
        """See `Client.pause_schedule`."""
        return await self._send(wire.schedule_action(name, "pause"))

    async def resume_schedule(self, name: str) -> Schedule:
        """See `Client.resume_schedule`."""
        return await self._send(wire.schedule_action(name, "resume"))

    async def trigger_schedule(self, name: str) -> Job:
        """See `Client.trigger_schedule`."""
        return await self._send(wire.trigger_schedule(name))

    # ---- workflows ------------------------------------------------------------------------

    async def submit_workflow(
        self, steps: Iterable[Mapping[str, Any]], name: Optional[str] = None
    ) -> WorkflowRun:
        """See `Client.submit_workflow`."""
        return await self._send(wire.submit_workflow(steps, name))

    async def workflow(self, workflow_id: str) -> WorkflowRun:
        """See `Client.workflow`."""
        return await self._send(wire.get_workflow(workflow_id))

    async def workflows(
        self,
        state: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> WorkflowPage:
        """See `Client.workflows`."""
        return await self._send(wire.list_workflows(state, limit, cursor))

    async def cancel_workflow(self, workflow_id: str) -> Workflow:
        """See `Client.cancel_workflow`."""
        return await self._send(wire.workflow_action(workflow_id, "cancel"))

    async def retry_workflow(self, workflow_id: str) -> Workflow:
        """See `Client.retry_workflow`."""
        return await self._send(wire.workflow_action(workflow_id, "retry"))

    async def add_workflow_steps(
        self, workflow_id: str, steps: Iterable[Mapping[str, Any]]
    ) -> List[Job]:
        """See `Client.add_workflow_steps`."""
        return await self._send(wire.add_workflow_steps(workflow_id, steps))

    # ---- workflow definitions, triggers and backfills ------------------------------------

    async def put_workflow_definition(
        self,
        name: str,
        steps: Iterable[Mapping[str, Any]],
        *,
        params: Optional[Mapping[str, Any]] = None,
        cron: Optional[str] = None,
        timezone: Optional[str] = None,
    ) -> WorkflowDefinition:
        """See `Client.put_workflow_definition`."""
        body = wire.definition_body(steps, params, cron, timezone)
        return await self._send(wire.put_workflow_definition(name, body))

    async def workflow_definitions(self) -> List[WorkflowDefinition]:
        """See `Client.workflow_definitions`."""
        return await self._send(wire.list_workflow_definitions())

    async def workflow_definition(self, name: str) -> WorkflowDefinition:
        """See `Client.workflow_definition`."""
        return await self._send(wire.get_workflow_definition(name))

    async def delete_workflow_definition(self, name: str) -> None:
        """See `Client.delete_workflow_definition`."""
        await self._send(wire.delete_workflow_definition(name))

    async def trigger_workflow(
        self,
        name: str,
        params: Optional[Mapping[str, Any]] = None,
        logical_date: Union[str, date, None] = None,
    ) -> WorkflowRun:
        """See `Client.trigger_workflow`."""
        return await self._send(wire.trigger_workflow(name, params, logical_date))

    async def backfill_workflow(
        self,
        name: str,
        from_: Union[str, date],
        to: Union[str, date],
        params: Optional[Mapping[str, Any]] = None,
        max_running: Optional[int] = None,
    ) -> BackfillStatus:
        """See `Client.backfill_workflow`."""
        return await self._send(wire.backfill_workflow(name, from_, to, params, max_running))

    async def backfill(self, backfill_id: str) -> BackfillStatus:
        """See `Client.backfill`."""
        return await self._send(wire.get_backfill(backfill_id))

    # ---- the worker's side ---------------------------------------------------------------

    async def lease(
        self,
        queues: Sequence[str],
        *,
        worker_id: str,
        max_jobs: int = 1,
        lease_ms: int = 30_000,
        wait_ms: int = 0,
    ) -> List[Job]:
        """See `Client.lease`."""
        raw = await self.lease_raw(queues, worker_id, max_jobs, lease_ms, wait_ms)
        return [Job.from_json(j) for j in raw]

    async def lease_raw(
        self, queues: Sequence[str], worker_id: str, max_jobs: int, lease_ms: int, wait_ms: int
    ) -> List[Dict[str, Any]]:
        """`lease`, answering the jobs as the server sent them (the worker's hot path)."""
        return await self._send(wire.lease(queues, worker_id, max_jobs, lease_ms, wait_ms))

    async def heartbeat(
        self, job_id: str, lease_token: str, *, lease_ms: Optional[int] = None, progress: Any = None
    ) -> HeartbeatAnswer:
        """See `Client.heartbeat`."""
        return await self._send(wire.heartbeat(job_id, lease_token, lease_ms, progress))

    async def complete(self, job_id: str, lease_token: str, result: Any = None) -> Job:
        """See `Client.complete`."""
        return await self._send(wire.complete(job_id, lease_token, result))

    async def fail(
        self,
        job_id: str,
        lease_token: str,
        message: str,
        *,
        kind: str = "error",
        retryable: bool = True,
        retry_in_ms: Optional[int] = None,
    ) -> Job:
        """See `Client.fail`."""
        return await self._send(
            wire.fail(job_id, lease_token, message, kind, retryable, retry_in_ms)
        )

    async def release(self, job_id: str, lease_token: str) -> Job:
        """See `Client.release`."""
        return await self._send(wire.lease_outcome(job_id, lease_token, "release"))

    async def cancelled(self, job_id: str, lease_token: str) -> Job:
        """See `Client.cancelled`."""
        return await self._send(wire.lease_outcome(job_id, lease_token, "cancelled"))

    async def acks(self, acks: Sequence[Mapping[str, Any]]) -> List[AckResult]:
        """See `Client.acks`."""
        return await self._send(wire.acks(acks))

    async def acks_encoded(self, fragments: Sequence[bytes]) -> List[AckResult]:
        """`acks` of outcomes each already encoded as a JSON object (the worker's hot path)."""
        return await self._send(wire.acks_encoded(fragments))


def _options(local_vars: Dict[str, Any]) -> Dict[str, Any]:
    """`enqueue`'s keyword options from its `locals()`: one list of options, kept in
    `wire.job_body`'s signature, instead of a second copy here."""
    return {k: v for k, v in local_vars.items() if k not in ("self", "kind", "args")}
