"""ONNX inference speed: onnxruntime against torch eager, side by side in one run.

Two measurements, both on the demo's net (``conf/net/unet3d_small.yaml``: a MONAI UNet with
channels 16-128, strides 2, one residual unit, batch norm), exported by ``export_onnx`` (which
checks parity first):

* per patch: one forward pass on a batch of ``--batches`` patches of ``--patch``^3 voxels, torch
  eager (``torch.inference_mode``) against onnxruntime sessions with several settings;
* whole case: ``CasePredictor.write`` on one synthetic case of ``--case`` voxels (1 mm, resampled to
  the demo's 2 mm): loading, preprocessing, MONAI's sliding window (patch 32^3, overlap 0.5,
  gaussian, 4 patches per batch), inversion, writing and the geometry check, with the torch task
  against the exported model.

Every repeat times every candidate once, in an order rotated per repeat, so that the load of the
shared machine hits all alike; the tables give medians. Ratios are onnxruntime time / torch time
(below 1: onnxruntime is faster).

    python benchmarks/onnx_inference.py                       # the default (a few minutes on 2 cores)
    python benchmarks/onnx_inference.py --repeats 2 --case 64 64 32 --threads 1   # smoke
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import nibabel as nib
import numpy as np
import onnxruntime as ort
import torch

warnings.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "onnx_inference.md"
LABELS = ["background", "organ", "lesion"]


def demo_net() -> torch.nn.Module:
    from monai.networks.nets import UNet

    torch.manual_seed(0)
    net = UNet(3, 1, 3, channels=(16, 32, 64, 128), strides=(2, 2, 2), num_res_units=1, norm="batch")
    return net.eval()


def session(model: Path, threads: int, level: str, spinning: bool) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def timed(candidates: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each candidate, one call each per repeat in a rotated order (after a warm-up)."""
    names = list(candidates)
    for name in names:
        candidates[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            candidates[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def per_patch(net, model: Path, patch: int, batch: int, threads: int, repeats: int) -> dict[str, float]:
    x = torch.randn(batch, 1, patch, patch, patch, generator=torch.Generator().manual_seed(batch))
    array = x.numpy()

    def torch_eager():
        with torch.inference_mode():
            return net(x)

    candidates: dict[str, Callable[[], object]] = {"torch eager": torch_eager}
    for label, level, spinning in SESSION_VARIANTS:
        s = session(model, threads, level, spinning)
        candidates[f"onnxruntime {label}"] = partial(s.run, None, {"image": array})
    return timed(candidates, repeats)


#: (label, graph optimisation level, intra-op spinning)
SESSION_VARIANTS = [
    ("all opt, spinning (onnxruntime default)", "ORT_ENABLE_ALL", True),
    ("all opt, no spinning (eisen default)", "ORT_ENABLE_ALL", False),
    ("basic opt, no spinning", "ORT_ENABLE_BASIC", False),
]


def write_case(folder: Path, shape: list[int]) -> Path:
    """A smooth synthetic volume at 1 mm with an oblique affine (the preprocessing resamples it)."""
    rng = np.random.default_rng(0)
    grid = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    volume = 100 * np.exp(-4 * sum(g**2 for g in grid)) + rng.normal(0, 5, shape)
    angle = 0.2
    affine = np.eye(4)
    affine[:3, :3] = [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    path = folder / "case.nii.gz"
    nib.save(nib.Nifti1Image(volume.astype(np.float32), affine), path)
    return path


def whole_case(net, model: Path, case: Path, threads: int, repeats: int, out: Path) -> dict[str, float]:
    from monai.inferers import SlidingWindowInferer
    from monai.losses import DiceLoss

    from eisen_lightning.export import OnnxModel
    from eisen_lightning.export.spec import build_transforms
    from eisen_lightning.predict import CasePredictor
    from eisen_lightning.tasks import SegmentationTask

    onnx_model = OnnxModel(model, threads=threads, device="cpu")
    inferer = SlidingWindowInferer([32, 32, 32], sw_batch_size=4, overlap=0.5, mode="gaussian")
    task = SegmentationTask(net, DiceLoss(), partial(torch.optim.SGD, lr=0.1), 3, LABELS, inferer=inferer)
    transforms = build_transforms(onnx_model.spec)
    torch_path = CasePredictor(task.eval(), transforms, torch.device("cpu"), False)
    onnx_path = CasePredictor(onnx_model, onnx_model.transforms, torch.device("cpu"), False)
    item = {"case_id": "case", "image": str(case)}
    candidates = {
        "torch eager": partial(torch_path.write, item, out / "torch_seg.nii.gz"),
        "onnxruntime (eisen defaults)": partial(onnx_path.write, item, out / "onnx_seg.nii.gz"),
    }
    times = timed(candidates, repeats)
    a, b = (np.asarray(nib.load(out / f"{n}_seg.nii.gz").dataobj) for n in ("torch", "onnx"))
    times["voxel agreement"] = float((a == b).mean())
    return times


def export(net, folder: Path) -> Path:
    from eisen_lightning.export import PipelineSpec, export_onnx
    from eisen_lightning.export.spec import example_spec

    spec = PipelineSpec.from_dict(example_spec())
    spec.label_names = LABELS
    spec.inference.update(sw_batch_size=4, sigma_scale=0.125, padding_mode="constant", cval=0.0)
    sample = torch.randn(1, 1, 32, 32, 32, generator=torch.Generator().manual_seed(0))
    return export_onnx(net, sample, folder / "model.onnx", spec).model_path


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (
        f"{os.cpu_count()} vCPU {cpu} ({platform.machine()}), Linux, shared "
        f"(load average {load} at the end); "
        f"Python {platform.python_version()}, torch {torch.__version__}, onnxruntime {ort.__version__}"
    )


def report(args, patch_rows: list[tuple], case_rows: list[tuple]) -> str:
    lines = [
        "# ONNX inference: onnxruntime against torch eager",
        "",
        "Command (from the repository root):",
        "",
        "```bash",
        " ".join(["python benchmarks/onnx_inference.py", *args.argv]),
        "```",
        "",
        f"Machine: {machine()}.",
        "",
        f"Net: the demo's UNet (channels 16-128, strides 2, 1 residual unit, batch norm). {args.repeats} "
        "rotated repeats per candidate; medians. Ratio: onnxruntime time / torch time (below 1: faster).",
        "",
        f"## Per patch ({args.patch}^3 voxels)",
        "",
        "| threads | batch | candidate | ms | ratio to torch |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {t} | {b} | {name} | {ms:.1f} | {ratio:.2f} |" for t, b, name, ms, ratio in patch_rows]
    lines += [
        "",
        f"## Whole case ({'x'.join(map(str, args.case))} voxels at 1 mm, resampled to 2 mm)",
        "",
        "| threads | candidate | s | ratio to torch | voxel agreement |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {t} | {name} | {s:.3f} | {ratio:.2f} | {agree} |" for t, name, s, ratio, agree in case_rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patch", type=int, default=32)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--case", type=int, nargs=3, default=[160, 160, 96])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--output", type=Path, default=RESULTS, help="markdown file of the results")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    net = demo_net()
    patch_rows, case_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model, case = export(net, folder), write_case(folder, args.case)
        for threads in args.threads:
            torch.set_num_threads(threads)
            for batch in args.batches:
                times = per_patch(net, model, args.patch, batch, threads, args.repeats)
                base = times["torch eager"]
                patch_rows += [(threads, batch, n, 1000 * v, v / base) for n, v in times.items()]
            times = whole_case(net, model, case, threads, max(3, args.repeats // 3), folder)
            agree = f"{times.pop('voxel agreement'):.5f}"
            base = times["torch eager"]
            case_rows += [(threads, n, v, v / base, agree) for n, v in times.items()]
    text = report(args, patch_rows, case_rows)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
