"""Celery-style tasks: `Hopper` is the app, `@app.task` turns a function into a `Task` that
producers enqueue with `.delay(...)` / `.apply_async(...)` and that a worker importing the same
module runs.

    from hopper import Hopper

    app = Hopper()                                   # HOPPER_URL, else http://127.0.0.1:7480

    @app.task(queue="emails", max_attempts=5)
    def send_email(to, subject="hello"):
        ...

    send_email.delay("ada@example.com", subject="hi")    # enqueues; returns the Job

A task's kind (the job's `kind`) is the function's name unless `name=` says otherwise, so jobs
enqueued by any client (`hopper enqueue send_email --args '{"to": ...}'`) run it too. The
call's arguments travel as one JSON object of parameter names to values, `{"to":
"ada@example.com", "subject": "hi"}`, the shape every Hopper client speaks; a worker calls the
function with the object's keys as keyword arguments (a JSON array as positional arguments).
"""

from __future__ import annotations

import inspect
import threading
from datetime import datetime
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    TYPE_CHECKING,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    Union,
    overload,
)

from .client import AsyncClient, Client, default_url
from .models import Backoff, Job

if TYPE_CHECKING:
    from .worker import Worker

__all__ = ["Hopper", "Task"]

# Celery options that have no counterpart to set, and what to do instead: a migrating user
# gets a pointer rather than a bare "unexpected keyword".
_CELERY_HINTS = {
    "acks_late": "Hopper always acknowledges after the run (leases play the visibility timeout)",
    "max_retries": "use max_attempts (= max_retries + 1)",
    "autoretry_for": "use retry_for; every exception retries by default",
    "default_retry_delay": "use backoff=Backoff.fixed(delay_ms)",
    "retry_backoff": "use backoff=Backoff.exponential(base_ms, cap_ms, jitter)",
    "time_limit": "use timeout_ms",
    "soft_time_limit": "use timeout_ms; handlers learn it through ctx.is_cancelled()",
    "serializer": "arguments and results are always JSON",
}

# Job options a task may preset; a call's own options win.
_TASK_OPTIONS = ("priority", "max_attempts", "backoff", "timeout_ms", "tags", "meta")


class Task:
    """A function registered as the handler of one job kind; calling it runs it here."""

    def __init__(
        self,
        app: Hopper,
        fn: Callable[..., Any],
        name: str,
        queue: Optional[str],
        bind: bool,
        retry_for: Tuple[Type[BaseException], ...],
        options: Dict[str, Any],
    ) -> None:
        self.app = app
        self.fn = fn
        self.name = name
        self.queue = queue
        self.bind = bind
        self.retry_for = retry_for
        self.options = options
        self.is_async = inspect.iscoroutinefunction(fn)
        sig = inspect.signature(fn)
        params = list(sig.parameters.values())
        if bind:
            if not params:
                raise TypeError(f"task {name!r} has bind=True but takes no context argument")
            params = params[1:]
        # The signature the call's own arguments bind to (the context excluded).
        self.signature = sig.replace(parameters=params)
        self._positional_only = any(p.kind in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL) for p in params)
        # For checking a job's args object against the signature without `bind` (a worker
        # does it for every job).
        named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        self._names = frozenset(p.name for p in named)
        self._required = frozenset(p.name for p in named if p.default is p.empty)
        self._any_keyword = any(p.kind is p.VAR_KEYWORD for p in params)
        self._takes_objects = not any(p.kind is p.POSITIONAL_ONLY for p in params)
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", name)
        self.__wrapped__ = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Runs the function here and now, like calling it undecorated."""
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self.queue or 'default'}>"

    # ---- producing -----------------------------------------------------------------------

    def encode_args(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        """The job's JSON `args` for a call: checked against the function's signature now, so
        a wrong call fails in the producer, not later in a worker."""
        bound = self.signature.bind(*args, **kwargs)
        if self._positional_only:
            if kwargs:
                raise TypeError(
                    f"task {self.name!r} has positional-only or *args parameters: "
                    "call it with positional arguments only"
                )
            return list(args)
        out: Dict[str, Any] = {}
        for name, value in bound.arguments.items():
            if self.signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                out.update(value)
            else:
                out[name] = value
        return out

    def decode_args(self, args: Any) -> Tuple[Tuple[Any, ...], Dict[str, Any]]:
        """The positional and keyword arguments a job's `args` stand for; raises `TypeError`
        when they do not fit the function."""
        if isinstance(args, dict) and self._takes_objects:
            if not self._required.issubset(args) or not (
                self._any_keyword or self._names.issuperset(args)
            ):
                self.signature.bind(**args)  # raises the TypeError that says what is wrong
            return (), args
        if args is None:
            pos: Tuple[Any, ...] = ()
            kw: Dict[str, Any] = {}
        elif isinstance(args, dict):
            pos, kw = (), args
        elif isinstance(args, list):
            pos, kw = tuple(args), {}
        else:
            pos, kw = (args,), {}
        self.signature.bind(*pos, **kw)
        return pos, kw

    def spec(
        self,
        args: Optional[Sequence[Any]] = None,
        kwargs: Optional[Mapping[str, Any]] = None,
        *,
        countdown: Optional[float] = None,
        eta: Optional[datetime] = None,
        **options: Any,
    ) -> Dict[str, Any]:
        """The keyword arguments of `Client.enqueue` for this call: one item of
        `client.enqueue_batch([...])`. Takes `apply_async`'s arguments."""
        if countdown is not None and eta is not None:
            raise TypeError("give countdown or eta, not both")
        if countdown is not None:
            if countdown < 0:
                raise ValueError("countdown must be >= 0")
            options["delay_ms"] = int(countdown * 1000)
        if eta is not None:
            options["run_at"] = eta
        merged = dict(self.options)
        if self.queue is not None:
            merged["queue"] = self.queue
        merged.update(options)
        merged["kind"] = self.name
        merged["args"] = self.encode_args(args or (), kwargs or {})
        return merged

    def apply_async(
        self,
        args: Optional[Sequence[Any]] = None,
        kwargs: Optional[Mapping[str, Any]] = None,
        *,
        countdown: Optional[float] = None,
        eta: Optional[datetime] = None,
        **options: Any,
    ) -> Job:
        """Enqueues a run of the task and returns the job.

        `countdown` (seconds) or `eta` (an aware datetime) delay it; every option of
        `Client.enqueue` may follow (`queue`, `priority`, `max_attempts`, `backoff`,
        `timeout_ms`, `idempotency_key`, `tags`, `meta`, `traceparent`, `run_at`, `delay_ms`,
        `concurrency_key`, `fairness_key`, `estimated_ms`).
        """
        spec = self.spec(args, kwargs, countdown=countdown, eta=eta, **options)
        return self.app.client.enqueue(**spec)

    def delay(self, *args: Any, **kwargs: Any) -> Job:
        """Enqueues a run with these arguments and the task's options: `apply_async(args,
        kwargs)`."""
        return self.apply_async(args, kwargs)

    async def aapply_async(
        self,
        args: Optional[Sequence[Any]] = None,
        kwargs: Optional[Mapping[str, Any]] = None,
        *,
        countdown: Optional[float] = None,
        eta: Optional[datetime] = None,
        **options: Any,
    ) -> Job:
        """`apply_async` through the app's `AsyncClient`, for asyncio producers."""
        spec = self.spec(args, kwargs, countdown=countdown, eta=eta, **options)
        return await self.app.aclient.enqueue(**spec)

    async def adelay(self, *args: Any, **kwargs: Any) -> Job:
        """`delay` through the app's `AsyncClient`."""
        return await self.aapply_async(args, kwargs)


class Hopper:
    """The app: where tasks are registered and how producers reach the server.

    `url` defaults to `HOPPER_URL`, else `http://127.0.0.1:7480`; `api_key` (default
    `HOPPER_API_KEY`) is sent as a bearer token once the server has keys; `namespace` (default
    `HOPPER_NAMESPACE`, else the key's own) is where tasks are enqueued and leased.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        *,
        api_key: Optional[str] = None,
        namespace: Optional[str] = None,
    ) -> None:
        self.url = (url or default_url()).rstrip("/")
        self.api_key = api_key
        self.namespace = namespace
        #: Registered tasks by kind.
        self.tasks: Dict[str, Task] = {}
        self._client: Optional[Client] = None
        self._aclient: Optional[AsyncClient] = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Hopper({self.url!r}, tasks={sorted(self.tasks)})"

    @property
    def client(self) -> Client:
        """The app's blocking client, made at first use and shared by every task."""
        with self._lock:
            if self._client is None:
                self._client = Client(self.url, api_key=self.api_key, namespace=self.namespace)
            return self._client

    @property
    def aclient(self) -> AsyncClient:
        """The app's asyncio client, made at first use; use it from one event loop."""
        if self._aclient is None:
            self._aclient = AsyncClient(self.url, api_key=self.api_key, namespace=self.namespace)
        return self._aclient

    def close(self) -> None:
        """Closes the blocking client's connections (`aclose` closes the asyncio one's)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        if self._aclient is not None:
            await self._aclient.aclose()
            self._aclient = None

    @overload
    def task(self, fn: Callable[..., Any]) -> Task: ...

    @overload
    def task(
        self,
        fn: None = None,
        *,
        name: Optional[str] = None,
        queue: Optional[str] = None,
        bind: bool = False,
        retry_for: Iterable[Type[BaseException]] = (),
        priority: Optional[int] = None,
        max_attempts: Optional[int] = None,
        backoff: Union[Backoff, Mapping[str, Any], None] = None,
        timeout_ms: Optional[int] = None,
        tags: Optional[Iterable[str]] = None,
        meta: Optional[Mapping[str, Any]] = None,
    ) -> Callable[[Callable[..., Any]], Task]: ...

    def task(
        self, fn: Optional[Callable[..., Any]] = None, **options: Any
    ) -> Union[Task, Callable[[Callable[..., Any]], Task]]:
        """Registers a function (plain or `async def`) as a task; with or without arguments.

        - `name`: the job kind (default: the function's name);
        - `queue`: where its jobs go (default `default`);
        - `bind=True`: the function's first parameter receives the `JobContext`;
        - `retry_for=(ExcA, ExcB)`: only these exceptions retry, any other one fails the job
          for good (by default every exception retries until `max_attempts`);
        - `priority`, `max_attempts`, `backoff`, `timeout_ms`, `tags`, `meta`: job options
          every enqueue of the task gets unless the call overrides them.
        """
        if fn is not None:
            return self._register(fn, options)
        return lambda f: self._register(f, options)

    def _register(self, fn: Callable[..., Any], options: Dict[str, Any]) -> Task:
        opts = dict(options)
        name = opts.pop("name", None) or fn.__name__
        queue = opts.pop("queue", None)
        bind = bool(opts.pop("bind", False))
        retry_for = tuple(opts.pop("retry_for", ()))
        job_options = {k: opts.pop(k) for k in _TASK_OPTIONS if opts.get(k) is not None}
        for key in list(opts):
            if opts[key] is None:
                del opts[key]
        if opts:
            key = sorted(opts)[0]
            hint = _CELERY_HINTS.get(key)
            raise TypeError(
                f"@task got an unexpected option {key!r}" + (f": {hint}" if hint else "")
            )
        if name in self.tasks and self.tasks[name].fn is not fn:
            raise ValueError(f"two tasks are named {name!r}; give one of them name=...")
        task = Task(self, fn, name, queue, bind, retry_for, job_options)
        self.tasks[name] = task
        return task

    def worker(self, **options: Any) -> Worker:
        """A `Worker` running this app's tasks; see `Worker` for the options."""
        from .worker import Worker

        return Worker(self, **options)
