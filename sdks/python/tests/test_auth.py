"""The SDK against a server with authentication on: a key (argument or `HOPPER_API_KEY`) is
sent as a bearer token, a missing or revoked one raises `UnauthenticatedError`, a role that may
not make a call raises `PermissionDeniedError`, and `namespace` keeps tenants apart."""

import os
import secrets
import subprocess
from pathlib import Path

import pytest

from hopper import Client
from hopper.errors import NotFoundError, PermissionDeniedError, UnauthenticatedError

from conftest import HOPPER_BIN, _need_binary


@pytest.fixture
def keyed_server(tmp_path: Path):
    """A server of this test's own that installed a fresh admin key at start."""
    _need_binary()
    key = f"hop_{secrets.token_hex(8)}_{secrets.token_hex(32)}"
    env = {k: v for k, v in os.environ.items() if k != "HOPPER_DATABASE_URL"}
    env.update({"RUST_LOG": "warn", "HOPPER_ADMIN_KEY": key})
    proc = subprocess.Popen(
        [HOPPER_BIN, "server", "--bind", "127.0.0.1:0", "--durability", "relaxed",
         "--data-dir", str(tmp_path / "data")],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
    )
    try:
        line = proc.stdout.readline().decode().strip()
        assert line.startswith("hopper listening on "), line
        yield line[len("hopper listening on "):], key
    finally:
        proc.terminate()
        proc.wait(30)


def test_keys_roles_and_namespaces(keyed_server, monkeypatch):
    url, admin = keyed_server
    monkeypatch.delenv("HOPPER_API_KEY", raising=False)
    monkeypatch.delenv("HOPPER_NAMESPACE", raising=False)
    with Client(url) as anonymous:
        with pytest.raises(UnauthenticatedError):
            anonymous.enqueue("k")
    import json
    import urllib.request

    def create(role: str, namespaces: list) -> str:
        req = urllib.request.Request(
            f"{url}/v1/keys",
            data=json.dumps({"name": role, "role": role, "namespaces": namespaces}).encode(),
            headers={"authorization": f"Bearer {admin}", "content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req) as resp:
            return json.load(resp)["token"]

    producer = create("producer", ["shop"])
    viewer = create("viewer", ["shop"])
    other = create("admin", ["blog"])

    with Client(url, api_key=producer) as p:
        job = p.enqueue("ship", {"order": 7})
        assert job.namespace == "shop"
    # The key can come from the environment, like HOPPER_URL.
    monkeypatch.setenv("HOPPER_API_KEY", viewer)
    with Client(url) as v:
        assert v.get(job.id).id == job.id
        with pytest.raises(PermissionDeniedError):
            v.enqueue("ship")
    monkeypatch.delenv("HOPPER_API_KEY")
    # Another namespace's key cannot see the job, even naming the namespace.
    with Client(url, api_key=other) as o:
        with pytest.raises(NotFoundError):
            o.get(job.id)
        assert all(j.id != job.id for j in o.list().jobs)
    with Client(url, api_key=other, namespace="shop") as o:
        with pytest.raises(NotFoundError):
            o.get(job.id)
    # An admin of every namespace picks one with `namespace`.
    with Client(url, api_key=admin, namespace="shop") as a:
        assert a.get(job.id).id == job.id
