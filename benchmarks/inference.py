"""Inference: a whole-case predict against the sum of its parts, and the sliding window against its patches.

The task and the data are the default config's (``conf/train.yaml``: the demo data, the small 3D
UNet, randomly initialised with seed 0, MONAI's ``SlidingWindowInferer`` on 32^3 windows, 4 per
batch, overlap 0.5, Gaussian weights). One demo volume of each ``--sizes`` is written as
``.nii.gz``; for each:

* *whole*: ``CasePredictor.write`` (what ``eisen predict`` runs per case): load, preprocess,
  sliding window, argmax, invert, write, and the geometry check (the written file read back);
* *parts*, each measured alone on inputs prepared beforehand: load (``LoadImaged``), preprocess
  (the rest of the deterministic prefix), sliding window (``task.infer`` and the argmax), invert
  (``Invertd``), write (``eisen_lightning.io.save``); the geometry check is shown beside them.

Target: whole at most 1.2x the sum of the five parts. The sliding window alone (``task.infer``,
without the argmax: *inferer*) is also compared with the same patches (the very windows it cut,
in the same batches of ``sw_batch_size``) through the net alone. Target: at most 1.1x. Repeats
alternate the candidates in one process; the table gives medians and minima. The whole-case
time against the volume's voxel count, and against its number of windows (the volume after
resampling, padded to whole windows), is the growth figure.

    python benchmarks/inference.py                            # 3 sizes, 5 repeats
    python benchmarks/inference.py --smoke                     # 1 small size, 1 repeat
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

warnings.filterwarnings("ignore")

PARTS = ("load", "preprocess", "sliding window", "invert", "write")
SIZES = ("64,64,48", "96,96,64", "128,128,96")


def setup(root: Path, shape: list[int]) -> tuple[Any, Any, str]:
    """The default config's DataModule (one demo volume of ``shape``) and task, and the volume's path."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    overrides = [
        f"paths.data_dir={root}",
        f"paths.output_dir={root / 'run'}",
        f"data.shape=[{','.join(map(str, shape))}]",
        "data.num_training=2",
        "data.num_test=0",
    ]
    with initialize_config_module("eisen_lightning.conf", version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    torch.manual_seed(0)
    dm = instantiate(cfg.data)
    dm.prepare_data()
    with open_dict(cfg):
        cfg.dataset = dm.info.as_dict()
    task = instantiate(cfg.task, _convert_="all").eval()
    return dm, task, dm.labelled_cases()[0]["image"]


def part_timers(predictor: Any, path: str, out: Path) -> tuple[dict[str, Callable[[], float]], torch.Tensor]:
    """Each part of a predict as a function timing it alone, on inputs computed beforehand.

    Returns:
        The timers by part name, and the preprocessed image (batch of one) the net sees.
    """
    from monai.transforms import Compose

    from eisen_lightning import keys
    from eisen_lightning.geometry import compare_files
    from eisen_lightning.io import save

    load, rest = predictor.preprocess.transforms[0], Compose(predictor.preprocess.transforms[1:])
    loaded = load({keys.IMAGE: path})
    data = rest(copy.deepcopy(loaded))
    image = data[keys.IMAGE].as_tensor()[None]
    with torch.no_grad():
        label = predictor.task.infer(image)[0].argmax(dim=0, keepdim=True).to(torch.uint8)
    inverted = predictor._invert(data, label, nearest=True)
    destination = out / "part.nii.gz"
    save(inverted, destination)

    def timed(fn: Callable[[], Any], prepare: Callable[[], Any] = lambda: None) -> Callable[[], float]:
        def run() -> float:
            argument = prepare()
            start = time.perf_counter()
            fn() if argument is None else fn(argument)
            return time.perf_counter() - start

        return run

    timers = {
        "load": timed(lambda: load({keys.IMAGE: path})),
        "preprocess": timed(rest, lambda: copy.deepcopy(loaded)),
        "sliding window": timed(lambda: predictor.task.infer(image)[0].argmax(dim=0, keepdim=True)),
        "inferer": timed(lambda: predictor.task.infer(image)),
        "invert": timed(lambda: predictor._invert(data, label, nearest=True)),
        "write": timed(lambda: save(inverted, destination)),
        "geometry check": timed(lambda: compare_files(path, str(destination))),
    }
    return timers, image


def window_batches(task: Any, image: torch.Tensor) -> list[torch.Tensor]:
    """The batches of windows the sliding window sends through the net for ``image`` (copies)."""
    batches: list[torch.Tensor] = []

    def record(inputs: torch.Tensor) -> torch.Tensor:
        batches.append(torch.as_tensor(inputs).clone())
        return task.net(inputs)

    with torch.no_grad():
        task.inferer(image, record)
    return batches


def measure_case(dm: Any, task: Any, path: str, out: Path, repeats: int) -> dict[str, list[float]]:
    """Whole predict, each part, the sliding window and its bare patches, alternated per repeat."""
    from eisen_lightning.predict import CasePredictor

    predictor = CasePredictor(task, dm.predict_transforms(), torch.device("cpu"), False)
    timers, image = part_timers(predictor, path, out)
    case = {"case_id": "c", "image": path}
    patches = window_batches(task, image)

    def whole() -> float:
        start = time.perf_counter()
        predictor.write(case, out / "whole.nii.gz")
        return time.perf_counter() - start

    def bare_patches() -> float:
        start = time.perf_counter()
        for batch in patches:
            task.net(batch)
        return time.perf_counter() - start

    candidates = {"whole": whole, **timers, "patches": bare_patches}
    names = list(candidates)
    times: dict[str, list[float]] = {name: [] for name in names}
    with torch.no_grad():
        for name in names:  # warm-up
            candidates[name]()
        for r in range(repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                times[name].append(candidates[name]())
    times["windows"] = [float(sum(p.shape[0] for p in patches))]
    return times


def report(shape: list[int], times: dict[str, list[float]]) -> tuple[list[str], float]:
    """Lines of the table for one size, and the whole predict's median time."""
    med = {name: statistics.median(values) for name, values in times.items()}
    low = {name: min(values) for name, values in times.items()}
    size = "x".join(map(str, shape))
    lines = [
        f"{size:12} {name:16} {med[name] * 1e3:10.1f} {low[name] * 1e3:10.1f}"
        for name in times
        if name != "windows"
    ]
    parts, parts_min = sum(med[p] for p in PARTS), sum(low[p] for p in PARTS)
    lines.append(
        f"{size:12} ratio whole / sum of parts: {med['whole'] / parts:.2f} "
        f"(of the minima: {low['whole'] / parts_min:.2f}; target <= 1.2); geometry check "
        f"{med['geometry check'] / med['whole']:.0%} of whole"
    )
    lines.append(
        f"{size:12} ratio inferer / {int(med['windows'])} bare patches: "
        f"{med['inferer'] / med['patches']:.2f} "
        f"(of the minima: {low['inferer'] / low['patches']:.2f}; target <= 1.1)"
    )
    return lines, med["whole"]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), help="volume sizes, e.g. 96,96,64")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per candidate")
    parser.add_argument("--smoke", action="store_true", help="one 24x24x16 volume, 1 repeat")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.repeats = ["24,24,16"], 1
    try:
        args.shapes = [[int(v) for v in size.split(",")] for size in args.sizes]
    except ValueError:
        parser.error(f"--sizes takes sizes like 96,96,64, got {args.sizes}")
    if any(len(shape) != 3 or min(shape) < 1 for shape in args.shapes):
        parser.error(f"--sizes takes three positive sizes each, got {args.sizes}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    print(
        f"# inference: sizes {args.sizes}, {args.repeats} repeats, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    print(f"{'size':12} {'candidate':16} {'median ms':>10} {'min ms':>10}")
    growth = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, shape in enumerate(args.shapes):
            root = Path(tmp) / f"size{i}"
            dm, task, path = setup(root, shape)
            times = measure_case(dm, task, path, root, args.repeats)
            lines, whole = report(shape, times)
            print("\n".join(lines), flush=True)
            growth.append((shape, shape[0] * shape[1] * shape[2], times["windows"][0], whole))
    base_voxels, base_windows, base_time = growth[0][1:]
    for shape, voxels, windows, whole in growth:
        ratio_v, ratio_w, ratio_t = voxels / base_voxels, windows / base_windows, whole / base_time
        print(
            f"growth {'x'.join(map(str, shape)):12} voxels {ratio_v:5.2f}x  windows {ratio_w:5.2f}x  "
            f"predict time {ratio_t:5.2f}x  (per voxel {ratio_t / ratio_v:.2f}, per window "
            f"{ratio_t / ratio_w:.2f} of the first size's)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
