"""The standard-library HTTP transports against a toy server that does what the Hopper server
happens not to: chunked bodies, and closing a kept-alive connection without saying so."""

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hopper import TransportError
from hopper._http import AsyncTransport, SyncTransport


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections = set()

    def do_GET(self):
        Handler.connections.add(self.client_address)
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for chunk in (b'{"path": ', f'"{self.path}"}}'.encode()):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")
        # Hang up without `connection: close`, as an idle timeout would.
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def toy_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Handler.connections = set()
    yield f"http://127.0.0.1:{server.server_address[1]}/base"
    server.shutdown()
    server.server_close()


def test_sync_reads_chunks_and_survives_a_closed_connection(toy_url):
    t = SyncTransport(toy_url, {}, 5.0)
    for n in range(3):
        r = t.request("GET", "/v1/x", None, [("n", str(n))], None, None)
        assert (r.status, r.body) == (200, b'{"path": "/base/v1/x?n=%d"}' % n)
    assert len(Handler.connections) == 3  # each closed one was replaced
    t.close()


def test_async_reads_chunks_and_survives_a_closed_connection(toy_url):
    async def main():
        t = AsyncTransport(toy_url, {}, 5.0, 10)
        bodies = []
        for n in range(3):
            r = await t.request("GET", "/v1/x", None, [("n", str(n))], None, None)
            bodies.append(r.body)
            await asyncio.sleep(0.05)  # the server's close arrives while the connection idles
        await t.aclose()
        return bodies

    assert asyncio.run(main()) == [b'{"path": "/base/v1/x?n=%d"}' % n for n in range(3)]


def test_refused_connections_are_transport_errors(toy_url):
    url = toy_url.replace("/base", "").rsplit(":", 1)[0] + ":1"
    with pytest.raises(TransportError):
        SyncTransport(url, {}, 5.0).request("GET", "/", None, None, None, None)

    async def main():
        await AsyncTransport(url, {}, 5.0, 10).request("GET", "/", None, None, None, None)

    with pytest.raises(TransportError):
        asyncio.run(main())
