"""Cron schedules through the blocking and the asyncio client against a real server: the CRUD
round trip, pause and resume, a manual trigger, a schedule firing on its own ticks, and bad
definitions refused with the field named."""

import asyncio
import time
from datetime import datetime, timedelta, timezone

import pytest

from hopper import (
    AsyncClient,
    Backoff,
    InvalidArgumentError,
    InvalidStateError,
    Misfire,
    NotFoundError,
    Schedule,
)


def definition(s: Schedule) -> tuple:
    """What a schedule's reads agree on (next_fire_times is computed at each read)."""
    return (
        s.name,
        s.cron,
        s.timezone,
        s.job,
        s.jitter_ms,
        s.misfire,
        s.paused,
        s.created_at,
        s.updated_at,
        s.cursor,
        s.next_fire_at,
    )


def test_schedule_crud_round_trip(client, queue):
    name = f"nightly-{queue}"
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    created = client.create_schedule(
        name,
        "30 2 * * *",
        {
            "kind": "report",
            "queue": queue,
            "args": {"full": True},
            "priority": 3,
            "max_attempts": 4,
            "backoff": Backoff.fixed(1000),
            "tags": ["nightly"],
            "meta": {"team": "data"},
        },
        timezone="Europe/Berlin",
        misfire=Misfire.catch_up(3),
        jitter_ms=1000,
    )
    assert (created.name, created.cron, created.timezone) == (name, "30 2 * * *", "Europe/Berlin")
    assert (created.misfire, created.jitter_ms, created.paused) == (Misfire.catch_up(3), 1000, False)
    # The template as sent, and no idempotency key made up (the scheduler sets each job's).
    assert created.job == {
        "kind": "report",
        "queue": queue,
        "args": {"full": True},
        "priority": 3,
        "max_attempts": 4,
        "backoff": {"kind": "fixed", "delay_ms": 1000},
        "tags": ["nightly"],
        "meta": {"team": "data"},
    }
    assert created.created_at >= before and created.last_runs == []
    # 02:30 in Berlin is 00:30 or 01:30 UTC, one day apart.
    times = created.next_fire_times
    assert len(times) == 5 and created.next_fire_at == times[0] > before
    assert all(t.minute == 30 and t.hour in (0, 1) for t in times), times
    assert all(timedelta(hours=22) < b - a < timedelta(hours=26) for a, b in zip(times, times[1:]))

    assert definition(client.get_schedule(name)) == definition(created)
    names = [s.name for s in client.list_schedules()]
    assert name in names and names == sorted(names)

    with pytest.raises(InvalidStateError) as e:
        client.create_schedule(name, "* * * * *", "other")
    assert (e.value.status, e.value.field) == (409, "name")

    # A replace sets the whole definition: what it leaves out takes the defaults.
    replaced = client.replace_schedule(name, "0 * * * *", {"kind": "hourly", "queue": queue})
    assert (replaced.cron, replaced.timezone, replaced.misfire, replaced.jitter_ms) == (
        "0 * * * *",
        "UTC",
        Misfire.run_once(),
        0,
    )
    assert replaced.job == {"kind": "hourly", "queue": queue}
    assert replaced.created_at == created.created_at
    assert replaced.updated_at >= created.updated_at
    assert [t.minute for t in replaced.next_fire_times] == [0] * 5
    assert definition(client.get_schedule(name)) == definition(replaced)

    client.delete_schedule(name)
    with pytest.raises(NotFoundError) as e:
        client.get_schedule(name)
    assert (e.value.status, e.value.code) == (404, "not_found")
    with pytest.raises(NotFoundError):
        client.delete_schedule(name)
    with pytest.raises(NotFoundError):
        client.replace_schedule(name, "0 * * * *", "hourly")
    assert name not in [s.name for s in client.list_schedules()]


def test_pause_and_resume(client, queue):
    name = f"pausing-{queue}"
    created = client.create_schedule(name, "*/5 * * * *", {"kind": "k", "queue": queue}, paused=True)
    assert (created.paused, created.next_fire_times) == (True, [])
    resumed = client.resume_schedule(name)
    assert resumed.paused is False and len(resumed.next_fire_times) == 5
    assert resumed.updated_at >= created.updated_at
    assert client.get_schedule(name).paused is False
    paused = client.pause_schedule(name)
    assert (paused.paused, paused.next_fire_times) == (True, [])
    assert client.get_schedule(name).paused is True
    # A replace that leaves `paused` out resumes, as documented.
    assert client.replace_schedule(name, "*/5 * * * *", {"kind": "k"}).paused is False
    assert client.replace_schedule(name, "*/5 * * * *", "k", paused=True).paused is True
    client.delete_schedule(name)
    with pytest.raises(NotFoundError):
        client.pause_schedule(name)
    with pytest.raises(NotFoundError):
        client.resume_schedule(name)


def test_trigger_enqueues_a_job_from_the_template(client, queue):
    name = f"manual-{queue}"
    template = {"kind": "report", "queue": queue, "args": {"full": True}, "priority": 4}
    client.create_schedule(name, "0 0 1 1 *", {**template, "tags": ["t"]}, paused=True)
    job = client.trigger_schedule(name)  # also while paused
    assert (job.kind, job.queue, job.args, job.priority, job.tags) == (
        "report",
        queue,
        {"full": True},
        4,
        ["t"],
    )
    assert job.state == "available"
    assert job.meta["schedule"] == {"name": name, "manual": True}
    assert job.idempotency_key.startswith(f"schedule:{name}:manual:")
    again = client.trigger_schedule(name)
    assert again.id != job.id
    assert {j.id for j in client.list(queue=queue).jobs} == {job.id, again.id}
    assert client.get(job.id).state == "available"
    assert client.get_schedule(name).paused is True
    client.delete_schedule(name)
    assert client.get(job.id).id == job.id  # the jobs it enqueued stay
    with pytest.raises(NotFoundError):
        client.trigger_schedule(name)


def test_a_schedule_fires_on_its_ticks(client, queue):
    name = f"every-second-{queue}"
    client.create_schedule(name, "* * * * * *", {"kind": "tick", "queue": queue}, misfire="skip")
    try:
        deadline = time.monotonic() + 15
        while not (schedule := client.get_schedule(name)).last_runs:
            if time.monotonic() > deadline:
                pytest.fail(f"the schedule did not fire within 15 s: {schedule}")
            time.sleep(0.1)
    finally:
        client.delete_schedule(name)
    assert schedule.misfire == Misfire.skip()
    run = schedule.last_runs[0]
    job = client.get(run.job_id)
    assert (job.kind, job.queue) == ("tick", queue)
    assert job.meta["schedule"]["name"] == name
    tick_ms = int(run.tick_at.timestamp() * 1000)
    assert job.idempotency_key == f"schedule:{name}:{tick_ms}"
    assert run.enqueued_at >= run.tick_at


@pytest.mark.parametrize(
    "change, field",
    [
        ({"name": "not a name"}, "name"),
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * *"}, "cron"),
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"job": {"kind": ""}}, "job.kind"),
        ({"job": {"kind": "k", "priority": 99_999}}, "job.priority"),
        ({"job": {"kind": "k", "run_at": "2030-01-01T00:00:00Z"}}, "job.run_at"),
        ({"job": {"kind": "k", "delay_ms": 5}}, "job.delay_ms"),
        ({"job": {"kind": "k", "idempotency_key": "x"}}, "job.idempotency_key"),
        ({"job": {"kind": "k", "meta": {"schedule": 1}}}, "job.meta.schedule"),
        ({"jitter_ms": -1}, "jitter_ms"),
        ({"jitter_ms": 3_600_001}, "jitter_ms"),
        ({"misfire": Misfire.catch_up(0)}, "misfire.max"),
        ({"misfire": {"policy": "catch_up", "max": 1001}}, "misfire.max"),
    ],
)
def test_bad_definitions_name_their_field(client, queue, change, field):
    args = {"name": f"bad-{queue}", "cron": "0 * * * *", "job": {"kind": "k"}, **change}
    with pytest.raises(InvalidArgumentError) as e:
        client.create_schedule(**args)
    assert (e.value.status, e.value.field) == (400, field), e.value
    with pytest.raises(NotFoundError):
        client.get_schedule(f"bad-{queue}")  # nothing was created


def test_bad_templates_are_refused_before_sending(client, queue):
    with pytest.raises(TypeError):
        client.create_schedule(f"t-{queue}", "0 * * * *", {"kind": "k", "priorty": 1})
    with pytest.raises(TypeError):
        client.create_schedule(f"t-{queue}", "0 * * * *", {"queue": queue})  # no kind
    with pytest.raises(NotFoundError):
        client.get_schedule(f"t-{queue}")


def test_async_schedules(server, queue):
    async def main():
        async with AsyncClient(server.url) as client:
            name = f"async-{queue}"
            created = await client.create_schedule(
                name,
                "@daily",
                {"kind": "report", "queue": queue},
                misfire={"policy": "skip"},
                paused=True,
            )
            assert (created.cron, created.misfire, created.paused) == (
                "@daily",
                Misfire.skip(),
                True,
            )
            assert definition(await client.get_schedule(name)) == definition(created)
            assert name in [s.name for s in await client.list_schedules()]
            resumed = await client.resume_schedule(name)
            assert resumed.paused is False and len(resumed.next_fire_times) == 5
            assert all((t.hour, t.minute) == (0, 0) for t in resumed.next_fire_times)
            assert (await client.pause_schedule(name)).paused is True
            job = await client.trigger_schedule(name)
            assert (job.kind, job.queue, job.meta["schedule"]["manual"]) == ("report", queue, True)
            replaced = await client.replace_schedule(
                name, "@hourly", "hourly", timezone="Asia/Tokyo", jitter_ms=5
            )
            assert (replaced.cron, replaced.timezone, replaced.job, replaced.jitter_ms) == (
                "@hourly",
                "Asia/Tokyo",
                {"kind": "hourly"},
                5,
            )
            with pytest.raises(InvalidArgumentError) as e:
                await client.replace_schedule(name, "@often", "hourly")
            assert e.value.field == "cron"
            await client.delete_schedule(name)
            with pytest.raises(NotFoundError):
                await client.get_schedule(name)

    asyncio.run(main())
