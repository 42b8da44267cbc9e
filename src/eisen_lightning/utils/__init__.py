"""Small shared helpers: the rank-zero logger and atomic file writes."""

from eisen_lightning.utils.files import atomic_write_text
from eisen_lightning.utils.logging import get_logger

__all__ = ["atomic_write_text", "get_logger"]
