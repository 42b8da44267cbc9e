"""Memory soak: train the demo for many epochs with DataLoader workers and check that memory stays flat.

The demo (small volumes, a few batches per epoch) is trained in this process with the default
callbacks and the TensorBoard logger, ``data.num_workers`` worker processes and validation every
``--val-every`` epochs. At the end of every epoch the resident memory (RSS) of the main process and
of each of its worker processes is read (psutil when installed, else ``/proc``). The table prints
every ``--print-every`` epochs; the summary compares the mean of the last ``--window`` epochs with
the mean of the ``--window`` epochs after the warm-up (``--warmup``): the target is under 5% growth.

    python benchmarks/soak.py                                # 200 epochs, 2 workers
    python benchmarks/soak.py --epochs 3 --warmup 1 --window 1 --print-every 1   # smoke
"""

import argparse
import logging
import os
import platform
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

import pytorch_lightning as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _config import compose  # noqa: E402  (the benchmarks' shared config helper)

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (0 when it has exited)."""
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss / 2**20
    except ImportError:
        pass
    except Exception:  # the process exited between listing and reading
        return 0.0
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 2**20
    except (OSError, IndexError, ValueError):
        return 0.0


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (the DataLoader workers), psutil or ``/proc``."""
    try:
        import psutil

        return [child.pid for child in psutil.Process(pid).children()]
    except ImportError:
        pass
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text() if (task / "children").is_file() else ""
        children += [int(p) for p in text.split()]
    return sorted(set(children))


class MemorySampler(pl.Callback):
    """Record the RSS of this process and of its workers at the end of each training epoch."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, float, list[float]]] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Sample once per epoch, while the persistent workers are alive."""
        workers = [rss_mib(p) for p in child_pids(os.getpid())]
        self.rows.append((trainer.current_epoch, rss_mib(os.getpid()), workers))


def soak(args: argparse.Namespace, root: Path) -> MemorySampler:
    """Train the demo for ``args.epochs`` epochs and return the sampled memory."""
    from eisen_lightning import run

    overrides = [
        f"trainer.max_epochs={args.epochs}",
        f"data.num_workers={args.num_workers}",
        f"data.num_training={args.num_training}",
        "data.num_test=0",
        "data.test_fraction=0",
        f"data.shape={args.shape}",
        f"data.patch_size={args.patch_size}",
        f"trainer.check_val_every_n_epoch={args.val_every}",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
    ]
    datamodule, task, trainer = run.build(compose(overrides, root))
    sampler = MemorySampler()
    trainer.callbacks.append(sampler)
    trainer.fit(task, datamodule=datamodule)
    return sampler


def report(sampler: MemorySampler, args: argparse.Namespace) -> str:
    """The per-epoch table and the growth summary."""
    lines = ["| epoch | main MiB | workers MiB | total MiB |", "| ---: | ---: | ---: | ---: |"]
    totals = []
    for epoch, main, workers in sampler.rows:
        totals.append(main + sum(workers))
        if epoch % args.print_every == 0 or epoch == sampler.rows[-1][0]:
            shown = " + ".join(f"{w:.0f}" for w in workers) or "-"
            lines.append(f"| {epoch} | {main:.1f} | {shown} | {totals[-1]:.1f} |")
    mains = [main for _, main, _ in sampler.rows]
    start = slice(args.warmup, args.warmup + args.window)
    end = slice(-args.window, None)
    for name, values in (("main process", mains), ("main + workers", totals)):
        first, last = statistics.mean(values[start] or values), statistics.mean(values[end])
        lines.append(
            f"{name}: epochs {args.warmup}-{args.warmup + args.window - 1} mean {first:.1f} MiB, "
            f"last {args.window} mean {last:.1f} MiB: growth {100 * (last / first - 1):+.2f}%"
        )
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--num-training", type=int, default=10)
    parser.add_argument("--shape", default="[24,24,16]")
    parser.add_argument("--patch-size", default="[16,16,16]")
    parser.add_argument("--val-every", type=int, default=5, help="validation every N epochs")
    parser.add_argument("--warmup", type=int, default=10, help="epochs left out before the first window")
    parser.add_argument("--window", type=int, default=10, help="epochs averaged at the start and the end")
    parser.add_argument("--print-every", type=int, default=10)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        sampler = soak(args, Path(tmp))
    print(f"{platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; {vars(args)}")
    print(report(sampler, args), flush=True)


if __name__ == "__main__":
    main()
