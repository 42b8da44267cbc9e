"""A tiny RSNA Bone Age replica: the Kaggle CSV columns and values, doubled folders, grey PNGs.

Each radiograph is a dark background with bright "bones" whose length grows with the bone age,
at varying image sizes as in the real set.
"""

import csv
from pathlib import Path

import numpy as np


def boneage_image(rng: np.random.Generator, months: float, shape: tuple[int, int]) -> np.ndarray:
    """A grey uint8 ``shape`` image with five bright bars whose length grows with ``months``."""
    image = rng.normal(30, 6, shape)
    height, width = shape
    length = int(height * (0.2 + 0.6 * months / 228.0))
    for finger in range(5):
        x = int(width * (0.15 + 0.17 * finger))
        image[height - length - 4 : height - 4, x : x + max(width // 14, 2)] = 200 + rng.normal(0, 5)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_boneage_replica(root: str | Path, num_training: int = 20, num_test: int = 4, seed: int = 0) -> Path:
    """Write the training and test CSV files and PNG folders of the Kaggle layout into ``root``.

    Args:
        root: The data-set folder (created); an existing replica is kept.
        num_training: Labelled radiographs (ids from 1377, as in the real set).
        num_test: Test radiographs (ids from 4360).
        seed: Seed of ages, sexes and pixels.

    Returns:
        ``root``.
    """
    from PIL import Image

    root = Path(root)
    if (root / "boneage-training-dataset.csv").is_file():
        return root
    rng = np.random.default_rng(seed)
    train_dir = root / "boneage-training-dataset" / "boneage-training-dataset"
    test_dir = root / "boneage-test-dataset" / "boneage-test-dataset"
    for folder in (train_dir, test_dir):
        folder.mkdir(parents=True, exist_ok=True)
    rows, test_rows = [], []
    for i in range(num_training + num_test):
        months, male = int(rng.integers(6, 228)), bool(i % 2)
        shape = (int(rng.integers(72, 96)), int(rng.integers(56, 80)))
        if i < num_training:
            case_id = str(1377 + i)
            Image.fromarray(boneage_image(rng, months, shape)).save(train_dir / f"{case_id}.png")
            rows.append([case_id, months, str(male)])
        else:
            case_id = str(4360 + i - num_training)
            Image.fromarray(boneage_image(rng, months, shape)).save(test_dir / f"{case_id}.png")
            test_rows.append([case_id, "M" if male else "F"])
    _write_csv(root / "boneage-test-dataset.csv", ["Case ID", "Sex"], test_rows)
    _write_csv(root / "boneage-training-dataset.csv", ["id", "boneage", "male"], rows)
    return root


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
