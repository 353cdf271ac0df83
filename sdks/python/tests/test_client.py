"""The blocking `Client` against a real server: every job option, idempotent enqueue, list,
cancel, retry, the worker-side calls, and each error answer as its exception."""

import socket
import time
from datetime import datetime, timedelta, timezone

import pytest

from hopper import (
    Backoff,
    Client,
    IdempotencyConflictError,
    InvalidArgumentError,
    InvalidStateError,
    LeaseLostError,
    NotFoundError,
    PermissionDeniedError,
    RetryPolicy,
    TransportError,
)


def test_enqueue_with_every_option(client, queue):
    run_at = datetime.now(timezone.utc) + timedelta(hours=1)
    job = client.enqueue(
        "send_email",
        {"to": "ada@example.com"},
        queue=queue,
        priority=7,
        run_at=run_at,
        max_attempts=4,
        backoff=Backoff.exponential(base_ms=500, cap_ms=10_000, jitter=0.1),
        timeout_ms=60_000,
        idempotency_key="every-option",
        tags=["mail", "welcome"],
        meta={"tenant": "acme"},
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        concurrency_key="customer-1",
        fairness_key="tenant-1",
        estimated_ms=1500,
    )
    assert job.state == "scheduled"
    assert (job.queue, job.kind, job.args, job.priority) == (
        queue,
        "send_email",
        {"to": "ada@example.com"},
        7,
    )
    assert abs((job.available_at - run_at).total_seconds()) < 0.01
    assert (job.max_attempts, job.timeout_ms) == (4, 60_000)
    assert job.backoff == Backoff.exponential(base_ms=500, cap_ms=10_000, jitter=0.1)
    assert (job.idempotency_key, job.tags, job.meta) == (
        "every-option",
        ["mail", "welcome"],
        {"tenant": "acme"},
    )
    assert job.traceparent.startswith("00-4bf92f35")
    assert (job.concurrency_key, job.fairness_key, job.estimated_ms) == (
        "customer-1",
        "tenant-1",
        1500,
    )
    assert client.get(job.id) == job


def test_delay_ms_and_fixed_backoff(client, queue):
    job = client.enqueue("k", queue=queue, delay_ms=30_000, backoff=Backoff.fixed(250))
    assert job.state == "scheduled"
    assert 29 < (job.available_at - job.created_at).total_seconds() <= 30
    assert job.backoff == Backoff.fixed(250)
    assert job.args is None


def test_a_key_is_generated_and_a_repeat_is_a_duplicate(client, queue):
    first = client.enqueue("k", {"n": 1}, queue=queue)
    assert first.idempotency_key and not first.duplicate
    again = client.enqueue("k", {"n": 1}, queue=queue, idempotency_key=first.idempotency_key)
    assert (again.id, again.duplicate) == (first.id, True)
    other = client.enqueue("k", {"n": 1}, queue=queue)
    assert other.id != first.id  # a fresh key each time: two calls, two jobs
    with pytest.raises(IdempotencyConflictError) as e:
        client.enqueue("k", {"n": 2}, queue=queue, idempotency_key=first.idempotency_key)
    assert (e.value.status, e.value.code) == (409, "idempotency_conflict")


def test_batch_is_in_order_marks_duplicates_and_is_atomic(client, queue):
    kept = client.enqueue("k", {"i": 0}, queue=queue, idempotency_key=f"{queue}-0")
    jobs = client.enqueue_batch(
        [
            {"kind": "k", "args": {"i": i}, "queue": queue, "idempotency_key": f"{queue}-{i}"}
            for i in range(5)
        ]
    )
    assert [j.args["i"] for j in jobs] == list(range(5))
    assert [j.duplicate for j in jobs] == [True, False, False, False, False]
    assert jobs[0].id == kept.id
    with pytest.raises(InvalidArgumentError) as e:
        client.enqueue_batch(
            [{"kind": "k", "queue": queue, "tags": ["new"]}, {"kind": "k", "priority": 10**6}]
        )
    assert e.value.field == "jobs[1].priority"
    assert client.list(queue=queue, tag="new").jobs == []  # nothing of the batch was stored
    with pytest.raises(InvalidArgumentError):
        client.enqueue_batch([{"kind": "k", "idempotency_key": "twice"}] * 2)


def test_list_filters_and_pages(client, queue):
    ids = [client.enqueue("a" if i % 2 else "b", queue=queue, tags=[f"n{i}"]).id for i in range(7)]
    page = client.list(queue=queue, limit=3)
    assert [j.id for j in page.jobs] == ids[::-1][:3]  # newest first
    seen = [j.id for j in page.jobs]
    while page.next_cursor:
        page = client.list(queue=queue, limit=3, cursor=page.next_cursor)
        seen += [j.id for j in page.jobs]
    assert seen == ids[::-1]
    assert {j.kind for j in client.list(queue=queue, kind="a").jobs} == {"a"}
    assert [j.tags for j in client.list(queue=queue, tag="n4").jobs] == [["n4"]]
    client.cancel(ids[0])
    assert [j.id for j in client.list(queue=queue, state=["cancelled", "dead"]).jobs] == [ids[0]]
    with pytest.raises(InvalidArgumentError):
        client.list(cursor="not a cursor")


def test_cancel_retry_delete_and_events(client, queue):
    job = client.enqueue("k", queue=queue)
    cancelled = client.cancel(job.id)
    assert cancelled.state == "cancelled"
    with pytest.raises(InvalidStateError) as e:
        client.cancel(job.id)
    assert (e.value.status, e.value.code) == (409, "invalid_state")
    again = client.retry(job.id)
    assert (again.state, again.attempt) == ("available", 0)
    with pytest.raises(InvalidStateError):
        client.delete(job.id)  # only finished jobs
    client.cancel(job.id)
    assert [(e.from_state, e.to_state) for e in client.job_events(job.id)] == [
        (None, "available"),
        ("available", "cancelled"),
        ("cancelled", "available"),
        ("available", "cancelled"),
    ]
    client.delete(job.id)
    with pytest.raises(NotFoundError):
        client.get(job.id)


def test_the_worker_calls_by_hand(client, queue):
    job = client.enqueue("k", {"v": 1}, queue=queue, max_attempts=2)
    [leased] = client.lease([queue], worker_id="test:pid-1", max_jobs=5, lease_ms=5000)
    assert (leased.id, leased.state, leased.attempt) == (job.id, "running", 1)
    assert leased.lease_token
    beat = client.heartbeat(job.id, leased.lease_token, lease_ms=5000, progress={"p": 1})
    assert beat.cancel_requested is False
    with pytest.raises(LeaseLostError):
        client.complete(job.id, "not-the-token", {"r": 1})
    failed = client.fail(job.id, leased.lease_token, "smtp down", kind="smtp", retry_in_ms=0)
    assert (failed.state, failed.errors[0].kind) == ("retryable", "smtp")
    [leased] = client.lease([queue], worker_id="test:pid-1", wait_ms=3000)
    done = client.complete(job.id, leased.lease_token, {"r": 2})
    assert (done.state, done.result, done.progress) == ("completed", {"r": 2}, {"p": 1})
    assert client.complete(job.id, leased.lease_token, {"r": 2}).duplicate is True
    with pytest.raises(InvalidStateError):
        client.release(job.id, leased.lease_token)  # another outcome for the same token


def test_acks_stand_alone(client, queue):
    a = client.enqueue("k", queue=queue)
    b = client.enqueue("k", queue=queue)
    leased = {j.id: j for j in client.lease([queue], worker_id="w", max_jobs=2)}
    results = client.acks(
        [
            {
                "id": a.id,
                "lease_token": leased[a.id].lease_token,
                "outcome": "completed",
                "result": 1,
            },
            {"id": b.id, "lease_token": "stale", "outcome": "released"},
        ]
    )
    assert [(r.id, r.ok, r.code) for r in results] == [
        (a.id, True, None),
        (b.id, False, "lease_lost"),
    ]


def test_queues_and_workers(client, queue):
    client.enqueue("k", queue=queue)
    assert client.pause_queue(queue).paused is True
    assert client.lease([queue], worker_id="w") == []  # a paused queue hands out nothing
    info = client.resume_queue(queue)
    assert (info.paused, info.count("available")) == (False, 1)
    [job] = client.lease([queue], worker_id="w-queues", lease_ms=5000)
    client.fail(job.id, job.lease_token, "no", retryable=False)
    assert client.retry_queue(queue) == 1
    assert queue in [q.name for q in client.queues()]
    assert "w-queues" in [w.id for w in client.workers()]
    [job] = client.lease([queue], worker_id="w-queues")
    client.complete(job.id, job.lease_token)
    assert client.purge_queue(queue, "completed") == 1


def test_invalid_values_name_their_field(client):
    with pytest.raises(InvalidArgumentError) as e:
        client.enqueue("k", priority=100_000)
    assert (e.value.status, e.value.field) == (400, "priority")
    assert e.value.request_id
    with pytest.raises(InvalidArgumentError) as e:
        client.enqueue("bad kind!")
    assert e.value.field == "kind"


def test_options_are_checked_before_sending(client):
    with pytest.raises(TypeError):
        client.enqueue("k", max_attempt=3)  # a typo is never silently ignored
    with pytest.raises(ValueError):
        client.enqueue("k", run_at=datetime.now())  # naive: local time or UTC?
    with pytest.raises(ValueError):
        client.enqueue("k", {"x": float("nan")})


def test_a_foreign_origin_is_refused(server):
    with Client(server.url, headers={"Origin": "https://evil.example"}) as c:
        with pytest.raises(PermissionDeniedError) as e:
            c.enqueue("k")
    assert e.value.status == 403


def test_an_unreachable_server_is_a_transport_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens here once closed
    policy = RetryPolicy(max_attempts=3, initial_delay=0.05)
    with Client(f"http://127.0.0.1:{port}", retry=policy) as c:
        started = time.monotonic()
        with pytest.raises(TransportError) as e:
            c.enqueue("k")
        # The enqueue was retried (it carries a key): 0.05 s, then 0.1 s.
        assert time.monotonic() - started >= 0.15
        assert e.value.retryable
        with pytest.raises(TransportError):
            c.get("0190f5c6-0000-7000-8000-000000000001")


def test_unknown_job_is_not_found(client):
    with pytest.raises(NotFoundError) as e:
        client.get("0190f5c6-0000-7000-8000-000000000001")
    assert (e.value.status, e.value.code) == (404, "not_found")
    with pytest.raises(NotFoundError):
        client.cancel("0190f5c6-0000-7000-8000-000000000001")
