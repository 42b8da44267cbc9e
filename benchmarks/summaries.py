"""Cost of the TensorBoard summaries on the demo: epoch time with and without the callback, in one run.

The demo is trained with its default config (callbacks, TensorBoard logger and all). After two
warm-up epochs (not counted, the callback off), the summaries callback is switched on and off on
alternate epochs, so that each epoch with it sits next to one without it, in the same warm process
and under the same load of the machine (on a shared machine the load drifts too much between
separate runs for run-against-run timings). Repeats alternate the phase (on at even epochs, then at
odd ones). An epoch is timed from its start to the start of the next one: training, validation,
checkpoints and every callback's writes, the TensorBoard writer's thread included (it computes the
event files' checksums in pure Python after the hooks return).

The callback draws (histograms, images, GIFs) on the first epoch it sees in each block of
``every_n_epochs`` epochs and on the last one. It sees every other epoch here, so more of its epochs
draw than in a plain run; the epoch time with the callback is therefore rebuilt with the share of
drawing epochs of a plain run of ``--epochs`` epochs (4 of 30 for the demo, drawing every 10):
``with = share * mean(drawing epochs) + (1 - share) * mean(other epochs with it)``. The raw mean of
the epochs with it (an upper bound) is printed too.

Reported, per repeat and as the median over repeats: the epoch time with and without the callback,
their ratio (the target: at most 1.05), the median epoch time with and without (epochs that do not
draw), the mean time of a drawing epoch, and the share of the callback's epochs spent inside its
own hooks.

    python benchmarks/summaries.py                  # the demo as `python train.py` runs it (30 epochs)
    python benchmarks/summaries.py --epochs 2 --repeats 1 --num-training 6 --limit-train-batches 1
"""

import argparse
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _config import compose  # noqa: E402  (the benchmarks' shared config helper)


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


def drawing_share(callback_type: type, epochs: int) -> float:
    """Share of the epochs of a plain ``epochs``-epoch run on which a fresh callback draws."""
    from types import SimpleNamespace

    from pytorch_lightning.trainer.states import TrainerFn

    callback, drawn = callback_type(), 0
    for epoch in range(epochs):
        state = SimpleNamespace(fn=TrainerFn.FITTING)
        drawn += callback._drawn(
            "train", SimpleNamespace(current_epoch=epoch, max_epochs=epochs, state=state)
        )
    return drawn / epochs


def run_once(args: argparse.Namespace, root: Path, phase: int) -> dict[str, list[float]]:
    """One demo run with the summaries on at epochs of parity ``phase``: epoch times by kind."""
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
    drawing: set[int] = set()
    decide = summaries[0]._drawn

    def recorded(stage, trainer, _decide=decide):
        drawn = _decide(stage, trainer)
        drawing.update({trainer.current_epoch} if drawn else set())
        return drawn

    summaries[0]._drawn = recorded
    timer = EpochTimer()
    trainer.callbacks.append(timer)
    trainer.fit(task, datamodule=datamodule)
    counted = list(enumerate(timer.times))[WARMUP:]
    on = [e for e, _ in counted if e % 2 == phase]
    return {
        "drawing": [t for e, t in counted if e in drawing],
        "plain": [t for e, t in counted if e % 2 == phase and e not in drawing],
        "off": [t for e, t in counted if e % 2 != phase],
        "in_hooks": [sum(in_hooks[e] for e in on if e < len(in_hooks))],
        "on": [t for e, t in counted if e % 2 == phase],
    }


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
    from eisen_lightning.callbacks import TensorBoardSummaries

    share = drawing_share(TensorBoardSummaries, args.epochs)
    results: dict[str, list[float]] = {k: [] for k in ("ratio", "raw", "with", "without", "drawing", "hooks")}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        for r in range(args.repeats):
            phase = r % 2
            times = run_once(args, root, phase)
            plain = statistics.fmean(times["plain"] or times["drawing"])
            drawing = statistics.fmean(times["drawing"] or times["plain"])
            with_, without = share * drawing + (1 - share) * plain, statistics.fmean(times["off"])
            results["ratio"].append(with_ / without)
            results["raw"].append(statistics.fmean(times["on"]) / without)
            results["with"].append(statistics.median(times["plain"] or times["drawing"]))
            results["without"].append(statistics.median(times["off"]))
            results["drawing"].append(drawing)
            results["hooks"].append(times["in_hooks"][0] / sum(times["on"]))
            print(
                f"repeat {r} (on at {'odd' if phase else 'even'} epochs): epoch with {with_:.3f} s, "
                f"without {without:.3f} s, ratio {results['ratio'][-1]:.3f} (raw {results['raw'][-1]:.3f}); "
                f"drawing epoch {drawing:.3f} s; {100 * results['hooks'][-1]:.1f}% inside its hooks",
                flush=True,
            )
    median = {k: statistics.median(v) for k, v in results.items()}
    loads = f"load average {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}; {loads}")
    print(f"drawing epochs in a plain {args.epochs}-epoch run: {100 * share:.1f}%")
    print(
        f"median epoch time (epochs that do not draw): with {median['with']:.3f} s, "
        f"without {median['without']:.3f} s"
    )
    print(f"mean time of a drawing epoch: {median['drawing']:.3f} s")
    print(f"time inside the callback's hooks: {100 * median['hooks']:.1f}% of its epochs")
    print(f"raw ratio of the epochs with/without (upper bound): {median['raw']:.3f}")
    print(f"ratio with/without: {median['ratio']:.3f} (median of repeats; target <= 1.05)")


if __name__ == "__main__":
    main()
