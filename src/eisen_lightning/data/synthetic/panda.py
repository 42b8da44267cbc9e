"""A tiny PANDA replica: ``train.csv`` and pyramidal, tiled TIFF slides (3 levels, 1 : 4 : 16) with masks.

Slides are white with pink tissue blobs; the higher the ISUP grade, the more dark purple
"tumour" glands in the tissue. Masks follow the Radboud convention (0 background, 1 stroma,
3-5 Gleason patterns) in the red channel, as in the real mask files. Written with tifffile (zlib,
64-pixel tiles, SubIFD pyramid).
"""

import csv
from pathlib import Path

import numpy as np

SIZE = (768, 1024)
GLEASON = {0: "0+0", 1: "3+3", 2: "3+4", 3: "4+3", 4: "4+4", 5: "4+5"}


def panda_slide(
    rng: np.random.Generator, grade: int, size: tuple[int, int] = SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """An RGB uint8 slide and its uint8 mask (values 0-5), drawn at 1/8 scale and enlarged."""
    coarse = (size[0] // 8, size[1] // 8)
    rows, cols = np.mgrid[: coarse[0], : coarse[1]]
    mask = np.zeros(coarse, np.uint8)
    for _ in range(3):
        r, c = rng.uniform(0.2, 0.8) * coarse[0], rng.uniform(0.15, 0.85) * coarse[1]
        tissue = np.hypot(rows - r, cols - c) < coarse[0] * 0.16
        mask[tissue] = 1
        for _ in range(4 * grade):
            gr, gc = r + rng.normal(0, coarse[0] * 0.07), c + rng.normal(0, coarse[0] * 0.07)
            mask[tissue & (np.hypot(rows - gr, cols - gc) < coarse[0] * 0.03)] = min(3 + grade // 2, 5)
    mask = mask.repeat(8, 0).repeat(8, 1)
    colours = np.array([(242, 242, 242), (225, 160, 200)] + [(110, 40, 130)] * 4, np.int16)
    slide = colours[mask] + rng.integers(-6, 7, (*size, 3), dtype=np.int16)
    return np.clip(slide, 0, 255).astype(np.uint8), mask


def write_pyramid(path: Path, image: np.ndarray, levels: int = 3) -> None:
    """A tiled TIFF with ``levels`` levels, each 4 times smaller (SubIFDs), zlib-compressed."""
    import tifffile

    with tifffile.TiffWriter(path) as tif:
        options = {"tile": (64, 64), "compression": "zlib", "photometric": "rgb"}
        tif.write(image, subifds=levels - 1, **options)
        for level in range(1, levels):
            step = 4**level
            tif.write(np.ascontiguousarray(image[::step, ::step]), subfiletype=1, **options)


def write_panda_replica(root: str | Path, num_slides: int = 12, seed: int = 0) -> Path:
    """Write ``train.csv``, ``train_images/`` and ``train_label_masks/`` (one mask left out) into ``root``.

    Returns:
        ``root``.
    """
    root = Path(root)
    if (root / "train.csv").is_file():
        return root
    rng = np.random.default_rng(seed)
    (root / "train_images").mkdir(parents=True, exist_ok=True)
    (root / "train_label_masks").mkdir(exist_ok=True)
    rows = []
    for i in range(num_slides):
        image_id, grade = rng.bytes(16).hex(), i % 6
        slide, mask = panda_slide(rng, grade)
        write_pyramid(root / "train_images" / f"{image_id}.tiff", slide)
        if i != 1:  # as in the real set, a few slides have no mask
            masks = np.zeros_like(slide)
            masks[..., 0] = mask
            write_pyramid(root / "train_label_masks" / f"{image_id}_mask.tiff", masks)
        provider = "radboud" if i % 2 else "karolinska"
        gleason = "negative" if grade == 0 and provider == "karolinska" else GLEASON[grade]
        rows.append([image_id, provider, grade, gleason])
    with (root / "train.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "data_provider", "isup_grade", "gleason_score"])
        writer.writerows(rows)
    return root
