"""What ``eisen predict`` reads (a file, a DICOM folder, a folder of cases, a split) and where it writes.

A case's ``image`` is a path, or a list of paths (one per input channel, as BraTS and ABCs give);
the written label map takes the geometry of the first. A case of a split keeps every field of the
data set's case but the label (such as MedSeg's ``slice_index``), so the data set's own
``predict_transforms()`` read it as in training.
"""

from pathlib import Path
from typing import Any

from eisen_lightning import keys

IMAGE_SUFFIXES = (
    ".nii.gz",
    ".nii",
    ".mha",
    ".mhd",
    ".nrrd",
    ".nhdr",
    ".png",
    ".jpg",
    ".jpeg",
    ".tif",
    ".tiff",
)
SPLIT_PREFIX = "split:"
SPLITS = ("train", "val", "test", "unlabelled")


def collect_cases(source: str, datamodule: Any) -> list[dict[str, Any]]:
    """Turn ``input=...`` into cases ``{"case_id", "image", ...}``.

    Args:
        source: An image file, a DICOM folder, a folder of image files and DICOM folders, or
            ``split:train|val|test|unlabelled`` of the configured data set.
        datamodule: The configured DataModule (for splits).

    Raises:
        FileNotFoundError: If the path does not exist.
        ValueError: If a folder holds no image, or the split name is unknown.
    """
    if source.startswith(SPLIT_PREFIX):
        return _split_cases(source[len(SPLIT_PREFIX) :], datamodule)
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(
            f"input={source}: no such file or folder; give an image, a folder or split:val"
        )
    if path.is_file():
        return [{keys.CASE_ID: case_name(path), keys.IMAGE: str(path)}]
    if is_dicom_folder(path):
        return [{keys.CASE_ID: path.name, keys.IMAGE: str(path)}]
    cases = [
        {keys.CASE_ID: case_name(p), keys.IMAGE: str(p)}
        for p in sorted(path.iterdir())
        if (p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES)) or (p.is_dir() and is_dicom_folder(p))
    ]
    if not cases:
        raise ValueError(
            f"input={source}: the folder holds no image file ({', '.join(IMAGE_SUFFIXES)}) or DICOM folder"
        )
    return cases


def _split_cases(name: str, datamodule: Any) -> list[dict[str, Any]]:
    if name not in SPLITS:
        raise ValueError(
            f"input=split:{name}: unknown split; choose one of {[SPLIT_PREFIX + s for s in SPLITS]}"
        )
    datamodule.prepare_data()
    if name == "unlabelled":
        return [_unlabelled(c) for c in datamodule.unlabelled_cases()]
    datamodule.setup("predict")
    wanted = set(datamodule.splits[name])
    return [_unlabelled(c) for c in datamodule.labelled_cases() if c[keys.CASE_ID] in wanted]


def _unlabelled(case: dict[str, Any]) -> dict[str, Any]:
    """The case without its label: the image paths and every other field its transforms may read."""
    return {k: v for k, v in case.items() if k != keys.LABEL}


def first_path(case: dict[str, Any]) -> str:
    """The image path of ``case``, or the first of its channel paths (whose geometry the output takes).

    Raises:
        TypeError: If ``image`` is neither a path nor a non-empty list of paths.
    """
    image = case[keys.IMAGE]
    if isinstance(image, str | Path):
        return str(image)
    if isinstance(image, list | tuple) and image and all(isinstance(p, str | Path) for p in image):
        return str(image[0])
    raise TypeError(
        f"case {case.get(keys.CASE_ID)!r}: image must be a path or a list of paths (one per channel), "
        f"got {image!r}"
    )


def source_name(case: dict[str, Any]) -> str:
    """How the report names a case's input: its path, the first of its channels, or a slice of a stack."""
    image = case[keys.IMAGE]
    name = first_path(case)
    if not isinstance(image, str | Path) and len(image) > 1:
        name += f" (+{len(image) - 1} channel file(s))"
    if keys.SLICE_INDEX in case:
        name += f" [slice {case[keys.SLICE_INDEX]}]"
    return name


def reference_image(case: dict[str, Any]) -> Any:
    """The image whose geometry the case's label map must have: its (first) file, or its slice.

    A case with a ``slice_index`` is that slice of the stack (MedSeg): a 2D image placed where the
    slice lies in the volume.
    """
    from eisen_lightning.io import load

    if keys.SLICE_INDEX in case:
        from eisen_lightning.data.medseg import load_stack, slice_of

        return slice_of(load_stack(first_path(case)), int(case[keys.SLICE_INDEX]))
    return load(first_path(case))


def is_dicom_file(path: Path) -> bool:
    """Whether ``path`` starts with the DICOM preamble and ``DICM`` magic."""
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def is_dicom_folder(path: Path) -> bool:
    """Whether a folder directly holds DICOM files."""
    return path.is_dir() and any(p.is_file() and is_dicom_file(p) for p in path.iterdir())


def case_name(path: Path) -> str:
    """A file name without its image suffix (``spleen_1.nii.gz`` -> ``spleen_1``)."""
    name = path.name
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


#: input suffix -> the suffix its prediction is written with by default
NATIVE_OUTPUT = {
    ".nii.gz": ".nii.gz",
    ".nii": ".nii",
    ".mha": ".mha",
    ".mhd": ".mha",
    ".nrrd": ".nrrd",
    ".nhdr": ".nrrd",
}


def output_path(case: dict[str, Any], output_dir: Path, output_format: str | None) -> Path:
    """``<output_dir>/<case_id>_seg.<format>``: the input's format, NIfTI for DICOM and 2D images."""
    if output_format:
        suffix = "." + output_format.lstrip(".")
    else:
        name = Path(first_path(case)).name.lower()
        suffix = next((out for inp, out in NATIVE_OUTPUT.items() if name.endswith(inp)), ".nii.gz")
    return output_dir / f"{case[keys.CASE_ID]}_seg{suffix}"
