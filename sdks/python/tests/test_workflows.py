"""Workflow runs through the blocking and the asyncio client against a real server: a diamond
run through a Python worker whose join step gets both parents' results, a failed parent under
`continue` and a fan-out added by a running step, cancel, retry and list, steps added from
outside, and bad graphs refused with the field named. Then workflow definitions: stored with
parameters, triggered once per logical date, backfilled over a range of dates, in both
flavours."""

import asyncio
import threading
import time
from datetime import date
from typing import Any, Dict, Iterator, Tuple

import pytest

from hopper import (
    AsyncClient,
    BackfillStatus,
    Client,
    Fail,
    Hopper,
    InvalidArgumentError,
    InvalidStateError,
    Job,
    NotFoundError,
    Task,
    Worker,
    WorkflowDefinition,
    WorkflowRun,
)
from hopper import _wire as wire


def wait_run(client: Client, workflow_id: str, limit: float = 15.0) -> WorkflowRun:
    """Polls the run until it has finished; fails the test after `limit` seconds."""
    deadline = time.monotonic() + limit
    while True:
        run = client.workflow(workflow_id)
        if run.workflow.finished:
            return run
        if time.monotonic() > deadline:
            pytest.fail(f"run {workflow_id} did not finish in {limit} s: {run}")
        time.sleep(0.02)


@pytest.fixture
def tasks(server, queue) -> Iterator[Dict[str, Task]]:
    """The tasks of this module's runs, served by an in-process worker on the test's queue."""
    app = Hopper(server.url)

    @app.task(queue=queue)
    def start(n):
        return {"n": n}

    @app.task(queue=queue, bind=True)
    def left(ctx):
        return ctx.parents["start"]["n"] + 1

    @app.task(queue=queue, bind=True)
    async def right(ctx):
        return ctx.parents["start"]["n"] * 10

    @app.task(queue=queue, bind=True)
    def join(ctx):
        return {
            "step": ctx.workflow.step,
            "depends_on": ctx.workflow.depends_on,
            "parents": ctx.parents,
            "failed": ctx.failed_parents,
            "job_parents": ctx.job.parents,
        }

    @app.task(queue=queue, max_attempts=1)
    def bad():
        raise Fail("nope", retryable=False)

    @app.task(queue=queue, bind=True)
    def split(ctx, parts):
        added = ctx.add_steps(
            [
                {"step": f"part{i}", "depends_on": "split", "job": part.spec((i,))}
                for i in range(parts)
            ]
            + [
                {
                    "step": "merge",
                    "depends_on": [f"part{i}" for i in range(parts)] + ["bad"],
                    "job": merge.spec(),
                }
            ]
        )
        return [j.step for j in added]

    @app.task(queue=queue, bind=True)
    def part(ctx, i):
        return i * i + len(ctx.parents["split"])

    @app.task(queue=queue, bind=True)
    async def merge(ctx):
        return {"parents": ctx.parents, "failed": ctx.failed_parents}

    @app.task(queue=queue, bind=True)
    async def lonely(ctx):
        try:
            await ctx.aadd_steps([{"step": "x", "job": "start"}])
        except ValueError as e:
            return str(e)
        return "added"

    worker = Worker(app, queues=[queue], concurrency=4, lease_ms=1000, poll_wait_ms=1000)
    running = threading.Thread(target=worker.run, daemon=True)
    running.start()
    yield {t.name: t for t in (start, left, right, join, bad, split, part, merge, lonely)}
    worker.stop()
    running.join(10)
    assert not running.is_alive(), "the worker did not stop"
    assert worker.stats.undelivered == 0, worker.stats
    app.close()


def test_a_diamond_joins_both_parents_results(client, tasks):
    t = tasks
    run = client.submit_workflow(
        [
            {"step": "join", "depends_on": ["left", "right"], "job": t["join"].spec()},
            {"step": "left", "depends_on": ["start"], "job": t["left"].spec()},
            {"step": "right", "depends_on": ["start"], "job": t["right"].spec()},
            {"step": "start", "job": t["start"].spec((5,))},
        ],
        name="diamond",
    )
    assert (run.workflow.name, run.workflow.state, run.workflow.steps) == ("diamond", "running", 4)
    # Answered in topological order; only the root is runnable.
    assert [j.step for j in run.steps][0] == "start"
    assert run.step("start").state == "available"
    assert run.step("join").state == "pending"
    assert run.step("join").workflow.waiting_on == 2
    assert run.step("join").workflow.depends_on == ["left", "right"]

    done = wait_run(client, run.id)
    assert done.state == "completed", done
    assert done.workflow.finished_at is not None
    assert done.step("left").result == 6
    assert done.step("right").result == 50
    assert done.step("join").result == {
        "step": "join",
        "depends_on": ["left", "right"],
        "parents": {"left": 6, "right": 50},
        "failed": {},
        "job_parents": {"left": 6, "right": 50},
    }


def test_failed_parents_and_a_fan_out_from_a_running_step(client, tasks):
    t = tasks
    run = client.submit_workflow(
        [
            {"step": "bad", "on_failure": "continue", "job": t["bad"].spec()},
            {"step": "split", "job": t["split"].spec((3,))},
        ]
    )
    done = wait_run(client, run.id)
    assert done.state == "failed", "a failure under `continue` fails the run"
    assert done.workflow.steps == 6
    assert done.step("split").result == ["part0", "part1", "part2", "merge"]
    # Each part saw split's result (a list of 4 names) as its parent's.
    assert [done.step(f"part{i}").result for i in range(3)] == [4, 5, 8]
    assert done.step("merge").state == "completed"
    assert done.step("merge").result == {
        "parents": {"part0": 4, "part1": 5, "part2": 8, "bad": None},
        "failed": {"bad": {"state": "dead", "error": "nope"}},
    }

    # Only a step can add steps.
    plain = client.enqueue("lonely", queue=t["lonely"].queue)
    refused = client.wait(plain.id, timeout=10).result
    assert refused == f"job {plain.id} is not a step of a workflow run"


def test_cancel_retry_list_and_steps_added_from_outside(client, queue):
    # Nothing serves `queue`: the run stays where the calls put it.
    run = client.submit_workflow(
        [
            {"step": "a", "job": {"kind": "noop", "queue": queue, "args": {"x": 1}}},
            {"step": "b", "depends_on": ["a"], "job": {"kind": "noop", "queue": queue}},
        ],
        name=f"manual-{queue}",
    )
    added = client.add_workflow_steps(
        run.id,
        [{"step": "c", "depends_on": ["a", "b"], "on_failure": "ignore", "job": "noop"}],
    )
    assert [(j.step, j.state, j.workflow.waiting_on) for j in added] == [("c", "pending", 2)]
    assert client.workflow(run.id).workflow.steps == 3

    running = client.workflows(state="running", limit=500)
    assert run.id in [w.id for w in running.workflows]

    cancelled = client.cancel_workflow(run.id)
    assert (cancelled.id, cancelled.state, cancelled.cancel_requested) == (
        run.id,
        "cancelled",
        True,
    )
    assert {j.state for j in client.workflow(run.id).steps} == {"cancelled"}
    with pytest.raises(InvalidStateError):
        client.cancel_workflow(run.id)
    with pytest.raises(InvalidStateError):
        client.add_workflow_steps(run.id, [{"step": "d", "job": "noop"}])
    assert run.id in [w.id for w in client.workflows(state="cancelled", limit=500).workflows]

    retried = client.retry_workflow(run.id)
    assert (retried.state, retried.open_steps) == ("running", 3)
    assert client.workflow(run.id).step("a").state == "available"
    with pytest.raises(InvalidStateError):
        client.retry_workflow(run.id)

    # Paging: one run per page, the cursor leads on.
    client.submit_workflow([{"step": "z", "job": {"kind": "noop", "queue": queue}}])
    first = client.workflows(limit=1)
    assert len(first.workflows) == 1 and first.next_cursor
    second = client.workflows(limit=1, cursor=first.next_cursor)
    assert second.workflows[0].id != first.workflows[0].id


def test_bad_graphs_are_refused_with_the_field_named(client, queue):
    job = {"kind": "noop", "queue": queue}
    with pytest.raises(InvalidArgumentError) as e:
        client.submit_workflow(
            [{"step": "a", "job": job}, {"step": "b", "depends_on": ["nope"], "job": job}]
        )
    assert e.value.field == "steps[1].depends_on[0]"
    with pytest.raises(InvalidArgumentError) as e:
        client.submit_workflow(
            [
                {"step": "a", "depends_on": ["b"], "job": job},
                {"step": "b", "depends_on": ["a"], "job": job},
            ]
        )
    assert "cycle" in str(e.value)
    with pytest.raises(InvalidArgumentError) as e:
        client.submit_workflow([{"step": "a", "job": job}, {"step": "a", "job": job}])
    assert e.value.field == "steps[1].step"
    with pytest.raises(InvalidArgumentError):
        client.submit_workflow([{"step": "a", "job": job, "retries": 3}])
    with pytest.raises(InvalidArgumentError):
        client.workflows(state="done")
    with pytest.raises(NotFoundError):
        client.workflow("0190f5c6-0000-7000-8000-000000000001")


def test_the_asyncio_client_mirrors_the_blocking_one(server, queue):
    async def main() -> Tuple[Any, ...]:
        async with AsyncClient(server.url) as c:
            run = await c.submit_workflow(
                [{"step": "only", "job": {"kind": "noop", "queue": queue}}], name="async"
            )
            got = await c.workflow(run.id)
            added = await c.add_workflow_steps(
                run.id, [{"step": "next", "depends_on": ["only"], "job": "noop"}]
            )
            page = await c.workflows(state="running", limit=500)
            cancelled = await c.cancel_workflow(run.id)
            retried = await c.retry_workflow(run.id)
            return run, got, added, page, cancelled, retried

    run, got, added, page, cancelled, retried = asyncio.run(main())
    assert (got.id, got.workflow.name, [j.step for j in got.steps]) == (run.id, "async", ["only"])
    assert isinstance(added[0], Job) and added[0].step == "next"
    assert run.id in [w.id for w in page.workflows]
    assert cancelled.state == "cancelled"
    assert retried.state == "running"


def test_steps_are_written_as_the_api_takes_them():
    app = Hopper("http://127.0.0.1:1")

    @app.task(queue="q", max_attempts=3)
    def load(table):
        return table

    body = wire.step_body({"step": "load", "depends_on": "extract", "job": load.spec(("t",))})
    assert body == {
        "step": "load",
        "depends_on": ["extract"],
        "job": {"kind": "load", "args": {"table": "t"}, "queue": "q", "max_attempts": 3},
    }
    assert wire.step_body({"step": "x", "job": "kind", "on_failure": None}) == {
        "step": "x",
        "job": {"kind": "kind"},
    }
    with pytest.raises(TypeError):
        wire.step_body("x")  # type: ignore[arg-type]
    app.close()


def export_steps(queue: str) -> Any:
    """A definition's steps: `export` takes the `table` parameter and the logical date,
    `notify` runs after it."""
    return [
        {
            "step": "export",
            "job": {
                "kind": "export",
                "queue": queue,
                "args": {
                    "table": "{{params.table}}",
                    "limit": "{{params.limit}}",
                    "path": "s3://bucket/{{params.table}}/{{logical_date}}.csv",
                },
            },
        },
        {"step": "notify", "depends_on": ["export"], "job": {"kind": "notify", "queue": queue}},
    ]


def test_a_definition_runs_once_per_logical_date(client, queue):
    name = f"export-{queue}"
    stored = client.put_workflow_definition(
        name, export_steps(queue), params={"table": "users", "limit": 10}, cron="0 3 * * *"
    )
    assert isinstance(stored, WorkflowDefinition)
    assert (stored.name, stored.params, stored.cron, stored.timezone) == (
        name,
        {"table": "users", "limit": 10},
        "0 3 * * *",
        "UTC",
    )
    assert [s["step"] for s in stored.steps] == ["export", "notify"]
    assert stored.next_fire_at is not None and stored.next_fire_at.hour == 3
    assert name in [d.name for d in client.workflow_definitions()]
    assert client.workflow_definition(name).steps == stored.steps

    first = client.trigger_workflow(name, params={"limit": 99}, logical_date="2026-11-30")
    again = client.trigger_workflow(name, logical_date=date(2026, 11, 30))
    assert first.created is True and again.created is False
    assert again.id == first.id
    assert (first.workflow.definition, first.workflow.logical_date) == (name, "2026-11-30")
    assert first.workflow.name == name
    assert first.step("export").args == {
        "table": "users",
        "limit": 99,
        "path": "s3://bucket/users/2026-11-30.csv",
    }
    assert first.step("notify").state == "pending"
    other = client.trigger_workflow(name)
    assert other.created is True and other.id != first.id, "now is another logical date"

    # A parameter no one gives is refused, naming where it is used.
    with pytest.raises(InvalidArgumentError) as e:
        client.put_workflow_definition(
            f"{name}-bad", [{"step": "a", "job": {"kind": "k", "args": "{{params.nope}}"}}]
        )
    assert e.value.field == "steps[0].job.args"

    client.delete_workflow_definition(name)
    with pytest.raises(NotFoundError):
        client.workflow_definition(name)
    with pytest.raises(NotFoundError):
        client.trigger_workflow(name)
    assert client.workflow(first.id).workflow.definition == name, "its runs stay"


def test_a_backfill_answers_its_progress(client, queue):
    name = f"backfill-{queue}"
    client.put_workflow_definition(name, export_steps(queue), params={"table": "t", "limit": 1})
    status = client.backfill_workflow(
        name, "2026-01-01", date(2026, 1, 2), params={"table": "orders"}, max_running=1
    )
    assert isinstance(status, BackfillStatus)
    assert status.created is True
    b = status.backfill
    assert (b.definition, b.from_, b.to, b.params, b.max_running) == (
        name,
        "2026-01-01",
        "2026-01-02",
        {"table": "orders"},
        1,
    )
    assert status.id == b.id
    assert status.progress.dates == 2
    assert status.progress.created <= 2

    same = client.backfill_workflow(name, "2026-01-01", "2026-01-02", params={"table": "orders"})
    assert same.created is False and same.id == status.id

    # The server starts the runs in date order, one at a time (nothing works these steps, so
    # the first stays running).
    deadline = time.monotonic() + 15
    while True:
        got = client.backfill(status.id)
        if got.progress.created >= 1:
            break
        assert time.monotonic() < deadline, f"no run started: {got}"
        time.sleep(0.05)
    assert got.created is None and got.backfill == b
    assert got.progress.running == 1 and got.progress.created == 1
    assert not got.finished
    runs = [w for w in client.workflows(limit=500).workflows if w.definition == name]
    assert [w.logical_date for w in runs] == ["2026-01-01"]
    assert client.workflow(runs[0].id).step("export").args["path"] == (
        "s3://bucket/orders/2026-01-01.csv"
    )

    with pytest.raises(InvalidArgumentError) as e:
        client.backfill_workflow(name, "2026-01-02", "2026-01-01")
    assert e.value.field == "to"
    with pytest.raises(NotFoundError):
        client.backfill("0190f5c6-0000-7000-8000-000000000001")


def test_the_asyncio_client_defines_triggers_and_backfills(server, queue):
    name = f"async-{queue}"

    async def main() -> Tuple[Any, ...]:
        async with AsyncClient(server.url) as c:
            stored = await c.put_workflow_definition(
                name, export_steps(queue), params={"table": "a", "limit": 2}
            )
            listed = await c.workflow_definitions()
            got = await c.workflow_definition(name)
            first = await c.trigger_workflow(name, logical_date="2026-05-01")
            again = await c.trigger_workflow(name, {"table": "b"}, "2026-05-01")
            backfill = await c.backfill_workflow(name, "2026-05-01", "2026-05-02")
            status = await c.backfill(backfill.id)
            await c.delete_workflow_definition(name)
            return stored, listed, got, first, again, backfill, status

    stored, listed, got, first, again, backfill, status = asyncio.run(main())
    assert stored.name == got.name == name and name in [d.name for d in listed]
    assert (first.created, again.created, again.id) == (True, False, first.id)
    assert backfill.created is True and backfill.progress.dates == 2
    assert status.id == backfill.id and status.created is None
    # 2026-05-01 had its run already: the backfill makes none for it.
    assert status.progress.created >= 1


def test_definition_requests_are_written_as_the_api_takes_them():
    body = wire.definition_body(
        [{"step": "a", "job": "k", "depends_on": None}], {"n": 1}, "@daily", None
    )
    assert body == {
        "steps": [{"step": "a", "job": {"kind": "k"}}],
        "params": {"n": 1},
        "cron": "@daily",
    }
    assert wire.definition_body([], None, None, "Europe/Paris") == {
        "steps": [],
        "timezone": "Europe/Paris",
    }
    call = wire.trigger_workflow("n", None, date(2026, 1, 2))
    assert (call.method, call.path, call.body) == (
        "POST",
        "/v1/workflows/definitions/n/runs",
        b'{"logical_date":"2026-01-02"}',
    )
    call = wire.backfill_workflow("a b", date(2026, 1, 1), "2026-01-03", None, 2)
    assert call.path == "/v1/workflows/definitions/a%20b/backfill"
    assert call.body == b'{"from":"2026-01-01","to":"2026-01-03","max_running":2}'
