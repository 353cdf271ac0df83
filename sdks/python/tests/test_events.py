"""The live event stream (`client.events(...)`) against a real server, blocking and asyncio: a
job's transitions in order with the filters applied, resuming after a seq, reconnecting by
itself across a server restart (and giving up when the server stays away), gaps, bad filters,
and closing."""

import asyncio
import threading
import time
import warnings

import pytest

from conftest import atake, take
from hopper import (
    AsyncClient,
    Client,
    Gap,
    InvalidArgumentError,
    RetryPolicy,
    StreamEvent,
    TransportError,
)


#: Long enough for the server to have published an event to its streams.
PUBLISHED = 0.5


def transitions(events):
    return [(e.job_id, e.from_state, e.to_state) for e in events]


def check_lifecycle(events, job_id, queue, worker_id):
    """The three events of a job enqueued, leased and completed through the API."""
    assert all(isinstance(e, StreamEvent) for e in events), events
    assert [(e.type, e.from_state, e.to_state, e.reason) for e in events] == [
        ("available", None, "available", "enqueue"),
        ("running", "available", "running", "lease"),
        ("completed", "running", "completed", "complete"),
    ]
    assert {(e.job_id, e.queue, e.kind, e.namespace) for e in events} == {
        (job_id, queue, "k", "default")
    }
    assert [e.actor for e in events] == ["api", f"worker:{worker_id}", f"worker:{worker_id}"]
    assert events[0].seq < events[1].seq < events[2].seq
    assert events[0].at <= events[1].at <= events[2].at and events[0].at.tzinfo is not None


def test_a_jobs_transitions_arrive_in_order_and_filtered(client, queue):
    with client.events(queue=queue) as stream:
        # Connected before `events` returned: everything from here on is in the stream.
        client.enqueue("k", queue=f"{queue}-other")  # filtered out: it would come first
        job = client.enqueue("k", {"n": 1}, queue=queue)
        [leased] = client.lease([queue], worker_id="events-test")
        client.complete(job.id, leased.lease_token, {"ok": True})
        # Let the server publish them (it reads its log every 50 ms) before the first read:
        # a stream that connected only now would start after them.
        time.sleep(PUBLISHED)
        events = take(stream, 3)
        assert stream.last_seq == events[-1].seq
    check_lifecycle(events, job.id, queue, "events-test")
    # The same seqs as the job's own history.
    assert [e.seq for e in client.job_events(job.id)] == [e.seq for e in events]
    # Closed by the `with`: the iteration is over.
    assert stream.closed
    with pytest.raises(StopIteration):
        next(stream)


def test_filters_take_one_value_or_a_list(client, queue):
    qa, qb, qc = f"{queue}-a", f"{queue}-b", f"{queue}-c"
    a, b, c = (client.enqueue("k", queue=q) for q in (qa, qb, qc))
    by_queue = client.events(queue=[qa, qb], type="completed")
    by_job = client.events(job_id=[a.id], type=["running", "completed"])
    by_kind = client.events(kind=["other-kind", "k"], queue=qc, type="running")
    # c first, then b, then a: a leak through any filter would come before what it expects.
    for job, q in ((c, qc), (b, qb), (a, qa)):
        [leased] = client.lease([q], worker_id="w")
        client.complete(job.id, leased.lease_token)
    try:
        assert transitions(take(by_queue, 2)) == [
            (b.id, "running", "completed"),
            (a.id, "running", "completed"),
        ]
        assert transitions(take(by_job, 2)) == [
            (a.id, "available", "running"),
            (a.id, "running", "completed"),
        ]
        assert transitions(take(by_kind, 1)) == [(c.id, "available", "running")]
        # And nothing more: the next event each sees is a new one of its own.
        d = client.enqueue("k", queue=qb)
        [leased] = client.lease([qb], worker_id="w")
        client.complete(d.id, leased.lease_token)
        assert transitions(take(by_queue, 1)) == [(d.id, "running", "completed")]
    finally:
        for s in (by_queue, by_job, by_kind):
            s.close()


def test_resuming_after_a_seq_delivers_exactly_the_missed_events(client, queue):
    stream = client.events(queue=queue)
    first = client.enqueue("k", queue=queue)
    [seen] = take(stream, 1)
    stream.close()
    assert (seen.job_id, seen.to_state, stream.last_seq) == (first.id, "available", seen.seq)
    # While nobody listens:
    [leased] = client.lease([queue], worker_id="w")
    client.complete(first.id, leased.lease_token)
    second = client.enqueue("k", queue=queue)

    with client.events(queue=queue, after=stream.last_seq) as resumed:
        assert transitions(take(resumed, 3)) == [
            (first.id, "available", "running"),
            (first.id, "running", "completed"),
            (second.id, None, "available"),
        ]
        # Then live, with nothing repeated.
        third = client.enqueue("k", queue=queue)
        assert transitions(take(resumed, 1)) == [(third.id, None, "available")]
        assert resumed.reconnects == 0


def test_the_stream_reconnects_by_itself_across_a_server_restart(own_server):
    with Client(own_server.url) as client, client.events(queue="q") as stream:
        first = client.enqueue("k", queue="q")
        [seen] = take(stream, 1)
        assert seen.job_id == first.id
        own_server.restart()  # same address, same data: the connection drops
        # Missed while the stream was down; it only notices the drop when read next.
        [leased] = client.lease(["q"], worker_id="w")
        client.complete(first.id, leased.lease_token)
        second = client.enqueue("k", queue="q")
        assert transitions(take(stream, 3)) == [
            (first.id, "available", "running"),
            (first.id, "running", "completed"),
            (second.id, None, "available"),
        ]
        assert stream.reconnects == 1
        third = client.enqueue("k", queue="q")
        assert transitions(take(stream, 1)) == [(third.id, None, "available")]
        assert stream.reconnects == 1


def test_reconnecting_gives_up_when_the_server_stays_away(own_server):
    policy = RetryPolicy(max_attempts=3, initial_delay=0.05, max_delay=0.1)
    with Client(own_server.url) as client, client.events(reconnect=policy) as stream:
        own_server.terminate()
        started = time.monotonic()
        with pytest.raises(TransportError):
            take(stream, 1, limit=20)
        # Three tries, each after max_delay (which caps the server's `retry:` of 1 s).
        assert 0.3 <= time.monotonic() - started < 5
        assert stream.reconnects == 0


def test_a_resume_point_older_than_the_history_yields_a_gap(own_server):
    with Client(own_server.url) as client:
        # More events than the server's history holds (10,000).
        for _ in range(10):
            client.enqueue_batch([{"kind": "k", "queue": "bulk"} for _ in range(1000)])
        with client.events(queue="q") as probe:
            job = client.enqueue("k", queue="q")
            [event] = take(probe, 1)  # the server has published everything up to it
        with client.events(queue="q", after=0) as stream:
            gap, again = take(stream, 2)
            assert gap == Gap(after=0) and not isinstance(gap, StreamEvent)
            assert (again.seq, again.job_id) == (event.seq, job.id)
            assert stream.last_seq == event.seq
        # From a point the history still holds: no gap.
        with client.events(queue="q", after=event.seq - 1) as stream:
            [again] = take(stream, 1)
            assert isinstance(again, StreamEvent) and again.seq == event.seq


@pytest.mark.parametrize(
    "filters, field",
    [
        ({"type": "finished"}, "type"),
        ({"type": ["completed", "finished"]}, "type"),
        ({"job_id": "not-a-job-id"}, "job_id"),
        ({"queue": "not a queue!"}, "queue"),
        ({"kind": ["k", "bad kind!"]}, "kind"),
    ],
)
def test_bad_filters_raise_at_once(client, filters, field):
    with pytest.raises(InvalidArgumentError) as e:
        client.events(**filters)
    assert (e.value.status, e.value.field) == (400, field)


def test_bad_arguments_are_refused_before_connecting(client):
    with pytest.raises(ValueError):
        client.events(after=-1)
    with pytest.raises(TypeError):
        client.events(queues="q")  # a typo is never silently ignored


def test_close_from_another_thread_ends_a_blocked_iteration(client, queue):
    stream = client.events(queue=queue)
    got = []
    reader = threading.Thread(target=lambda: got.extend(stream), daemon=True)
    reader.start()
    time.sleep(0.2)
    assert reader.is_alive()  # blocked: nothing happens on this queue
    closed = time.monotonic()
    stream.close()
    reader.join(5)
    assert not reader.is_alive() and got == []
    assert time.monotonic() - closed < 1


def test_events_of_one_job_by_position_still_works_but_is_deprecated(client, queue):
    job = client.enqueue("k", queue=queue)
    with pytest.warns(DeprecationWarning, match="job_events"):
        old = client.events(job.id)
    assert old == client.job_events(job.id)
    assert [(e.from_state, e.to_state) for e in old] == [(None, "available")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client.events(job_id=job.id).close()  # the stream, filtered: no warning


# ---- asyncio ------------------------------------------------------------------------------


def test_async_a_jobs_transitions_arrive_in_order_and_filtered(server, queue):
    async def main():
        async with AsyncClient(server.url) as client:
            async with client.events(queue=queue) as stream:
                await client.enqueue("k", queue=f"{queue}-other")
                job = await client.enqueue("k", queue=queue)
                [leased] = await client.lease([queue], worker_id="async-events")
                await client.complete(job.id, leased.lease_token)
                await asyncio.sleep(PUBLISHED)
                events = await atake(stream, 3)
                assert stream.last_seq == events[-1].seq
            check_lifecycle(events, job.id, queue, "async-events")
            assert stream.closed
            with pytest.raises(StopAsyncIteration):
                await stream.__anext__()
            # `async for` connects by itself; filters take lists too.
            stream = client.events(job_id=[job.id], type=["completed"], after=events[0].seq)
            async for event in stream:
                assert (event.job_id, event.to_state) == (job.id, "completed")
                break
            await stream.aclose()

    asyncio.run(main())


def test_async_resuming_after_a_seq_delivers_exactly_the_missed_events(server, queue):
    async def main():
        async with AsyncClient(server.url) as client:
            async with client.events(queue=queue) as stream:
                first = await client.enqueue("k", queue=queue)
                [seen] = await atake(stream, 1)
            [leased] = await client.lease([queue], worker_id="w")
            await client.complete(first.id, leased.lease_token)
            second = await client.enqueue("k", queue=queue)
            async with client.events(queue=queue, after=stream.last_seq) as resumed:
                assert seen.seq == stream.last_seq
                assert transitions(await atake(resumed, 3)) == [
                    (first.id, "available", "running"),
                    (first.id, "running", "completed"),
                    (second.id, None, "available"),
                ]
                third = await client.enqueue("k", queue=queue)
                assert transitions(await atake(resumed, 1)) == [(third.id, None, "available")]

    asyncio.run(main())


def test_async_the_stream_reconnects_by_itself_across_a_server_restart(own_server):
    async def main():
        async with AsyncClient(own_server.url) as client:
            async with client.events(queue="q") as stream:
                first = await client.enqueue("k", queue="q")
                [seen] = await atake(stream, 1)
                assert seen.job_id == first.id
                own_server.restart()
                [leased] = await client.lease(["q"], worker_id="w")
                await client.complete(first.id, leased.lease_token)
                second = await client.enqueue("k", queue="q")
                assert transitions(await atake(stream, 3)) == [
                    (first.id, "available", "running"),
                    (first.id, "running", "completed"),
                    (second.id, None, "available"),
                ]
                assert stream.reconnects == 1

    asyncio.run(main())


def test_async_bad_filters_raise_at_connect(server):
    async def main():
        async with AsyncClient(server.url) as client:
            with pytest.raises(InvalidArgumentError) as e:
                async with client.events(type="finished"):
                    pass
            assert e.value.field == "type"
            with pytest.raises(InvalidArgumentError) as e:
                async for _ in client.events(job_id="nope"):
                    pass
            assert e.value.field == "job_id"

    asyncio.run(main())


def test_async_aclose_from_another_task_ends_the_iteration(server, queue):
    async def main():
        async with AsyncClient(server.url) as client:
            stream = client.events(queue=queue)
            await stream.connect()
            got = []

            async def consume():
                async for item in stream:
                    got.append(item)

            consumer = asyncio.ensure_future(consume())
            await asyncio.sleep(0.2)
            assert not consumer.done()  # waiting: nothing happens on this queue
            closed = time.monotonic()
            await stream.aclose()
            await asyncio.wait_for(consumer, 1)
            assert got == [] and time.monotonic() - closed < 1 and stream.closed

    asyncio.run(main())
