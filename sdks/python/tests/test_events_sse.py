"""The event stream's client side against a scripted toy server, for what the Hopper server
does not do on demand: messages split across reads, CR and CRLF line ends, multi-line data,
comments and unknown event types, a repeated event after a resume, a `retry:` time, a 503
between two connections, a connection gone silent, and an answer not worth retrying."""

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Optional, Tuple

import pytest

from conftest import atake, take
from hopper import (
    AsyncClient,
    Client,
    Gap,
    InvalidArgumentError,
    ProtocolError,
    RetryPolicy,
    StreamEvent,
)
from hopper.events import SSEDecoder

JOB = "01a22aef-4c1f-7aa4-9d21-8f0a3d1c0b5e"

# An answer of the toy server: a status and the body's pieces (each one chunk, written apart);
# `None` as the last piece hangs up without ending the body; a float piece sleeps that long.
Script = Tuple[int, list]


def event(seq: int, to: str = "available") -> str:
    return json.dumps(
        {
            "seq": seq,
            "type": to,
            "job_id": JOB,
            "namespace": "default",
            "queue": "q",
            "kind": "k",
            "from": None,
            "to": to,
            "at": "2026-11-30T10:00:00.123Z",
            "actor": "api",
            "reason": "enqueue",
        }
    )


class Toy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    scripts: List[Script] = []
    requests: List[Tuple[str, Optional[str]]] = []

    def do_GET(self):
        Toy.requests.append((self.path, self.headers.get("last-event-id")))
        status, pieces = Toy.scripts.pop(0)
        self.send_response(status)
        if status == 200:
            self.send_header("content-type", "text/event-stream")
        else:
            self.send_header("content-type", "application/json")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        self.close_connection = True
        try:
            for piece in pieces:
                if piece is None:
                    return  # hang up in the middle of the body
                if isinstance(piece, float):
                    time.sleep(piece)
                    continue
                data = piece.encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client hung up first

    def log_message(self, *args):
        pass


@pytest.fixture
def toy():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Toy)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Toy.requests = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


UNAVAILABLE = json.dumps({"error": {"code": "unavailable", "message": "restarting"}})
BAD_RESUME = json.dumps(
    {"error": {"code": "invalid_argument", "message": "no", "field": "Last-Event-ID"}}
)

# Three connections, then an answer that retrying cannot change.
SCRIPTS: List[Script] = [
    (
        200,
        [
            "retry: 30\n\n",
            ": keep-alive\n\n",
            "id: 1\nda",  # a message split across two reads
            f"ta: {event(1)}\n\n",
            "event: something-new\ndata: {}\n\n",  # a newer server's: skipped
            None,
        ],
    ),
    (503, [UNAVAILABLE]),
    (
        200,
        [
            f"id: 1\r\ndata: {event(1)}\r\n\r\n",  # repeated after the resume: dropped
            'event: gap\r\ndata: {"after": 5}\r\n\r',  # the CRLF split across two reads
            "\n",
            # CR line ends, and the JSON on two data lines.
            "id: 6\rdata: {},\rdata: {}\r\r".format(*event(6, "running").split(", ", 1)),
        ],
    ),
    (400, [BAD_RESUME]),
]

EXPECTED = [("event", 1), ("gap", 5), ("event", 6)]


def summary(items):
    return [("event", i.seq) if isinstance(i, StreamEvent) else ("gap", i.after) for i in items]


# Were the server's `retry:` ignored, each reconnect would wait this policy's 5 s.
SLOW = RetryPolicy(max_attempts=5, initial_delay=5.0, max_delay=10.0)


def check_requests(filters: str):
    paths = [p for p, _ in Toy.requests]
    assert paths == [f"/v1/events?{filters}"] * 4
    assert [h for _, h in Toy.requests] == [None, "1", "1", "6"]


def test_sync_stream_decodes_dedups_and_reconnects(toy):
    Toy.scripts = list(SCRIPTS)
    with Client(toy) as client:
        stream = client.events(queue=["a", "b"], type="running", reconnect=SLOW)
        started = time.monotonic()
        items = take(stream, 3)
        assert summary(items) == EXPECTED
        assert items[2].to_state == "running" and items[2].job_id == JOB
        with pytest.raises(InvalidArgumentError) as e:
            take(stream, 1)
        assert e.value.field == "Last-Event-ID"
        # Waits of 30 ms, then 60 ms after the 503, then 30 ms (the server's `retry:`): 0.12 s.
        assert 0.11 <= time.monotonic() - started < 3
        assert (stream.reconnects, stream.last_seq) == (1, 6)
        stream.close()
    check_requests("queue=a&queue=b&type=running")


def test_async_stream_decodes_dedups_and_reconnects(toy):
    Toy.scripts = list(SCRIPTS)

    async def main():
        async with AsyncClient(toy) as client:
            stream = client.events(kind="k", job_id=[JOB], reconnect=SLOW)
            started = time.monotonic()
            items = await atake(stream, 3)
            assert summary(items) == EXPECTED
            with pytest.raises(InvalidArgumentError):
                await atake(stream, 1)
            assert 0.11 <= time.monotonic() - started < 3
            assert (stream.reconnects, stream.last_seq) == (1, 6)
            await stream.aclose()

    asyncio.run(main())
    check_requests(f"kind=k&job_id={JOB}")


def test_a_silent_connection_is_replaced(toy):
    silent = (200, ["retry: 10\n\n", 3.0])
    Toy.scripts = [silent, (200, [f"id: 7\ndata: {event(7)}\n\n"])]
    with Client(toy) as client, client.events(idle_timeout=0.3, after=3) as stream:
        started = time.monotonic()
        [item] = take(stream, 1)
        assert item.seq == 7 and time.monotonic() - started < 2.5
        assert stream.reconnects == 1
    assert [h for _, h in Toy.requests] == ["3", "3"]

    Toy.scripts = [silent, (200, [f"id: 8\ndata: {event(8)}\n\n"])]

    async def main():
        async with AsyncClient(toy) as client:
            async with client.events(idle_timeout=0.3, after=7) as stream:
                [item] = await atake(stream, 1)
                assert (item.seq, stream.reconnects) == (8, 1)

    asyncio.run(main())


def test_an_answer_that_is_no_event_stream_is_a_protocol_error(toy):
    Toy.scripts = [(204, [])]
    with Client(toy) as client:
        with pytest.raises(ProtocolError):
            client.events()


def test_the_decoder_follows_the_standard():
    d = SSEDecoder()
    assert d.feed(b"data: a\n") == []  # not dispatched before the blank line
    [m] = d.feed(b"data:b\ndata\n\n")  # no space after the colon, a field without value
    assert (m.event, m.data, m.id) == ("message", "a\nb\n", None)
    assert d.feed(b"id: 4\n\n") == []  # no data: nothing dispatched, the id is kept
    assert d.last_id == "4"
    [m] = d.feed(b"event: gap\ndata: {}\nretry: x\n\n")
    assert (m.event, m.id, d.retry_ms) == ("gap", "4", None)
    d.feed(b"retry: 250\n\n: comment\n\n")
    assert d.retry_ms == 250
    d.feed(b"data: half")
    d.reset()  # a new connection: the half message is gone, the rest stays
    assert d.feed(b"\n\n") == [] and (d.last_id, d.retry_ms) == ("4", 250)
    [m] = d.feed("data: é\r\n\r\n".encode())
    assert m.data == "é"
    # A CR ends a line at once (a message ending in CR CR is complete when it arrives), and
    # an LF right after it, in the next read, is the rest of a CRLF, not an empty line.
    [m] = d.feed(b"data: z\r\r")
    assert m.data == "z"
    assert d.feed(b"data: x\r") == []
    [m] = d.feed(b"\ndata: y\n\n")
    assert m.data == "x\ny"
    assert Gap(3) == Gap(after=3) != Gap(4)
