"""DICOM series assembly: order slices along their normal, check the stack, build the affine.

Neither pydicom nor MONAI's ``PydicomReader`` does this part right for us: ``PydicomReader`` sorts
by ``InstanceNumber`` (which need not follow the slice positions), averages ``|dz|`` into one
spacing without noticing a missing slice, mixed orientations or uneven gaps, and ignores the
per-frame geometry of enhanced multi-frame objects. SimpleITK's series reader sorts by position but
only warns about gaps. So the rules are written here once, for slices from any source:

* slices are sorted by their position projected on the slice normal (row x column cosines);
* every slice must share one orientation, one size and one pixel spacing;
* positions must be distinct, equally spaced and on one line, else the error names the files and
  says whether a slice is missing (a gap that is a multiple of the step) or the spacing is uneven.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from eisen_lightning.io.errors import ImageReadError

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
ORIENTATION_TOL = 1e-4  # direction cosines
RELATIVE_SPACING_TOL = 0.01  # of the slice step
ABSOLUTE_SPACING_TOL = 1e-3  # mm


@dataclass
class SliceInfo:
    """The header fields of one slice (or frame) that the geometry needs.

    Attributes:
        name: File (and frame) for error messages.
        series_uid: SeriesInstanceUID, ``""`` when absent.
        orientation: ImageOrientationPatient (row cosines, then column cosines), or ``None``.
        position: ImagePositionPatient of the first voxel (LPS, mm), or ``None``.
        pixel_spacing: PixelSpacing ``(between rows, between columns)`` in mm, or ``None``.
        size: ``(rows, columns)``.
        thickness: SliceThickness (or SpacingBetweenSlices), used for single slices only.
        slope: RescaleSlope (1 when absent).
        intercept: RescaleIntercept (0 when absent).
    """

    name: str
    series_uid: str = ""
    orientation: np.ndarray | None = None
    position: np.ndarray | None = None
    pixel_spacing: tuple[float, float] | None = None
    size: tuple[int, int] = (0, 0)
    thickness: float | None = None
    slope: float = 1.0
    intercept: float = 0.0


@dataclass
class StackGeometry:
    """The result of :func:`order_slices`: reading order and the RAS affine of the stack."""

    order: list[int]
    affine: np.ndarray


def numbers(value: object) -> np.ndarray | None:
    """Parse a DICOM multi-value (a backslash-separated string, a list, a MultiValue) to floats."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = value.split("\\")
    try:
        parsed = [float(v) for v in value if str(v).strip()]
    except (TypeError, ValueError):
        return None
    return np.asarray(parsed, dtype=np.float64) if parsed else None


def slice_affine(info: SliceInfo, step: np.ndarray | None = None) -> np.ndarray:
    """The RAS affine of a slice; ``step`` is the vector from one slice to the next (LPS, mm).

    Without orientation and position (secondary captures, ultrasound), the image sits at the origin
    with identity LPS directions, as ITK places it.
    """
    dy, dx = info.pixel_spacing if info.pixel_spacing is not None else (1.0, 1.0)
    if info.orientation is None or info.position is None:
        row, col, origin = np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.zeros(3)
    else:
        row, col, origin = info.orientation[:3], info.orientation[3:6], info.position
    normal = np.cross(row, col)
    if step is None:
        step = normal * (info.thickness or 1.0)
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2], affine[:3, 3] = row * dx, col * dy, step, origin
    return LPS_TO_RAS @ affine


def order_slices(slices: Sequence[SliceInfo], source: str | Sequence[str]) -> StackGeometry:
    """Sort slices along their normal, check that they form one regular volume, and build its affine.

    Args:
        slices: One entry per slice, in reading order.
        source: The folder or files, for error messages.

    Raises:
        ImageReadError: Mixed series, sizes, spacings or orientations; missing geometry; duplicate
            positions; a missing slice; uneven spacing; positions off one line.
    """
    _check_same(slices, source)
    if len(slices) == 1:
        return StackGeometry([0], slice_affine(slices[0]))
    missing = [s.name for s in slices if s.orientation is None or s.position is None]
    if missing:
        raise ImageReadError(
            source,
            f"{len(missing)} slice(s) lack ImagePositionPatient/ImageOrientationPatient (e.g. {missing[0]}), "
            "so they cannot be ordered in space",
            "read such files one by one, or convert the series with a tool that knows their geometry",
        )
    first = slices[0].orientation
    normal = np.cross(first[:3], first[3:6])
    positions = np.stack([s.position for s in slices])
    distance = positions @ normal
    order = [int(i) for i in np.argsort(distance, kind="stable")]
    _check_spacing(slices, order, distance, source)
    ordered = positions[order]
    step = (ordered[-1] - ordered[0]) / (len(order) - 1)
    expected = ordered[0] + np.arange(len(order))[:, None] * step
    off_line = np.abs(ordered - expected).max()
    if off_line > ABSOLUTE_SPACING_TOL + RELATIVE_SPACING_TOL * np.linalg.norm(step):
        raise ImageReadError(
            source,
            f"the slice positions do not lie on one line (a slice is shifted in-plane by {off_line:.3g} mm)",
            "check that the files are one acquisition; resample the series with a DICOM converter",
        )
    return StackGeometry(order, slice_affine(slices[order[0]], step))


def _check_same(slices: Sequence[SliceInfo], source: str | Sequence[str]) -> None:
    uids = sorted({s.series_uid for s in slices})
    if len(uids) > 1:
        listing = "; ".join(
            f"{uid or '(none)'}: {sum(s.series_uid == uid for s in slices)} file(s)" for uid in uids
        )
        raise ImageReadError(
            source,
            f"the files belong to {len(uids)} series ({listing})",
            "pass the files of one series only",
        )
    for field, label in (("size", "size (rows, columns)"), ("pixel_spacing", "PixelSpacing")):
        values = [getattr(s, field) for s in slices]
        if all(v == values[0] for v in values):
            continue
        odd = [i for i, v in enumerate(values) if not _close(v, values[0])]
        if odd:
            raise ImageReadError(
                source,
                f"the slices differ in {label}: {slices[0].name} has {values[0]}, "
                f"{slices[odd[0]].name} has {values[odd[0]]}",
                "pass only the slices of one volume (a series may hold localizers or reformats)",
            )
    oriented = [s.orientation for s in slices if s.orientation is not None]
    if not oriented or np.abs(np.stack(oriented) - oriented[0]).max() <= ORIENTATION_TOL:
        return
    groups: list[tuple[np.ndarray, list[str]]] = []
    for s in slices:
        if s.orientation is None:
            continue
        for orientation, names in groups:
            if np.allclose(orientation, s.orientation, atol=ORIENTATION_TOL):
                names.append(s.name)
                break
        else:
            groups.append((s.orientation, [s.name]))
    if len(groups) > 1:
        listing = "; ".join(
            f"{np.round(o, 4).tolist()}: {len(n)} slice(s), e.g. {n[0]}" for o, n in groups[:4]
        )
        raise ImageReadError(
            source,
            f"the slices have {len(groups)} different orientations (ImageOrientationPatient): {listing}",
            "pass the slices of one orientation only (localizer or reformatted images are separate volumes)",
        )


def _close(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return bool(np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), atol=1e-4))


def _check_spacing(slices: Sequence[SliceInfo], order: list[int], distance: np.ndarray, source) -> None:
    d = distance[order]
    gaps = np.diff(d)
    names = [slices[i].name for i in order]
    tiny = np.flatnonzero(gaps < ABSOLUTE_SPACING_TOL)
    if tiny.size:
        i = int(tiny[0])
        raise ImageReadError(
            source,
            f"two slices share the position {d[i]:.4g} mm along the normal ({names[i]} and {names[i + 1]}): "
            "the files hold several volumes (echoes, phases, time points) or duplicates",
            "pass the files of one volume only",
        )
    step = float(np.median(gaps))
    tol = ABSOLUTE_SPACING_TOL + RELATIVE_SPACING_TOL * step
    bad = np.flatnonzero(np.abs(gaps - step) > tol)
    if not bad.size:
        return
    i = int(bad[0])
    ratio = gaps[i] / step
    if ratio > 1.5 and abs(ratio - round(ratio)) * step <= tol:
        raise ImageReadError(
            source,
            f"{round(ratio) - 1} slice(s) missing between {names[i]} and {names[i + 1]} "
            f"(gap {gaps[i]:.4g} mm, step {step:.4g} mm)",
            "find the missing file(s) and put them back (an incomplete copy or transfer)",
        )
    raise ImageReadError(
        source,
        f"uneven slice spacing: {gaps[i]:.4g} mm between {names[i]} and {names[i + 1]}, "
        f"{step:.4g} mm elsewhere ({bad.size} uneven gap(s))",
        "resample the series to a regular grid with a DICOM converter, or pass a regular subset",
    )
