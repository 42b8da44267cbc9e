"""Names shared by data, tasks, callbacks and configs: batch keys, stages and metric keys.

>>> metric_key("val", "dice", "spleen")
'val/dice/spleen'
"""

IMAGE = "image"
LABEL = "label"
PRED = "pred"
PROB = "prob"
OUTPUT = "output"
META = "meta"
CASE_ID = "case_id"
#: Optional case field: images of one patient share it and never cross splits.
PATIENT_ID = "patient_id"

TRAIN = "train"
VAL = "val"
TEST = "test"
STAGES = (TRAIN, VAL, TEST)

LOSS = "loss"
DICE = "dice"
BEST_SUFFIX = "_best"

#: Geometry kept per spatial key in ``batch["meta"]`` when MetaTensors become plain tensors.
GEOMETRY_FIELDS = ("affine", "original_affine", "spatial_shape", "filename_or_obj")


def metric_key(stage: str, name: str, detail: str | None = None) -> str:
    """Return the logged name of a metric: ``stage/name`` or ``stage/name/detail``.

    Args:
        stage: One of ``train``, ``val``, ``test``.
        name: The metric, such as ``loss`` or ``dice``.
        detail: An optional qualifier, such as a class name.

    Raises:
        ValueError: If ``stage`` is not a known stage.
    """
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    return f"{stage}/{name}" if detail is None else f"{stage}/{name}/{detail}"
