"""Reading speed: eisen_lightning's LoadImage path against the fastest plain library call per format.

One float32 volume (int16 for DICOM) of SIZE^3 voxels is written as .nii, .nii.gz, .mha, .nrrd and
a DICOM series (SimpleITK, one file per slice). Each repeat times every candidate once, in an order
rotated per repeat, so that machine load and caches hit all candidates alike. The table gives the
median time of each, and the ratio of ours to the fastest plain call for the format (the target of
the issue: at most 1.2), and the same ratio of the minima.

"Plain" calls return the voxels in memory with the library alone, as a user would write them:

* nibabel: ``np.asanyarray(nib.load(f, mmap=False).dataobj)``, and ``nib.load(f)`` (memory-mapped)
  followed by a copy (a bare memory map reads nothing until used, so it is no reading at all);
* SimpleITK: ``ReadImage`` + ``GetArrayFromImage``, and + ``GetArrayViewFromImage`` (no copy);
* DICOM: SimpleITK's GDCM series reader on ``GetGDCMSeriesFileNames(folder)``; pydicom reading
  every file, sorting by position and stacking the rescaled pixels.

Ours is ``LoadImage(reader=readers(), image_only=True, ensure_channel_first=True)`` with MONAI's
default float32, i.e. what ``LoadImaged`` does in the pipelines. MONAI's own default ``LoadImage``
is shown for reference where it reads the format without the ``itk`` package.

    python benchmarks/io_readers.py                     # 128^3, 15 repeats
    python benchmarks/io_readers.py --size 16 --repeats 1
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
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import SimpleITK as sitk
import torch

warnings.filterwarnings("ignore")


def write_inputs(folder: Path, size: int) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    volume = rng.normal(100.0, 20.0, (size, size, size)).astype(np.float32)  # x, y, z
    affine = np.diag([0.8, 0.9, 2.5, 1.0])
    paths = {
        "nii": folder / "v.nii",
        "nii.gz": folder / "v.nii.gz",
        "mha": folder / "v.mha",
        "nrrd": folder / "v.nrrd",
    }
    nib.save(nib.Nifti1Image(volume, affine), paths["nii"])
    nib.save(nib.Nifti1Image(volume, affine), paths["nii.gz"])
    image = sitk.GetImageFromArray(np.ascontiguousarray(volume.T))
    image.SetSpacing((0.8, 0.9, 2.5))
    sitk.WriteImage(image, str(paths["mha"]))
    sitk.WriteImage(image, str(paths["nrrd"]))
    series = folder / "dicom"
    series.mkdir()
    ct = sitk.Cast(image * 10.0 - 1000.0, sitk.sitkInt16)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(size):
        piece = ct[:, :, k : k + 1]
        piece.SetMetaData("0008|0060", "CT")
        piece.SetMetaData("0020|000e", "1.2.826.0.1.3680043.8.498.1")
        piece.SetMetaData("0020|0013", str(k + 1))
        writer.SetFileName(str(series / f"slice{k:04d}.dcm"))
        writer.Execute(piece)
    paths["dicom"] = series
    return paths


def plain_candidates(fmt: str, path: Path) -> dict[str, Callable]:
    p = str(path)
    if fmt in ("nii", "nii.gz"):
        out = {"nibabel": lambda: np.asanyarray(nib.load(p, mmap=False).dataobj)}
        if fmt == "nii":
            out["nibabel mmap+copy"] = lambda: np.array(nib.load(p).dataobj)
        return out
    if fmt in ("mha", "nrrd"):
        return {
            "SimpleITK copy": lambda: sitk.GetArrayFromImage(sitk.ReadImage(p)),
            "SimpleITK view": lambda: _view(sitk.ReadImage(p)),
        }
    return {"SimpleITK series": lambda: _view(_sitk_series(p)), "pydicom": lambda: _pydicom_series(p)}


def _view(image) -> tuple:
    return image, sitk.GetArrayViewFromImage(image)  # the image must outlive its view


def _sitk_series(folder: str):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder))
    return reader.Execute()


def _pydicom_series(folder: str) -> np.ndarray:
    datasets = [pydicom.dcmread(os.path.join(folder, name)) for name in os.listdir(folder)]
    normal = np.cross(*np.reshape(np.asarray(datasets[0].ImageOrientationPatient, float), (2, 3)))
    datasets.sort(key=lambda ds: float(np.dot(np.asarray(ds.ImagePositionPatient, float), normal)))
    return np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in datasets])


def ours_and_monai(fmt: str, path: Path) -> dict[str, Callable]:
    from monai.transforms import LoadImage

    from eisen_lightning.io import readers

    ours = LoadImage(reader=readers(), image_only=True, ensure_channel_first=True)
    out = {"ours": lambda: ours(str(path))}
    if fmt in ("nii", "nii.gz", "dicom"):
        monai = LoadImage(
            reader="NibabelReader" if fmt != "dicom" else "PydicomReader",
            image_only=True,
            ensure_channel_first=True,
        )
        out["MONAI default"] = lambda: monai(str(path))
    return out


def measure(candidates: dict[str, Callable], repeats: int) -> dict[str, tuple[float, float]]:
    names = list(candidates)
    for name in names:  # warm-up: imports, page cache
        candidates[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            candidates[name]()
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(values), min(values)) for name, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128, help="edge of the cubic volume in voxels")
    parser.add_argument("--repeats", type=int, default=15, help="timed repeats per candidate")
    parser.add_argument("--formats", default="nii,nii.gz,mha,nrrd,dicom", help="comma-separated subset")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(
        f"# io_readers: {args.size}^3 voxels, {args.repeats} repeats, python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs"
    )
    print(f"{'format':8} {'candidate':20} {'median ms':>10} {'min ms':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_inputs(Path(tmp), args.size)
        for fmt in args.formats.split(","):
            plain = plain_candidates(fmt, paths[fmt])
            mine = ours_and_monai(fmt, paths[fmt])
            result = measure({**plain, **mine}, args.repeats)
            for name, (median, best) in result.items():
                print(f"{fmt:8} {name:20} {median * 1e3:10.2f} {best * 1e3:8.2f}")
            fastest = min(plain, key=lambda name: result[name][0])
            ratio, ratio_min = (result["ours"][i] / result[fastest][i] for i in (0, 1))
            print(f"{fmt:8} ratio ours / {fastest}: {ratio:.2f} (of the minima: {ratio_min:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
