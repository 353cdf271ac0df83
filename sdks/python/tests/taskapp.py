"""Tasks the tests enqueue and real worker processes run (`hopper-py worker taskapp`).

Handlers that must show they were stopped write why into the file named by their `marker`
argument: the test then knows the worker, not only the server, acted.
"""

import asyncio
import time
from pathlib import Path

from hopper import Backoff, Fail, Hopper, Retry

app = Hopper()  # the tests point it at their server


@app.task
def add(x, y):
    return x + y


@app.task
async def async_add(x, y):
    await asyncio.sleep(0)
    return x + y


@app.task(bind=True, backoff=Backoff.fixed(0))
def flaky(ctx, succeed_at):
    """Fails with an exception until attempt `succeed_at`."""
    if ctx.attempt < succeed_at:
        raise ConnectionError(f"attempt {ctx.attempt} failed")
    return {"attempt": ctx.attempt}


@app.task(bind=True)
def retry_once(ctx, in_ms):
    if ctx.attempt == 1:
        raise Retry(in_ms=in_ms)
    return "second try"


@app.task(bind=True)
async def async_retry_celery_style(ctx):
    if ctx.attempt == 1:
        ctx.retry(countdown=0.05, exc=TimeoutError("gateway busy"))
    return ctx.attempt


@app.task
def reject(reason):
    raise Fail(reason, retryable=False, kind="rejected")


@app.task(backoff=Backoff.fixed(0), retry_for=(ConnectionError,))
def picky(error):
    """Only connection errors are worth a retry."""
    raise (ConnectionError if error == "connection" else KeyError)(error)


@app.task
def unserializable():
    return {"when": object()}


@app.task
def sleep(seconds, started=None):
    """Sleeps; touches the file `started` names first, so a test knows it runs."""
    if started:
        Path(started).write_text("started")
    time.sleep(seconds)
    return seconds


@app.task
async def async_sleep(seconds, started=None):
    if started:
        Path(started).write_text("started")
    await asyncio.sleep(seconds)
    return seconds


@app.task(bind=True)
def cooperative(ctx, seconds, marker):
    """Sleeps, but wakes up when told to stop, and says why."""
    if ctx.sleep(seconds):
        Path(marker).write_text(ctx.cancel_reason.value)
        raise Fail("stopped early")
    return "slept"


@app.task(bind=True)
async def async_cooperative(ctx, seconds, marker):
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        Path(marker).write_text(ctx.cancel_reason.value)
        raise
    return "slept"


@app.task(bind=True)
def progress(ctx, value):
    ctx.progress(value)
    return "reported"


@app.task(bind=True)
async def async_progress(ctx, value):
    await ctx.aprogress(value)
    return "reported"


@app.task(name="shout")
def shout(word):
    """Run by the exec worker in the interop tests (`shout=echo {word}`)."""
    return word.upper()


@app.task(bind=True)
def traceparent_of(ctx):
    """Answers the W3C trace context the job carried."""
    return ctx.traceparent
