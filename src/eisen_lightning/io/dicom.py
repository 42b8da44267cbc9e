"""DICOM: single files and enhanced multi-frame objects through pydicom, series through SimpleITK.

Which library reads what, and why:

* **A single file** (a slice, an enhanced CT/MR multi-frame volume, an RT dose grid): pydicom, with
  the geometry of each frame from the functional groups (or ``GridFrameOffsetVector``) and the
  rescale (``RescaleSlope``/``RescaleIntercept``, or ``DoseGridScaling``) applied per frame.
  Pixel data that pydicom has no decoder for (JPEG-LS, JPEG 2000 without pylibjpeg) is decoded by
  SimpleITK's GDCM instead.
* **A series** (a folder, or a list of files): SimpleITK's GDCM series reader decodes the pixels and
  hands over each slice's header; the ordering and all checks are ours (``dicom_geometry``). Parsing
  the headers with pydicom alone costs more than GDCM's whole read of a 128-slice series (see
  benchmarks/results/io_readers.md), so pydicom is used for series only where GDCM is not exact:
  slices with different rescale values read in their own type (``dtype=None``: ITK takes the
  series' pixel type from the first slice and truncates the others, slope 1 then 0.37 gives int16
  336 for 336.7; read as float, as by default, each slice is rescaled exactly) and series GDCM
  refuses, where pydicom's reading also produces the precise error.

A folder holding several series is read when ``series_uid`` names one of them; otherwise the error
lists the series found (UID, number of files, modality, description).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eisen_lightning.io.base import BaseReader, Loaded, has_suffix
from eisen_lightning.io.dicom_file import any_rescaled, decode, frame_infos, read_file, rescale
from eisen_lightning.io.dicom_geometry import SliceInfo, numbers, order_slices
from eisen_lightning.io.errors import ImageReadError, describe_content
from eisen_lightning.io.sitk_reader import array_view, quiet_itk, sitk_pixel_type

DICOM_SUFFIXES = ("dcm", "dicom", "ima")
# GDCM's tags for the slice header fields (SimpleITK metadata keys).
_TAGS = {
    "series_uid": "0020|000e",
    "orientation": "0020|0037",
    "position": "0020|0032",
    "pixel_spacing": "0028|0030",
    "slope": "0028|1053",
    "intercept": "0028|1052",
    "modality": "0008|0060",
    "samples": "0028|0002",
}


def is_dicom_file(path: str | os.PathLike) -> bool:
    """Whether the file starts like DICOM Part 10 (``DICM`` after the 128-byte preamble)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"


class DicomReader(BaseReader):
    """Read a DICOM file, a folder holding a series, or a list of files forming one series.

    Args:
        dtype: Data type of the returned array; ``None`` keeps the decoded type.
        series_uid: The SeriesInstanceUID to read from a folder holding several series.

    >>> DicomReader().verify_suffix("slice.dcm")
    True
    """

    suffixes = DICOM_SUFFIXES
    library = "pydicom"

    def __init__(self, dtype: np.dtype | type | str | None = np.float32, series_uid: str | None = None):
        super().__init__(dtype)
        self.series_uid = series_uid

    def claims(self, paths: tuple[str, ...]) -> bool:
        """Folders, .dcm/.dicom/.ima files, and suffix-less files that start like DICOM."""
        return all(
            os.path.isdir(p) or has_suffix(p, self.suffixes) or ("." not in Path(p).name and is_dicom_file(p))
            for p in paths
        )

    def groups(self, paths: tuple[str, ...]) -> list[str | tuple[str, ...]]:
        """Several files are one series, not channels."""
        return [paths] if len(paths) > 1 else [paths[0]]

    def load_one(self, path: str | tuple[str, ...]) -> Loaded:
        """Read a file, a folder or a list of files."""
        if isinstance(path, tuple):
            return read_series(list(path), list(path), self.dtype)
        if os.path.isdir(path):
            return read_folder(path, self.series_uid, self.dtype)
        return read_file(path)

    def explain(self, path: str, err: Exception) -> ImageReadError:
        """Name the usual DICOM failures: not DICOM, truncated, no decoder."""
        from pydicom.errors import InvalidDicomError

        if isinstance(err, InvalidDicomError):
            return ImageReadError(
                path,
                f"it is not a DICOM file (no 'DICM' marker); {describe_content(path)}",
                "give a DICOM file, or rename the file to the suffix of its real format",
            )
        if isinstance(err, EOFError | OSError) or "truncated" in str(err).lower() or "bytes" in str(err):
            return ImageReadError(
                path,
                f"the file is truncated or damaged ({err})",
                "copy or export the file again from the archive (PACS)",
            )
        return super().explain(path, err)


# ---- series ------------------------------------------------------------------------------------
def read_folder(folder: str, series_uid: str | None, dtype: np.dtype | None = None) -> Loaded:
    """Read the one series of ``folder``, or the one named ``series_uid``."""
    import SimpleITK as sitk

    with os.scandir(folder) as entries:  # d_type from the directory listing: no stat per file
        files = sorted(
            e.path for e in entries if e.is_file() and not e.name.startswith(".") and e.name != "DICOMDIR"
        )
    with quiet_itk():
        names = list(
            sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, series_uid or "", False, False, False)
        )
    if series_uid is None and names and len(names) == len(files):
        return read_series(names, folder, dtype)  # the common case: every file is one series, no scan needed
    series = series_table(folder)
    if not series:
        folders = sorted(p.name for p in Path(folder).iterdir() if p.is_dir())
        found = f", e.g. {Path(files[0]).name}: {describe_content(files[0])}" if files else ""
        found += f"; sub-folders: {', '.join(folders[:6])}" if folders else ""
        raise ImageReadError(
            folder,
            f"the folder holds no DICOM image ({len(files)} file(s){found})",
            "point to the folder that holds the series' files (sub-folders are not searched)",
        )
    if series_uid is not None and series_uid not in series:
        raise ImageReadError(
            folder,
            f"no series {series_uid} in it; it holds {describe_series(series)}",
            "use one of these UIDs",
        )
    if series_uid is None and len(series) > 1:
        raise ImageReadError(
            folder,
            f"it holds {len(series)} series: {describe_series(series)}",
            "choose one with series_uid=<UID> (readers(series_uid=...), load(..., series_uid=...)), "
            "or pass that series' files",
        )
    return read_series(series[series_uid or next(iter(series))], folder, dtype)


def series_table(folder: str) -> dict[str, list[str]]:
    """SeriesInstanceUID -> sorted files of each series in ``folder`` (GDCM's scan)."""
    import SimpleITK as sitk

    with quiet_itk():
        uids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(folder)
        return {uid: list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, uid)) for uid in uids}


def describe_series(series: dict[str, list[str]]) -> str:
    """``UID (N files, MODALITY, 'description')`` for each series, from the first file's header."""
    import pydicom

    parts = []
    for uid, files in series.items():
        try:
            ds = pydicom.dcmread(files[0], stop_before_pixels=True)
            extra = f", {ds.get('Modality', '?')}, {str(ds.get('SeriesDescription', ''))!r}"
        except Exception:  # a description is a courtesy: never fail the error message itself
            extra = ""
        parts.append(f"{uid} ({len(files)} file(s){extra})")
    return "; ".join(parts)


def read_series(names: list[str], source: str | Sequence[str], dtype: np.dtype | None = None) -> Loaded:
    """Decode a series with GDCM, then order and check it with its slice headers.

    ``dtype`` float32/float64 is produced by ITK while it reads (cheaper than a pass afterwards).
    """
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(names)
    reader.MetaDataDictionaryArrayUpdateOn()
    pixel_type = sitk_pixel_type(dtype, 1)
    try:
        image = _execute(reader, pixel_type)
        samples = int(_sitk_get(reader, 0, "samples") or 1)
        if samples > 1 and pixel_type != sitk.sitkUnknown:  # ITK would have made colour grey
            pixel_type = sitk_pixel_type(dtype, samples)
            image = _execute(reader, pixel_type)
    except RuntimeError:  # GDCM refuses (sizes differ, not DICOM, no decoder): pydicom says why
        return read_series_pydicom(names, source)
    infos = _sitk_slices(reader, names)
    modality = _sitk_get(reader, 0, "modality").strip()
    del reader  # the image is then ours alone, and its array view needs no copy
    if len({(s.slope, s.intercept) for s in infos}) > 1 and pixel_type == sitk.sitkUnknown:
        return read_series_pydicom(names, source)  # ITK's integer output would truncate: see above
    geometry = order_slices(infos, source)
    array = array_view(image)
    if image.GetDimension() == 2:
        array = array[:, :, None]
    meta = {"format": "dicom", "series_uid": infos[0].series_uid, "modality": modality}
    channel_dim = -1 if image.GetNumberOfComponentsPerPixel() > 1 else None
    return Loaded(_reorder(array, geometry.order), geometry.affine, channel_dim, meta)


def _execute(reader, pixel_type: int):
    """Decode the series with ``pixel_type`` produced while reading (cheaper than a cast after)."""
    reader.SetOutputPixelType(pixel_type)
    with quiet_itk():
        return reader.Execute()


def _sitk_get(reader, index: int, field: str) -> str:
    key = _TAGS[field]
    return reader.GetMetaData(index, key) if reader.HasMetaDataKey(index, key) else ""


def _sitk_slices(reader, names: list[str]) -> list[SliceInfo]:
    """The slice headers as GDCM read them (sizes are equal: ITK refuses a series otherwise).

    Identical header strings are parsed once: a series usually shares orientation and spacing.
    """
    parsed: dict[str, np.ndarray | None] = {}

    def parse(text: str) -> np.ndarray | None:
        if text not in parsed:
            parsed[text] = numbers(text)
        return parsed[text]

    infos = []
    for index, name in enumerate(names):
        spacing = parse(_sitk_get(reader, index, "pixel_spacing"))
        slope = parse(_sitk_get(reader, index, "slope"))
        intercept = parse(_sitk_get(reader, index, "intercept"))
        infos.append(
            SliceInfo(
                name=os.path.basename(name),
                series_uid=_sitk_get(reader, index, "series_uid").strip(),
                orientation=parse(_sitk_get(reader, index, "orientation")),
                position=numbers(_sitk_get(reader, index, "position")),
                pixel_spacing=None if spacing is None else (float(spacing[0]), float(spacing[1])),
                slope=1.0 if slope is None else float(slope[0]),
                intercept=0.0 if intercept is None else float(intercept[0]),
            )
        )
    return infos


def _reorder(array: np.ndarray, order: list[int]) -> np.ndarray:
    """Put the slices (last spatial axis) in ``order``, copying each slice whole (Fortran order)."""
    if order == list(range(len(order))):
        return array
    out = np.empty(array.shape, dtype=array.dtype, order="F")
    for k, i in enumerate(order):
        out[:, :, k] = array[:, :, i]
    return out


def read_series_pydicom(names: list[str], source: str | Sequence[str]) -> Loaded:
    """Read a series slice by slice with pydicom (per-slice rescale; precise errors)."""
    import pydicom

    datasets = [pydicom.dcmread(name) for name in names]
    infos = [frame_infos(ds, Path(name).name)[0] for ds, name in zip(datasets, names, strict=True)]
    geometry = order_slices(infos, source)
    as_float = any_rescaled(infos)
    out = None
    for k, i in enumerate(geometry.order):
        pixels, done = decode(datasets[i], names[i])
        if done:  # decoded by GDCM, which has applied the rescale
            values = pixels.astype(np.float32) if as_float else pixels
        else:
            values = rescale(pixels, infos[i], as_float)
        if out is None:
            out = np.empty(
                (values.shape[1], values.shape[0], len(names), *values.shape[2:]), values.dtype, order="F"
            )
        out[:, :, k] = np.swapaxes(values, 0, 1)
    meta = {
        "format": "dicom",
        "series_uid": infos[0].series_uid,
        "modality": str(datasets[0].get("Modality", "")),
    }
    return Loaded(out, geometry.affine, -1 if out.ndim > 3 else None, meta)
