"""The example's tasks: the module a producer imports to enqueue and a worker imports to run
(`hopper-py worker tasks`), as with Celery."""

import asyncio
import random
import time

from hopper import Backoff, Fail, Hopper

app = Hopper()  # HOPPER_URL, else http://127.0.0.1:7480


@app.task(queue="emails", max_attempts=5, backoff=Backoff.exponential(base_ms=500))
def send_welcome_email(to, name):
    """A flaky mail server: one send in four fails and is retried after 0.5 s, 1 s, ..."""
    if "@" not in to:
        # No retry will fix the address: straight to the dead-letter queue.
        raise Fail(f"not an email address: {to!r}", retryable=False, kind="bad_address")
    time.sleep(0.1)
    if random.random() < 0.25:
        raise ConnectionError("the mail server hung up")
    return {"sent_to": to, "greeting": f"Welcome, {name}!"}


@app.task(queue="reports", bind=True, timeout_ms=60_000)
async def build_report(ctx, user_id, days=30):
    """A coroutine that reports its progress while it works."""
    for step in range(1, 4):
        await asyncio.sleep(0.3)
        await ctx.aprogress({"step": step, "of": 3})
    return {"user_id": user_id, "days": days, "signups": random.randint(10, 99)}
