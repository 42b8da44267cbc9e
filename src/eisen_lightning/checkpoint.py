"""Checkpoints that survive crashes: atomic writes, exact resume, and checks before a checkpoint is used.

- :class:`AtomicCheckpointIO` writes every checkpoint to a temporary file beside it, then renames it:
  a crash (or a full disk) while saving leaves the previous good file in place.
- :class:`ResumableRandomState` stores the random states (torch, numpy, Python, CUDA and those of the
  training transforms) in each checkpoint, so a resumed run draws the same numbers as an
  uninterrupted one.
- :func:`resume_run_dir` finds the run directory that ``resume=true`` continues.
- :func:`load_checkpoint` and :func:`check_state_dict` load with ``weights_only=True`` and explain a
  checkpoint made for another net or data set instead of a shape traceback.
"""

import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import Callback

from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)

LAST = "last.ckpt"
CHECKPOINT_DIR = "checkpoints"


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the net or data set of the current config."""


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` through a temporary file in the destination folder, then an atomic rename.

    Lightning's own save goes through fsspec, whose temporary file lives in the system temporary
    folder: on another file system the final move is a copy over the old file, which a crash
    truncates. Here the temporary file shares the destination's folder, so ``os.replace`` is atomic.

    Args:
        obj: Anything ``torch.save`` takes.
        path: Destination file; its folder is created when missing.

    Returns:
        The destination as a ``Path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning ``CheckpointIO`` that saves atomically and loads with ``weights_only=True`` by default.

    >>> import pytorch_lightning as pl
    >>> trainer = pl.Trainer(plugins=[AtomicCheckpointIO()], logger=False)
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        """Write ``checkpoint`` to ``path`` through a temporary file and a rename."""
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        """Load ``path``; ``weights_only`` defaults to ``True`` (tensors and primitive values only)."""
        return load_checkpoint(path, map_location=map_location, weights_only=weights_only is not False)


def load_checkpoint(
    path: str | os.PathLike, map_location: Any = "cpu", weights_only: bool = True
) -> dict[str, Any]:
    """Load a checkpoint file, with an error that names the file and the fix when it cannot be read.

    Args:
        path: A ``.ckpt`` file.
        map_location: Where tensors go (``torch.load``'s argument).
        weights_only: Refuse anything but tensors and primitive values (safe for untrusted files).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is empty, truncated, not a checkpoint, or holds objects ``weights_only`` refuses.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file; give the path of a .ckpt file")
    if path.stat().st_size == 0:
        raise ValueError(
            f"{path}: the checkpoint file is empty; use another checkpoint (e.g. checkpoints/best.ckpt)"
        )
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=weights_only)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for bad files
        raise ValueError(_unreadable(path, err, weights_only)) from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(
            f"{path}: not a Lightning checkpoint (no 'state_dict'); give a .ckpt file of a training run"
        )
    return checkpoint


def _unreadable(path: Path, err: Exception, weights_only: bool) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    unsafe = [line for line in lines if "Unsupported global" in line]
    if weights_only and unsafe:
        return (
            f"{path}: the checkpoint holds objects other than tensors and plain values ({unsafe[0][:200]}); "
            "load only checkpoints you trust, and re-save them with this version's training"
        )
    detail = next(
        (line for line in lines if "error" in line.lower()), lines[0] if lines else type(err).__name__
    )
    problem = f"cannot be read as a checkpoint, it is truncated or corrupt ({detail[:200]})"
    return f"{path}: {problem}; use another checkpoint"


class ResumableRandomState(Callback):
    """Save the random states in every checkpoint and restore them on resume.

    Lightning restores weights, optimizer, scheduler and loop position, but not the global random
    generators, and MONAI's random transforms keep states of their own. Both are kept here, so that
    with ``trainer.deterministic=true`` and ``data.num_workers=0`` a resumed run ends at the same
    metrics as an uninterrupted one. (DataLoader workers draw from states seeded when they start.)
    """

    def __init__(self) -> None:
        self._trainer: Any = None

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        """Remember the trainer, whose DataModule holds the training transforms."""
        self._trainer = trainer

    def state_dict(self) -> dict[str, Any]:
        """The global generators and the training transforms' states (tensors and plain values only)."""
        from lightning_fabric.utilities.seed import _collect_rng_states

        states = _collect_rng_states(include_cuda=torch.cuda.is_available())
        states["numpy"] = _numpy_state(states["numpy"])
        states["transforms"] = [_numpy_state(r.R.get_state()) for r in self._randomizables()]
        return states

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Put the saved states back (called by Lightning before the first batch is drawn)."""
        from lightning_fabric.utilities.seed import _set_rng_states

        states = dict(state_dict)
        states["numpy"] = _numpy_tuple(states["numpy"])
        if not torch.cuda.is_available():
            states.pop("torch.cuda", None)
        _set_rng_states(states)
        randomizables = list(self._randomizables())
        saved = states.get("transforms", [])
        if len(saved) != len(randomizables):
            log.warning(
                "the training transforms changed since the checkpoint: their random states start afresh"
            )
            return
        for transform, state in zip(randomizables, saved, strict=True):
            transform.R.set_state(_numpy_tuple(state))

    def _randomizables(self) -> Iterator[Any]:
        datamodule = getattr(self._trainer, "datamodule", None)
        dataset = getattr(datamodule, "datasets", {}).get("train") if datamodule is not None else None
        yield from _walk_randomizables(getattr(dataset, "transform", None), set())


def _numpy_state(state: tuple) -> tuple:
    """A numpy generator state with its key array as a tensor (``weights_only`` loads tensors)."""
    kind, keys_, position, has_gauss, gauss = state
    return kind, torch.from_numpy(keys_.astype("int64")), position, has_gauss, gauss


def _numpy_tuple(state: tuple) -> tuple:
    """The inverse of :func:`_numpy_state`."""
    import numpy as np

    kind, keys_, position, has_gauss, gauss = state
    return kind, np.asarray(keys_, dtype=np.uint32), position, has_gauss, gauss


def _walk_randomizables(node: Any, seen: set[int]) -> Iterator[Any]:
    """Every MONAI ``Randomizable`` reachable from ``node`` (a transform, a Compose, a list), in order."""
    from monai.transforms import Randomizable

    if node is None or id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, (list, tuple)):
        for item in node:
            yield from _walk_randomizables(item, seen)
        return
    if isinstance(node, Randomizable) and hasattr(node, "R"):
        yield node
    for name in sorted(vars(node)) if hasattr(node, "__dict__") else []:
        value = getattr(node, name)
        if isinstance(value, (list, tuple)) or hasattr(value, "R") or hasattr(value, "transforms"):
            yield from _walk_randomizables(value, seen)


def resume_run_dir(resume: Any, runs_dir: str | os.PathLike) -> Path:
    """The run directory that ``resume`` continues.

    Args:
        resume: ``true``: the newest run under ``runs_dir`` that has ``checkpoints/last.ckpt``;
            a path: that run directory, or the run directory of a ``.ckpt`` file inside one.
        runs_dir: Where the runs of this task live (the parent of ``hydra.run.dir``).

    Raises:
        FileNotFoundError: If no such run (or no last checkpoint in it) exists.
    """
    if resume is True or str(resume).lower() == "true":
        candidates = sorted(
            Path(runs_dir).glob(f"*/{CHECKPOINT_DIR}/{LAST}"), key=lambda p: p.stat().st_mtime
        )
        if not candidates:
            raise FileNotFoundError(
                f"resume=true: no earlier run with {CHECKPOINT_DIR}/{LAST} under {runs_dir}; "
                "start a new run without resume, or give resume=PATH_OF_A_RUN_DIRECTORY"
            )
        return candidates[-1].parent.parent
    path = Path(str(resume)).expanduser().resolve()
    run_dir = path.parent.parent if path.suffix == ".ckpt" else path
    if not (run_dir / CHECKPOINT_DIR / LAST).is_file():
        raise FileNotFoundError(
            f"resume={resume}: {run_dir / CHECKPOINT_DIR / LAST} does not exist; give a run directory "
            "that holds checkpoints/last.ckpt (or resume=true for the newest run of this task)"
        )
    return run_dir


def check_state_dict(
    checkpoint_state: Mapping[str, Any], model: torch.nn.Module, source: str, dataset: Mapping[str, Any]
) -> None:
    """Fail with an explanation when ``checkpoint_state`` does not fit ``model``.

    Args:
        checkpoint_state: The checkpoint's ``state_dict``.
        model: The task built from the current config.
        source: The checkpoint's path, for the message.
        dataset: The current data set description (``in_channels``, ``num_classes``).

    Raises:
        CheckpointMismatchError: Naming each differing parameter, the shapes, and what they mean.
    """
    expected = {k: v for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}
    checkpoint_state = {k: v for k, v in checkpoint_state.items() if isinstance(v, torch.Tensor)}
    missing = [k for k in expected if k not in checkpoint_state]
    unexpected = [k for k in checkpoint_state if k not in expected]
    shapes = [
        (name, tuple(checkpoint_state[name].shape), tuple(tensor.shape))
        for name, tensor in expected.items()
        if name in checkpoint_state and tuple(checkpoint_state[name].shape) != tuple(tensor.shape)
    ]
    if not (missing or unexpected or shapes):
        return
    lines = [f"{source} does not fit this config's net and data set:"]
    lines += [f"  {name}: checkpoint shape {found}, this config {want}" for name, found, want in shapes[:5]]
    if missing or unexpected:
        lines.append(
            f"  parameter names differ ({len(missing)} missing, {len(unexpected)} unexpected, e.g. "
            f"{(missing or unexpected)[0]}): the checkpoint was trained with another net"
        )
    lines += _meaning(shapes, dataset)
    lines.append(
        "  use the same data set and net config as training (the run's +experiment=..., net=..., data=...)"
    )
    raise CheckpointMismatchError("\n".join(lines))


def _meaning(shapes: list[tuple[str, tuple, tuple]], dataset: Mapping[str, Any]) -> list[str]:
    meaning = []
    if shapes and len(shapes[-1][1]) >= 1 and shapes[-1][2][0] == dataset.get("num_classes"):
        meaning.append(
            f"  the checkpoint's net has {shapes[-1][1][0]} output classes, this config's data set has "
            f"{dataset.get('num_classes')}"
        )
    if shapes and len(shapes[0][1]) >= 2 and shapes[0][2][1] == dataset.get("in_channels"):
        meaning.append(
            f"  the checkpoint's net takes {shapes[0][1][1]} input channels, this config's data set has "
            f"{dataset.get('in_channels')}"
        )
    return meaning


def check_checkpoint_fits(
    path: str | os.PathLike, model: torch.nn.Module, dataset: Mapping[str, Any]
) -> None:
    """Load ``path`` (``weights_only``) and check its weights fit ``model`` (see :func:`check_state_dict`)."""
    checkpoint = load_checkpoint(path)
    check_state_dict(checkpoint["state_dict"], model, str(path), dataset)
