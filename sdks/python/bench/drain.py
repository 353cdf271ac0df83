"""W3 drain benchmark with the Python worker (BENCHMARKS.md's workload, 20,000 jobs).

Against a running server (it starts none): enqueues the jobs into a fresh queue in batches of
1,000, then starts one `hopper-py worker` process at concurrency 10 and times from its start
to the last job's completion as the server recorded it (its `finished_at`; server and
benchmark share the machine's clock). Waiting is a slow poll, so that measuring does not load
the server. Prints jobs/s; exits non-zero if any job ended otherwise (a lost or failed job
gives no figure).

    python bench/drain.py --server http://127.0.0.1:7480
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from hopper import Client

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=os.environ.get("HOPPER_URL", "http://127.0.0.1:7480"))
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    queue = f"drain-{uuid.uuid4().hex[:8]}"
    client = Client(args.server)
    for start in range(0, args.jobs, 1000):
        count = min(1000, args.jobs - start)
        client.enqueue_batch(
            [{"kind": "noop", "args": {"n": start + i}, "queue": queue} for i in range(count)]
        )

    hopper_py = shutil.which("hopper-py", path=str(Path(sys.executable).parent)) or "hopper-py"
    started = time.time()
    worker = subprocess.Popen(
        [
            hopper_py,
            "worker",
            "drain_tasks",
            "--queues",
            queue,
            "--concurrency",
            str(args.concurrency),
            "--server",
            args.server,
            "--log-level",
            "WARNING",
        ],
        cwd=HERE,
    )
    try:
        while True:
            counts = next((q.counts for q in client.queues() if q.name == queue), {})
            if counts.get("completed", 0) + counts.get("dead", 0) >= args.jobs:
                break
            if worker.poll() is not None:
                sys.exit(f"the worker exited early with status {worker.returncode}")
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    if counts.get("completed", 0) != args.jobs:
        sys.exit(f"not every job completed: {counts}")
    last = 0.0
    cursor = None
    while True:
        page = client.list(queue=queue, state="completed", limit=500, cursor=cursor)
        last = max([last] + [j.finished_at.timestamp() for j in page.jobs if j.finished_at])
        cursor = page.next_cursor
        if cursor is None:
            break
    elapsed = last - started
    rate = args.jobs / elapsed
    if args.json:
        print(
            json.dumps(
                {
                    "workload": "W3-python",
                    "jobs": args.jobs,
                    "concurrency": args.concurrency,
                    "seconds": round(elapsed, 3),
                    "jobs_per_s": round(rate),
                }
            )
        )
    else:
        print(
            f"W3 drain, Python worker: {args.jobs} jobs in {elapsed:.2f} s = {rate:,.0f} jobs/s "
            f"(concurrency {args.concurrency})"
        )
    client.purge_queue(queue, "completed")


if __name__ == "__main__":
    main()
