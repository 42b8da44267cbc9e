"""Compare the geometry of two images: shape, spacing, origin and direction (``eisen verify-geometry``)."""

from collections.abc import Callable
from typing import Any

import numpy as np

#: Tolerances: spacing and direction are compared relatively / as cosines, origins in mm.
SPACING_TOLERANCE = 1e-4
ORIGIN_TOLERANCE_MM = 1e-3
DIRECTION_TOLERANCE = 1e-4


def describe(affine: np.ndarray) -> dict[str, np.ndarray]:
    """Split a ``(d+1, d+1)`` affine into spacing, origin and direction (unit columns).

    >>> g = describe(np.diag([2.0, 3.0, 4.0, 1.0]))
    >>> g["spacing"].tolist(), g["origin"].tolist()
    ([2.0, 3.0, 4.0], [0.0, 0.0, 0.0])
    """
    affine = np.asarray(affine, dtype=float)
    linear = affine[:-1, :-1]
    spacing = np.linalg.norm(linear, axis=0)
    return {"spacing": spacing, "origin": affine[:-1, -1], "direction": linear / spacing}


def geometry_differences(first: Any, second: Any) -> list[str]:
    """List how two channel-first MetaTensors differ in shape, spacing, origin and direction.

    Returns:
        One sentence per difference; empty when the geometries agree within the tolerances.
    """
    differences = []
    shape_a, shape_b = tuple(first.shape[1:]), tuple(second.shape[1:])
    if shape_a != shape_b:
        differences.append(f"shape: {shape_a} vs {shape_b}")
    a, b = describe(np.asarray(first.affine)), describe(np.asarray(second.affine))
    if a["spacing"].shape != b["spacing"].shape:
        return [*differences, f"dimensions: {a['spacing'].size} vs {b['spacing'].size}"]
    if not np.allclose(a["spacing"], b["spacing"], rtol=SPACING_TOLERANCE, atol=0):
        differences.append(f"spacing (mm): {_fmt(a['spacing'])} vs {_fmt(b['spacing'])}")
    if not np.allclose(a["origin"], b["origin"], atol=ORIGIN_TOLERANCE_MM, rtol=0):
        differences.append(f"origin (mm, RAS): {_fmt(a['origin'])} vs {_fmt(b['origin'])}")
    if not np.allclose(a["direction"], b["direction"], atol=DIRECTION_TOLERANCE, rtol=0):
        differences.append(
            f"direction: {_fmt(a['direction'].ravel())} vs {_fmt(b['direction'].ravel())} (columns, RAS)"
        )
    return differences


def compare_files(path_a: str, path_b: str, load: Callable[[str], Any] | None = None) -> list[str]:
    """Read two image files and return :func:`geometry_differences` of them."""
    if load is None:
        from eisen_lightning.io import load
    return geometry_differences(load(path_a), load(path_b))


def _fmt(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in np.asarray(values).ravel()) + "]"
