"""Dictionary bookkeeping MONAI has no single transform for: constant fields and renamed keys.

MONAI's dictionary transforms change the values of keys that exist. Eisen's ``CreateConstantFlags``
adds keys with fixed values (flags such as ``has_label``) and ``RenameFields`` moves a value to a
new key; MONAI can only rename by ``CopyItemsd`` + ``DeleteItemsd``, which deep-copies the data
first (a second copy of every volume), so both are written here.
"""

import copy
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from monai.config import KeysCollection
from monai.transforms import MapTransform


class SetConstantsd(MapTransform):
    """Set each key to a constant (Eisen's ``CreateConstantFlags``); the keys need not exist.

    Each sample gets its own copy of the value, so a list or dict is never shared between samples.

    Args:
        keys: Keys to set.
        values: One value per key, in the same order.

    >>> SetConstantsd(["has_label", "site"], [1.0, "A"])({"image": 0})
    {'image': 0, 'has_label': 1.0, 'site': 'A'}
    """

    def __init__(self, keys: KeysCollection, values: Sequence[Any]) -> None:
        super().__init__(keys, allow_missing_keys=True)
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            raise TypeError(f"values must be a list with one value per key, got {type(values).__name__}")
        if len(values) != len(self.keys):
            raise ValueError(
                f"values has {len(values)} entries for {len(self.keys)} keys {list(self.keys)}; "
                "give one value per key"
            )
        self.values = list(values)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Return a copy of ``data`` with the constants set."""
        d = dict(data)
        for key, value in zip(self.keys, self.values, strict=True):
            d[key] = copy.deepcopy(value)
        return d


class RenameKeysd(MapTransform):
    """Move each value to a new key without copying it (Eisen's ``RenameFields``).

    All keys are renamed at once, so ``["a", "b"] -> ["b", "a"]`` swaps them. Unlike Eisen,
    renaming onto a key that exists and is not renamed itself raises instead of overwriting it.

    Args:
        keys: Keys to rename.
        names: New name of each key, in the same order.
        allow_missing_keys: Skip keys that are absent instead of raising ``KeyError``.

    >>> RenameKeysd(["image_2CH"], ["image"])({"image_2CH": 1, "label": 2})
    {'label': 2, 'image': 1}
    """

    def __init__(
        self, keys: KeysCollection, names: Sequence[Hashable], allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        names = [names] if isinstance(names, str) else list(names)
        if len(names) != len(self.keys):
            raise ValueError(
                f"names has {len(names)} entries {names} for {len(self.keys)} keys {list(self.keys)}; "
                "give one new name per key"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"names must be distinct, got {names}")
        self.names = names

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Return a copy of ``data`` with the keys renamed."""
        d = dict(data)
        moved = {name: key for key, name in self.key_iterator(d, self.names)}
        clashes = [name for name in moved if name in d and name not in moved.values()]
        if clashes:
            raise ValueError(
                f"RenameKeysd would overwrite the existing key(s) {clashes}; rename or drop them first "
                f"(keys {list(self.keys)} -> names {self.names})"
            )
        values = {name: d.pop(key) for name, key in moved.items()}
        d.update(values)
        return d
