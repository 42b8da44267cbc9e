"""Training step: our SegmentationTask under the default config against a hand-written PyTorch loop.

Both train the same net (the default config's ``net``, built once with ``seed`` and copied), with
the same loss, optimizer and learning-rate schedule, on the same batches in the same order (random
64^3 patches with 3 classes, held in memory so that data loading is no part of the step). Ours is
the task and the Trainer exactly as ``conf/train.yaml`` composes them: every default callback
(checkpoints, LR monitor, TensorBoard summaries), the TensorBoard logger and the progress bar; only
validation is switched off (it is not part of a training step). A step is timed from one batch's
start to the next one's, so the loop's own work between steps counts.

Rounds alternate the two candidates in one process (A B A B ...), so that machine load hits both
alike; the table gives the median step time of each round and the ratio of the medians (the
target: at most 1.05), the ratio of the rounds' fastest steps (the least disturbed by other
jobs), the minor page faults per step (a count, not a time: memory that a step maps afresh
instead of reusing) and checks that the two loops produced identical losses, step by step.

    python benchmarks/train_step.py                   # 64^3 patches, batch 2, 30 steps x 5 rounds
    python benchmarks/train_step.py --size 16 --steps 4 --rounds 1     # smoke
"""

from __future__ import annotations

import argparse
import copy
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
import torch

WARMUP = 3


def minor_faults() -> int:
    """Minor page faults of this process so far (fresh memory pages the kernel had to map)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


class StepTimer(pl.Callback):
    """Start time of every training batch, and the loss each step returned."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.faults: list[int] = []
        self.losses: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.starts.append(time.perf_counter())
        self.faults.append(minor_faults())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))

    def on_train_end(self, trainer, pl_module) -> None:
        self.starts.append(time.perf_counter())
        self.faults.append(minor_faults())


def compose(output_dir: Path, size: int):
    """The default training config, with the data set's description filled in as run.build does."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from omegaconf import open_dict

    with initialize_config_module("eisen_lightning.conf", version_base="1.3"):
        cfg = hydra_compose(
            "train",
            overrides=[
                f"paths.output_dir={output_dir}",
                f"data.patch_size=[{size},{size},{size}]",
                "trainer.limit_val_batches=0",
                "trainer.num_sanity_val_steps=0",
            ],
        )
    with open_dict(cfg):
        cfg.dataset = {"in_channels": 1, "num_classes": 3, "label_names": ["bg", "a", "b"], "spatial_dims": 3}
    return cfg


def batches(count: int, size: int, batch_size: int, seed: int) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    shape = (batch_size, 1, size, size, size)
    return [
        {
            "image": torch.randn(shape, generator=generator),
            "label": torch.randint(0, 3, shape, generator=generator).float(),
        }
        for _ in range(count)
    ]


def run_ours(cfg, net, data, output_dir: Path) -> tuple[list[float], list[float], float]:
    from hydra.utils import instantiate

    task = instantiate(cfg.task, net=copy.deepcopy(net), _convert_="all")
    timer = StepTimer()
    callbacks = [instantiate(c) for c in cfg.callbacks.values()] + [timer]
    loggers = [instantiate(c) for c in cfg.logger.values()]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers, max_steps=len(data), max_epochs=1)
    trainer.fit(task, train_dataloaders=torch.utils.data.DataLoader(data, batch_size=None))
    return _step_times(timer.starts), timer.losses, _faults_per_step(timer.faults)


def run_plain(cfg, net, data) -> tuple[list[float], list[float], float]:
    """The loop a user would write: zero_grad, forward, loss, backward, step."""
    from hydra.utils import instantiate

    net = copy.deepcopy(net).train()
    loss_fn = instantiate(cfg.loss)
    optimizer = instantiate(cfg.optimizer)(net.parameters())
    scheduler = instantiate(cfg.scheduler)(optimizer)  # stepped per epoch: not within these steps
    starts, faults, losses = [], [], []
    for batch in torch.utils.data.DataLoader(data, batch_size=None):
        starts.append(time.perf_counter())
        faults.append(minor_faults())
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(net(batch["image"]), batch["label"])
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    starts.append(time.perf_counter())
    faults.append(minor_faults())
    del scheduler
    return _step_times(starts), losses, _faults_per_step(faults)


def _step_times(starts: list[float]) -> list[float]:
    return [b - a for a, b in zip(starts[WARMUP:-1], starts[WARMUP + 1 :], strict=True)]


def _faults_per_step(faults: list[int]) -> float:
    """Mean minor page faults of the timed steps but the last (which runs to the end of training)."""
    timed = faults[WARMUP:-1]
    return (timed[-1] - timed[0]) / max(1, len(timed) - 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64, help="edge of the cubic patches")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30, help="steps per round (the first 3 not timed)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of each candidate")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning").setLevel(logging.ERROR)
    print(
        f"# train_step: {args.size}^3 patches, batch {args.batch_size}, {args.steps} steps x {args.rounds} "
        f"rounds, torch {torch.__version__}, {torch.get_num_threads()} threads, python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs"
    )
    from hydra.utils import instantiate

    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose(Path(tmp) / "run", args.size)
        pl.seed_everything(0, verbose=False)
        net = instantiate(cfg.net)
        data = batches(args.steps, args.size, args.batch_size, seed=1)
        rows, same = [], True
        for r in range(args.rounds):
            ours, ours_losses, ours_faults = run_ours(cfg, net, data, Path(tmp) / f"run{r}")
            plain, plain_losses, plain_faults = run_plain(cfg, net, data)
            same = same and ours_losses == plain_losses
            rows.append((statistics.median(ours), statistics.median(plain), min(ours), min(plain)))
            print(f"round {r}: ours {rows[-1][0] * 1e3:8.1f} ms  plain {rows[-1][1] * 1e3:8.1f} ms  "
                  f"ratio {rows[-1][0] / rows[-1][1]:.3f}  page faults per step: ours "
                  f"{ours_faults:.0f}, plain {plain_faults:.0f}")  # fmt: skip
            if ours_losses != plain_losses:
                diff = max(abs(a - b) for a, b in zip(ours_losses, plain_losses, strict=False))
                print(f"  losses differ (max abs difference {diff:.3g})")
    ours_median = statistics.median(r[0] for r in rows)
    plain_median = statistics.median(r[1] for r in rows)
    ratios = statistics.median(r[0] / r[1] for r in rows)
    fastest = min(r[2] for r in rows) / min(r[3] for r in rows)
    print(f"median step: ours {ours_median * 1e3:.1f} ms, plain loop {plain_median * 1e3:.1f} ms, "
          f"ratio {ours_median / plain_median:.3f} (target <= 1.05)")  # fmt: skip
    print(f"median of the rounds' ratios {ratios:.3f}; ratio of the fastest steps {fastest:.3f}")
    print(f"identical losses at every step: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
