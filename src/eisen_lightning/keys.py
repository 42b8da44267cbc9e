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

# -- per data set: Eisen's original field names, where a case has several images or labels ------
#: MedSeg: the index of a case's slice along the last axis of its stack.
SLICE_INDEX = "slice_index"
#: CAMUS: the two-chamber and four-chamber views' frames and label maps.
IMAGE_2CH = "image_2CH"
IMAGE_4CH = "image_4CH"
LABEL_2CH = "label_2CH"
LABEL_4CH = "label_4CH"
#: ABCs: the CT and MR modalities, and the label maps of its two tasks.
CT = "ct"
T1 = "t1"
T2 = "t2"
LABEL_TASK1 = "label_task1"
LABEL_TASK2 = "label_task2"
#: BraTS: the MR modalities (with ``T1``, ``T2``).
T1CE = "t1ce"
FLAIR = "flair"

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
