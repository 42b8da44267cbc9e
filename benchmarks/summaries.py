"""Cost of the TensorBoard summaries on the demo: epoch time with and without the callback, in one run.

The demo is trained with its default config (callbacks, TensorBoard logger and all); after two
warm-up epochs (not counted, the callback off), the summaries callback is switched on and off on
alternate epochs, so that each epoch with it sits next to one
without it, on the same warm process and under the same load of the machine (a shared machine's
load drifts too much between separate runs). Repeats alternate the phase (on at even epochs, then
at odd ones). An epoch is timed from its start to the start of the next one: training, validation,
checkpoints and every callback's writes.

The callback draws (histograms, images, GIFs) on the first epoch it sees in each block of
``every_n_epochs`` and on the last one; since it sees only every other epoch here, a larger share
of its epochs draw than in a plain run (3 or 4 of 15 instead of 4 of 30 with the demo's 30 epochs
and a drawing every 10): the ratio below is an upper bound of the demo's.
The TensorBoard writer's thread, which computes the event files' checksums in pure Python, keeps
working after the hooks return: its cost shows in the epoch times, not in the hooks' share.

Reported, per repeat and as the median over repeats: the mean epoch time with and without the
callback, their ratio (the target: at most 1.05), the median epoch time of each (the epochs that do
not draw), and the share of the epochs with the callback spent inside its own hooks.

    python benchmarks/summaries.py                  # the demo as `python train.py` runs it (30 epochs)
    python benchmarks/summaries.py --epochs 2 --repeats 1 --num-training 6 --limit-train-batches 1
"""

import argparse
import logging
import os
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl


class EpochTimer(pl.Callback):
    """Wall time from each training epoch start to the next (the last one ends with the fit)."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._close()
        self.starts.append(time.perf_counter())

    def on_fit_end(self, trainer, pl_module) -> None:
        self._close()

    def _close(self) -> None:
        if len(self.starts) > len(self.times):
            self.times.append(time.perf_counter() - self.starts[-1])


WARMUP = 2


def alternate(callback: pl.Callback, phase: int) -> list[float]:
    """Make ``callback`` act only after the warm-up, on epochs of parity ``phase``; its time per epoch."""
    in_hooks: list[float] = []
    for name in dir(type(callback)):
        if not name.startswith("on_"):
            continue
        hook = getattr(callback, name)

        def gated(trainer, *args, _hook=hook, **kwargs):
            epoch = trainer.current_epoch
            if epoch < WARMUP or epoch % 2 != phase:
                return None
            start = time.perf_counter()
            try:
                return _hook(trainer, *args, **kwargs)
            finally:
                in_hooks.extend([0.0] * (epoch + 1 - len(in_hooks)))
                in_hooks[epoch] += time.perf_counter() - start

        setattr(callback, name, gated)
    return in_hooks


def compose(overrides: list[str], root: Path):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    base = [f"paths.data_dir={root / 'data'}", f"paths.output_dir={root / 'run'}"]
    with initialize_config_module("eisen_lightning.conf", version_base="1.3"):
        cfg = hydra_compose("train", overrides=base + overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def run_once(args: argparse.Namespace, root: Path, phase: int) -> tuple[list[float], list[float]]:
    """One demo run with the summaries on at epochs of parity ``phase``; epoch and in-hook times."""
    from eisen_lightning import run
    from eisen_lightning.callbacks import TensorBoardSummaries

    overrides = [
        f"trainer.max_epochs={args.epochs + WARMUP}",
        f"data.num_training={args.num_training}",
        "data.num_test=0",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        f"paths.output_dir={root / f'run_phase{phase}_{time.time_ns()}'}",
    ]
    if args.limit_train_batches:
        overrides.append(f"trainer.limit_train_batches={args.limit_train_batches}")
    datamodule, task, trainer = run.build(compose(overrides, root))
    summaries = [c for c in trainer.callbacks if isinstance(c, TensorBoardSummaries)]
    if len(summaries) != 1:
        raise RuntimeError("the demo's default callbacks should hold one TensorBoardSummaries")
    in_hooks = alternate(summaries[0], phase)
    timer = EpochTimer()
    trainer.callbacks.append(timer)
    trainer.fit(task, datamodule=datamodule)
    return timer.times, in_hooks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=30, help="counted epochs per run (the demo's 30)")
    parser.add_argument("--repeats", type=int, default=3, help="runs, alternating the phase")
    parser.add_argument("--num-training", type=int, default=32, help="demo cases (the demo's 32)")
    parser.add_argument("--limit-train-batches", type=int, default=0, help="cap (0: every batch)")
    parser.add_argument("--workdir", type=Path, default=None, help="data and runs (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (one epoch with the callback, one without)")
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("eisen_lightning").setLevel(logging.WARNING)
    ratios, with_medians, without_medians, shares = [], [], [], []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        for r in range(args.repeats):
            phase = r % 2
            times, in_hooks = run_once(args, root, phase)
            counted = list(enumerate(times))[WARMUP:]
            on = [t for e, t in counted if e % 2 == phase]
            off = [t for e, t in counted if e % 2 != phase]
            ratios.append(statistics.fmean(on) / statistics.fmean(off))
            with_medians.append(statistics.median(on))
            without_medians.append(statistics.median(off))
            shares.append(sum(in_hooks) / sum(on))
            print(
                f"repeat {r} (on at {'odd' if phase else 'even'} epochs): mean epoch "
                f"with {statistics.fmean(on):.3f} s, without {statistics.fmean(off):.3f} s, "
                f"ratio {ratios[-1]:.3f}; {100 * shares[-1]:.1f}% inside its hooks",
                flush=True,
            )
    loads = f"load average {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}; {loads}")
    print(
        f"median epoch time (epochs that do not draw): with {statistics.median(with_medians):.3f} s, "
        f"without {statistics.median(without_medians):.3f} s"
    )
    print(f"time inside the callback's hooks: {100 * statistics.median(shares):.1f}% of its epochs (median)")
    print(
        f"ratio with/without: {statistics.median(ratios):.3f} "
        "(mean epoch times, median of repeats; target <= 1.05)"
    )


if __name__ == "__main__":
    main()
