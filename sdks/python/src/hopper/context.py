"""`JobContext`: what a running handler knows about its job and lease, how it reports
progress, and how it learns that it should stop. Tasks declared with `bind=True` get it as
their first argument (where a Celery bound task gets `self`). For a step of a workflow run it
also holds what the step's parents left it (`parents`, `failed_parents`), and adds steps to
the run (`add_steps`).

Stopping is cooperative for plain functions, which run on threads that Python cannot
interrupt: a long handler checks `ctx.is_cancelled()` or sleeps with `ctx.sleep(seconds)`,
which wakes up early when the job is cancelled, times out, or the worker shuts down. A
coroutine handler is simply cancelled (`asyncio.CancelledError`) at that point.
"""

from __future__ import annotations

import asyncio
import enum
import threading
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, NoReturn, Optional

from .errors import LeaseLostError
from .models import Job, StepInfo
from .outcome import Retry

if TYPE_CHECKING:
    from .client import AsyncClient


class CancelReason(str, enum.Enum):
    """Why a handler was asked to stop."""

    #: Someone cancelled the job through the API; a heartbeat brought the news.
    CANCEL_REQUESTED = "cancel_requested"
    #: The attempt ran past the job's `timeout_ms`.
    TIMEOUT = "timeout"
    #: The worker is shutting down and the grace period is over.
    SHUTDOWN = "shutdown"
    #: The server no longer recognises this lease (it expired there): another worker may run
    #: the job now, so this run's outcome will not be recorded.
    LEASE_LOST = "lease_lost"


class JobContext:
    """The leased job, a way to report progress, and the stop signal of one run."""

    def __init__(
        self,
        raw: Dict[str, Any],
        client: AsyncClient,
        loop: asyncio.AbstractEventLoop,
        lease_ms: int,
    ) -> None:
        # The job as leased, parsed into a `Job` only if the handler asks (most never do).
        self._raw = raw
        self._job: Optional[Job] = None
        self._client = client
        self._loop = loop
        self._lease_ms = lease_ms
        self._lock = threading.Lock()
        self._event: Optional[threading.Event] = None
        # Resolved on the worker's loop when the handler should stop; its supervisor waits on it.
        self.stop_requested: asyncio.Future[None] = loop.create_future()
        self._reason: Optional[CancelReason] = None

    @property
    def job(self) -> Job:
        """The job as leased: args, options, attempt, lease fields."""
        if self._job is None:
            self._job = Job.from_json(self._raw)
        return self._job

    @property
    def id(self) -> str:
        return str(self._raw["id"])

    @property
    def kind(self) -> str:
        return str(self._raw["kind"])

    @property
    def queue(self) -> str:
        return str(self._raw.get("queue", "default"))

    @property
    def args(self) -> Any:
        """The args exactly as enqueued."""
        return self._raw.get("args")

    @property
    def attempt(self) -> int:
        """Which counted attempt this is: 1 for the first run (Celery's `request.retries` + 1)."""
        return int(self._raw.get("attempt", 1))

    @property
    def max_attempts(self) -> int:
        return int(self._raw.get("max_attempts", 25))

    @property
    def lease_seq(self) -> int:
        """The lease's fencing number: it grows at every lease of the job, so downstream writes
        stamped with it can refuse an older run's late writes."""
        return int(self._raw.get("lease_seq", 0))

    @property
    def lease_token(self) -> str:
        return str(self._raw.get("lease_token", ""))

    @property
    def timeout_ms(self) -> int:
        """The limit on this attempt's run time."""
        return int(self._raw.get("timeout_ms", 1_800_000))

    @property
    def traceparent(self) -> Optional[str]:
        """The producer's W3C trace context, if it sent one."""
        return self._raw.get("traceparent")

    # ---- workflows -----------------------------------------------------------------------

    @property
    def workflow(self) -> Optional[StepInfo]:
        """The step of a workflow run this job is (run id, step name, dependencies), or
        `None` for an ordinary job."""
        return self.job.workflow

    @property
    def parents(self) -> Dict[str, Any]:
        """For a workflow step with dependencies: each parent's result by step name (`None`
        for a parent that returned nothing, or that failed under a policy that let this step
        run: see `failed_parents`). Empty for any other job."""
        return dict(self._raw.get("parents") or {})

    @property
    def failed_parents(self) -> Dict[str, Dict[str, Any]]:
        """For a workflow step some of whose parents failed under `continue` or `ignore` (and
        so let it run anyway): how each ended, by step name, as `{"state": "dead", "error":
        "..."}`. Empty when no parent failed."""
        return dict(self._raw.get("failed_parents") or {})

    async def aadd_steps(self, steps: Iterable[Mapping[str, Any]]) -> List[Job]:
        """Adds steps (dicts, as `Client.submit_workflow` takes) to this step's run: a fan-out
        of children and a step that depends on all of them, say. They may depend on each
        other and on the run's steps, this one included. Raises `ValueError` when this job is
        not a workflow step."""
        step = self.workflow
        if step is None:
            raise ValueError(f"job {self.id} is not a step of a workflow run")
        return await self._client.add_workflow_steps(step.workflow_id, steps)

    def add_steps(self, steps: Iterable[Mapping[str, Any]]) -> List[Job]:
        """`aadd_steps` for handlers running on a thread: blocks until the server answered."""
        if _on_loop(self._loop):
            raise RuntimeError("call `await ctx.aadd_steps(steps)` from a coroutine handler")
        steps = list(steps)
        return asyncio.run_coroutine_threadsafe(self.aadd_steps(steps), self._loop).result()

    # ---- stopping ------------------------------------------------------------------------

    def is_cancelled(self) -> bool:
        """True once the handler should stop (see `cancel_reason`)."""
        return self._reason is not None

    @property
    def cancel_reason(self) -> Optional[CancelReason]:
        return self._reason

    def sleep(self, seconds: float) -> bool:
        """Sleeps up to `seconds` on a handler thread, waking early when the handler should
        stop; returns True in that case."""
        with self._lock:
            if self._event is None:
                self._event = threading.Event()
                if self._reason is not None:
                    self._event.set()
            event = self._event
        return event.wait(seconds)

    def _cancel(self, reason: CancelReason) -> None:
        """Fires the stop signal (on the worker's loop); the first reason is the one kept."""
        with self._lock:
            if self._reason is None:
                self._reason = reason
            if self._event is not None:
                self._event.set()
        if not self.stop_requested.done():
            self.stop_requested.set_result(None)

    # ---- reporting -----------------------------------------------------------------------

    async def aprogress(self, value: Any) -> None:
        """Reports progress now (a heartbeat carrying `value`, which also renews the lease).
        An answer that asks for cancellation fires the stop signal."""
        try:
            answer = await self._client.heartbeat(
                self.id, self.lease_token, lease_ms=self._lease_ms, progress=value
            )
        except LeaseLostError:
            self._cancel(CancelReason.LEASE_LOST)
            raise
        if answer.cancel_requested:
            self._cancel(CancelReason.CANCEL_REQUESTED)

    def progress(self, value: Any) -> None:
        """`aprogress` for handlers running on a thread: blocks until the server answered."""
        if _on_loop(self._loop):
            raise RuntimeError("call `await ctx.aprogress(value)` from a coroutine handler")
        asyncio.run_coroutine_threadsafe(self.aprogress(value), self._loop).result()

    def retry(
        self,
        countdown: Optional[float] = None,
        *,
        in_ms: Optional[int] = None,
        exc: Optional[BaseException] = None,
    ) -> NoReturn:
        """Raises `Retry`, the way Celery's `raise self.retry(countdown=60, exc=e)` reads:
        fail this attempt and run again after `countdown` seconds (or `in_ms`)."""
        if countdown is not None:
            in_ms = int(countdown * 1000)
        raise Retry(in_ms, str(exc) if exc is not None else "") from exc

    def __repr__(self) -> str:
        return f"JobContext(id={self.id!r}, kind={self.kind!r}, attempt={self.attempt})"


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
