"""The project's one logger: messages are emitted on global rank zero only.

The rank is Lightning's own (``rank_zero_only.rank``, shared by Lightning, which sets it from the
trainer under DDP); light commands that never import Lightning (``eisen download``) read it from
the launcher's environment variables as Lightning does on import, so this module stays cheap.
"""

import logging
import os

from lightning_utilities.core.rank_zero import rank_zero_only

_LEVELS = ("debug", "info", "warning", "error", "exception", "critical")
#: Lightning's order: LOCAL_RANK before SLURM_PROCID, which SLURM sets even when it does not launch.
_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def _environment_rank() -> int:
    for name in _RANK_VARIABLES:
        if os.environ.get(name) is not None:
            return int(os.environ[name])
    return 0


if getattr(rank_zero_only, "rank", None) is None:
    rank_zero_only.rank = _environment_rank()


def get_logger(name: str) -> logging.Logger:
    """Return the logger ``name`` whose methods are silent on every rank but zero.

    Args:
        name: Logger name, usually ``__name__``.

    >>> get_logger("eisen_lightning.example").name
    'eisen_lightning.example'
    """
    logger = logging.getLogger(name)
    if not getattr(logger, "_eisen_rank_zero", False):
        for level in _LEVELS:
            setattr(logger, level, rank_zero_only(getattr(logger, level)))
        logger._eisen_rank_zero = True  # type: ignore[attr-defined]
    return logger
