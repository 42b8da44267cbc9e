"""The visual experiment builder: a local page that composes, validates, saves and runs experiments.

``eisen builder`` starts it; see docs/builder.md.
"""

from collections.abc import Callable
from typing import Any

from eisen_lightning.builder.progress import ProgressFile

__all__ = ["ProgressFile", "main"]


def main(argv: list[str] | None = None, say: Callable[[str], Any] | None = None) -> int:
    """Run ``eisen builder`` (see :func:`eisen_lightning.builder.launch.main`)."""
    from eisen_lightning.builder.launch import main as launch

    return launch(argv, say=say)
