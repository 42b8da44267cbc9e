"""Synthetic data on disk, in the exact layouts the real data sets are distributed in.

* :func:`write_demo_task`: the offline demo, a Decathlon-layout task that needs learning.
* :func:`write_decathlon_replica`: a small fake copy of any of the ten Decathlon tasks, with the
  task's real modalities, label names and file naming, for tests and dry runs.

Each case is an "organ" (label 1, bright ellipsoid) holding a "lesion" (label 2) whose intensity
is the background's: no global intensity threshold separates the lesion from the background,
while its context (a dark hole inside a bright organ) makes it easy to learn.
"""

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DEMO_NAME = "Demo"
DEMO_LABELS = ("background", "organ", "lesion")

#: name -> (file prefix, modalities, labels) of the ten Decathlon tasks, as in their dataset.json.
DECATHLON_META = {
    "Task01_BrainTumour": (
        "BRATS",
        ("FLAIR", "T1w", "t1gd", "T2w"),
        ("background", "edema", "non-enhancing tumor", "enhancing tumour"),
    ),
    "Task02_Heart": ("la", ("MRI",), ("background", "left atrium")),
    "Task03_Liver": ("liver", ("CT",), ("background", "liver", "cancer")),
    "Task04_Hippocampus": ("hippocampus", ("MRI",), ("background", "Anterior", "Posterior")),
    "Task05_Prostate": ("prostate", ("T2", "ADC"), ("background", "PZ", "TZ")),
    "Task06_Lung": ("lung", ("CT",), ("background", "cancer")),
    "Task07_Pancreas": ("pancreas", ("CT",), ("background", "pancreas", "cancer")),
    "Task08_HepaticVessel": ("hepaticvessel", ("CT",), ("background", "Vessel", "Tumour")),
    "Task09_Spleen": ("spleen", ("CT",), ("background", "spleen")),
    "Task10_Colon": ("colon", ("CT",), ("background", "colon cancer primaries")),
}


def demo_affine(spacing: Sequence[float], angle_deg: float = 8.0) -> np.ndarray:
    """A non-identity affine: LPS-like axis flips, a small in-plane rotation, an offset origin.

    ``spacing`` has 3 values, or 2 for a 2D image (whose third axis is 1 mm).
    """
    a = np.deg2rad(angle_deg)
    rotation = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    affine = np.eye(4)
    z = spacing[2] if len(spacing) > 2 else 1.0
    affine[:3, :3] = rotation @ np.diag([-spacing[0], -spacing[1], z])
    affine[:3, 3] = [90.0, 110.0, -40.0]
    return affine


def demo_case(
    rng: np.random.Generator, shape: Sequence[int], spacing: Sequence[float], num_labels: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic case: a noisy image with a bright organ and a background-dark lesion inside it.

    Args:
        rng: Random generator.
        shape: Image shape in voxels, 2 or 3 sizes.
        spacing: Voxel size in mm (objects are sized in mm, so spacing changes their voxel size).
        num_labels: 2 (organ only) or 3 (organ and lesion).

    Returns:
        ``(image float32, label uint8)``, both of ``shape``.
    """
    grid = np.stack(
        np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing, strict=True)], indexing="ij"), -1
    )
    extent = np.array(shape) * np.array(spacing)
    ndim = len(shape)
    radii = rng.uniform(0.28, 0.34, ndim) * extent.min() * np.array([1.0, 0.9, 0.8])[:ndim]
    centre = extent / 2 + rng.uniform(-0.1, 0.1, ndim) * extent
    organ = (((grid - centre) / radii) ** 2).sum(-1) <= 1.0
    label = organ.astype(np.uint8)
    if num_labels > 2:
        lesion_radius = rng.uniform(0.5, 0.6) * radii.min()
        offset = rng.normal(size=ndim)
        offset *= rng.uniform(0.0, 0.2) * radii / np.linalg.norm(offset)
        lesion = (((grid - centre - offset) / lesion_radius) ** 2).sum(-1) <= 1.0
        label[lesion & organ] = 2
    image = (label == 1).astype(np.float32)
    image += _bias_field(rng, grid, extent) + rng.normal(0.0, 0.3, shape).astype(np.float32)
    return image.astype(np.float32), label


def _bias_field(rng: np.random.Generator, grid: np.ndarray, extent: np.ndarray) -> np.ndarray:
    ndim = len(extent)
    phase, freq = rng.uniform(0, 2 * np.pi, ndim), rng.uniform(0.5, 1.5, ndim) * np.pi / extent
    return (0.15 * np.sin((grid * freq).sum(-1) + phase.sum())).astype(np.float32)


def write_decathlon_task(
    root: str | os.PathLike,
    name: str,
    prefix: str,
    modalities: Sequence[str],
    label_names: Sequence[str],
    num_training: int,
    num_test: int,
    shape: Sequence[int] = (48, 48, 28),
    seed: int = 0,
    intensity: tuple[float, float] = (1.0, 0.0),
) -> Path:
    """Write a synthetic task in the Decathlon layout, atomically (a temporary folder, then a rename).

    Args:
        root: The task folder to create; an existing complete folder is left untouched.
        name: ``name`` entry of ``dataset.json``.
        prefix: File name prefix (``spleen`` gives ``imagesTr/spleen_0.nii.gz``).
        modalities: One modality per channel; more than one writes 4D images.
        label_names: Class names, background first.
        num_training: Labelled cases.
        num_test: Unlabelled cases in ``imagesTs/``.
        shape: Image shape in voxels, 2 or 3 sizes.
        seed: Seed of every random choice.
        intensity: ``(scale, offset)`` applied to the unit-contrast images (HU-like values for CT).

    Returns:
        The task folder.
    """
    root = Path(root)
    if (root / "dataset.json").is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        meta = _write_cases(
            staging, prefix, modalities, len(label_names), num_training, num_test, shape, seed, intensity
        )
        meta.update(
            name=name,
            description=f"synthetic {name}",
            tensorImageSize="4D" if len(modalities) > 1 else "3D",
            modality=dict(enumerate(modalities)),
            labels=dict(enumerate(label_names)),
        )
        (staging / "dataset.json").write_text(json.dumps(_str_keys(meta), indent=2) + "\n")
        _publish(staging, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def _write_cases(
    folder: Path,
    prefix: str,
    modalities: Sequence[str],
    num_labels: int,
    num_training: int,
    num_test: int,
    shape: Sequence[int],
    seed: int,
    intensity: tuple[float, float],
) -> dict:
    import nibabel as nib

    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (folder / sub).mkdir()
    rng = np.random.default_rng(seed)
    training, test = [], []
    for i in range(num_training + num_test):
        spacing = (rng.uniform(1.2, 1.4), rng.uniform(1.2, 1.4), 2.5)[: len(shape)]
        image, label = demo_case(rng, shape, spacing, num_labels)
        image = image * intensity[0] + intensity[1]
        if len(modalities) > 1:
            image = np.stack([image * (1 + 0.2 * c) for c in range(len(modalities))], axis=-1)
        affine = demo_affine(spacing)
        file = f"{prefix}_{i}.nii.gz"
        split = "imagesTr" if i < num_training else "imagesTs"
        nib.save(nib.Nifti1Image(image.astype(np.float32), affine), folder / split / file)
        if i < num_training:
            nib.save(nib.Nifti1Image(label, affine), folder / "labelsTr" / file)
            training.append({"image": f"./imagesTr/{file}", "label": f"./labelsTr/{file}"})
        else:
            test.append(f"./imagesTs/{file}")
    return {"numTraining": num_training, "numTest": num_test, "training": training, "test": test}


def _str_keys(meta: dict) -> dict:
    return {
        k: ({str(i): v for i, v in value.items()} if isinstance(value, dict) else value)
        for k, value in meta.items()
    }


def _publish(staging: Path, root: Path) -> None:
    """Move a finished folder into place; another process that got there first wins."""
    try:
        os.replace(staging, root)
    except OSError:
        if not (root / "dataset.json").is_file():
            raise


DEMO_SHAPE = (48, 48, 28)


def write_demo_task(
    root: str | os.PathLike,
    num_training: int = 32,
    num_test: int = 4,
    seed: int = 0,
    shape: Sequence[int] = DEMO_SHAPE,
) -> Path:
    """Write the offline demo task (3 classes, MR-like intensities) in the Decathlon layout.

    ``shape`` with two sizes writes 2D images (a 2D demo).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     task = write_demo_task(Path(folder) / "Task00_Demo", num_training=2, num_test=1)
    ...     labels = sorted(p.name for p in (task / "labelsTr").iterdir())
    ...     print(sorted(p.name for p in task.iterdir()), labels)
    ['dataset.json', 'imagesTr', 'imagesTs', 'labelsTr'] ['demo_0.nii.gz', 'demo_1.nii.gz']
    """
    if len(shape) not in (2, 3):
        raise ValueError(f"shape must have 2 or 3 sizes, got {list(shape)}")
    return write_decathlon_task(
        root, DEMO_NAME, "demo", ("MRI",), DEMO_LABELS, num_training, num_test, shape=shape, seed=seed
    )


def write_decathlon_replica(
    root: str | os.PathLike, task: str, num_training: int = 6, num_test: int = 2, seed: int = 0
) -> Path:
    """Write a small fake copy of the Decathlon task ``task`` into ``root/task``.

    Raises:
        ValueError: If ``task`` is not one of the ten Decathlon tasks.

    >>> import json
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     task = write_decathlon_replica(folder, "Task09_Spleen", num_training=2, num_test=1)
    ...     meta = json.loads((task / "dataset.json").read_text())
    ...     images = sorted(p.name for p in (task / "imagesTr").iterdir())
    >>> task.name, meta["modality"], meta["labels"], images
    ('Task09_Spleen', {'0': 'CT'}, {'0': 'background', '1': 'spleen'}, ['spleen_0.nii.gz', 'spleen_1.nii.gz'])
    """
    if task not in DECATHLON_META:
        raise ValueError(f"task must be one of {sorted(DECATHLON_META)}, got {task!r}")
    prefix, modalities, labels = DECATHLON_META[task]
    intensity = (300.0, -100.0) if modalities == ("CT",) else (1.0, 0.0)
    return write_decathlon_task(
        Path(root) / task,
        task,
        prefix,
        modalities,
        labels,
        num_training,
        num_test,
        shape=(40, 40, 20),
        seed=seed,
        intensity=intensity,
    )
