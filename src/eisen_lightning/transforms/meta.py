"""Random training transforms without MONAI's metadata tracking.

With tracking on (MONAI's default), every random crop, flip and rotation of every sample records
itself in a ``MetaTensor`` (affine updates, the list of applied operations, copies of the
metadata): about half the time of a warm training epoch of the demo. Training batches use
none of it (only validation, testing and prediction invert transforms to write results in the
scan's space), so the training split runs its random part through :class:`Untracked`.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
from monai.transforms import Compose, Randomizable, RandomizableTrait, Transform


class Untracked(Randomizable, Transform):
    """Run ``transforms`` with MONAI's metadata tracking off; tensors come out as plain tensors.

    Tracking is a process-wide MONAI setting: it is switched off for the call and put back as it
    was, even when a transform fails. As a ``Randomizable``, the wrapper is where caching datasets
    start their per-epoch part, and a seed given to the pipeline reaches the wrapped transforms.

    Args:
        transforms: The transforms to run in order (random ones, typically).

    >>> import torch
    >>> from monai.data import MetaTensor
    >>> from monai.transforms import RandFlipd
    >>> out = Untracked([RandFlipd("image", prob=1.0)])({"image": MetaTensor(torch.arange(3.0)[None])})
    >>> type(out["image"]).__name__, out["image"].tolist()
    ('Tensor', [[2.0, 1.0, 0.0]])
    """

    def __init__(self, transforms: Sequence[Any]) -> None:
        self.transform = Compose(list(transforms))

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> "Untracked":
        """Seed this wrapper and, from it, every wrapped random transform."""
        super().set_random_state(seed=seed, state=state)
        self.transform.set_random_state(seed=int(self.R.randint(np.iinfo(np.uint32).max, dtype="uint32")))
        return self

    def randomize(self, data: Any = None) -> None:
        """Nothing to draw here: the wrapped transforms draw their own values."""

    def __call__(self, data: Any) -> Any:
        """Apply the wrapped transforms to ``data`` with tracking off."""
        from monai.data import get_track_meta, set_track_meta

        before = get_track_meta()
        set_track_meta(False)
        try:
            return self.transform(data)
        finally:
            set_track_meta(before)


def untrack_random_part(transforms: Sequence[Any]) -> list[Any]:
    """``transforms`` with everything from the first random transform on wrapped in :class:`Untracked`.

    The deterministic prefix (what caches keep, with the geometry) is unchanged.

    >>> from monai.transforms import Identityd, RandFlipd
    >>> steps = untrack_random_part([Identityd("image"), RandFlipd("image"), Identityd("image")])
    >>> [type(s).__name__ for s in steps], len(steps[1].transform.transforms)
    (['Identityd', 'Untracked'], 2)
    """
    steps = list(transforms)
    first = next(
        (i for i, t in enumerate(steps) if isinstance(t, RandomizableTrait) or not isinstance(t, Transform)),
        None,
    )
    if first is None:
        return steps
    return [*steps[:first], Untracked(steps[first:])]


def flat_transforms(pipeline: Any) -> list[Any]:
    """The steps of a ``Compose`` in order, with those inside :class:`Untracked` in its place.

    >>> from monai.transforms import Identityd, RandFlipd
    >>> steps = flat_transforms(Compose(untrack_random_part([Identityd("image"), RandFlipd("image")])))
    >>> [type(s).__name__ for s in steps]
    ['Identityd', 'RandFlipd']
    """
    steps: list[Any] = []
    for step in getattr(pipeline, "transforms", pipeline):
        steps.extend(step.transform.transforms if isinstance(step, Untracked) else [step])
    return steps
