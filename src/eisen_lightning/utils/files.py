"""File helpers that never leave a half-written file behind."""

import os
import tempfile
from pathlib import Path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename.

    A crash while writing leaves the previous file intact instead of a truncated one.

    Args:
        path: Destination file; its folder is created when missing.
        text: The content.

    Returns:
        The destination as a ``Path``.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = atomic_write_text(Path(folder) / "runs" / "notes.txt", "best: 0.91")
    ...     print(path.name, repr(path.read_text()), sorted(p.name for p in path.parent.iterdir()))
    notes.txt 'best: 0.91' ['notes.txt']
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
