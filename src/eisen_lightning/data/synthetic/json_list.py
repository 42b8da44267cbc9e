"""A synthetic "your own data" set (NIfTI files and a JSON list), and what every replica writer shares.

Replicas are written into a temporary folder that is renamed into place once complete, so a
concurrent or interrupted writer never leaves a half-written layout behind. Each image holds
nested ellipsoids, one per foreground class, with a class-specific intensity under noise and a
smooth bias: learnable, but not by one global threshold at the finest detail.
"""

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from eisen_lightning.data.synthetic.decathlon import demo_affine


@contextmanager
def staged_folder(root: str | os.PathLike) -> Iterator[Path | None]:
    """Yield a temporary folder that becomes ``root`` on success; ``None`` when ``root`` exists already."""
    root = Path(root)
    if root.exists():
        yield None
        return
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        yield staging
        try:
            os.replace(staging, root)
        except OSError:
            if not root.exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def blobs_case(
    rng: np.random.Generator, shape: Sequence[int], spacing: Sequence[float], num_labels: int
) -> tuple[np.ndarray, np.ndarray]:
    """An image and its label map: ``num_labels - 1`` nested ellipsoids (label k inside label k-1).

    Returns:
        ``(image float32, label uint8)`` of ``shape``; label ``k`` has mean intensity ``k / 2``
        (alternating with ``0.25`` so neighbours differ), plus noise.
    """
    ndim = len(shape)
    grid = np.stack(
        np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing, strict=True)], indexing="ij"), -1
    )
    extent = np.array(shape) * np.array(spacing)
    centre = extent / 2 + rng.uniform(-0.08, 0.08, ndim) * extent
    label = np.zeros(shape, np.uint8)
    image = np.zeros(shape, np.float32)
    for k in range(1, num_labels):
        scale = 0.4 * (1.0 - 0.7 * (k - 1) / max(num_labels - 1, 1))
        radii = rng.uniform(0.9, 1.1, ndim) * scale * extent
        inside = (((grid - centre) / radii) ** 2).sum(-1) <= 1.0
        label[inside] = k
        image[inside] = 0.25 + 0.5 * k if k % 2 else 0.5 * k - 0.25
    image += rng.normal(0.0, 0.2, shape).astype(np.float32)
    return image.astype(np.float32), label


def nifti_image(array: np.ndarray, spacing: Sequence[float]):
    """A NIfTI image on an oblique, anisotropic grid (see :func:`demo_affine`)."""
    import nibabel as nib

    return nib.Nifti1Image(array, demo_affine(list(spacing) + [1.0] * (3 - len(spacing))))


def itk_image(array: np.ndarray, spacing: Sequence[float], angle_deg: float = 6.0):
    """A SimpleITK image of ``array`` (axes x, y[, z]) with an oblique direction and an offset origin."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(array.T))  # SimpleITK arrays are z, y, x
    ndim = array.ndim
    a = np.deg2rad(angle_deg)
    direction = np.eye(ndim)
    direction[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    image.SetSpacing([float(s) for s in spacing])
    image.SetDirection(direction.flatten().tolist())
    image.SetOrigin([12.5, -30.0, 4.0][:ndim])
    return image


def write_itk(image, path: Path) -> None:
    """Write a SimpleITK image (``.mhd`` writes its ``.raw`` beside it)."""
    import SimpleITK as sitk

    sitk.WriteImage(image, str(path))


def write_json_list_replica(
    json_file: str | os.PathLike,
    num_labels: int = 2,
    num_training: int = 12,
    num_test: int = 1,
    seed: int = 0,
) -> Path:
    """Write NIfTI images, labels and a JSON list (paths relative to it) at ``json_file``."""
    json_file = Path(json_file)
    with staged_folder(json_file.parent) as staging:
        if staging is None:
            return json_file
        (staging / "images").mkdir()
        (staging / "labels").mkdir()
        rng = np.random.default_rng(seed)
        entries = []
        for i in range(num_training + num_test):
            spacing = (1.4, 1.2, 2.5)
            image, label = blobs_case(rng, (32, 32, 16), spacing, num_labels)
            entry = {"image": f"images/case_{i:03d}.nii.gz", "patient_id": f"p{i // 2}"}
            nifti_image(image, spacing).to_filename(staging / entry["image"])
            if i < num_training:
                entry["label"] = f"labels/case_{i:03d}.nii.gz"
                nifti_image(label, spacing).to_filename(staging / entry["label"])
            entries.append(entry)
        (staging / json_file.name).write_text(json.dumps(entries, indent=2) + "\n")
    return json_file
