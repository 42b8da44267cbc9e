"""GPU checks of the scale-out settings on the demo: precision, FSDP, activation checkpointing, pipeline.

Each check trains the offline demo for a few epochs in this process, through the same config tree
and ``run.train`` as ``python train.py``, and records its status, wall time, final ``val/dice`` and
peak GPU memory (``torch.cuda.max_memory_allocated``). The table printed at the end is what
``docs/scale.md`` reports.

| check | overrides |
| --- | --- |
| fp32 | ``trainer.precision=32`` (the reference) |
| 16-mixed | ``trainer.precision=16-mixed`` (float16 autocast with a gradient scaler) |
| bf16-mixed | ``trainer.precision=bf16-mixed`` |
| 16-mixed + NaN guard | ``callbacks=[default,nan_guard]``: counts the scaler's skipped steps as fine |
| fsdp, 1 GPU | ``trainer=fsdp trainer.devices=1 trainer.precision=bf16-mixed`` |
| unet3d | ``net=unet3d data.patch_size=[96,96,96]`` (a large 3D net; memory reference) |
| unet3d + checkpointing | the same with ``callbacks=[default,activation_checkpointing]`` |
| pipeline | ``parallel=pipeline`` across every GPU (only with more than one GPU) |

DDP is left out: its other ranks re-run the command line, which is this script, not ``train.py``;
``python train.py trainer=ddp`` checks it.

    python benchmarks/gpu_checks.py                 # every check, 5 epochs each
    python benchmarks/gpu_checks.py --epochs 1 --only fp32 bf16-mixed   # a smoke run (CPU too)
"""

import argparse
import math
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _config import compose  # noqa: E402  (the benchmarks' shared config helper)

QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
LARGE = ["net=unet3d", "data.patch_size=[96,96,96]", "data.shape=[112,112,96]", "data.batch_size=2"]

#: name -> (overrides, GPUs needed)
CHECKS: dict[str, tuple[list[str], int]] = {
    "fp32": (["trainer.precision=32"], 1),
    "16-mixed": (["trainer.precision=16-mixed"], 1),
    "bf16-mixed": (["trainer.precision=bf16-mixed"], 1),
    "16-mixed + NaN guard": (["trainer.precision=16-mixed", "callbacks=[default,nan_guard]"], 1),
    "fsdp, 1 GPU": (["trainer=fsdp", "trainer.devices=1", "trainer.precision=bf16-mixed"], 1),
    "unet3d": ([*LARGE, "trainer.precision=bf16-mixed"], 1),
    "unet3d + checkpointing": (
        [*LARGE, "trainer.precision=bf16-mixed", "callbacks=[default,activation_checkpointing]"],
        1,
    ),
    "pipeline": (["parallel=pipeline", "trainer.precision=bf16-mixed"], 2),
}


def run_check(name: str, overrides: list[str], epochs: int, root: Path) -> dict[str, object]:
    """Train one check; return its row of the table (the error, if it failed)."""
    from eisen_lightning import run

    row: dict[str, object] = {"check": name, "status": "ok", "time_s": math.nan, "dice": math.nan}
    row["peak_mib"] = math.nan
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    try:
        folder = root / re.sub(r"\W+", "_", name)
        cfg = compose([*overrides, f"trainer.max_epochs={epochs}", *QUIET], folder)
        large = any(o.startswith("data.shape") for o in overrides)
        cfg.paths.data_dir = str(root / ("data_large" if large else "data"))
        metrics = run.train(cfg)
        row["dice"] = metrics.get("val/dice", math.nan)
        row["skipped"] = metrics.get("train/skipped_steps")
    except Exception as error:  # a failing check is a result: record it and go on
        row["status"] = f"failed: {type(error).__name__}: {str(error).splitlines()[0][:80]}"
        traceback.print_exc()
    row["time_s"] = time.perf_counter() - started
    if cuda:
        row["peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return row


def table(rows: list[dict[str, object]]) -> str:
    """The rows as a Markdown table."""

    def cell(value: object, digits: int) -> str:
        return "n/a" if isinstance(value, float) and math.isnan(value) else f"{value:.{digits}f}"

    lines = [
        "| check | status | time (s) | val/dice | peak GPU memory (MiB) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        time_s, dice, peak = cell(r["time_s"], 1), cell(r["dice"], 4), cell(r["peak_mib"], 0)
        lines.append(f"| {r['check']} | {r['status']} | {time_s} | {dice} | {peak} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--only", nargs="*", choices=sorted(CHECKS), help="run these checks only")
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for data and runs (default: temporary)"
    )
    args = parser.parse_args()
    gpus = torch.cuda.device_count()
    names = args.only or list(CHECKS)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        rows = []
        for name in names:
            overrides, needed = CHECKS[name]
            if gpus < needed and not (args.only and gpus == 0 and needed == 1):
                status = f"skipped: needs {needed} GPU(s), found {gpus}"
                rows.append({"check": name, "status": status, "time_s": math.nan, "dice": math.nan})
                rows[-1]["peak_mib"] = math.nan
                continue
            rows.append(run_check(name, overrides, args.epochs, root))
    device = torch.cuda.get_device_name(0) if gpus else "CPU only"
    print(f"\nGPU checks on {device} ({gpus} GPU(s)), torch {torch.__version__}, {args.epochs} epochs each\n")
    print(table(rows))


if __name__ == "__main__":
    main()
