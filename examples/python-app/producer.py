"""The example's producer: enqueues jobs the way a web app would, then waits and prints how each
one ended."""

from hopper import Client

from tasks import app, build_report, send_welcome_email


def main() -> None:
    jobs = [
        send_welcome_email.delay("ada@example.com", name="Ada"),
        send_welcome_email.delay("grace@example.com", name="Grace"),
        # Celery's apply_async options: run in 2 s, ahead of the other reports.
        build_report.apply_async(args=(42,), kwargs={"days": 7}, countdown=2, priority=5),
        build_report.delay(7),
        send_welcome_email.delay("not-an-address", name="Nobody"),  # ends in the dead letters
    ]
    # Many at once, atomically: one request, one commit.
    jobs += app.client.enqueue_batch(
        [send_welcome_email.spec((f"user{i}@example.com", f"User {i}")) for i in range(5)]
    )
    print(f"enqueued {len(jobs)} jobs; waiting for them to finish...\n")

    client: Client = app.client
    for job in jobs:
        done = client.wait(job.id, timeout=120)
        if done.state == "completed":
            n = len(done.errors)
            retried = f"  (retried after {n} failure{'s' if n > 1 else ''})" if n else ""
            print(f"{done.kind:<20} completed  {done.result}{retried}")
        else:
            error = done.errors[-1]
            print(f"{done.kind:<20} {done.state:<10} {error.kind}: {error.message.splitlines()[0]}")


if __name__ == "__main__":
    main()
