"""A producer's trace context reaches a Python handler (`ctx.traceparent`), whether it came
as the job's `traceparent` field or as the `traceparent` header of the enqueue request; the
job's own field wins over the header."""

import json
import urllib.request

import taskapp

FIELD = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
HEADER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def enqueue_with_header(url: str, body: dict, traceparent: str) -> str:
    """POST /v1/jobs with a `traceparent` header; the new job's id."""
    req = urllib.request.Request(
        f"{url}/v1/jobs",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "traceparent": traceparent},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 201
        return json.loads(resp.read())["id"]


def test_traceparent_reaches_the_handler(server, client, queue):
    worker = server.python_worker("--queues", queue)
    from_field = taskapp.traceparent_of.apply_async(queue=queue, traceparent=FIELD).id
    body = {"kind": "traceparent_of", "queue": queue, "args": {}}
    from_header = enqueue_with_header(server.url, body, HEADER)
    both = enqueue_with_header(server.url, {**body, "traceparent": FIELD}, HEADER)
    untraced = taskapp.traceparent_of.apply_async(queue=queue).id
    for job_id, expected in [
        (from_field, FIELD),
        (from_header, HEADER),
        (both, FIELD),
        (untraced, None),
    ]:
        done = client.wait(job_id, timeout=10)
        assert (done.state, done.result) == ("completed", expected), done
    assert worker.terminate() == 0, worker.output()
