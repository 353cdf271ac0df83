"""Fixtures of the SDK's tests: the real `hopper` binary as a server on 127.0.0.1:0 with a
temporary data directory, Python workers (`hopper-py worker`) and exec workers (`hopper worker
--exec`) as real processes against it, and polling a job until it gets somewhere. `own_server`
is a server of one test's own, which it may stop and restart.

The binary is `HOPPER_BIN`, else `target/debug/hopper` of this repository. Every process a
test starts is stopped by its PID at teardown.
"""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, List, Optional
from urllib.parse import urlsplit

import pytest

import taskapp
from hopper import Client, Job

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parents[2]
HOPPER_BIN = os.environ.get("HOPPER_BIN") or str(REPO / "target" / "debug" / "hopper")
# The console script the SDK installs, next to the interpreter running the tests.
HOPPER_PY = str(Path(sys.executable).parent / "hopper-py")


class Process:
    """A child process whose stderr goes to a file, stopped by PID at teardown."""

    def __init__(self, argv: List[str], log: Path, env: dict, cwd: Path = TESTS) -> None:
        self.log = log
        with open(log, "wb") as err:
            self.proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def terminate(self, limit: float = 30.0) -> int:
        """SIGTERM, then the exit status within `limit` seconds."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"process did not exit within {limit} s after SIGTERM:\n{self.output()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Server:
    """A `hopper server` child; its URL is read from the line it prints at start."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: List[Process] = []
        self._start("127.0.0.1:0")

    def _start(self, bind: str) -> None:
        # The store is the embedded one in `workdir`, whatever the environment names.
        env = {k: v for k, v in os.environ.items() if k != "HOPPER_DATABASE_URL"}
        env["RUST_LOG"] = "warn"
        self.proc = subprocess.Popen(
            [
                HOPPER_BIN,
                "server",
                "--bind",
                bind,
                "--durability",
                "relaxed",
                "--data-dir",
                str(self.workdir / "data"),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        )
        line = self.proc.stdout.readline().decode().strip()
        prefix = "hopper listening on "
        if not line.startswith(prefix):
            self.proc.kill()
            raise RuntimeError(f"unexpected first line of hopper server: {line!r}")
        self.url = line[len(prefix) :]

    def env(self) -> dict:
        return {**os.environ, "HOPPER_URL": self.url, "RUST_LOG": "info"}

    def python_worker(self, *args: str) -> Process:
        """`hopper-py worker taskapp ARGS`, run from the tests' directory."""
        log = self.workdir / f"py-worker-{uuid.uuid4().hex[:8]}.log"
        p = Process([HOPPER_PY, "worker", "taskapp", *args], log, self.env())
        self.children.append(p)
        return p

    def exec_worker(self, *args: str) -> Process:
        """`hopper worker --exec ARGS`."""
        log = self.workdir / f"exec-worker-{uuid.uuid4().hex[:8]}.log"
        p = Process([HOPPER_BIN, "worker", "--exec", *args], log, self.env())
        self.children.append(p)
        return p

    def cli(self, *args: str) -> str:
        """`hopper ARGS` to completion; its stdout."""
        out = subprocess.run([HOPPER_BIN, *args], env=self.env(), capture_output=True, timeout=30)
        assert out.returncode == 0, out.stderr.decode()
        return out.stdout.decode()

    def stop(self) -> None:
        for child in self.children:
            child.kill()
        self.terminate()

    def terminate(self) -> None:
        """Stops the server alone (SIGTERM: it ends its event streams and exits)."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()

    def restart(self) -> None:
        """Stops the server and starts it again on the same address and data directory."""
        self.terminate()
        self._start(urlsplit(self.url).netloc)


def _need_binary() -> None:
    if not os.access(HOPPER_BIN, os.X_OK):
        pytest.exit(
            f"no hopper binary at {HOPPER_BIN}: run `cargo build -p hopper` or set HOPPER_BIN"
        )


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory):
    _need_binary()
    s = Server(tmp_path_factory.mktemp("hopper"))
    # Tasks enqueue through the app's client: point it at this server before its first use.
    taskapp.app.url = s.url
    yield s
    taskapp.app.close()
    s.stop()


@pytest.fixture
def own_server(tmp_path: Path):
    """A server of the test's own: a fresh event log, and free to stop and restart."""
    _need_binary()
    s = Server(tmp_path)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def client(server: Server):
    with Client(server.url) as c:
        yield c


@pytest.fixture
def queue() -> str:
    """A queue of the test's own, so no other test's worker takes its jobs."""
    return f"t-{uuid.uuid4().hex[:12]}"


def wait_job(client: Client, job_id: str, done: Callable[[Job], bool], limit: float = 10.0) -> Job:
    """Polls the job until `done` holds for it; fails the test after `limit` seconds."""
    deadline = time.monotonic() + limit
    while True:
        job = client.get(job_id)
        if done(job):
            return job
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} did not get there in {limit} s: {job}")
        time.sleep(0.02)


def wait_state(client: Client, job_id: str, state: str, limit: float = 10.0) -> Job:
    return wait_job(client, job_id, lambda j: j.state == state, limit)


def wait_file(path: Path, limit: float = 10.0) -> Optional[str]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.02)
    return None


def take(stream: Any, n: int, limit: float = 10.0) -> List[Any]:
    """The next `n` items of a blocking event stream; fails the test (closing the stream, which
    ends a blocked iteration) when they do not come within `limit` seconds. An error of the
    stream is raised here."""
    got: List[Any] = []
    failure: List[BaseException] = []

    def read() -> None:
        try:
            while len(got) < n:
                got.append(next(stream))
        except BaseException as e:  # StopIteration included: the test sees it
            failure.append(e)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(limit)
    if reader.is_alive():
        stream.close()
        reader.join(5)
        pytest.fail(f"{n} stream items did not come within {limit} s; got {got}")
    if failure:
        raise failure[0]
    return got


async def atake(stream: Any, n: int, limit: float = 10.0) -> List[Any]:
    """The next `n` items of an asyncio event stream; fails the test after `limit` seconds."""
    got: List[Any] = []

    async def read() -> None:
        while len(got) < n:
            got.append(await stream.__anext__())

    try:
        await asyncio.wait_for(read(), limit)
    except asyncio.TimeoutError:
        pytest.fail(f"{n} stream items did not come within {limit} s; got {got}")
    return got
