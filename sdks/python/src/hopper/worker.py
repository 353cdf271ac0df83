"""`Worker`: the runtime that leases jobs, runs their tasks, and reports how they ended.

It runs on one asyncio event loop, with the same moving parts as the Rust SDK's worker:

- the lease loop long-polls `POST /v1/leases` for as many jobs as there are free slots (at
  most twice the concurrency are held at once, so the next jobs are already here when a
  handler finishes), and asks for many at a time while handlers are busy;
- one supervisor per leased job waits for one of `concurrency` run slots, runs the task
  (coroutines on the loop, plain functions on threads), heartbeats every third of the lease,
  and stops the handler on timeout, cancellation or a lost lease;
- the acker batches outcomes into `POST /v1/acks`, one batch in flight at a time.

Shutdown (semantics.md, Shutdown): on SIGTERM or SIGINT, stop leasing, release leased jobs
that have not started, let running handlers finish for the grace period, then stop the rest
and release their leases, deliver the last outcomes, and return. A second signal skips what is
left of the grace period.

Python cannot kill a thread: a plain-function handler that is stopped (timeout, cancel,
shutdown) is abandoned to run to its end while its outcome is reported at once and a fresh
thread takes its place; `ctx.is_cancelled()` and `ctx.sleep()` let it stop early.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import signal
import socket
import threading
import traceback
from collections import deque
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Deque, Dict, List, Optional, Sequence, Set, Tuple

from . import _wire as wire
from .client import AsyncClient
from .context import CancelReason, JobContext
from .errors import HopperError, LeaseLostError
from .outcome import (
    KIND_INVALID_ARGS,
    KIND_RETRY,
    KIND_TIMEOUT,
    KIND_UNKNOWN_KIND,
    Fail,
    Retry,
)

if TYPE_CHECKING:
    from .tasks import Hopper, Task

__all__ = ["Worker", "WorkerStats"]

log = logging.getLogger("hopper.worker")

#: Time running handlers get after a shutdown signal: under the common 30 s kill deadline of
#: orchestrators, leaving time to release and deliver.
DEFAULT_GRACE_PERIOD = 25.0
DEFAULT_LEASE_MS = 30_000
#: How long one lease request waits for a job when none is available.
DEFAULT_POLL_WAIT_MS = 20_000

MAX_JOBS_PER_LEASE = 1000
#: After a shutdown signal, how long an in-flight lease request may still answer: dropping it
#: at once could strand jobs leased just then until their leases expire, while an idle long
#: poll must not hold up the shutdown.
IN_FLIGHT_LEASE_DRAIN = 0.3
#: A heartbeat that failed for another reason than a lost lease is tried again this soon.
HEARTBEAT_RETRY = 1.0
LEASE_RETRY = (0.1, 5.0)
ACK_RETRY = (0.02, 2.0)
#: How long a stopping worker keeps trying to deliver its last outcomes; past it the leases
#: expire on the server and the jobs run again.
SHUTDOWN_DELIVERY_LIMIT = 10.0
#: The server refuses longer error kinds.
MAX_ERROR_KIND = 128
#: Traceback text kept in an error message (the server cuts messages at 8 KiB).
MAX_TRACEBACK = 6000

Outcome = Dict[str, Any]
RELEASED: Outcome = {"outcome": "released"}
CANCELLED: Outcome = {"outcome": "cancelled"}


@dataclass
class WorkerStats:
    """Counters of one run, logged when the worker stops."""

    leased: int = 0
    started: int = 0
    completed: int = 0
    failed: int = 0
    released: int = 0
    cancelled: int = 0
    #: Outcomes that were not recorded (lease lost, refused, or undeliverable at shutdown).
    undelivered: int = 0


class Worker:
    """Runs the tasks of a `Hopper` app. `run()` blocks until SIGTERM or SIGINT.

    - `queues`: where to lease from, served as one in priority order (default: every queue
      the app's tasks name);
    - `concurrency`: most handlers running at once (threads for plain functions, tasks on the
      event loop for coroutines);
    - `lease_ms`: lease length, renewed by a heartbeat every third of it;
    - `grace_period`: seconds running handlers may finish after a shutdown signal;
    - `cancel_grace`: seconds a handler may take to stop after its job was cancelled;
    - `ack_batch_size`, `ack_interval`: most outcomes per `POST /v1/acks`, and longest wait
      (seconds) for a batch to fill.
    """

    def __init__(
        self,
        app: Hopper,
        *,
        queues: Optional[Sequence[str]] = None,
        concurrency: int = 10,
        worker_id: Optional[str] = None,
        lease_ms: int = DEFAULT_LEASE_MS,
        poll_wait_ms: int = DEFAULT_POLL_WAIT_MS,
        grace_period: float = DEFAULT_GRACE_PERIOD,
        cancel_grace: float = 5.0,
        ack_batch_size: int = 500,
        ack_interval: float = 0.002,
    ) -> None:
        if not app.tasks:
            raise ValueError("no task registered: every leased job would fail")
        self.app = app
        self.queues = list(queues or sorted({t.queue or "default" for t in app.tasks.values()}))
        if not 1 <= len(self.queues) <= 100:
            raise ValueError(f"a worker leases from 1 to 100 queues, not {len(self.queues)}")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if not 200 <= lease_ms <= 3_600_000:
            raise ValueError(f"lease_ms must be between 200 and 3600000, not {lease_ms}")
        if not 0 <= poll_wait_ms <= 60_000:
            raise ValueError(f"poll_wait_ms must be between 0 and 60000, not {poll_wait_ms}")
        self.concurrency = concurrency
        self.worker_id = worker_id or f"{socket.gethostname() or 'localhost'}:pid-{os.getpid()}"
        self.lease_ms = lease_ms
        self.poll_wait_ms = poll_wait_ms
        self.grace_period = grace_period
        self.cancel_grace = cancel_grace
        self.ack_batch_size = max(1, min(ack_batch_size, 1000))
        self.ack_interval = ack_interval
        # Seconds between heartbeats: every third of the lease, so one lost beat costs nothing.
        self._heartbeat_interval = max(lease_ms / 3000, 0.05)
        self.stats = WorkerStats()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop_asked = threading.Event()

    # ---- running and stopping ------------------------------------------------------------

    def run(self) -> None:
        """Runs until SIGTERM or SIGINT, then shuts down gracefully and returns."""
        asyncio.run(self.arun())

    def stop(self) -> None:
        """Starts a graceful shutdown, like SIGTERM; callable from any thread."""
        self._stop_asked.set()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._begin_stop)

    async def arun(self, *, handle_signals: bool = True) -> None:
        """Runs on the current event loop until `stop()` or, with `handle_signals` on the main
        thread, SIGTERM/SIGINT. Raises the `ApiError` of a lease request the server refused
        (a malformed queue name, say) after shutting down; outages are ridden out."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stopping: asyncio.Future[None] = loop.create_future()
        self._forced: asyncio.Future[None] = loop.create_future()
        self._progress = asyncio.Event()
        self._slots = _Slots(self.concurrency)
        self._held = 0  # leased jobs whose outcome is not queued yet
        self._waiting = 0  # leased jobs waiting for a run slot
        self._jobs: Set[asyncio.Task[None]] = set()
        self._threads: Optional[_Threads] = None
        self._client = AsyncClient(
            self.app.url, api_key=self.app.api_key, namespace=self.app.namespace
        )
        self._acker = _Acker(self._client, self.stats, self.ack_batch_size, self.ack_interval)
        acker = loop.create_task(self._acker.run())
        signals = handle_signals and threading.current_thread() is threading.main_thread()
        if signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_signal, sig)
        if self._stop_asked.is_set():
            self._begin_stop()
        log.info(
            "worker %s started: queues %s, concurrency %d, tasks %s",
            self.worker_id,
            ",".join(self.queues),
            self.concurrency,
            ", ".join(sorted(self.app.tasks)),
        )
        try:
            await self._lease_loop()
        finally:
            self._begin_stop()
            await self._drain()
            self._acker.close()
            await acker
            if self._threads is not None:
                self._threads.close()
            if signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            await self._client.aclose()
            log.info("worker %s stopped: %s", self.worker_id, asdict(self.stats))

    def _on_signal(self, sig: int) -> None:
        if self._stopping.done():
            log.warning("second %s: stopping the running jobs now", signal.Signals(sig).name)
            self._force()
        else:
            log.info("%s: no new leases; finishing the running jobs", signal.Signals(sig).name)
            self._begin_stop()

    def _begin_stop(self) -> None:
        if not self._stopping.done():
            self._stopping.set_result(None)
        # Unstarted jobs go back, and the lease loop wakes up to see the stop.
        self._slots.close()
        self._progress.set()

    def _force(self) -> None:
        if not self._forced.done():
            self._forced.set_result(None)

    async def _drain(self) -> None:
        """Lets running jobs finish for the grace period, then stops and releases the rest."""
        if not self._jobs:
            return
        log.info(
            "waiting up to %s s for %d running jobs to finish", self.grace_period, len(self._jobs)
        )
        _, pending = await asyncio.wait(set(self._jobs), timeout=self.grace_period)
        if pending:
            log.warning(
                "grace period over: stopping the %d jobs still running and releasing them",
                len(pending),
            )
            self._force()
            await asyncio.wait(pending)

    # ---- leasing -------------------------------------------------------------------------

    async def _lease_loop(self) -> None:
        """Leases until the stop; raises when the server refuses the lease request itself."""
        loop = asyncio.get_running_loop()
        capacity = 2 * self.concurrency
        # Half the capacity per request while handlers are busy: the other half keeps them
        # busy while the request is out, and each request is one commit on the server.
        min_batch = min(self.concurrency, MAX_JOBS_PER_LEASE)
        retry_delay = LEASE_RETRY[0]
        while True:
            while True:
                self._progress.clear()
                if self._stopping.done():
                    return
                free = min(capacity - self._held, MAX_JOBS_PER_LEASE)
                if free >= min_batch or (free > 0 and self._waiting == 0):
                    break
                await self._progress.wait()
            lease = loop.create_task(
                self._client.lease_raw(
                    self.queues, self.worker_id, free, self.lease_ms, self.poll_wait_ms
                )
            )
            either: Set[asyncio.Future[Any]] = {lease, self._stopping}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            stopping = self._stopping.done()
            if not lease.done():
                await asyncio.wait({lease}, timeout=IN_FLIGHT_LEASE_DRAIN)
                if not lease.done():
                    lease.cancel()
                    await asyncio.wait({lease})
                    return
            try:
                jobs = lease.result()
            except HopperError as e:
                if stopping:
                    return
                if not e.retryable:
                    log.error("the server refused the lease request; stopping: %s", e)
                    raise
                log.warning("lease request failed, retrying in %.1f s: %s", retry_delay, e)
                await asyncio.wait(
                    {self._stopping},
                    timeout=max(retry_delay, e.retry_after or 0.0),
                )
                retry_delay = min(retry_delay * 2, LEASE_RETRY[1])
                continue
            retry_delay = LEASE_RETRY[0]
            self._dispatch(jobs)
            if stopping:
                # The supervisors see the stop and release what they were given.
                return

    def _dispatch(self, jobs: List[Dict[str, Any]]) -> None:
        loop = asyncio.get_running_loop()
        self.stats.leased += len(jobs)
        for raw in jobs:
            self._held += 1
            self._waiting += 1
            task = loop.create_task(self._run(raw))
            self._jobs.add(task)
            task.add_done_callback(self._job_done)

    def _job_done(self, task: asyncio.Task[None]) -> None:
        self._jobs.discard(task)
        self._held -= 1
        self._progress.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("a job supervisor failed", exc_info=task.exception())

    # ---- one job -------------------------------------------------------------------------

    async def _run(self, raw: Dict[str, Any]) -> None:
        """One leased job, from waiting for a run slot to its outcome queued for the acker."""
        received = asyncio.get_running_loop().time()
        job_id, token = str(raw["id"]), str(raw.get("lease_token", ""))
        started, outcome = await self._await_slot(job_id, token)
        self._waiting -= 1
        self._progress.set()
        if not started:
            self._report(job_id, token, outcome)
            return
        try:
            outcome = await self._attempt(raw, received)
        except Exception as e:  # a bug of this runtime: still report something
            log.exception("job %s: the worker failed to run it", job_id)
            outcome = _failure(f"the worker failed to run the job: {e!r}", "worker_error")
        finally:
            self._slots.release()
        self._report(job_id, token, outcome)

    async def _await_slot(self, job_id: str, token: str) -> Tuple[bool, Optional[Outcome]]:
        """Waits for a run slot. A job may wait longer than its lease when handlers are slow,
        so it heartbeats meanwhile. Answers (True, None) once the slot is the job's, else
        (False, what to report): released at shutdown, cancelled, or nothing (lease lost)."""
        slot = self._slots.acquire()
        while not slot.done():
            await asyncio.wait({slot}, timeout=self._heartbeat_interval)
            if slot.done():
                break
            try:
                answer = await self._client.heartbeat(job_id, token, lease_ms=self.lease_ms)
            except LeaseLostError:
                verdict: Tuple[bool, Optional[Outcome]] = (False, None)
            except HopperError as e:
                log.warning("job %s: heartbeat failed: %s", job_id, e)
                continue
            else:
                if not answer.cancel_requested:
                    continue
                verdict = (False, CANCELLED)
            if slot.done() and slot.result():
                self._slots.release()
            slot.cancel()
            return verdict
        return (True, None) if slot.result() else (False, RELEASED)

    async def _attempt(self, raw: Dict[str, Any], received: float) -> Optional[Outcome]:
        """Runs the job's task; returns the outcome to report, or None when the lease is gone."""
        loop = asyncio.get_running_loop()
        ctx = JobContext(raw, self._client, loop, self.lease_ms)
        task = self.app.tasks.get(ctx.kind)
        if task is None:
            # Retryable: a worker of a newer release may know the kind.
            return _failure(f"no task {ctx.kind!r} in this worker", KIND_UNKNOWN_KIND)
        try:
            args, kwargs = task.decode_args(ctx.args)
        except TypeError as e:
            # No retry can make these args fit.
            return _failure(
                f"the args do not fit {task.name}{task.signature}: {e}",
                KIND_INVALID_ARGS,
                retryable=False,
            )
        if task.bind:
            args = (ctx,) + args
        self.stats.started += 1
        run: asyncio.Future[Any]
        item: Optional[_Item] = None
        if task.is_async:
            run = loop.create_task(task.fn(*args, **kwargs))
        else:
            if self._threads is None:
                self._threads = _Threads(loop, self.concurrency)
            run, item = self._threads.submit(task.fn, args, kwargs)
        # The attempt's time counts from the lease, as the server counts it.
        # Stop a little before the server's deadline (which started when the lease was
        # granted, before the answer reached us) so the report arrives in time.
        timeout_s = ctx.timeout_ms / 1000
        deadline = received + timeout_s - min(timeout_s / 10, 1.0)
        return await self._supervise(ctx, task, run, item, deadline)

    async def _supervise(
        self,
        ctx: JobContext,
        task: Task,
        run: asyncio.Future[Any],
        item: Optional[_Item],
        deadline: float,
    ) -> Optional[Outcome]:
        """Waits for the handler while heartbeating; stops it on timeout, cancellation, lost
        lease or forced shutdown; returns what to report."""
        loop = asyncio.get_running_loop()
        interval = self._heartbeat_interval
        next_heartbeat = loop.time() + interval
        heartbeat: Optional[asyncio.Task[Any]] = None
        # Set once a cancel was requested: the handler has until then to stop by itself.
        cancel_deadline: Optional[float] = None
        try:
            while True:
                waits: Set[asyncio.Future[Any]] = {run, self._forced}
                wake = deadline
                if heartbeat is not None:
                    waits.add(heartbeat)
                else:
                    wake = min(wake, next_heartbeat)
                if cancel_deadline is None:
                    waits.add(ctx.stop_requested)
                else:
                    wake = min(wake, cancel_deadline)
                timeout = wake - loop.time()
                if timeout > 0:
                    await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)

                if run.done():
                    return _after_stop(ctx.cancel_reason, _outcome(task, run))
                if self._forced.done():
                    ctx._cancel(CancelReason.SHUTDOWN)
                    self._abandon(run, item)
                    return RELEASED
                now = loop.time()
                if now >= deadline:
                    ctx._cancel(CancelReason.TIMEOUT)
                    self._abandon(run, item)
                    return _failure(
                        f"the attempt ran past its timeout of {ctx.timeout_ms} ms", KIND_TIMEOUT
                    )
                if cancel_deadline is None and ctx.stop_requested.done():
                    if ctx.cancel_reason is CancelReason.LEASE_LOST:
                        log.warning("job %s: lease lost while running; stopping it", ctx.id)
                        self._abandon(run, item)
                        return None
                    cancel_deadline = now + self.cancel_grace
                    if isinstance(run, asyncio.Task):
                        run.cancel()  # asyncio's own way of asking a coroutine to stop
                    continue
                if cancel_deadline is not None and now >= cancel_deadline:
                    log.info("job %s: the handler did not stop after the cancel", ctx.id)
                    self._abandon(run, item)
                    return CANCELLED
                if heartbeat is not None and heartbeat.done():
                    next_heartbeat = now + interval
                    try:
                        if heartbeat.result().cancel_requested:
                            ctx._cancel(CancelReason.CANCEL_REQUESTED)
                    except LeaseLostError:
                        ctx._cancel(CancelReason.LEASE_LOST)
                    except HopperError as e:
                        log.warning("job %s: heartbeat failed: %s", ctx.id, e)
                        next_heartbeat = now + min(HEARTBEAT_RETRY, interval)
                    heartbeat = None
                elif heartbeat is None and now >= next_heartbeat:
                    heartbeat = loop.create_task(
                        self._client.heartbeat(ctx.id, ctx.lease_token, lease_ms=self.lease_ms)
                    )
                    # Its error is read below, unless the handler ends first.
                    heartbeat.add_done_callback(_consume)
        finally:
            if heartbeat is not None and not heartbeat.done():
                heartbeat.cancel()

    def _abandon(self, run: asyncio.Future[Any], item: Optional[_Item]) -> None:
        """Stops waiting for a handler: a coroutine is cancelled, a thread left to finish."""
        if isinstance(run, asyncio.Task):
            run.cancel()
            run.add_done_callback(_consume)
        elif item is not None and self._threads is not None:
            self._threads.abandon(item)

    def _report(self, job_id: str, token: str, outcome: Optional[Outcome]) -> None:
        if outcome is None:
            self.stats.undelivered += 1
            return
        try:
            fragment = wire.dumps({"id": job_id, "lease_token": token, **outcome})
        except (TypeError, ValueError) as e:
            # Retrying would produce the same result again.
            outcome = _failure(
                f"the result cannot be encoded as JSON: {e}", "invalid_result", retryable=False
            )
            fragment = wire.dumps({"id": job_id, "lease_token": token, **outcome})
        self._acker.push(fragment, outcome["outcome"])


def _outcome(task: Task, run: asyncio.Future[Any]) -> Outcome:
    """The outcome of a handler that returned or raised."""
    if run.cancelled():
        return _failure("the handler was cancelled", "cancelled")
    exc = run.exception()
    if exc is None:
        return {"outcome": "completed", "result": run.result()}
    if isinstance(exc, Retry):
        out = _failure(exc.message, KIND_RETRY)
        if exc.in_ms is not None:
            out["retry_in_ms"] = exc.in_ms
        return out
    if isinstance(exc, Fail):
        return _failure(exc.message or "failed", exc.kind, retryable=exc.retryable)
    retryable = not task.retry_for or isinstance(exc, task.retry_for)
    return _failure(_describe(exc), type(exc).__name__, retryable=retryable)


def _after_stop(reason: Optional[CancelReason], outcome: Outcome) -> Optional[Outcome]:
    """What to report for the handler's own outcome, given why (if at all) it was asked to
    stop. After a cancel request anything but a completion is `cancelled` (the server would
    end the job so anyway, and saying so keeps the attempt's record honest)."""
    if reason is CancelReason.LEASE_LOST:
        return None
    if outcome["outcome"] == "completed":
        return outcome
    if reason is CancelReason.CANCEL_REQUESTED:
        return CANCELLED
    if reason is CancelReason.SHUTDOWN:
        return RELEASED
    return outcome


def _failure(message: str, kind: str, *, retryable: bool = True) -> Outcome:
    kind = (kind or "error")[:MAX_ERROR_KIND]
    return {
        "outcome": "failed",
        "error": {"message": message, "kind": kind, "retryable": retryable},
    }


def _describe(exc: BaseException) -> str:
    """`Type: message`, then the traceback: what the dead-letter queue needs to say why."""
    text = str(exc)
    head = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    tb = "".join(traceback.format_tb(exc.__traceback__)).rstrip()
    if len(tb) > MAX_TRACEBACK:
        tb = "..." + tb[-MAX_TRACEBACK:]
    return f"{head}\n{tb}" if tb else head


def _consume(task: asyncio.Future[Any]) -> None:
    """Retrieves a task's exception nobody may wait for, so asyncio does not log it as
    unhandled."""
    if not task.cancelled():
        task.exception()


class _Slots:
    """`n` run slots, handed out in arrival order; once closed, every waiter is turned away."""

    def __init__(self, n: int) -> None:
        self._free = n
        self._waiters: Deque[asyncio.Future[bool]] = deque()
        self._closed = False

    def acquire(self) -> asyncio.Future[bool]:
        """Resolves True when a slot is the caller's, False when closed; cancel it to give up."""
        slot: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._closed:
            slot.set_result(False)
        elif self._free > 0 and not self._waiters:
            self._free -= 1
            slot.set_result(True)
        else:
            self._waiters.append(slot)
        return slot

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)
                return
        self._free += 1

    def close(self) -> None:
        self._closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(False)


class _Item:
    """One plain-function run handed to the threads."""

    __slots__ = ("fn", "args", "kwargs", "future", "lock", "started", "finished", "abandoned")

    def __init__(self, fn: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any], future: Any) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.future = future
        self.lock = threading.Lock()
        self.started = False
        self.finished = False
        self.abandoned = False


class _Threads:
    """Threads for plain-function handlers. A thread whose handler was abandoned stays with
    it until it returns, and a new thread takes its place, so the worker keeps its
    concurrency however many handlers ignore their stop signal."""

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self._loop = loop
        self._size = size
        self._queue: queue.SimpleQueue[Optional[_Item]] = queue.SimpleQueue()
        self._spawned = 0
        # Finished runs wait here for the loop; one wake-up of the loop takes them all.
        self._done: List[Tuple[asyncio.Future[Any], Any, Optional[BaseException]]] = []
        self._done_lock = threading.Lock()
        for _ in range(size):
            self._spawn()

    def _spawn(self) -> None:
        self._spawned += 1
        # Daemon: an abandoned handler must not keep the process alive after shutdown.
        threading.Thread(target=self._work, name=f"hopper-{self._spawned}", daemon=True).start()

    def submit(
        self, fn: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
    ) -> Tuple[asyncio.Future[Any], _Item]:
        item = _Item(fn, args, kwargs, self._loop.create_future())
        self._queue.put(item)
        return item.future, item

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            with item.lock:
                if item.abandoned:
                    continue
                item.started = True
            result: Any = None
            error: Optional[BaseException] = None
            try:
                result = item.fn(*item.args, **item.kwargs)
            except BaseException as e:  # reported as the job's failure, whatever it is
                error = e
            with item.lock:
                if item.abandoned:
                    return  # a new thread has taken this one's place
                item.finished = True
            with self._done_lock:
                self._done.append((item.future, result, error))
                wake = len(self._done) == 1
            if wake:
                try:
                    self._loop.call_soon_threadsafe(self._settle)
                except RuntimeError:
                    return  # the loop is closed: the worker has stopped

    def _settle(self) -> None:
        with self._done_lock:
            done, self._done = self._done, []
        for future, result, error in done:
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

    def abandon(self, item: _Item) -> None:
        with item.lock:
            if item.finished:
                return
            item.abandoned = True
            if item.started:
                self._spawn()

    def close(self) -> None:
        for _ in range(self._size):
            self._queue.put(None)


class _Acker:
    """Collects outcomes and sends them in batches: a batch goes out when `batch_size` are
    pending or `interval` after the first arrived; one batch is in flight at a time, so the
    next one grows while the server works. Outcomes are idempotent per lease token, so a batch
    whose answer was lost is simply sent again."""

    def __init__(
        self, client: AsyncClient, stats: WorkerStats, batch_size: int, interval: float
    ) -> None:
        self._client = client
        self._stats = stats
        self._batch_size = batch_size
        self._interval = interval
        self._pending: List[Tuple[bytes, str]] = []
        self._first_at = 0.0
        self._wake = asyncio.Event()
        self._closed = False

    def push(self, fragment: bytes, outcome: str) -> None:
        if not self._pending:
            self._first_at = asyncio.get_running_loop().time()
        self._pending.append((fragment, outcome))
        self._wake.set()

    def close(self) -> None:
        """No more outcomes will come: deliver what is pending and end."""
        self._closed = True
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            if not self._pending:
                if self._closed:
                    return
                self._wake.clear()
                continue
            if len(self._pending) < self._batch_size and not self._closed:
                delay = self._first_at + self._interval - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            batch = self._pending[: self._batch_size]
            del self._pending[: self._batch_size]
            if not self._pending and not self._closed:
                self._wake.clear()
            await self._send(batch)

    async def _send(self, batch: List[Tuple[bytes, str]]) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        delay = ACK_RETRY[0]
        while True:
            try:
                results = await self._client.acks_encoded([f for f, _ in batch])
                break
            except HopperError as e:
                if not e.retryable:
                    # The whole batch refused: this SDK built a request the server cannot take.
                    # The leases expire and the jobs run again.
                    log.error("the server refused %d outcomes: %s", len(batch), e)
                    self._stats.undelivered += len(batch)
                    return
                if self._closed and loop.time() - started > SHUTDOWN_DELIVERY_LIMIT:
                    log.error("giving up on delivering %d outcomes at shutdown: %s", len(batch), e)
                    self._stats.undelivered += len(batch)
                    return
                log.warning("sending %d outcomes failed, retrying: %s", len(batch), e)
                await asyncio.sleep(max(delay, e.retry_after or 0.0))
                delay = min(delay * 2, ACK_RETRY[1])
        for (_, outcome), result in zip(batch, results):
            if result.ok:
                setattr(self._stats, outcome, getattr(self._stats, outcome) + 1)
            elif result.code == LeaseLostError.CODE:
                # The server already ended this lease (expiry or timeout) and may have given
                # the job to another worker: this outcome must not count, and does not.
                self._stats.undelivered += 1
                log.warning("job %s: lease lost before its outcome was recorded", result.id)
            else:
                self._stats.undelivered += 1
                log.error(
                    "job %s: the server refused outcome %s: %s %s",
                    result.id,
                    outcome,
                    result.code,
                    result.message,
                )
