"""The asyncio `AsyncClient` and the tasks' `adelay` against a real server, and a `Worker`
run in-process on an event loop (the programmatic API; the CLI runs the same code)."""

import asyncio

import pytest

from hopper import (
    AsyncClient,
    Hopper,
    IdempotencyConflictError,
    InvalidArgumentError,
    InvalidStateError,
    LeaseLostError,
    NotFoundError,
    Worker,
)


def test_async_client_round_trip(server, queue):
    async def main():
        async with AsyncClient(server.url) as client:
            job = await client.enqueue("k", {"n": 1}, queue=queue, priority=2, tags=["async"])
            assert (job.state, job.priority, job.duplicate) == ("available", 2, False)
            again = await client.enqueue(
                "k", {"n": 1}, queue=queue, idempotency_key=job.idempotency_key
            )
            assert (again.id, again.duplicate) == (job.id, True)
            with pytest.raises(IdempotencyConflictError):
                await client.enqueue(
                    "k", {"n": 2}, queue=queue, idempotency_key=job.idempotency_key
                )
            batch = await client.enqueue_batch(
                [{"kind": "k", "queue": queue, "args": i} for i in range(3)]
            )
            assert [j.args for j in batch] == [0, 1, 2]
            page = await client.list(queue=queue, tag="async")
            assert [j.id for j in page.jobs] == [job.id]
            assert (await client.get(job.id)).id == job.id
            # Many calls at once over one pool.
            got = await asyncio.gather(*(client.get(j.id) for j in batch))
            assert [j.args for j in got] == [0, 1, 2]
            assert (await client.cancel(job.id)).state == "cancelled"
            with pytest.raises(InvalidStateError):
                await client.cancel(job.id)
            assert (await client.retry(job.id)).state == "available"
            with pytest.raises(NotFoundError):
                await client.get("0190f5c6-0000-7000-8000-000000000001")
            leased = await client.lease([queue], worker_id="async-test", max_jobs=10)
            assert len(leased) == 4
            with pytest.raises(LeaseLostError):
                await client.complete(leased[0].id, "stale")
            results = await client.acks(
                [{"id": j.id, "lease_token": j.lease_token, "outcome": "completed"} for j in leased]
            )
            assert all(r.ok for r in results)
            assert (await client.wait(job.id, timeout=5)).state == "completed"

    asyncio.run(main())


def test_tasks_enqueue_from_asyncio(server, queue):
    async def main():
        app = Hopper(server.url)
        send = app.task(name="send")(lambda to, subject="hi": None)
        try:
            job = await send.adelay("ada@example.com")
            # The arguments as passed; the worker's function supplies its own defaults.
            assert (job.kind, job.args) == ("send", {"to": "ada@example.com"})
            later = await send.aapply_async(("bob@example.com",), queue=queue, countdown=30)
            assert (later.state, later.queue) == ("scheduled", queue)
        finally:
            await app.aclose()

    asyncio.run(main())


def test_worker_runs_in_process_and_stops(server, queue):
    app = Hopper(server.url)
    seen = []

    @app.task(queue=queue)
    async def collect(item):
        seen.append(item)
        return item * 2

    @app.task(queue=queue)
    def collect_sync(item):
        seen.append(item)
        return item * 3

    async def main():
        worker = Worker(app, concurrency=4, lease_ms=1000, poll_wait_ms=1000)
        assert worker.queues == [queue]
        running = asyncio.ensure_future(worker.arun(handle_signals=False))
        jobs = [await collect.adelay(i) for i in range(5)] + [await collect_sync.adelay(10)]
        done = [await app.aclient.wait(j.id, timeout=10) for j in jobs]
        worker.stop()
        await asyncio.wait_for(running, 5)
        await app.aclose()
        return worker, done

    worker, done = asyncio.run(main())
    assert [j.result for j in done] == [0, 2, 4, 6, 8, 30]
    assert sorted(seen) == [0, 1, 2, 3, 4, 10]
    assert (worker.stats.completed, worker.stats.undelivered) == (6, 0)


def test_worker_options_are_checked(server):
    app = Hopper(server.url)
    with pytest.raises(ValueError):
        Worker(app)  # no task
    app.task(lambda: None, name="noop")
    for bad in (
        {"concurrency": 0},
        {"lease_ms": 10},
        {"poll_wait_ms": 70_000},
        {"queues": ["a"] * 101},
    ):
        with pytest.raises(ValueError):
            Worker(app, **bad)


def test_a_refused_lease_request_stops_the_worker(server):
    app = Hopper(server.url)
    app.task(lambda: None, name="noop")
    worker = Worker(app, queues=["not a queue name!"])
    with pytest.raises(InvalidArgumentError) as e:
        asyncio.run(asyncio.wait_for(worker.arun(handle_signals=False), 10))
    assert e.value.field.startswith("queues")
