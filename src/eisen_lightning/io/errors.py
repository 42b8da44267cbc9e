"""The one error every reader raises for bad input: it names the file, the problem and the fix."""

from __future__ import annotations

import os
import string
from collections.abc import Sequence
from pathlib import Path


class ImageReadError(ValueError):
    """An image file (or DICOM series) could not be read.

    The message always reads ``cannot read PATH: PROBLEM. Fix: FIX`` so that a user sees which file
    is wrong, what is wrong with it and what to do, never a bare traceback from inside a library.
    The library's own exception, when there is one, is chained as ``__cause__``.

    Args:
        path: The file or folder that failed (or a full message, when given alone: this keeps the
            error re-creatable from its message, as PyTorch's DataLoader workers do).
        problem: What is wrong with it.
        fix: What the user can do about it.

    >>> str(ImageReadError("scan.nii.gz", "the file does not exist", "check the path"))
    'cannot read scan.nii.gz: the file does not exist. Fix: check the path.'
    """

    def __init__(self, path: str | os.PathLike | Sequence, problem: str = "", fix: str = ""):
        if not problem and not fix:
            message = str(path)
        else:
            message = f"cannot read {_show(path)}: {problem.rstrip('.')}"
            if fix:
                message += f". Fix: {fix.rstrip('.')}."
        super().__init__(message)
        self.path = path
        self.problem = problem
        self.fix = fix


def _show(path: str | os.PathLike | Sequence) -> str:
    if isinstance(path, str | os.PathLike):
        return str(path)
    names = [str(p) for p in path]
    if len(names) <= 3:
        return ", ".join(names)
    return f"{names[0]}, ... ({len(names)} files)"


def describe_content(path: str | os.PathLike) -> str:
    """Say what a file that failed to parse actually holds: empty, text, or its first bytes.

    Used in error messages, so that "a text file named scan.nii.gz" is recognisable at a glance.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
        size = os.path.getsize(path)
    except OSError as err:
        return f"it cannot be opened ({err.strerror})"
    if size == 0:
        return "the file is empty (0 bytes)"
    start = _printable_start(head[:64])
    if start and _printable_start(head) == head.decode("utf-8", "replace"):
        return f"it is a text file ({size} bytes) starting with {start.splitlines()[0][:40]!r}"
    if start.strip():
        return f"it holds {size} bytes, starting with {start.splitlines()[0][:40]!r}"
    return f"it holds {size} bytes, starting with {head[:8].hex(' ')}"


def _printable_start(data: bytes) -> str:
    """The text at the start of ``data`` up to its first non-printable character."""
    text = data.decode("utf-8", "replace")
    for i, char in enumerate(text):
        if char not in string.printable:
            return text[:i]
    return text


def missing_path_error(path: str | os.PathLike) -> ImageReadError:
    """The error for a path that does not exist, with the nearest existing neighbours as a hint."""
    path = Path(path)
    fix = "check the path, and the data folder it is relative to"
    parent = path.parent
    if parent.is_dir():
        stem = path.name.split(".")[0]
        similar = sorted(p.name for p in parent.iterdir() if p.name.split(".")[0] == stem)[:3]
        if similar:
            fix = f"{parent} holds {', '.join(similar)}: use one of these names"
    elif str(parent) not in ("", "."):
        fix = f"the folder {parent} does not exist either: check the data folder"
    return ImageReadError(path, "the file or folder does not exist", fix)
