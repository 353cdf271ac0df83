"""Graceful shutdown of a real `hopper-py worker` process on SIGTERM (semantics.md, Shutdown):
it stops leasing, lets running jobs finish within the grace period, releases the rest, and
exits 0."""

import signal
import time

import pytest

import taskapp
from conftest import wait_file, wait_state


def test_running_jobs_finish_unstarted_ones_go_back(server, client, queue, tmp_path):
    worker = server.python_worker("--queues", queue, "--concurrency", "1")
    running = taskapp.sleep.apply_async((1.0, str(tmp_path / "started")), queue=queue)
    waiting = taskapp.sleep.apply_async((1.0,), queue=queue)
    assert wait_file(tmp_path / "started")
    # One slot, so the second job is leased (the worker holds twice its concurrency) but
    # waits for the first to finish.
    wait_state(client, waiting.id, "running")
    started = time.monotonic()
    assert worker.terminate() == 0, worker.output()
    assert time.monotonic() - started < 5
    assert client.get(running.id).state == "completed"
    back = client.get(waiting.id)
    assert (back.state, back.attempt, back.attempts[-1].outcome) == ("available", 0, "released")


@pytest.mark.parametrize("task", [taskapp.sleep, taskapp.async_sleep])
def test_jobs_past_the_grace_period_are_released(server, client, queue, task, tmp_path):
    worker = server.python_worker("--queues", queue, "--grace-period-secs", "0.5")
    job = task.apply_async((30, str(tmp_path / "started")), queue=queue)
    assert wait_file(tmp_path / "started")
    started = time.monotonic()
    assert worker.terminate() == 0, worker.output()
    assert time.monotonic() - started < 5
    back = client.get(job.id)
    # Released, so the attempt does not count and another worker takes it at once.
    assert (back.state, back.attempt, back.attempts[-1].outcome) == ("available", 0, "released")
    assert "grace period over" in worker.output()


def test_no_new_leases_after_sigterm(server, client, queue, tmp_path):
    worker = server.python_worker("--queues", queue)
    job = taskapp.sleep.apply_async((1.5, str(tmp_path / "started")), queue=queue)
    assert wait_file(tmp_path / "started")
    worker.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)  # the worker has seen the signal; the job still runs
    late = taskapp.add.apply_async((1, 2), queue=queue)
    assert worker.proc.wait(10) == 0, worker.output()
    assert client.get(job.id).state == "completed"
    assert client.get(late.id).state == "available"


def test_idle_worker_exits_promptly(server, queue):
    worker = server.python_worker("--queues", queue)
    time.sleep(0.5)  # let it start its long poll
    started = time.monotonic()
    assert worker.terminate() == 0, worker.output()
    assert time.monotonic() - started < 2
