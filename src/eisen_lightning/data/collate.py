"""The batch boundary: MetaTensors become plain tensors, their geometry moves to ``batch["meta"]``."""

from collections.abc import Sequence
from typing import Any

from eisen_lightning import keys


def collate(items: Sequence[Any]) -> dict[str, Any]:
    """Collate samples (or lists of crops of samples) into one batch dict.

    Every MetaTensor in the batch becomes a plain ``torch.Tensor``; for each such key,
    ``batch["meta"][key]`` keeps the affine, the original affine and shape, the source file and the
    applied operations (what inverting the transforms needs to write predictions in native space).

    Args:
        items: Samples from a MONAI dataset; a sample may be a list of crops.
    """
    from monai.data import MetaTensor, list_data_collate

    batch = list_data_collate(list(items))
    meta: dict[str, dict[str, Any]] = {}
    for key in list(batch):
        value = batch[key]
        if isinstance(value, MetaTensor):
            meta[key] = _geometry(value)
            batch[key] = value.as_tensor()
    batch[keys.META] = meta
    return batch


def _geometry(value: Any) -> dict[str, Any]:
    geometry = {field: value.meta[field] for field in keys.GEOMETRY_FIELDS if field in value.meta}
    geometry["affine"] = value.affine
    geometry["applied_operations"] = value.applied_operations
    return geometry
