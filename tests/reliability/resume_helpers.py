"""A tiny deterministic demo run, started as a real process, and ways to stop it mid-training."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytorch_lightning as pl

from conftest import QUIET, TRAIN_PY

#: the demo at its smallest: 8 training cases of 24x24x16 voxels, 3 batches per epoch
TINY = [
    *QUIET,
    "data.num_training=8",
    "data.num_test=0",
    "data.test_fraction=0",
    "data.shape=[24,24,16]",
    "data.patch_size=[16,16,16]",
    "callbacks.summaries=null",
    "trainer.deterministic=true",
]


def tiny_args(tmp_path: Path, *extra: str) -> list[str]:
    """Overrides of a tiny deterministic demo run with its data under ``tmp_path / 'data'``."""
    return [*TINY, f"paths.data_dir={tmp_path / 'data'}", *extra]


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    """Start ``python train.py ARGS`` without waiting for it."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(TRAIN_PY), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def kill_mid_epoch(process: subprocess.Popen, last: Path, epochs_done: int, timeout: float = 300) -> int:
    """SIGKILL ``process`` soon after ``last`` holds ``epochs_done`` finished epochs, within the next one.

    Returns:
        The epoch stored in ``last`` when the process was killed.
    """
    import torch

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if last.is_file():
            epoch = torch.load(last, weights_only=True, map_location="cpu")["epoch"]
            if epoch + 1 >= epochs_done:
                time.sleep(0.2)
                process.send_signal(signal.SIGKILL)
                process.wait(30)
                return epoch
        time.sleep(0.05)
    output = process.communicate(timeout=30)[0] if process.poll() is not None else ""
    raise AssertionError(f"the run never reached epoch {epochs_done}: {output[-3000:]}")


class CrashMidEpoch(Exception):
    """Raised by :class:`StopMidEpoch`."""


class StopMidEpoch(pl.Callback):
    """Crash the run after ``batch`` batches of epoch ``epoch`` (in-process tests)."""

    def __init__(self, epoch: int = 1, batch: int = 1) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_end(self, trainer: pl.Trainer, *args, **kwargs) -> None:
        done = trainer.fit_loop.epoch_loop.batch_progress.current.ready
        if trainer.current_epoch == self.epoch and done > self.batch:
            raise CrashMidEpoch(f"stopped after {done} batches of epoch {self.epoch}")
