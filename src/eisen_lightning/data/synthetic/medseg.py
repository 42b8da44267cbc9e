"""A synthetic MedSeg COVID-19: ``tr_im.nii.gz`` and ``tr_mask.nii.gz``, stacks of axial slices."""

import os
from pathlib import Path

import numpy as np

from eisen_lightning.data.synthetic.json_list import blobs_case, nifti_image, staged_folder

SHAPE = (64, 64)
SPACING = (0.78, 0.78)


def write_medseg_replica(
    root: str | os.PathLike, test_file: str | None = None, num_slices: int = 12, seed: int = 0
) -> Path:
    """Write ``tr_im.nii.gz`` and ``tr_mask.nii.gz`` (``num_slices`` slices), and ``test_file`` when named."""
    rng = np.random.default_rng(seed)
    with staged_folder(root) as staging:
        if staging is None:
            return Path(root)
        images, masks = zip(*(blobs_case(rng, SHAPE, SPACING, 4) for _ in range(num_slices)), strict=True)
        stack = np.stack(images, -1) * 500.0 - 900.0  # lung-like Hounsfield units
        nifti_image(stack.astype(np.float32), (*SPACING, 5.0)).to_filename(staging / "tr_im.nii.gz")
        # as distributed, the mask is stored as floating point
        nifti_image(np.stack(masks, -1).astype(np.float32), (*SPACING, 5.0)).to_filename(
            staging / "tr_mask.nii.gz"
        )
        if test_file:
            test = np.stack([blobs_case(rng, SHAPE, SPACING, 4)[0] for _ in range(3)], -1) * 500.0 - 900.0
            nifti_image(test.astype(np.float32), (*SPACING, 5.0)).to_filename(staging / test_file)
    return Path(root)
