"""`hopper-py`, the command line of the Python SDK.

    hopper-py worker myapp.tasks --queues emails,reports --concurrency 20

imports the modules named (from the current directory, like `celery -A`), finds the `Hopper`
app their tasks are registered on (`module:attribute` names it when there are several), and
runs a `Worker` for it until SIGTERM or SIGINT. Exits 0 after a graceful shutdown.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import List, Optional, Sequence

from .errors import HopperError
from .tasks import Hopper
from .worker import DEFAULT_GRACE_PERIOD, DEFAULT_LEASE_MS, Worker


def find_app(targets: Sequence[str]) -> Hopper:
    """Imports `module` or `module:attribute` targets; returns the one app they hold."""
    # Like `python -m`, let the current directory's modules be found.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    apps: List[Hopper] = []
    for target in targets:
        module_name, _, attr = target.partition(":")
        module = importlib.import_module(module_name)
        if attr:
            app = getattr(module, attr, None)
            if not isinstance(app, Hopper):
                raise SystemExit(f"hopper-py: {target} is not a Hopper app")
            found = [app]
        else:
            found = [v for v in vars(module).values() if isinstance(v, Hopper)]
        for app in found:
            if all(app is not a for a in apps):
                apps.append(app)
    if not apps:
        raise SystemExit(f"hopper-py: no Hopper app in {', '.join(targets)}")
    if len(apps) > 1:
        raise SystemExit("hopper-py: several Hopper apps found; name one as module:attribute")
    return apps[0]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hopper-py", description="Hopper's Python SDK")
    commands = parser.add_subparsers(dest="command", required=True)
    w = commands.add_parser(
        "worker",
        help="run the tasks of a module",
        description="Lease jobs and run them with the tasks of the modules given.",
    )
    w.add_argument("modules", nargs="+", metavar="MODULE", help="module[:app] to import")
    w.add_argument(
        "--queues",
        help="queues to lease from, comma-separated (default: every queue the tasks name)",
    )
    w.add_argument("--concurrency", type=int, default=10, help="most jobs running at once")
    w.add_argument("--server", help="the server's URL (default: the app's, from HOPPER_URL)")
    w.add_argument(
        "--lease-ms",
        type=int,
        default=DEFAULT_LEASE_MS,
        help="lease length; heartbeats renew it every third of it",
    )
    w.add_argument(
        "--grace-period-secs",
        type=float,
        default=DEFAULT_GRACE_PERIOD,
        help="on SIGTERM/SIGINT, how long running jobs may finish",
    )
    w.add_argument("--worker-id", help="the id the server shows (default host:pid-N)")
    w.add_argument(
        "--log-level",
        default=os.environ.get("HOPPER_LOG_LEVEL", "INFO"),
        help="DEBUG, INFO, WARNING or ERROR",
    )
    return parser


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    app = find_app(args.modules)
    if args.server:
        app.url = args.server.rstrip("/")
    try:
        worker = Worker(
            app,
            queues=[q for q in (args.queues or "").split(",") if q] or None,
            concurrency=args.concurrency,
            worker_id=args.worker_id,
            lease_ms=args.lease_ms,
            grace_period=args.grace_period_secs,
        )
    except ValueError as e:
        raise SystemExit(f"hopper-py: {e}") from None
    try:
        worker.run()
    except HopperError as e:
        raise SystemExit(f"hopper-py: {e}") from None


if __name__ == "__main__":
    main()
