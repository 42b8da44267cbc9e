"""The project's one logger: messages are emitted on global rank zero only."""

import logging

from pytorch_lightning.utilities.rank_zero import rank_zero_only

_LEVELS = ("debug", "info", "warning", "error", "exception", "critical")


def get_logger(name: str) -> logging.Logger:
    """Return the logger ``name`` whose methods are silent on every rank but zero.

    Args:
        name: Logger name, usually ``__name__``.
    """
    logger = logging.getLogger(name)
    if not getattr(logger, "_eisen_rank_zero", False):
        for level in _LEVELS:
            setattr(logger, level, rank_zero_only(getattr(logger, level)))
        logger._eisen_rank_zero = True  # type: ignore[attr-defined]
    return logger
