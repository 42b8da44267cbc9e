"""Label transforms MONAI has no equivalent for: Eisen's four-way thresholding, one-hot by a class list.

* ``AsDiscreted(threshold=t)`` only gives ``x >= t`` (as float); ``ThresholdIntensityd`` clips
  values instead of binarising. Eisen's ``ThresholdValues`` has four directions and keeps the dtype.
* ``AsDiscreted(to_onehot=n)`` needs labels ``0..n-1``; ``MapLabelValued`` can map a class list
  there first, but values outside the list keep their value and land in a wrong channel. Eisen's
  ``LabelMapToOneHot`` orders channels by an arbitrary class list (``[1, 2, 25, 3]``) and gives
  all-zero channels to any other value.
"""

import operator
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

DIRECTIONS = {
    "greater": operator.gt,
    "smaller": operator.lt,
    "greater/equal": operator.ge,
    "smaller/equal": operator.le,
}


class Thresholdd(MapTransform):
    """Binarise to 0/1 by comparing with a threshold, keeping the dtype (Eisen's ``ThresholdValues``).

    Args:
        keys: Keys to binarise (numpy arrays or tensors, MetaTensors keep their metadata).
        threshold: Value compared with.
        direction: ``greater`` (``x > t``), ``smaller`` (``x < t``), ``greater/equal`` (``x >= t``)
            or ``smaller/equal`` (``x <= t``): Eisen's names.
        allow_missing_keys: Skip keys that are absent instead of raising ``KeyError``.

    >>> Thresholdd("label", 0.5, "smaller/equal")({"label": np.array([0.2, 0.5, 0.9])})["label"]
    array([1., 1., 0.])
    """

    def __init__(
        self,
        keys: KeysCollection,
        threshold: float,
        direction: str = "greater",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {list(DIRECTIONS)}, got {direction!r}")
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise TypeError(f"threshold must be a number, got {threshold!r}")
        self.threshold, self.direction = threshold, direction

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Return a copy of ``data`` with the keys binarised."""
        d = dict(data)
        compare = DIRECTIONS[self.direction]
        for key in self.key_iterator(d):
            value = d[key]
            mask = compare(value, self.threshold)
            d[key] = mask.astype(value.dtype) if isinstance(value, np.ndarray) else mask.to(value.dtype)
        return d


class ClassesToOneHotd(MapTransform):
    """One channel per listed class, in the list's order (Eisen's ``LabelMapToOneHot``).

    Channel ``i`` is ``label == classes[i]`` as float32; voxels whose value is not listed are 0 in
    every channel. The label must have one leading channel axis, ``(1, *spatial)``; unlike Eisen,
    singleton spatial axes are kept (Eisen squeezed every axis of size 1).

    Args:
        keys: Label keys.
        classes: Class values, one per output channel (any integers, any order).
        allow_missing_keys: Skip keys that are absent instead of raising ``KeyError``.

    >>> out = ClassesToOneHotd("label", [1, 2, 25, 3])({"label": np.array([[0, 25, 3]])})["label"]
    >>> out.shape, out[2].tolist()
    ((4, 3), [0.0, 1.0, 0.0])
    """

    def __init__(
        self, keys: KeysCollection, classes: Sequence[int], allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        classes = list(classes) if isinstance(classes, Sequence) and not isinstance(classes, str) else []
        if not classes or not all(
            isinstance(c, int | np.integer) and not isinstance(c, bool) for c in classes
        ):
            raise ValueError(f"classes must be a non-empty list of integer class values, got {classes!r}")
        if len(set(classes)) != len(classes):
            raise ValueError(f"classes must be distinct, got {classes}")
        self.classes = [int(c) for c in classes]

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Return a copy of ``data`` with the label keys one-hot encoded."""
        d = dict(data)
        for key in self.key_iterator(d):
            label = d[key]
            if label.ndim < 2 or label.shape[0] != 1:
                raise ValueError(
                    f"ClassesToOneHotd needs {key!r} as (1, *spatial) with one channel, got shape "
                    f"{tuple(label.shape)}; add the channel axis first (EnsureChannelFirstd)"
                )
            if isinstance(label, np.ndarray):
                d[key] = np.concatenate([label == c for c in self.classes]).astype(np.float32)
            else:
                d[key] = torch.cat([label == c for c in self.classes]).to(torch.float32)
        return d
