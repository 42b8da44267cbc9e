"""One DICOM file through pydicom: a slice, or a volume of frames (enhanced multi-frame, RT dose).

The geometry of each frame comes from the functional groups (per-frame, else shared) or from
``GridFrameOffsetVector``; the rescale (``RescaleSlope``/``RescaleIntercept``, ``DoseGridScaling``)
is applied per frame. Pixel data that pydicom cannot decode for lack of a plugin (JPEG-LS,
JPEG 2000 without pylibjpeg) is decoded by SimpleITK's GDCM, which ships its own codecs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eisen_lightning.io.base import Loaded
from eisen_lightning.io.dicom_geometry import SliceInfo, numbers, order_slices, slice_affine
from eisen_lightning.io.errors import ImageReadError
from eisen_lightning.io.sitk_reader import quiet_itk

_DECODER_HINT = (
    "install a decoder for its transfer syntax: pip install pylibjpeg pylibjpeg-libjpeg "
    "pylibjpeg-openjpeg (or python-gdcm)"
)


def read_file(path: str) -> Loaded:
    """One DICOM file: a 2D image, or a volume when it holds several frames."""
    import pydicom

    ds = pydicom.dcmread(path)
    if not any(tag in ds for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        kind = ds.get("SOPClassUID")
        raise ImageReadError(
            path,
            f"it holds no pixel data (it is a {getattr(kind, 'name', 'non-image object')})",
            "give an image object (CT, MR, PET, ... slices or an enhanced multi-frame image)",
        )
    infos = frame_infos(ds, Path(path).name)
    pixels, done = decode(ds, path)
    if done:  # GDCM has applied the rescale already
        for info in infos:
            info.slope, info.intercept = 1.0, 0.0
    meta = {
        "format": "dicom",
        "series_uid": str(ds.get("SeriesInstanceUID", "")),
        "modality": str(ds.get("Modality", "")),
    }
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    channel_dim = -1 if samples > 1 else None
    if len(infos) == 1:
        values = rescale(pixels, infos[0])
        return Loaded(np.swapaxes(values, 0, 1), slice_affine(infos[0]), channel_dim, meta)
    if pixels.ndim == 2 + (samples > 1):  # one frame decoded although several announced
        pixels = pixels[None]
    geometry = order_slices(infos, path) if infos[0].position is not None else None
    order = geometry.order if geometry else list(range(len(infos)))
    frames = [rescale(pixels[i], infos[i], any_rescaled(infos)) for i in order]
    out = np.empty(
        (frames[0].shape[1], frames[0].shape[0], len(frames), *frames[0].shape[2:]), frames[0].dtype, "F"
    )
    for k, frame in enumerate(frames):
        out[:, :, k] = np.swapaxes(frame, 0, 1)
    affine = geometry.affine if geometry else slice_affine(infos[0])
    return Loaded(out, affine, channel_dim, meta)


def decode(ds, path: str) -> tuple[np.ndarray, bool]:
    """Pixel data (frames first) by pydicom, else by GDCM when pydicom lacks the decoder.

    Returns:
        ``(pixels, rescaled)``: GDCM's values come rescaled already, pydicom's do not.
    """
    try:
        return ds.pixel_array, False
    except (RuntimeError, NotImplementedError, ValueError) as err:
        pydicom_error = err
    import SimpleITK as sitk

    try:
        with quiet_itk():
            image = sitk.ReadImage(path)
    except RuntimeError:
        syntax = getattr(ds.file_meta.get("TransferSyntaxUID"), "name", "unknown")
        if isinstance(pydicom_error, ValueError):  # a decoder ran and found the data inconsistent
            raise ImageReadError(
                path,
                f"its pixel data is truncated or damaged: {pydicom_error}",
                "copy or export the file again from the archive (PACS)",
            ) from pydicom_error
        raise ImageReadError(
            path, f"its pixel data ({syntax}) cannot be decoded: {pydicom_error}", _DECODER_HINT
        ) from pydicom_error
    array = sitk.GetArrayFromImage(image)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    return (array[0] if frames == 1 and array.ndim == 3 and array.shape[0] == 1 else array), True


def rescale(pixels: np.ndarray, info: SliceInfo, as_float: bool = False) -> np.ndarray:
    """Apply slope and intercept (float32 result) unless they are 1 and 0 and ``as_float`` is off.

    Pass ``as_float`` for the slices of a stack where any slice is rescaled, so that all share a type.
    """
    if info.slope == 1.0 and info.intercept == 0.0 and not as_float:
        return pixels
    return pixels.astype(np.float32) * np.float32(info.slope) + np.float32(info.intercept)


def any_rescaled(infos: list[SliceInfo]) -> bool:
    """Whether any slice of a stack has a slope or intercept other than 1 and 0."""
    return any(info.slope != 1.0 or info.intercept != 0.0 for info in infos)


def frame_infos(ds, name: str) -> list[SliceInfo]:
    """A :class:`SliceInfo` for each frame: functional groups, GridFrameOffsetVector, or top-level tags."""
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else None
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    base = _top_level_info(ds, name)
    if per_frame:
        return [
            _functional_info(base, group, shared, f"{name} frame {i + 1}")
            for i, group in enumerate(per_frame)
        ]
    if frames == 1:
        return [base]
    offsets = numbers(ds.get("GridFrameOffsetVector"))
    infos = []
    for i in range(frames):
        info = SliceInfo(**{**base.__dict__, "name": f"{name} frame {i + 1}"})
        if offsets is not None and base.position is not None and base.orientation is not None:
            normal = np.cross(base.orientation[:3], base.orientation[3:6])
            relative = offsets[i] - (0.0 if offsets[0] == 0 else base.position @ normal)
            info.position = base.position + relative * normal
        elif base.position is not None:
            info.position = None  # frames of unknown spacing: stacked in file order
        infos.append(info)
    return infos


def _top_level_info(ds, name: str) -> SliceInfo:
    spacing = numbers(ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing"))
    slope = ds.get("RescaleSlope", ds.get("DoseGridScaling", 1.0))
    return SliceInfo(
        name=name,
        series_uid=str(ds.get("SeriesInstanceUID", "")),
        orientation=numbers(ds.get("ImageOrientationPatient")),
        position=numbers(ds.get("ImagePositionPatient")),
        pixel_spacing=None if spacing is None else (float(spacing[0]), float(spacing[1])),
        size=(int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)),
        thickness=float(ds.get("SpacingBetweenSlices") or ds.get("SliceThickness") or 1.0),
        slope=float(slope if slope not in (None, "") else 1.0),
        intercept=float(ds.get("RescaleIntercept", 0.0) or 0.0),
    )


def _functional_info(base: SliceInfo, group, shared, name: str) -> SliceInfo:
    def field(sequence: str, keyword: str):
        for source in (group, shared):
            if source is not None and sequence in source and keyword in source[sequence][0]:
                return source[sequence][0][keyword].value
        return None

    info = SliceInfo(**{**base.__dict__, "name": name})
    orientation = field("PlaneOrientationSequence", "ImageOrientationPatient")
    position = field("PlanePositionSequence", "ImagePositionPatient")
    spacing = field("PixelMeasuresSequence", "PixelSpacing")
    thickness = field("PixelMeasuresSequence", "SpacingBetweenSlices") or field(
        "PixelMeasuresSequence", "SliceThickness"
    )
    slope = field("PixelValueTransformationSequence", "RescaleSlope")
    intercept = field("PixelValueTransformationSequence", "RescaleIntercept")
    info.orientation = numbers(orientation) if orientation is not None else base.orientation
    info.position = numbers(position) if position is not None else base.position
    if spacing is not None:
        info.pixel_spacing = (float(spacing[0]), float(spacing[1]))
    if thickness:
        info.thickness = float(thickness)
    if slope is not None:
        info.slope, info.intercept = float(slope), float(intercept or 0.0)
    return info
