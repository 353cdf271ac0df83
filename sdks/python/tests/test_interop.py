"""One wire contract: jobs enqueued by the Rust side (the `hopper` CLI, built on the Rust SDK)
run in the Python worker, and jobs enqueued from Python run in `hopper worker --exec`."""

import json

import taskapp


def test_rust_cli_enqueues_python_worker_runs(server, client, queue):
    worker = server.python_worker("--queues", queue, "--lease-ms", "1000")
    out = server.cli(
        "--json",
        "enqueue",
        "add",
        "--queue",
        queue,
        "--args",
        '{"x": 20, "y": 22}',
        "--priority",
        "3",
        "--tag",
        "from-rust",
    )
    enqueued = json.loads(out)
    done = client.wait(enqueued["id"], timeout=10)
    assert (done.state, done.result, done.priority, done.tags) == (
        "completed",
        42,
        3,
        ["from-rust"],
    )
    # And the CLI reads what the Python worker recorded.
    shown = json.loads(server.cli("--json", "jobs", "show", enqueued["id"]))
    assert (shown["state"], shown["result"]) == ("completed", 42)
    assert worker.terminate() == 0, worker.output()


def test_python_enqueues_exec_worker_runs(server, client, queue):
    # The same Task object a Python worker would run; here the exec worker does, from the
    # same args on the wire: {"word": "hello"}.
    by_task = taskapp.shout.apply_async(("hello",), queue=queue)
    by_client = client.enqueue("shout", {"word": "client"}, queue=queue)
    failing = client.enqueue("fails", queue=queue, max_attempts=1)
    worker = server.exec_worker(
        "--queues",
        queue,
        "--lease-ms",
        "1000",
        "--command",
        "shout=echo {word}",
        "--command",
        "fails=false",
    )
    assert client.wait(by_task.id, timeout=10).result == "hello\n"
    assert client.wait(by_client.id, timeout=10).result == "client\n"
    dead = client.wait(failing.id, timeout=10)
    assert dead.state == "dead"
    assert worker.terminate() == 0, worker.output()


def test_python_and_rust_see_the_same_idempotency_key(server, client, queue):
    job = client.enqueue("add", {"x": 1, "y": 2}, queue=queue, idempotency_key="shared-key-1")
    out = server.cli(
        "--json",
        "enqueue",
        "add",
        "--queue",
        queue,
        "--args",
        '{"x": 1, "y": 2}',
        "--idempotency-key",
        "shared-key-1",
    )
    again = json.loads(out)
    assert again["id"] == job.id
    assert again.get("duplicate") is True
