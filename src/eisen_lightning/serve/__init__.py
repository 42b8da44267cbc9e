"""``eisen serve``: segmentation over HTTP with an exported ONNX model (standard library server)."""

from eisen_lightning.serve.server import ModelServer, make_server
from eisen_lightning.serve.uploads import Limits, UploadError, save_upload

__all__ = ["Limits", "ModelServer", "UploadError", "make_server", "save_upload"]
