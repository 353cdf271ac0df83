"""Hopper's Python SDK: a client for the v1 HTTP API, Celery-style tasks, and a worker.

from hopper import Hopper

app = Hopper("http://127.0.0.1:7480")

@app.task(queue="emails", max_attempts=5)
def send_email(to, subject):
    ...

send_email.delay("ada@example.com", subject="hi")   # producer: enqueue
# worker:  hopper-py worker myapp.tasks --concurrency 20
"""

from .client import DEFAULT_RECONNECT, DEFAULT_URL, AsyncClient, Client, RetryPolicy
from .context import CancelReason, JobContext
from .errors import (
    ApiError,
    HopperError,
    IdempotencyConflictError,
    InvalidArgumentError,
    InvalidStateError,
    LeaseLostError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitedError,
    TooLargeError,
    TransportError,
    UnauthenticatedError,
    UnavailableError,
)
from .events import AsyncEventStream, EventStream, StreamItem
from .models import (
    STATES,
    TERMINAL_STATES,
    AckResult,
    Attempt,
    Backfill,
    BackfillProgress,
    BackfillStatus,
    Backoff,
    Gap,
    HeartbeatAnswer,
    Job,
    JobError,
    JobEvent,
    JobPage,
    Misfire,
    QueueInfo,
    Schedule,
    ScheduleRun,
    StepInfo,
    StreamEvent,
    WorkerInfo,
    Workflow,
    WorkflowDefinition,
    WorkflowPage,
    WorkflowRun,
)
from .outcome import Fail, Retry
from .tasks import Hopper, Task
from .worker import Worker, WorkerStats

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_RECONNECT",
    "DEFAULT_URL",
    "STATES",
    "TERMINAL_STATES",
    "AckResult",
    "ApiError",
    "AsyncClient",
    "AsyncEventStream",
    "Attempt",
    "Backfill",
    "BackfillProgress",
    "BackfillStatus",
    "Backoff",
    "CancelReason",
    "Client",
    "EventStream",
    "Fail",
    "Gap",
    "HeartbeatAnswer",
    "Hopper",
    "HopperError",
    "IdempotencyConflictError",
    "InvalidArgumentError",
    "InvalidStateError",
    "Job",
    "JobContext",
    "JobError",
    "JobEvent",
    "JobPage",
    "LeaseLostError",
    "Misfire",
    "NotFoundError",
    "PermissionDeniedError",
    "ProtocolError",
    "QueueInfo",
    "RateLimitedError",
    "Retry",
    "RetryPolicy",
    "Schedule",
    "ScheduleRun",
    "StepInfo",
    "StreamEvent",
    "StreamItem",
    "Task",
    "TooLargeError",
    "TransportError",
    "UnauthenticatedError",
    "UnavailableError",
    "Worker",
    "WorkerInfo",
    "WorkerStats",
    "Workflow",
    "WorkflowDefinition",
    "WorkflowPage",
    "WorkflowRun",
]
