"""The builder's HTTP server: the standard library, 127.0.0.1 only, a token on every API call.

Every request must name this server in its ``Host`` header (no DNS rebinding); API calls must
carry the session token in ``X-Builder-Token``, and a browser's ``Origin``, when sent, must be
this server. The page never sends a ``_target_``: components are chosen by group and option.
"""

import hmac
import importlib.resources
import json
import re
import secrets
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from eisen_lightning.builder import compose, spec, validate
from eisen_lightning.builder.catalog import Palette, build_palette
from eisen_lightning.builder.runs import Runs
from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)
STATIC_FILES = {
    "/": "index.html",
    "/index.html": "index.html",
    "/app.js": "app.js",
    "/style.css": "style.css",
}
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css"}
_MAX_BODY = 1 << 20


class BuilderServer(ThreadingHTTPServer):
    """The builder's server; :func:`make_server` builds one.

    Args:
        port: The port on 127.0.0.1 (0: a free one).
        config_dir: Where experiments are saved (``config_dir/experiment/NAME.yaml``) and read from.
        palette: The components offered.
        allow: Extra ``_target_`` patterns (``fnmatch``) accepted besides the palette's.
        workdir: Working directory of the runs.
    """

    daemon_threads = True

    def __init__(
        self, port: int, config_dir: Path, palette: Palette, allow: list[str], workdir: Path
    ) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.token = secrets.token_urlsafe(24)
        self.config_dir = Path(config_dir).resolve()
        self.palette, self.allow = palette, list(allow)
        self.runs = Runs(self.config_dir, workdir)
        self.packaged = set(compose.groups_and_options([]).get("experiment", []))
        port = self.server_address[1]
        self.hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}

    @property
    def url(self) -> str:
        """The page's address, with the session token."""
        return f"http://127.0.0.1:{self.server_address[1]}/#token={self.token}"

    @property
    def in_package(self) -> bool:
        """Whether experiments are saved into the packaged conf/ tree itself (a source checkout)."""
        return self.config_dir == package_conf_dir()

    def command(self, name: str) -> str:
        """The command line that runs experiment ``name``."""
        flag = "" if self.in_package else f"--config-dir {self.config_dir} "
        return f"python train.py {flag}+experiment={name}"

    def shutdown(self) -> None:
        """Stop the runs, then the server."""
        self.runs.stop_all()
        super().shutdown()


def package_conf_dir() -> Path:
    """The folder of the packaged conf/ tree."""
    return Path(str(importlib.resources.files("eisen_lightning.conf"))).resolve()


def make_server(
    config_dir: Path, port: int = 0, allow: list[str] | None = None, workdir: Path | None = None
) -> BuilderServer:
    """Read the palette from the config tree and bind the server (call ``serve_forever`` to serve).

    Args:
        config_dir: Where experiments are saved; created when missing.
        port: The port on 127.0.0.1; 0 picks a free one.
        allow: Extra ``_target_`` patterns accepted in experiments.
        workdir: Working directory of the runs (default: the current one).
    """
    config_dir = Path(config_dir)
    (config_dir / "experiment").mkdir(parents=True, exist_ok=True)
    palette = build_palette([config_dir])
    return BuilderServer(port, config_dir, palette, allow or [], Path(workdir or Path.cwd()))


class Handler(BaseHTTPRequestHandler):
    """Routes the page's requests."""

    server: BuilderServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002, D102
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: D102
        if not self._host_ok():
            return
        path = self.path.split("?")[0]
        if path in STATIC_FILES:
            return self._static(STATIC_FILES[path])
        if not self._api_ok():
            return
        if path == "/api/palette":
            return self._json({**self.server.palette.to_json(), "config_dir": str(self.server.config_dir)})
        if path == "/api/experiments":
            return self._json({"experiments": self._experiments()})
        match = re.fullmatch(r"/api/experiments/([A-Za-z][\w-]*)", path)
        if match:
            return self._import(match.group(1))
        match = re.fullmatch(r"/api/runs/(\d+)/events", path)
        if match and match.group(1) in self.server.runs.runs:
            return self._stream(match.group(1))
        self._error(HTTPStatus.NOT_FOUND, f"no such resource {path}")

    def do_POST(self) -> None:  # noqa: D102
        if not (self._host_ok() and self._api_ok()):
            return
        body = self._body()
        if body is None:
            return
        if self.path == "/api/validate":
            return self._validate(body, save=False)
        if self.path == "/api/save":
            return self._validate(body, save=True)
        if self.path == "/api/runs":
            return self._run(body)
        self._error(HTTPStatus.NOT_FOUND, f"no such resource {self.path}")

    def do_DELETE(self) -> None:  # noqa: D102
        if not (self._host_ok() and self._api_ok()):
            return
        match = re.fullmatch(r"/api/runs/(\d+)", self.path)
        if not match:
            return self._error(HTTPStatus.NOT_FOUND, f"no such resource {self.path}")
        self._json({"stopped": self.server.runs.stop(match.group(1))})

    # -- checks ---------------------------------------------------------------------------------

    def _host_ok(self) -> bool:
        if self.headers.get("Host") not in self.server.hosts:
            self._error(HTTPStatus.FORBIDDEN, "unexpected Host header; open the address the builder printed")
            return False
        return True

    def _api_ok(self) -> bool:
        origin = self.headers.get("Origin")
        if origin is not None and origin.removeprefix("http://") not in self.server.hosts:
            self._error(HTTPStatus.FORBIDDEN, f"requests from {origin} are not accepted")
            return False
        token = self.headers.get("X-Builder-Token", "")
        if not hmac.compare_digest(token.encode(), self.server.token.encode()):
            self._error(
                HTTPStatus.FORBIDDEN, "missing or wrong X-Builder-Token; open the address the builder printed"
            )
            return False
        return True

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if "application/json" not in (self.headers.get("Content-Type") or "") or length > _MAX_BODY:
            self._error(
                HTTPStatus.BAD_REQUEST, "send a JSON body (Content-Type: application/json) under 1 MiB"
            )
            return None
        try:
            return json.loads(self.rfile.read(length) or b"{}")
        except ValueError as error:
            self._error(HTTPStatus.BAD_REQUEST, f"the body is not JSON: {error}")
            return None

    # -- actions --------------------------------------------------------------------------------

    def _experiments(self) -> list[dict[str, Any]]:
        saved = {p.stem for p in (self.server.config_dir / "experiment").glob("*.yaml")}
        names = sorted(saved | self.server.packaged)
        return [{"name": n, "saved": n in saved} for n in names]

    def _import(self, name: str) -> None:
        from hydra.errors import HydraException

        try:
            self._json(spec.from_experiment(name, self.server.palette, [self.server.config_dir]))
        except HydraException as error:
            self._error(HTTPStatus.NOT_FOUND, f"experiment {name!r} does not compose: {error}")

    def _check(self, body: Any) -> validate.Result:
        name = str(body.get("name", "")) if isinstance(body, dict) else ""
        if name in self.server.packaged and not self.server.in_package:
            result = validate.Result()
            result.add("experiment", "name", f"{name!r} is a packaged experiment; save under another name")
            return result
        server = self.server
        return validate.check(body, server.palette, [server.config_dir], server.allow, server.command(name))

    def _validate(self, body: Any, save: bool) -> None:
        result = self._check(body)
        if not result.ok:
            return self._json({"ok": False, "errors": result.errors}, HTTPStatus.UNPROCESSABLE_ENTITY)
        name = body["name"]
        out: dict[str, Any] = {"ok": True, "yaml": result.text, "command": self.server.command(name)}
        if save:
            folder = (self.server.config_dir / "experiment").resolve()
            path = (folder / f"{name}.yaml").resolve()
            if path.parent != folder:
                return self._error(HTTPStatus.BAD_REQUEST, f"{name!r} would be written outside {folder}")
            path.write_text(result.text)
            out["path"] = str(path)
            log.info("saved %s", path)
        self._json(out)

    def _run(self, body: Any) -> None:
        name = str(body.get("name", "")) if isinstance(body, dict) else ""
        if (
            not spec.NAME_PATTERN.match(name)
            or not (self.server.config_dir / "experiment" / f"{name}.yaml").is_file()
        ):
            return self._error(HTTPStatus.BAD_REQUEST, f"save experiment {name!r} before running it")
        saved = spec.from_experiment(name, self.server.palette, [self.server.config_dir])
        result = validate.check(saved, self.server.palette, [self.server.config_dir], self.server.allow, "")
        if not result.ok:
            return self._json({"ok": False, "errors": result.errors}, HTTPStatus.UNPROCESSABLE_ENTITY)
        try:
            run = self.server.runs.start(name, dry_run=bool(body.get("dry_run")))
        except RuntimeError as error:
            return self._error(HTTPStatus.CONFLICT, str(error))
        self._json({"id": run.id, "command": run.command, "run_dir": str(run.run_dir)})

    def _stream(self, run_id: str) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        try:
            for event in self.server.runs.events(run_id):
                self.wfile.write((json.dumps(event) + "\n").encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return
        self.close_connection = True

    # -- responses ------------------------------------------------------------------------------

    def _static(self, name: str) -> None:
        data = importlib.resources.files("eisen_lightning.builder").joinpath("static", name).read_bytes()
        self._send(HTTPStatus.OK, data, _TYPES[Path(name).suffix])

    def _json(self, payload: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._json({"ok": False, "errors": [{"node": "", "field": "", "msg": message}]}, status)

    def _send(self, status: HTTPStatus, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(data)
