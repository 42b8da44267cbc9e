"""Fixtures of the builder tests: the palette (read once) and a live server in a thread.

Test modules import the fixtures they use (``palette_fixture`` provides ``palette``...): a
conftest.py here would shadow the ``conftest`` module of tests/ that other test modules import.
"""

import functools
import json
import threading
import urllib.error
import urllib.request

import pytest


@functools.lru_cache(maxsize=1)
def _palette():
    from eisen_lightning.builder.catalog import build_palette

    return build_palette([])


@pytest.fixture(scope="session", name="palette")
def palette_fixture():
    """The palette of the packaged config tree, read once per test session."""
    return _palette()


class Client:
    """Calls the builder's API like the page does (token, JSON, same Host)."""

    def __init__(self, server):
        self.server = server
        self.base = f"http://127.0.0.1:{server.server_address[1]}"

    def call(self, method, path, body=None, headers=None, token=True):
        head = {"X-Builder-Token": self.server.token} if token else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            head["Content-Type"] = "application/json"
        head.update(headers or {})
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=head)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def json(self, method, path, body=None, **kwargs):
        status, data = self.call(method, path, body, **kwargs)
        return status, json.loads(data)


@pytest.fixture(scope="module", name="builder")
def builder_fixture(tmp_path_factory):
    """A running server saving into a temporary config dir; runs work in a temporary directory."""
    from eisen_lightning.builder.server import BuilderServer

    root = tmp_path_factory.mktemp("builder")
    (root / "conf_user" / "experiment").mkdir(parents=True)
    server = BuilderServer(0, root / "conf_user", _palette(), [], root)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module", name="client")
def client_fixture(builder):
    return Client(builder)
