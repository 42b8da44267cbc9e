"""Shared fixtures: composing the real conf/ tree with Hydra, and synthetic data on disk."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
TRAIN_PY = REPO / "train.py"


def compose(overrides: list[str], tmp_path: Path, config_name: str = "train"):
    """Compose a config like `python train.py OVERRIDES` would, with data and outputs under tmp_path."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    base = [f"paths.data_dir={tmp_path / 'data'}", f"paths.output_dir={tmp_path / 'run'}"]
    with initialize_config_module("eisen_lightning.conf", version_base="1.3"):
        cfg = hydra_compose(config_name, overrides=base + overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def run_cli(args: list[str], cwd: Path, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """Run `python train.py ARGS` (or another script given as args[0] ending in .py) in a subprocess."""
    command = (
        [sys.executable, *args]
        if args and args[0].endswith(".py")
        else [sys.executable, str(TRAIN_PY), *args]
    )
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **env}
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env)
    if result.returncode != 0:
        print(result.stdout[-5000:], result.stderr[-5000:], sep="\n")
    return result


QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """The demo task, written once per test session."""
    from eisen_lightning.data.synthetic import write_demo_task

    root = tmp_path_factory.mktemp("demo_data")
    write_demo_task(root / "Task00_Demo")
    return root


def sitk_image(array, affine):
    """A 3D voxel array with a RAS ``affine`` (nibabel's) as a SimpleITK image of the same geometry (LPS)."""
    import numpy as np
    import SimpleITK as sitk

    lps = np.diag([-1.0, -1.0, 1.0]) @ np.asarray(affine)[:3, :3]
    spacing = np.linalg.norm(lps, axis=0)
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(array).astype(np.int16).T))
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetDirection(tuple((lps / spacing).flatten()))
    image.SetOrigin(tuple(float(v) for v in np.array([-1.0, -1.0, 1.0]) * np.asarray(affine)[:3, 3]))
    return image


def write_dicom_series(image, folder: Path, series_uid: str) -> None:
    """Write a 3D SimpleITK image as an MR DICOM series, one file per slice, into the new ``folder``."""
    import SimpleITK as sitk

    folder.mkdir(parents=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(image.GetSize()[2]):
        piece = image[:, :, k : k + 1]
        piece.SetMetaData("0008|0060", "MR")
        piece.SetMetaData("0020|000e", series_uid)
        piece.SetMetaData("0020|0013", str(k + 1))
        writer.SetFileName(str(folder / f"slice{k:03d}.dcm"))
        writer.Execute(piece)
