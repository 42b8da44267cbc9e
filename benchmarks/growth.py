"""Growth: epoch time and cache memory of our default data path for 1x, 2x and 4x the data.

The demo task is written at 1x, 2x and 4x ``--num-cases`` volumes (96x96x64 ``.nii.gz`` by default)
and read through ``DemoDataModule`` as ``conf/data/demo.yaml`` sets it (``data.cache=memory``,
no workers), exactly as ``benchmarks/data_pipeline.py`` reads it. Each scale runs in a fresh
interpreter (so that memory figures start clean), in an order rotated per round; each run gives
the cold time (cache filled plus the first epoch), the resident memory growth (RSS, psutil or
``/proc``) after filling and after the epochs, and the cache's nominal size. Warm epochs are timed
in this process, the three scales' epochs alternated (so that the machine's load hits all alike).
Linear growth is a ratio of 1.0 between the growth of a figure and the growth of the data (the
training split's cases); memory is also given as the RSS added per cached byte added from 1x, which
leaves out the fixed part (imports, the first case's buffers).
Predict time against the volume size is measured by ``benchmarks/inference.py``.

    python benchmarks/growth.py                      # 8, 16, 32 volumes of 96x96x64, 2 rounds
    python benchmarks/growth.py --smoke              # 6, 12, 24 volumes of 16x16x12, 1 round
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import data_pipeline as pipeline  # noqa: E402  (the sibling benchmark: same settings, same measures)

SCALES = (1, 2, 4)


def probe(settings: dict, warm: int) -> dict[str, float]:
    """Cold and warm epoch times and memory of our default path over ``settings``' data."""
    from monai.transforms import Compose

    cases, transforms = pipeline.training_cases(settings)
    Compose(transforms)(dict(cases[0]))  # imports and first-call costs are no part of the figures
    gc.collect()
    before = pipeline.rss_bytes()
    start = time.perf_counter()
    dataset, loader = pipeline.build(pipeline.OURS, settings, cases, transforms, Path(tempfile.gettempdir()))
    filled = pipeline.rss_bytes() - before
    pipeline.epoch(loader)
    cold = time.perf_counter() - start
    warm_times = []
    for _ in range(warm):
        start = time.perf_counter()
        pipeline.epoch(loader)
        warm_times.append(time.perf_counter() - start)
    gc.collect()
    return {
        "cases": len(cases),
        "cold": cold,
        "warm": statistics.median(warm_times),
        "nominal": pipeline.nominal_bytes(dataset),
        "filled": filled,
        "after_epochs": pipeline.rss_bytes() - before,
    }


def run_scale(settings: dict, warm: int) -> dict[str, float]:
    """:func:`probe` in a fresh interpreter."""
    command = [sys.executable, __file__, "--probe", json.dumps(settings), "--warm", str(warm)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"growth probe failed for {settings['num_training']} volumes:\n{done.stderr[-3000:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(root: Path, args: argparse.Namespace) -> dict[int, list[dict[str, float]]]:
    """Every scale once per round, the order rotated per round."""
    settings = {}
    for scale in SCALES:
        one = pipeline.demo_settings(root, args.num_cases * scale, args.shape)
        settings[scale] = {**one, "task": f"Task00_Demo{scale}x"}
        pipeline.datamodule(settings[scale])  # writes the data once
    results: dict[int, list[dict[str, float]]] = {scale: [] for scale in SCALES}
    for r in range(args.rounds):
        for scale in _rotated(r):
            results[scale].append(run_scale(settings[scale], args.warm))
    for scale, warm in interleaved_warm(settings, args.rounds * args.warm).items():
        for run in results[scale]:
            run["warm"] = warm
    return results


def interleaved_warm(settings: dict[int, dict], epochs: int) -> dict[int, float]:
    """Median warm epoch time of every scale, the scales' epochs alternated in this process.

    Separate interpreters run one after another, under whatever load the machine has then; here
    every scale's cache is built once and their epochs alternate, so that load hits all alike.
    """
    loaders = {}
    for scale, one in settings.items():
        cases, transforms = pipeline.training_cases(one)
        loaders[scale] = pipeline.build(pipeline.OURS, one, cases, transforms, Path(tempfile.gettempdir()))[1]
        pipeline.epoch(loaders[scale])
    times: dict[int, list[float]] = {scale: [] for scale in SCALES}
    for r in range(epochs):
        for scale in _rotated(r):
            start = time.perf_counter()
            pipeline.epoch(loaders[scale])
            times[scale].append(time.perf_counter() - start)
    return {scale: statistics.median(values) for scale, values in times.items()}


def _rotated(r: int) -> tuple[int, ...]:
    return SCALES[r % len(SCALES) :] + SCALES[: r % len(SCALES)]


def table(results: dict[int, list[dict[str, float]]]) -> list[str]:
    """Medians per scale, and each figure's growth against the data's."""
    mib = 2**20
    med = {s: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for s, runs in results.items()}
    lines = [
        f"{'data':>5} {'cases':>6} {'cold s':>7} {'warm epoch s':>12} {'cache MiB':>10} "
        f"{'RSS filled MiB':>14} {'RSS after MiB':>13}"
    ]
    for scale, m in med.items():
        lines.append(
            f"{scale:>4}x {int(m['cases']):6d} {m['cold']:7.2f} {m['warm']:12.3f} {m['nominal'] / mib:10.1f} "
            f"{m['filled'] / mib:14.1f} {m['after_epochs'] / mib:13.1f}"
        )
    base = med[SCALES[0]]
    for scale, m in list(med.items())[1:]:
        data = m["cases"] / base["cases"]
        added = (m["filled"] - base["filled"]) / max(m["nominal"] - base["nominal"], 1)
        lines.append(
            f"growth {scale}x: data {data:.2f}x, cold {m['cold'] / base['cold'] / data:.2f}, "
            f"warm epoch {m['warm'] / base['warm'] / data:.2f}, "
            f"cache {m['nominal'] / base['nominal'] / data:.2f} (each per unit of data against 1x; "
            f"linear: 1.00); RSS added per cached byte added since 1x: {added:.2f}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-cases", type=int, default=8, help="volumes at 1x")
    parser.add_argument("--shape", type=int, nargs=3, default=[96, 96, 64], help="volume size in voxels")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every scale, order rotated")
    parser.add_argument("--warm", type=int, default=3, help="warm epochs per run")
    parser.add_argument(
        "--smoke", action="store_true", help="6, 12, 24 volumes of 16x16x12, 1 round, 1 warm epoch"
    )
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(json.loads(args.probe), args.warm)))
        return 0
    if args.smoke:
        args.num_cases, args.shape, args.rounds, args.warm = 6, [16, 16, 12], 1, 1
    if args.num_cases < 6:
        parser.error(
            f"--num-cases must be at least 6 (the demo's 5 folds and a test case), got {args.num_cases}"
        )
    print(
        f"# growth: {[args.num_cases * s for s in SCALES]} volumes of "
        f"{'x'.join(map(str, args.shape))} (.nii.gz), "
        f"{args.rounds} rounds, {args.warm} warm epochs; python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        print("\n".join(table(measure(Path(tmp), args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
