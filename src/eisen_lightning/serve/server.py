"""``eisen serve``: an HTTP server that segments uploaded images with an exported ONNX model.

``POST /predict`` with a NIfTI file or a zipped DICOM series as the body answers the label map as
``.nii.gz`` in the upload's own geometry; ``GET /info`` describes inputs, outputs, labels and
limits; ``GET /health`` says the server is up. Bad requests get a 4xx with a JSON
``{"error": ...}`` message and the server goes on serving.
"""

import json
import tempfile
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import torch

from eisen_lightning import keys
from eisen_lightning.serve.uploads import Limits, UploadError, save_upload
from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)

MB = 1024 * 1024
LABEL_MAP_TYPE = "application/gzip"
#: A refused body up to this size is read and dropped so that the client gets the 413 answer.
DRAIN_CAP = 64 * MB


class ModelServer(ThreadingHTTPServer):
    """A threading HTTP server holding one model; predictions run one at a time.

    Args:
        address: ``(host, port)``; port 0 picks a free one (see :attr:`url`).
        model: An :class:`~eisen_lightning.export.OnnxModel`.
        limits: Request limits.
        timeout_s: Seconds a client may stay silent while sending a request.
    """

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], model: Any, limits: Limits, timeout_s: float = 120.0
    ) -> None:
        from eisen_lightning.predict import CasePredictor

        self.model, self.limits = model, limits
        self.predictor = CasePredictor(model, model.transforms, torch.device("cpu"), False)
        self.lock = threading.Lock()
        handler = type("Handler", (RequestHandler,), {"timeout": timeout_s})
        super().__init__(address, handler)

    @property
    def url(self) -> str:
        """``http://host:port`` the server listens on."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def info(self) -> dict[str, Any]:
        """What ``GET /info`` answers."""
        return {
            **self.model.describe(),
            "limits": self.limits.describe(),
            "endpoints": {
                "POST /predict": "body: a NIfTI image (.nii, .nii.gz) or a zip of one DICOM series; "
                "answer: the label map as .nii.gz with the input's geometry",
                "GET /info": "this description",
                "GET /health": "liveness",
            },
        }

    def segment(self, body: bytes) -> bytes:
        """The ``.nii.gz`` label map of an uploaded image.

        Raises:
            UploadError: For an upload that is not a readable image of the model's kind.
        """
        with tempfile.TemporaryDirectory(prefix="eisen-serve-") as tmp:
            folder = Path(tmp)
            source = save_upload(body, folder, self.limits)
            destination = folder / "out" / "upload_seg.nii.gz"
            try:
                with self.lock:
                    self.predictor.write({keys.CASE_ID: "upload", keys.IMAGE: str(source)}, destination)
            except Exception as err:
                raise _client_error(err, tmp) from err
            return destination.read_bytes()


class RequestHandler(BaseHTTPRequestHandler):
    """Routes of :class:`ModelServer`."""

    server: ModelServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (the name http.server dispatches to)
        """``/info`` (also ``/``) and ``/health``."""
        path = self.path.split("?")[0].rstrip("/") or "/info"
        if path == "/info":
            self._json(HTTPStatus.OK, self.server.info())
        elif path == "/health":
            self._json(HTTPStatus.OK, {"status": "ok"})
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no such endpoint {self.path!r}; use GET /info, POST /predict")

    def do_POST(self) -> None:  # noqa: N802
        """``/predict``: the label map of the image in the body."""
        if self.path.split("?")[0].rstrip("/") != "/predict":
            self._error(HTTPStatus.NOT_FOUND, f"no such endpoint {self.path!r}; POST to /predict")
            return
        try:
            body = self._body()
            data = self.server.segment(body)
        except UploadError as err:
            self._error(HTTPStatus(err.status), str(err))
            return
        except TimeoutError:
            raise  # a silent client: http.server closes the connection
        except Exception as err:  # a server fault: say so and keep serving
            log.exception("prediction failed")
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"prediction failed: {type(err).__name__}: {err}")
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", LABEL_MAP_TYPE)
        self.send_header("Content-Disposition", 'attachment; filename="label.nii.gz"')
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked" or length is None:
            self.close_connection = True
            raise UploadError(
                411, "send the image with a Content-Length header (chunked uploads are not taken)"
            )
        try:
            size = int(length)
        except ValueError:
            self.close_connection = True
            raise UploadError(400, f"Content-Length {length!r} is not a number") from None
        if size > self.server.limits.max_request_bytes:
            self._discard(size)
            limit = self.server.limits.max_request_bytes // MB
            raise UploadError(413, f"the request holds {size / MB:.1f} MB; the limit is {limit} MB")
        if size == 0:
            raise UploadError(400, "the request body is empty; POST the image file as the body")
        body = self.rfile.read(size)
        if len(body) < size:
            self.close_connection = True
            raise UploadError(400, f"the request body ended after {len(body)} of {size} bytes")
        return body

    def _discard(self, size: int) -> None:
        """Read and drop a refused body, so the client reads the answer; close beyond ``DRAIN_CAP``."""
        if size > DRAIN_CAP:
            self.close_connection = True  # the unread body must not be parsed as the next request
            return
        while size > 0:
            chunk = self.rfile.read(min(size, MB))
            if not chunk:
                self.close_connection = True
                return
            size -= len(chunk)

    def _json(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        data = (json.dumps(payload, indent=2) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._json(status, {"error": message, "status": int(status)})

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        """Requests go to the project's logger, not to stderr."""
        log.info("%s %s", self.address_string(), format % args)


def _client_error(err: Exception, tmp: str) -> Exception:
    """An :class:`UploadError` (400) when the upload itself is at fault, else ``err`` unchanged."""
    from eisen_lightning.io import ImageReadError

    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, ImageReadError) or (isinstance(cause, ValueError) and cause is err):
            message = str(cause).replace(f"{tmp}/", "").replace(tmp, "the upload")
            return UploadError(400, f"the upload cannot be segmented: {message}")
        cause = cause.__cause__
    return err


def make_server(cfg: Any) -> ModelServer:
    """Load the model of ``cfg.model`` and bind the server (not yet serving).

    Args:
        cfg: A config composed from ``conf/serve.yaml``.

    Raises:
        ValueError: For a limit that is not positive.

    >>> import importlib.resources
    >>> from omegaconf import OmegaConf
    >>> from eisen_lightning.export import PipelineSpec, export_onnx
    >>> from eisen_lightning.export.spec import example_spec
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     model = Path(folder) / "model.onnx"
    ...     spec = PipelineSpec.from_dict(example_spec())
    ...     _ = export_onnx(torch.nn.Conv3d(1, 2, 1), torch.rand(1, 1, 8, 8, 8), model, spec)
    ...     cfg = OmegaConf.load(importlib.resources.files("eisen_lightning.conf") / "serve.yaml")
    ...     cfg.merge_with({"model": str(model), "port": 0, "threads": 1, "device": "cpu"})
    ...     server = make_server(cfg)  # bound to a free port; server.serve_forever() serves
    >>> server.url.startswith("http://127.0.0.1:"), server.info()["output"]["labels"]
    (True, {0: 'background', 1: 'organ'})
    >>> server.server_close()
    """
    from eisen_lightning.export import OnnxModel

    for name in ("max_request_mb", "max_unpacked_mb", "max_files", "request_timeout_s"):
        if not cfg[name] > 0:
            raise ValueError(f"{name} must be > 0, got {cfg[name]}")
    limits = Limits(int(cfg.max_request_mb * MB), int(cfg.max_unpacked_mb * MB), int(cfg.max_files))
    model = OnnxModel(cfg.model, threads=int(cfg.threads), device=str(cfg.device))
    return ModelServer((str(cfg.host), int(cfg.port)), model, limits, float(cfg.request_timeout_s))
