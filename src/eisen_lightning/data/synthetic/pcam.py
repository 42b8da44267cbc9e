"""A tiny PatchCamelyon replica: the official HDF5 file names, keys, shapes and dtypes.

Tumour patches hold dark, dense purple "nuclei" in their centre 32x32 region; normal ones are pale.
"""

from pathlib import Path

import numpy as np

SPLIT_SIZES = {"train": 16, "valid": 8, "test": 8}


def pcam_patch(rng: np.random.Generator, tumour: bool, size: int = 96) -> np.ndarray:
    """One ``size x size x 3`` uint8 H&E-like patch; tumour patches have a dense dark centre."""
    patch = np.empty((size, size, 3), np.float32)
    patch[:] = (235.0, 200.0, 225.0)
    patch += rng.normal(0, 8, patch.shape)
    count = 60 if tumour else 8
    lo, hi = (size // 3, 2 * size // 3) if tumour else (0, size)
    for y, x in rng.integers(lo, hi, (count, 2)):
        patch[max(y - 2, 0) : y + 2, max(x - 2, 0) : x + 2] = (90.0, 40.0, 120.0)
    return np.clip(patch, 0, 255).astype(np.uint8)


def write_pcam_replica(root: str | Path, sizes: dict[str, int] | None = None, seed: int = 0) -> Path:
    """Write ``camelyonpatch_level_2_split_{train,valid,test}_{x,y,mask}.h5`` into ``root``.

    Args:
        root: Folder to write into (created); existing files are kept.
        sizes: Patches per split (default 16 train, 8 valid, 8 test), half of them tumour.
        seed: Seed of the random content.

    Returns:
        ``root``.
    """
    import h5py

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, n in (sizes or SPLIT_SIZES).items():
        prefix = root / f"camelyonpatch_level_2_split_{split}"
        if Path(f"{prefix}_y.h5").is_file():
            continue
        labels = (np.arange(n) % 2).astype(np.uint8)
        x = np.stack([pcam_patch(rng, bool(t)) for t in labels])
        mask = np.zeros((n, 96, 96), np.uint8)
        mask[labels == 1, 32:64, 32:64] = 1
        for kind, name, data in (
            ("x", "x", x),
            ("mask", "mask", mask),
            ("y", "y", labels.reshape(n, 1, 1, 1)),
        ):
            with h5py.File(f"{prefix}_{kind}.h5", "w") as handle:
                handle.create_dataset(name, data=data, chunks=(1, *data.shape[1:]))
    return root
