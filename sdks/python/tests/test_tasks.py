"""Tasks without a server: how a call becomes a job's args and options, and back; and how
error answers map to exceptions."""

from datetime import datetime, timedelta, timezone

import pytest

from hopper import (
    ApiError,
    Backoff,
    Hopper,
    IdempotencyConflictError,
    InvalidArgumentError,
    LeaseLostError,
    NotFoundError,
    RateLimitedError,
    UnavailableError,
)
from hopper._wire import job_body
from hopper.errors import api_error
from hopper.models import parse_time

app = Hopper("http://127.0.0.1:1")


@app.task(queue="emails", priority=3, max_attempts=5, backoff=Backoff.fixed(1000))
def send_email(to, subject="hello", *, cc=None):
    return f"{to}:{subject}:{cc}"


@app.task(bind=True)
def bound(ctx, a, **extra):
    return ctx, a, extra


@app.task
def variadic(*items):
    return items


def test_a_call_becomes_an_object_of_parameter_names():
    assert send_email.encode_args(("ada@example.com",), {"cc": "bob"}) == {
        "to": "ada@example.com",
        "cc": "bob",
    }
    assert bound.encode_args((1,), {"x": 2}) == {"a": 1, "x": 2}  # context excluded
    assert variadic.encode_args((1, 2, 3), {}) == [1, 2, 3]


def test_a_wrong_call_fails_in_the_producer():
    with pytest.raises(TypeError):
        send_email.delay()  # `to` is missing: no request is even tried
    with pytest.raises(TypeError):
        send_email.delay("a", nope=1)
    with pytest.raises(TypeError):
        variadic.delay(1, key=2)


def test_args_come_back_as_the_call():
    pos, kw = send_email.decode_args({"to": "ada", "cc": "bob"})
    assert send_email(*pos, **kw) == "ada:hello:bob"
    assert variadic.decode_args([1, 2]) == ((1, 2), {})
    assert bound.decode_args({"a": 1, "z": 2}) == ((), {"a": 1, "z": 2})
    with pytest.raises(TypeError):
        send_email.decode_args({"subject": "no recipient"})
    with pytest.raises(TypeError):
        send_email.decode_args(None)


def test_spec_merges_task_options_with_the_call_and_celery_timing():
    spec = send_email.spec(("ada",), countdown=1.5, priority=9, tags=["x"])
    assert spec == {
        "kind": "send_email",
        "args": {"to": "ada"},
        "queue": "emails",
        "priority": 9,
        "max_attempts": 5,
        "backoff": Backoff.fixed(1000),
        "delay_ms": 1500,
        "tags": ["x"],
    }
    eta = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert send_email.spec(("ada",), eta=eta, queue="other")["run_at"] == eta
    assert send_email.spec(("ada",), queue="other")["queue"] == "other"
    with pytest.raises(TypeError):
        send_email.spec(("ada",), countdown=1, eta=eta)


def test_task_options_are_checked_with_hints_for_celery_users():
    with pytest.raises(TypeError, match="max_attempts"):
        app.task(max_retries=3)(lambda: None)
    with pytest.raises(TypeError, match="always acknowledges"):
        app.task(acks_late=True)(lambda: None)
    with pytest.raises(TypeError):
        app.task(bind=True)(lambda: None)  # no parameter for the context
    with pytest.raises(ValueError, match="two tasks"):
        app.task(name="send_email")(lambda: None)


def test_tasks_are_registered_by_name_and_still_callable():
    assert set(app.tasks) == {"send_email", "bound", "variadic"}
    assert app.tasks["send_email"] is send_email
    assert send_email("ada", cc="c") == "ada:hello:c"
    assert send_email.__doc__ is None and send_email.__name__ == "send_email"
    assert bound.is_async is False


@pytest.mark.parametrize(
    "status, body, cls",
    [
        (
            400,
            b'{"error":{"code":"invalid_argument","message":"m","field":"priority"}}',
            InvalidArgumentError,
        ),
        (404, b'{"error":{"code":"not_found","message":"m"}}', NotFoundError),
        (409, b'{"error":{"code":"lease_lost","message":"m"}}', LeaseLostError),
        (409, b'{"error":{"code":"idempotency_conflict","message":"m"}}', IdempotencyConflictError),
        (429, b'{"error":{"code":"rate_limited","message":"m"}}', RateLimitedError),
        (503, b'{"error":{"code":"unavailable","message":"shutting down"}}', UnavailableError),
        (502, b"<html>bad gateway</html>", UnavailableError),
        (418, b'{"error":{"code":"teapot","message":"m"}}', ApiError),
    ],
)
def test_error_answers_map_to_exceptions(status, body, cls):
    e = api_error(status, body, {"retry-after": "2", "x-request-id": "r1"})
    assert type(e) is cls
    assert (e.status, e.request_id) == (status, "r1")
    assert e.retryable == (status in (429, 502, 503))
    if e.retryable:
        assert e.retry_after == 2.0


def test_unknown_codes_are_kept():
    e = api_error(418, b'{"error":{"code":"teapot","message":"short and stout"}}', {})
    assert (e.code, e.message, str(e)) == (
        "teapot",
        "short and stout",
        "teapot (418): short and stout",
    )


def test_times_must_be_aware_and_are_read_in_any_precision():
    with pytest.raises(ValueError):
        job_body("k", run_at=datetime.now() + timedelta(minutes=1))  # local time or UTC?
    eta = datetime(2030, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    assert job_body("k", run_at=eta)["run_at"] == "2030-01-01T00:00:00Z"
    assert parse_time("2026-11-22T07:00:27.406Z") == datetime(
        2026, 11, 22, 7, 0, 27, 406000, tzinfo=timezone.utc
    )
    assert parse_time("2026-11-22T07:00:27.123456789Z").microsecond == 123456


def test_the_cli_finds_the_app_of_a_module():
    import taskapp
    from hopper.cli import find_app

    assert find_app(["taskapp"]) is taskapp.app
    assert find_app(["taskapp:app", "taskapp"]) is taskapp.app
    with pytest.raises(SystemExit, match="not a Hopper app"):
        find_app(["taskapp:add"])
    with pytest.raises(SystemExit, match="no Hopper app"):
        find_app(["json"])
