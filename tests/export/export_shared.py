"""Shared pieces of the export tests: one short demo training run with ONNX exports, small nets."""

import subprocess
import sys
from pathlib import Path

import torch
from monai.networks.nets import UNet

from conftest import QUIET, compose, sitk_image, write_dicom_series

_RUNS: dict[str, Path] = {}


def trained_run(tmp_path_factory, demo_data: Path) -> Path:
    """The run directory of a 2-epoch demo training with the ONNX export callback (once per pytest run)."""
    if "demo" not in _RUNS:
        from eisen_lightning import run

        tmp = tmp_path_factory.mktemp("onnx_run")
        overrides = [
            f"paths.data_dir={demo_data}",
            "callbacks=[default,onnx_export]",
            "callbacks.onnx_export.keep_history=true",
            "trainer.max_epochs=2",
            "trainer.limit_train_batches=2",
            "~logger",
            *QUIET,
        ]
        run.train(compose(overrides, tmp))
        _RUNS["demo"] = tmp / "run"
    return _RUNS["demo"]


def small_unet(seed: int = 0) -> torch.nn.Module:
    """The demo's UNet, seeded, in eval mode."""
    torch.manual_seed(seed)
    net = UNet(3, 1, 3, channels=(8, 16, 32), strides=(2, 2), num_res_units=1, norm="batch")
    return net.eval()


def eisen(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """``eisen ARGS`` as typed, in a subprocess."""
    command = [sys.executable, "-m", "eisen_lightning", *args]
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=timeout)
    if result.returncode != 0:
        print(result.stdout[-4000:], result.stderr[-4000:], sep="\n")
    return result


class IntensityIsLabel(torch.nn.Module):
    """A 'net' whose argmax is the intensity rounded to the nearest class: a label image maps to itself."""

    spatial_dims = 3

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.register_buffer("classes", torch.arange(num_classes, dtype=torch.float32).view(1, -1, 1, 1, 1))

    def forward(self, x):
        return -((x - self.classes) ** 2)


def sitk_series(label_path: Path, folder: Path) -> None:
    """Write the label image ``label_path`` (NIfTI) as a DICOM series with the same geometry."""
    import nibabel as nib

    source = nib.load(label_path)
    write_dicom_series(sitk_image(source.dataobj, source.affine), folder, "1.2.826.0.1.3680043.8.498.4243")
