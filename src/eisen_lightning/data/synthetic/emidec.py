"""A synthetic EMIDEC: ``Case_[NP]XXX/{Images,Contours}/Case_[NP]XXX.nii.gz``, ``Case [NP]XXX.txt``."""

import os
from pathlib import Path

import numpy as np

from eisen_lightning.data.synthetic.json_list import blobs_case, nifti_image, staged_folder

SHAPE, SPACING = (48, 48, 7), (1.5, 1.5, 10.0)
CLINICAL = "GBS: {sex}\nAge: {age}\nTobacco: N\nOverweight: N\nArterial hypertension: Y\nDiabetes: N\n"


def write_emidec_replica(root: str | os.PathLike, num_cases: int = 10, seed: int = 0) -> Path:
    """Write ``num_cases`` cases, a third of them normal (``Case_N...``) as in the real set."""
    rng = np.random.default_rng(seed)
    with staged_folder(root) as staging:
        if staging is None:
            return Path(root)
        for i in range(num_cases):
            pathological = i % 3 != 0
            name = f"Case_{'P' if pathological else 'N'}{i + 1:03d}"
            image, label = blobs_case(rng, SHAPE, SPACING, 5 if pathological else 3)
            for sub, array in (("Images", image * 200.0 + 50.0), ("Contours", label)):
                (staging / name / sub).mkdir(parents=True)
                nifti_image(array.astype(np.float32 if sub == "Images" else np.uint8), SPACING).to_filename(
                    staging / name / sub / f"{name}.nii.gz"
                )
            text = CLINICAL.format(sex=rng.integers(0, 2), age=rng.integers(35, 85))
            (staging / f"{name.replace('_', ' ')}.txt").write_text(text, encoding="utf-8")
    return Path(root)
