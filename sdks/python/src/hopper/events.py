"""The live event stream (`GET /v1/events`, Server-Sent Events): `EventStream` to iterate,
`AsyncEventStream` to iterate with `async for`. Get one from `Client.events(...)` or
`AsyncClient.events(...)`.

    for item in client.events(queue="emails", type=["completed", "dead"]):
        if isinstance(item, Gap):
            refresh_everything()       # events after item.after may be missing
        else:
            print(item.seq, item.job_id, item.to_state)

A stream yields each `StreamEvent` once, in `seq` order. It remembers the newest seq it
received, and when the connection drops (a server restart, a proxy's idle timeout, nothing
heard for `idle_timeout` seconds) it connects again with `Last-Event-ID`, so the server sends
exactly the events in between; events it already had are dropped if the server repeats them.
Reconnecting waits the server's `retry:` time first, doubling at every failed try up to
`RetryPolicy.max_delay`, and gives up with the last error after `RetryPolicy.max_attempts`
tries in a row. An answer that retrying cannot change (a bad filter, a missing permission)
raises at once.

The first connection is not retried: its errors raise from `Client.events` (or the first
`async for` step, `connect()` or `async with`). A stream opened without `after` starts with the
next event, and has no resume point until it receives one: a drop before the first event may
lose the events of the outage. Pass `after=` (a seq) to resume from a known point.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import deque
from typing import (
    TYPE_CHECKING,
    Deque,
    Dict,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from ._http import AsyncStream, AsyncTransport, SyncStream, SyncTransport
from .errors import HopperError, ProtocolError, api_error
from .models import Gap, StreamEvent

if TYPE_CHECKING:
    from .client import RetryPolicy

__all__ = ["DEFAULT_IDLE_TIMEOUT", "AsyncEventStream", "EventStream", "StreamItem"]

#: What a stream yields.
StreamItem = Union[StreamEvent, Gap]

#: Seconds without a byte from the server after which the connection is taken for dead and
#: replaced (also the longest wait for a connection's answer): the server sends a keep-alive
#: comment every 15 s on an idle stream.
DEFAULT_IDLE_TIMEOUT = 45.0

#: The path of the stream.
_PATH = "/v1/events"


class Message(NamedTuple):
    """One dispatched Server-Sent Events message."""

    #: The `event:` field; `message` when none was given.
    event: str
    #: The `data:` lines, joined by newlines.
    data: str
    #: The last `id:` seen on the stream so far, if any.
    id: Optional[str]


_LINE_END = re.compile(rb"\r\n|\r|\n")


class SSEDecoder:
    """Turns the bytes of a `text/event-stream` body into messages, per the HTML standard's
    parsing rules: lines end with CRLF, LF or CR; `:` starts a comment; a blank line
    dispatches; `retry:` sets the reconnection time."""

    def __init__(self) -> None:
        self._buf = b""
        # The last line ended with a CR at the end of a read: an LF starting the next read is
        # the second half of that CRLF, not an empty line.
        self._skip_lf = False
        self._data: List[str] = []
        self._event = ""
        #: The last event id seen.
        self.last_id: Optional[str] = None
        #: The reconnection time the server asked for, in milliseconds.
        self.retry_ms: Optional[int] = None

    def reset(self) -> None:
        """Forgets a half-received message (a new connection starts afresh); the last id and
        the reconnection time stay."""
        self._buf = b""
        self._skip_lf = False
        self._data = []
        self._event = ""

    def feed(self, chunk: bytes) -> List[Message]:
        """The messages `chunk` completes."""
        if self._skip_lf and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        buf = self._buf + chunk
        out: List[Message] = []
        pos = 0
        for m in _LINE_END.finditer(buf):
            message = self._line(buf[pos : m.start()].decode("utf-8", "replace"))
            pos = m.end()
            if message is not None:
                out.append(message)
        self._buf = buf[pos:]
        if chunk:
            self._skip_lf = pos == len(buf) and buf.endswith(b"\r")
        return out

    def _line(self, line: str) -> Optional[Message]:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: keep-alive
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self.last_id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                self.retry_ms = int(value)
        return None

    def _dispatch(self) -> Optional[Message]:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return Message(event or "message", "\n".join(data), self.last_id)


def stream_params(
    queue: Union[str, Sequence[str], None],
    kind: Union[str, Sequence[str], None],
    job_id: Union[str, Sequence[str], None],
    type: Union[str, Sequence[str], None],
) -> List[Tuple[str, str]]:
    """The query of a subscription: each filter repeated once per value (any value matches)."""
    params: List[Tuple[str, str]] = []
    for name, value in (("queue", queue), ("kind", kind), ("job_id", job_id), ("type", type)):
        values = [value] if isinstance(value, str) else list(value or [])
        params.extend((name, str(v)) for v in values)
    return params


class _StreamState:
    """What both flavours share: the resume point, the decoder, decoded items not yet
    handed out, and the reconnect delays."""

    def __init__(
        self,
        params: List[Tuple[str, str]],
        after: Optional[int],
        reconnect: RetryPolicy,
        idle_timeout: float,
    ) -> None:
        if after is not None and after < 0:
            raise ValueError(f"after must be an event seq (0 or more), not {after}")
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be positive, not {idle_timeout}")
        self._params = params
        self._policy = reconnect
        self._idle_timeout = idle_timeout
        self._decoder = SSEDecoder()
        self._pending: Deque[StreamItem] = deque()
        # The newest seq received: where a new connection resumes.
        self._resume = after
        self._connected_once = False
        self._closed = False
        #: The seq of the newest event handed out (or the `after` of the newest gap, or the
        #: `after` the stream started from): pass it as `after=` to a new stream to go on
        #: from here.
        self.last_seq: Optional[int] = after
        #: How many times the stream connected again after a drop.
        self.reconnects = 0

    @property
    def closed(self) -> bool:
        """True once `close()` (or `aclose()`) was called."""
        return self._closed

    def _request_headers(self) -> Dict[str, str]:
        headers = {"accept": "text/event-stream", "cache-control": "no-cache"}
        if self._resume is not None:
            headers["last-event-id"] = str(self._resume)
        return headers

    def _check_answer(self, status: int, headers: Dict[str, str]) -> bool:
        """True for a stream; False for an error answer, whose body the caller reads and
        raises. Anything else is a `ProtocolError` (a proxy's page, say)."""
        if status >= 400:
            return False
        content_type = headers.get("content-type", "")
        if status != 200 or not content_type.startswith("text/event-stream"):
            raise ProtocolError(status, f"not an event stream (content-type {content_type!r})")
        return True

    def _take(self, chunk: bytes) -> None:
        """Decodes `chunk` into pending items, dropping events already received."""
        for m in self._decoder.feed(chunk):
            try:
                data = json.loads(m.data)
                if m.event == "gap":
                    after = int(data["after"])
                    self._resume = after if self._resume is None else max(self._resume, after)
                    self._pending.append(Gap(after))
                elif m.event == "message":
                    event = StreamEvent.from_json(data)
                    if self._resume is not None and event.seq <= self._resume:
                        continue  # already received (a server may repeat after a resume)
                    self._resume = event.seq
                    self._pending.append(event)
                # Other event types are a newer server's: not for this SDK.
            except (ValueError, KeyError, TypeError) as e:
                raise ProtocolError(200, f"unreadable event {m.data[:200]!r}: {e}") from None

    def _next_pending(self) -> StreamItem:
        item = self._pending.popleft()
        seq = item.seq if isinstance(item, StreamEvent) else item.after
        self.last_seq = seq if self.last_seq is None else max(self.last_seq, seq)
        return item

    def _delay(self, attempt: int, error: Optional[HopperError]) -> float:
        """The wait before reconnect try number `attempt` (1-based): the server's `retry:`
        time (else the policy's initial delay), doubling at each try, at most `max_delay`;
        a `Retry-After` of the last answer wins when it is longer."""
        if self._decoder.retry_ms is not None:
            base = self._decoder.retry_ms / 1000
        else:
            base = self._policy.initial_delay
        wait = min(self._policy.max_delay, base * 2.0 ** (attempt - 1))
        if error is not None and error.retry_after:
            wait = max(wait, error.retry_after)
        return wait

    def _gives_up(self, attempt: int, error: HopperError) -> bool:
        return not error.retryable or attempt >= self._policy.max_attempts


class EventStream(_StreamState, Iterator[StreamItem]):
    """The live event stream as a blocking iterator of `StreamEvent` and `Gap`; see the module
    docstring. One consumer iterates; `close()` may be called from any thread and ends the
    iteration (a blocked `next` returns at once). Also a context manager that closes it."""

    def __init__(
        self,
        transport: SyncTransport,
        params: List[Tuple[str, str]],
        *,
        after: Optional[int],
        reconnect: RetryPolicy,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        super().__init__(params, after, reconnect, idle_timeout)
        self._transport = transport
        self._conn: Optional[SyncStream] = None
        # Guards `_conn`, `_closed` and `_reading` (a thread is in `read`) against `close`.
        self._lock = threading.Lock()
        self._reading = False
        self._wake = threading.Event()

    def connect(self) -> None:
        """Opens the connection if none is open (`Client.events` already did). Once this
        returns the server has subscribed the stream: later events will come. Errors raise."""
        if self._closed:
            raise ValueError("the event stream is closed")
        if self._conn is not None:
            return
        stream = self._transport.open_stream(
            _PATH, self._params, self._request_headers(), self._idle_timeout
        )
        try:
            if not self._check_answer(stream.status, stream.headers):
                raise api_error(stream.status, stream.read_all(), stream.headers)
        except BaseException:
            stream.close()
            raise
        with self._lock:
            if self._closed:
                stream.close()
                return
            self._conn = stream
        self._decoder.reset()
        self._connected_once = True

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> StreamItem:
        while True:
            if self._closed:
                raise StopIteration
            if self._pending:
                return self._next_pending()
            with self._lock:
                if self._closed:
                    raise StopIteration
                conn = self._conn
                self._reading = conn is not None
            if conn is None:
                if not self._connected_once:
                    self.connect()
                elif not self._reconnect():
                    raise StopIteration  # closed while waiting
                continue
            try:
                chunk = conn.read()
            except HopperError:
                chunk = b""  # broken, or silent for too long: connect again
            finally:
                with self._lock:
                    self._reading = False
                    closed = self._closed
            if closed:
                conn.close()  # `close` only interrupted the read
                raise StopIteration
            if not chunk:
                self._drop(conn)
                continue
            self._take(chunk)

    def _drop(self, conn: SyncStream) -> None:
        with self._lock:
            if self._conn is conn:
                self._conn = None
        conn.close()

    def _reconnect(self) -> bool:
        """Connects again after a drop; False when closed meanwhile."""
        attempt, error = 1, None
        while True:
            if self._wake.wait(self._delay(attempt, error)) or self._closed:
                return False
            try:
                self.connect()
            except HopperError as e:
                if self._gives_up(attempt, e):
                    raise
                attempt, error = attempt + 1, e
                continue
            if self._closed:
                return False
            self.reconnects += 1
            return True

    def close(self) -> None:
        """Closes the connection and ends the iteration. Safe to call more than once, and from
        another thread than the one iterating."""
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            reading = self._reading
        self._wake.set()
        if conn is not None:
            if reading:
                conn.interrupt()  # the reading thread wakes up and closes it
            else:
                conn.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncEventStream(_StreamState):
    """The live event stream as an async iterator of `StreamEvent` and `Gap`; see the module
    docstring. Use it from one event loop. It connects at the first `async for` step, or at
    `async with` / `await connect()`: do that before acting when the events of the action
    matter (a stream without `after` starts with the events after it connected)."""

    def __init__(
        self,
        transport: AsyncTransport,
        params: List[Tuple[str, str]],
        *,
        after: Optional[int],
        reconnect: RetryPolicy,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        super().__init__(params, after, reconnect, idle_timeout)
        self._transport = transport
        self._conn: Optional[AsyncStream] = None
        # Made inside the loop (Python 3.9 binds it at construction).
        self._wake: Optional[asyncio.Event] = None

    async def connect(self) -> None:
        """Opens the connection if none is open. Once this returns the server has subscribed
        the stream: later events will come. Errors raise."""
        if self._closed:
            raise ValueError("the event stream is closed")
        if self._conn is not None:
            return
        if self._wake is None:
            self._wake = asyncio.Event()
        stream = await self._transport.open_stream(
            _PATH, self._params, self._request_headers(), self._idle_timeout
        )
        try:
            if not self._check_answer(stream.status, stream.headers):
                body = await asyncio.wait_for(stream.read_all(), self._idle_timeout)
                raise api_error(stream.status, body, stream.headers)
        except BaseException:
            stream.close()
            raise
        if self._closed:
            stream.close()
            return
        self._conn = stream
        self._decoder.reset()
        self._connected_once = True

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> StreamItem:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._pending:
                return self._next_pending()
            conn = self._conn
            if conn is None:
                if not self._connected_once:
                    await self.connect()
                elif not await self._reconnect():
                    raise StopAsyncIteration
                continue
            try:
                chunk = await asyncio.wait_for(conn.read(), self._idle_timeout)
            except (HopperError, asyncio.TimeoutError):
                chunk = b""  # broken, or silent for too long: connect again
            if not chunk:
                if self._conn is conn:
                    self._conn = None
                conn.close()
                continue
            self._take(chunk)

    async def _reconnect(self) -> bool:
        """Connects again after a drop; False when closed meanwhile."""
        attempt, error = 1, None
        while True:
            if await self._sleep(self._delay(attempt, error)) or self._closed:
                return False
            try:
                await self.connect()
            except HopperError as e:
                if self._gives_up(attempt, e):
                    raise
                attempt, error = attempt + 1, e
                continue
            if self._closed:
                return False
            self.reconnects += 1
            return True

    async def _sleep(self, seconds: float) -> bool:
        """Waits `seconds`; True when the stream was closed meanwhile."""
        if self._wake is None:
            self._wake = asyncio.Event()
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
            return True
        except asyncio.TimeoutError:
            return False

    async def aclose(self) -> None:
        """Closes the connection and ends the iteration. Safe to call more than once."""
        self._closed = True
        if self._wake is not None:
            self._wake.set()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def __aenter__(self) -> AsyncEventStream:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
