"""HTTP/1.1 with keep-alive connection pools, on the standard library alone: `http.client` for
the blocking client, asyncio streams for the asyncio one.

The API needs little of HTTP (JSON bodies, a handful of headers, no redirects, no cookies), and
a worker makes several requests per batch of jobs, so the cost of each one matters: this is
about ten times cheaper per request than a general-purpose client, and the SDK installs with
no dependencies.

A pooled connection the server closed while idle is noticed when the next request on it gets
no answer at all; that request is sent once more on a fresh connection. Every call the SDK
retries this way is safe to repeat (enqueues carry a key, outcomes are idempotent per token).

Streaming answers (the event stream) get a connection of their own, outside the pool, read
piece by piece as the server writes them: `open_stream` of either transport.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import ssl
import threading
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple
from urllib.parse import urlencode, urlsplit

from .errors import TransportError

Params = Optional[Sequence[Tuple[str, str]]]


class Response(NamedTuple):
    status: int
    #: Header names in lower case.
    headers: Dict[str, str]
    body: bytes


class _Stale(Exception):
    """A reused connection gave no answer: the server had closed it."""


class _Target:
    """Where requests go: scheme, host, port, and a base path to prefix."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the server URL must be http(s)://host[:port][/path], not {url!r}")
        self.url = url
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.base = parts.path.rstrip("/")
        default_port = self.port == (443 if self.tls else 80)
        self.host_header = self.host if default_port else f"{self.host}:{self.port}"
        if ":" in self.host and not default_port:
            self.host_header = f"[{self.host}]:{self.port}"

    def path(self, path: str, params: Params) -> str:
        query = f"?{urlencode(params)}" if params else ""
        return f"{self.base}{path}{query}"

    def error(self, e: BaseException) -> TransportError:
        reason = str(e) or type(e).__name__
        return TransportError(f"cannot reach the Hopper server at {self.url}: {reason}")


class SyncTransport:
    """A thread-safe pool of `http.client` connections to one server."""

    def __init__(self, url: str, headers: Mapping[str, str], timeout: float) -> None:
        self._target = _Target(url)
        self._headers = dict(headers)
        self._timeout = timeout
        self._idle: List[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._ssl = ssl.create_default_context() if self._target.tls else None

    def request(
        self,
        method: str,
        path: str,
        body: Optional[bytes],
        params: Params,
        headers: Optional[Mapping[str, str]],
        timeout: Optional[float],
    ) -> Response:
        target = self._target.path(path, params)
        all_headers = {**self._headers, **(headers or {})}
        while True:
            conn, reused = self._get()
            try:
                conn.timeout = self._timeout if timeout is None else timeout
                if conn.sock is not None:
                    conn.sock.settimeout(conn.timeout)
                conn.request(method, target, body=body, headers=all_headers)
                resp = conn.getresponse()
                data = resp.read()
            except (ConnectionError, http.client.BadStatusLine) as e:
                conn.close()
                if reused and _no_answer(e):
                    continue
                raise self._target.error(e) from e
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                raise self._target.error(e) from e
            except BaseException:
                conn.close()
                raise
            if resp.will_close:
                conn.close()
            else:
                with self._lock:
                    self._idle.append(conn)
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)

    def open_stream(
        self, path: str, params: Params, headers: Mapping[str, str], timeout: float
    ) -> SyncStream:
        """A GET whose answer is read as it arrives, on a connection of its own; `timeout` is
        the longest wait for the answer's head and for each piece of its body."""
        t = self._target
        conn: http.client.HTTPConnection
        if t.tls:
            conn = http.client.HTTPSConnection(t.host, t.port, timeout=timeout, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(t.host, t.port, timeout=timeout)
        try:
            conn.connect()
            sock = conn.sock
            conn.request("GET", t.path(path, params), headers={**self._headers, **headers})
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise t.error(e) from e
        except BaseException:
            conn.close()
            raise
        return SyncStream(t, conn, sock, resp)

    def _get(self) -> Tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        t = self._target
        if t.tls:
            return http.client.HTTPSConnection(t.host, t.port, context=self._ssl), False
        return http.client.HTTPConnection(t.host, t.port), False

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class SyncStream:
    """A streaming answer on its own connection: `status`, `headers`, and the body piece by
    piece."""

    def __init__(
        self,
        target: _Target,
        conn: http.client.HTTPConnection,
        sock: Optional[socket.socket],
        resp: http.client.HTTPResponse,
    ) -> None:
        self._target = target
        self._conn = conn
        self._sock = sock
        self._resp = resp
        self.status = resp.status
        #: Header names in lower case.
        self.headers = {k.lower(): v for k, v in resp.getheaders()}

    def read(self) -> bytes:
        """What arrived next (at most one system call's worth); `b""` once the body ended.
        A broken connection or a read timeout is a `TransportError`."""
        try:
            return self._resp.read1(65536)
        except (OSError, http.client.HTTPException, ValueError) as e:
            raise self._target.error(e) from e

    def read_all(self) -> bytes:
        """The rest of the body (an error answer's)."""
        try:
            return self._resp.read()
        except (OSError, http.client.HTTPException, ValueError) as e:
            raise self._target.error(e) from e

    def interrupt(self) -> None:
        """Shuts the connection down without closing it: a `read` blocked in another thread
        returns (unlike closing, which must not race with that read)."""
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        """Closes the connection; not while another thread reads (`interrupt` that one)."""
        self.interrupt()
        self._resp.close()
        self._conn.close()


def _no_answer(e: BaseException) -> bool:
    """The server closed the connection before answering (not in the middle of an answer)."""
    return isinstance(e, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError))


_Conn = Tuple[asyncio.StreamReader, asyncio.StreamWriter]


class AsyncTransport:
    """A pool of asyncio stream connections to one server; use it from one event loop."""

    def __init__(
        self, url: str, headers: Mapping[str, str], timeout: float, max_connections: int
    ) -> None:
        self._target = _Target(url)
        self._head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._timeout = timeout
        self._max = max_connections
        self._idle: List[_Conn] = []
        # Made at the first request, inside the loop (Python 3.9 binds it at construction).
        self._limit: Optional[asyncio.Semaphore] = None
        self._ssl = ssl.create_default_context() if self._target.tls else None

    async def request(
        self,
        method: str,
        path: str,
        body: Optional[bytes],
        params: Params,
        headers: Optional[Mapping[str, str]],
        timeout: Optional[float],
    ) -> Response:
        if self._limit is None:
            self._limit = asyncio.Semaphore(self._max)
        target = self._target
        head = f"{method} {target.path(path, params)} HTTP/1.1\r\nhost: {target.host_header}\r\n"
        head += self._head
        for k, v in (headers or {}).items():
            head += f"{k}: {v}\r\n"
        if body is not None or method in ("POST", "PUT", "PATCH"):
            head += f"content-length: {len(body or b'')}\r\n"
        message = head.encode("latin-1") + b"\r\n" + (body or b"")
        try:
            async with self._limit:
                return await asyncio.wait_for(
                    self._exchange(message, method == "HEAD"),
                    self._timeout if timeout is None else timeout,
                )
        except asyncio.TimeoutError as e:
            raise self._target.error(TimeoutError("timed out")) from e
        except (
            OSError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
            _Stale,
        ) as e:
            raise self._target.error(e) from e

    async def _exchange(self, message: bytes, head_only: bool) -> Response:
        while True:
            conn, reused = await self._get()
            reader, writer = conn
            try:
                writer.write(message)
                await writer.drain()
                response, keep = await _read_response(reader, head_only)
            except BaseException as e:
                writer.close()
                if reused and isinstance(e, (ConnectionError, _Stale)):
                    continue
                raise
            if keep:
                self._idle.append(conn)
            else:
                writer.close()
            return response

    async def _get(self) -> Tuple[_Conn, bool]:
        while self._idle:
            reader, writer = self._idle.pop()
            if reader.at_eof() or writer.is_closing():
                writer.close()
                continue
            return (reader, writer), True
        t = self._target
        conn = await asyncio.open_connection(
            t.host, t.port, ssl=self._ssl, server_hostname=t.host if t.tls else None
        )
        return conn, False

    async def open_stream(
        self, path: str, params: Params, headers: Mapping[str, str], timeout: float
    ) -> AsyncStream:
        """A GET whose answer is read as it arrives, on a connection of its own (outside the
        pool and its limit); `timeout` is the longest wait for the answer's head."""
        target = self._target
        head = f"GET {target.path(path, params)} HTTP/1.1\r\nhost: {target.host_header}\r\n"
        head += self._head
        for k, v in headers.items():
            head += f"{k}: {v}\r\n"
        writer: Optional[asyncio.StreamWriter] = None
        try:
            reader, opened = await asyncio.wait_for(
                asyncio.open_connection(
                    target.host,
                    target.port,
                    ssl=self._ssl,
                    server_hostname=target.host if target.tls else None,
                ),
                timeout,
            )
            writer = opened
            opened.write(head.encode("latin-1") + b"\r\n")
            await opened.drain()
            _, status, answer_headers = _parse_head(
                await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            )
        except BaseException as e:
            if writer is not None:
                writer.close()
            if isinstance(e, asyncio.TimeoutError):
                raise target.error(TimeoutError("timed out")) from e
            if isinstance(
                e, (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)
            ):
                raise target.error(e) from e
            raise
        return AsyncStream(target, reader, opened, status, answer_headers)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()
        for _, writer in idle:
            try:
                await writer.wait_closed()
            except OSError:
                pass


class AsyncStream:
    """A streaming answer on its own connection: `status`, `headers`, and the body piece by
    piece (one chunk of a chunked body at a time)."""

    def __init__(
        self,
        target: _Target,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        status: int,
        headers: Dict[str, str],
    ) -> None:
        self._target = target
        self._reader = reader
        self._writer = writer
        self.status = status
        #: Header names in lower case.
        self.headers = headers
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self._left: Optional[int] = None
        if not self._chunked and "content-length" in headers:
            self._left = int(headers["content-length"])
        self._ended = False

    async def read(self) -> bytes:
        """What arrived next; `b""` once the body ended. A broken connection is a
        `TransportError`."""
        try:
            return await self._read()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            raise self._target.error(e) from e

    async def _read(self) -> bytes:
        reader = self._reader
        while not self._ended:
            if self._chunked:
                size = int((await reader.readline()).split(b";")[0].strip(), 16)
                if size == 0:
                    self._ended = True
                    break
                data = await reader.readexactly(size)
                await reader.readexactly(2)  # the CRLF after each chunk
                return data
            if self._left is not None:
                if self._left == 0:
                    self._ended = True
                    break
                data = await reader.read(min(65536, self._left))
                if not data:
                    raise asyncio.IncompleteReadError(b"", self._left)
                self._left -= len(data)
                return data
            data = await reader.read(65536)  # delimited by the server closing the connection
            if data:
                return data
            self._ended = True
        return b""

    async def read_all(self) -> bytes:
        """The rest of the body (an error answer's)."""
        parts: List[bytes] = []
        while True:
            data = await self.read()
            if not data:
                return b"".join(parts)
            parts.append(data)

    def close(self) -> None:
        """Closes the connection."""
        self._writer.close()


def _parse_head(head: bytes) -> Tuple[str, int, Dict[str, str]]:
    """The HTTP version, status and headers (names in lower case) of an answer's head."""
    lines = head.decode("latin-1").split("\r\n")
    version, status_text = lines[0].split(" ", 2)[:2]
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return version, int(status_text), headers


async def _read_response(reader: asyncio.StreamReader, head_only: bool) -> Tuple[Response, bool]:
    """Reads one answer; says whether the connection may carry another request."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            raise _Stale("the connection was closed") from None
        raise
    version, status, headers = _parse_head(head)
    keep = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
    if head_only or status in (204, 304) or 100 <= status < 200:
        body = b""
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        body = await reader.read()  # delimited by the server closing the connection
        keep = False
    return Response(status, headers, body), keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: List[bytes] = []
    while True:
        size = int((await reader.readline()).split(b";")[0].strip(), 16)
        if size == 0:
            # Trailers, if any, end with an empty line.
            while (await reader.readline()).strip():
                pass
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)  # the CRLF after each chunk
