"""The task of the drain benchmark: does nothing, so the figure measures the queue and the
worker runtime, not the work."""

from hopper import Hopper

app = Hopper()


@app.task
def noop(n):
    return None
