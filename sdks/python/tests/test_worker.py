"""Jobs enqueued from Python and run by a real Python worker process, to every outcome:
complete, retry, dead, cancel, timeout; plain functions on threads and coroutines alike."""

import time
import uuid

import pytest

import taskapp
from conftest import wait_file, wait_state
from hopper import Backoff


@pytest.fixture(scope="module")
def q(server):
    """The queue of one worker process shared by this module's tests. Short leases make
    heartbeats (and so cancellations) arrive within a third of a second."""
    name = f"outcomes-{uuid.uuid4().hex[:8]}"
    worker = server.python_worker("--queues", name, "--lease-ms", "900", "--concurrency", "8")
    yield name
    assert worker.terminate() == 0, worker.output()


def test_completes_with_the_result(client, q):
    job = taskapp.add.apply_async((2, 3), queue=q)
    assert job.args == {"x": 2, "y": 3}
    done = client.wait(job.id, timeout=10)
    assert (done.state, done.result, done.attempt) == ("completed", 5, 1)


def test_coroutine_completes(client, q):
    job = taskapp.async_add.apply_async(kwargs={"x": 40, "y": 2}, queue=q)
    assert client.wait(job.id, timeout=10).result == 42


def test_exception_retries_until_it_succeeds(client, q):
    job = taskapp.flaky.apply_async((3,), queue=q)
    done = client.wait(job.id, timeout=10)
    assert done.state == "completed"
    assert done.result == {"attempt": 3}
    assert [(e.attempt, e.kind) for e in done.errors] == [
        (1, "ConnectionError"),
        (2, "ConnectionError"),
    ]
    assert done.errors[0].message.startswith("ConnectionError: attempt 1 failed")
    assert "taskapp.py" in done.errors[0].message  # the traceback came along


def test_exceptions_past_max_attempts_end_dead(client, q):
    job = taskapp.flaky.apply_async((10,), queue=q, max_attempts=2)
    done = client.wait(job.id, timeout=10)
    assert (done.state, done.attempt, len(done.errors)) == ("dead", 2, 2)


def test_retry_in_ms_sets_the_next_run(client, q):
    job = taskapp.retry_once.apply_async((300,), queue=q, backoff=Backoff.fixed(3_600_000))
    failed = wait_state(client, job.id, "retryable")
    assert failed.errors[-1].kind == "retry"
    # The handler's delay (300 ms), not the job's backoff of an hour.
    delay = (failed.available_at - failed.errors[-1].at).total_seconds()
    assert 0.2 < delay < 1.0, delay
    done = client.wait(job.id, timeout=10)
    assert (done.state, done.result, done.attempt) == ("completed", "second try", 2)


def test_celery_style_self_retry_from_a_coroutine(client, q):
    job = taskapp.async_retry_celery_style.apply_async(queue=q)
    done = client.wait(job.id, timeout=10)
    assert (done.state, done.result) == ("completed", 2)
    assert done.errors[0].kind == "retry"
    assert done.errors[0].message == "gateway busy"


def test_fail_not_retryable_is_dead_at_once(client, q):
    job = taskapp.reject.apply_async(("no such order",), queue=q, max_attempts=5)
    done = client.wait(job.id, timeout=10)
    assert (done.state, done.attempt) == ("dead", 1)
    assert (done.errors[0].kind, done.errors[0].message) == ("rejected", "no such order")


def test_retry_for_limits_which_exceptions_retry(client, q):
    retried = taskapp.picky.apply_async(("connection",), queue=q, max_attempts=3)
    final = taskapp.picky.apply_async(("other",), queue=q, max_attempts=3)
    assert client.wait(retried.id, timeout=10).attempt == 3
    done = client.wait(final.id, timeout=10)
    assert (done.state, done.attempt, done.errors[0].kind) == ("dead", 1, "KeyError")


def test_args_that_do_not_fit_are_dead_at_once(client, q):
    job = client.enqueue("add", {"x": 1, "zzz": 2}, queue=q, max_attempts=5)
    done = client.wait(job.id, timeout=10)
    assert (done.state, done.attempt, done.errors[0].kind) == ("dead", 1, "invalid_args")


def test_unknown_kind_is_a_retryable_failure(client, q):
    job = client.enqueue("no_such_task", queue=q, max_attempts=2, backoff=Backoff.fixed(0))
    done = client.wait(job.id, timeout=10)
    assert (done.state, done.attempt) == ("dead", 2)
    assert {e.kind for e in done.errors} == {"unknown_kind"}


def test_a_result_that_is_not_json_is_dead(client, q):
    job = taskapp.unserializable.apply_async(queue=q, max_attempts=5)
    done = client.wait(job.id, timeout=10)
    assert (done.state, done.errors[0].kind) == ("dead", "invalid_result")


@pytest.mark.parametrize("task", [taskapp.progress, taskapp.async_progress])
def test_progress_is_recorded(client, q, task):
    job = task.apply_async(({"step": 1},), queue=q)
    done = client.wait(job.id, timeout=10)
    assert (done.state, done.progress) == ("completed", {"step": 1})


@pytest.mark.parametrize("task", [taskapp.cooperative, taskapp.async_cooperative])
def test_cancel_stops_a_running_handler(client, q, tmp_path, task):
    marker = tmp_path / "why"
    job = task.apply_async((30, str(marker)), queue=q)
    wait_state(client, job.id, "running")
    client.cancel(job.id)
    # The worker learns it from its next heartbeat and stops the handler.
    assert wait_file(marker) == "cancel_requested"
    done = client.wait(job.id, timeout=10)
    assert done.state == "cancelled"
    assert done.attempts[-1].outcome == "cancelled"


def test_cancel_of_a_waiting_job_needs_no_worker(client, q):
    job = taskapp.add.apply_async((1, 1), queue=q, countdown=60)
    assert job.state == "scheduled"
    assert client.cancel(job.id).state == "cancelled"


@pytest.mark.parametrize("task", [taskapp.cooperative, taskapp.async_cooperative])
def test_timeout_stops_the_handler_and_fails_the_attempt(client, q, tmp_path, task):
    marker = tmp_path / "why"
    job = task.apply_async((30, str(marker)), queue=q, timeout_ms=1000, max_attempts=1)
    assert wait_file(marker) == "timeout"
    done = client.wait(job.id, timeout=10)
    assert (done.state, done.errors[0].kind) == ("dead", "timeout")


def test_handlers_that_ignore_their_timeout_do_not_cost_slots(client, q):
    # As many handlers as the worker has slots sleep through their timeout; their threads
    # are abandoned and replaced, so the next jobs run at once, side by side.
    stuck = [
        taskapp.sleep.apply_async((20,), queue=q, timeout_ms=1000, max_attempts=1) for _ in range(8)
    ]
    for job in stuck:
        done = client.wait(job.id, timeout=15)
        assert (done.state, done.errors[0].kind) == ("dead", "timeout")
    started = time.monotonic()
    after = [taskapp.sleep.apply_async((0.5,), queue=q) for _ in range(8)]
    assert [client.wait(j.id, timeout=10).result for j in after] == [0.5] * 8
    assert time.monotonic() - started < 3.0


def test_a_batch_runs_in_one_go(client, q):
    jobs = client.enqueue_batch([taskapp.add.spec((i, i), queue=q) for i in range(50)])
    done = [client.wait(j.id, timeout=10) for j in jobs]
    assert [j.result for j in done] == [2 * i for i in range(50)]
    assert ":pid-" in done[0].attempts[0].worker_id


def test_jobs_waiting_for_a_slot_keep_their_lease(server, client, queue, tmp_path):
    # Two slots, held by long jobs, and a 600 ms lease: the two jobs leased next (a worker
    # holds twice its concurrency) wait far longer than their lease. Heartbeats keep them,
    # and bring a cancel to the one that gets cancelled meanwhile.
    worker = server.python_worker("--queues", queue, "--concurrency", "2", "--lease-ms", "600")
    for name in ("a", "b"):
        taskapp.sleep.apply_async((2.5, str(tmp_path / name)), queue=queue)
        assert wait_file(tmp_path / name)
    # In one batch, so that one lease request takes both.
    waiting, cancelled = client.enqueue_batch(
        [
            taskapp.add.spec((1, 2), queue=queue),
            taskapp.sleep.spec((0, str(tmp_path / "never")), queue=queue),
        ]
    )
    wait_state(client, waiting.id, "running")
    wait_state(client, cancelled.id, "running")
    client.cancel(cancelled.id)
    # Cancelled before a slot frees up, without ever running.
    assert client.wait(cancelled.id, timeout=1.5).state == "cancelled"
    done = client.wait(waiting.id, timeout=10)
    assert (done.state, done.result, done.attempt, done.errors) == ("completed", 3, 1, [])
    assert not (tmp_path / "never").exists()
    assert worker.terminate() == 0, worker.output()
