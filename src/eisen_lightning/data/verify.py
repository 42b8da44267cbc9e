"""Read every file of a data set once and report all its problems together (``eisen verify``).

What is read comes from the DataModule's :meth:`verify_spec` (a :class:`VerifySpec`): which case
fields are image files, whether the label is a label-map file (with its allowed values) or a value
(a class index, a number, a vector: classification and regression), and how an image is read.
"""

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eisen_lightning import keys

AFFINE_TOLERANCE = 1e-3
#: ``read(case, key) -> channel-first image`` (a MetaTensor for files with a geometry).
Reader = Callable[[Mapping[str, Any], str], Any]


@dataclass
class VerifySpec:
    """What ``eisen verify`` checks in each case of a data set.

    Attributes:
        image_keys: Case fields holding an image file each (a path, or a list of paths: the channels
            of one image, each read and compared with the first).
        label_key: Case field of the label-map file, or ``None`` when the label is a value.
        label_values: Values a label map may hold; ``None``: any value.
        num_outputs: For value labels: the classes (a class index must be below it, a vector must
            have this length); 1 for a regression target.
        read: Reads ``case[key]`` into a channel-first image; ``None``: :func:`eisen_lightning.io.load`
            of the path (each path of a list).
        empty_labels_ok: Whether a background-only label map is normal (slices of a volume).

    >>> VerifySpec(label_values=(0, 1, 2, 4)).label_key
    'label'
    """

    image_keys: Sequence[str] = (keys.IMAGE,)
    label_key: str | None = keys.LABEL
    label_values: Collection[float] | None = None
    num_outputs: int | None = None
    read: Reader | None = None
    empty_labels_ok: bool = False


@dataclass
class VerifyReport:
    """The outcome of :func:`verify_cases`.

    Attributes:
        cases: Number of cases read.
        problems: One line per problem, each naming the file.
    """

    cases: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether no problem was found."""
        return not self.problems

    def text(self) -> str:
        """A human-readable summary."""
        head = f"{self.cases} case(s) read, {len(self.problems)} problem(s)"
        return "\n".join([head, *[f"  - {p}" for p in self.problems]])


def verify_cases(
    cases: Iterable[Mapping[str, Any]],
    spec: VerifySpec | Iterable[int],
    load: Callable[[str], Any] | None = None,
    spatial_dims: int | None = None,
) -> VerifyReport:
    """Check every case: readable files, image/label agreement, declared label values, finite voxels.

    Args:
        cases: Sample dicts, as the DataModule lists them.
        spec: What to read and check (see :class:`VerifySpec`), or the label values a label-map file
            may hold (an image path in ``image``, a label path in ``label``).
        load: ``path -> MetaTensor`` (channel first) when ``spec`` names no reader;
            :func:`eisen_lightning.io.load` by default.
        spatial_dims: The spatial dimensions every image must have (2 or 3); ``None`` skips the check.
    """
    if not isinstance(spec, VerifySpec):
        spec = VerifySpec(label_values=tuple(spec))
    load = load or _default_loader()
    read = spec.read or _path_reader(load)
    report = VerifyReport()
    for case in cases:
        report.cases += 1
        images = {key: _read_image(read, case, key, spatial_dims, report.problems) for key in spec.image_keys}
        report.problems += _case_label_problems(case, spec, read, images)
    report.problems = list(dict.fromkeys(report.problems))  # a stack's problem once, not once per slice
    return report


def _case_label_problems(
    case: Mapping[str, Any], spec: VerifySpec, read: Reader, images: dict[str, Any]
) -> list[str]:
    """The label's problems: its value, or its file's values and agreement with the images."""
    if spec.label_key is None:
        return _value_problems(case, spec.num_outputs)
    if spec.label_key not in case:
        return []
    problems: list[str] = []
    label = _read(lambda _: read(case, spec.label_key), _name(case[spec.label_key]), problems)
    if label is None:
        return problems
    where = _where(case, case[spec.label_key])
    allowed = None if spec.label_values is None else {float(v) for v in spec.label_values}
    problems += _label_problems(where, label, allowed, spec.empty_labels_ok)
    for key, image in images.items():
        if image is not None:
            problems += _pair_problems(_where(case, case[key]), image, where, label)
    return problems


def _path_reader(load: Callable[[str], Any]) -> Reader:
    def read(case: Mapping[str, Any], key: str) -> Any:
        return load(str(case[key]))

    return read


def _read_image(
    read: Reader, case: Mapping[str, Any], key: str, spatial_dims: int | None, problems: list[str]
) -> Any:
    """Read ``case[key]`` (each file of a channel list on its own): the first channel, or ``None``."""
    value = case.get(key)
    if value is None:
        problems.append(f"case {case.get(keys.CASE_ID)!r}: no {key!r} field")
        return None
    channels = list(value) if isinstance(value, list | tuple) else [value]
    first, unreadable = None, False
    for path in channels:
        image = _read(lambda p: read({**case, key: p}, key), str(path), problems)
        if image is None:
            unreadable = True
            continue
        problems += _image_problems(str(path), image)
        problems += _dimension_problems(str(path), image, spatial_dims)
        if first is None:
            first = (str(path), image)
        else:
            problems += _pair_problems(first[0], first[1], str(path), image, "channel")
    return None if unreadable or first is None else first[1]


def _name(value: Any) -> str:
    return str(value[0]) if isinstance(value, list | tuple) and value else str(value)


def _where(case: Mapping[str, Any], value: Any) -> str:
    """The file of ``value`` and, for a slice of a stack, which slice."""
    index = case.get(keys.SLICE_INDEX)
    return _name(value) + ("" if index is None else f" (slice {index})")


def _value_problems(case: Mapping[str, Any], num_outputs: int | None) -> list[str]:
    """A value label: a class index below ``num_outputs``, a finite number, or a vector of that length."""
    if keys.LABEL not in case:
        return []
    where, value = f"case {case.get(keys.CASE_ID)!r}", case[keys.LABEL]
    vector = isinstance(value, list | tuple | np.ndarray)
    numbers = list(np.asarray(value, dtype=object).ravel()) if vector else [value]
    if not all(isinstance(v, int | float | np.number) for v in numbers):
        return [f"{where}: label {value!r} must be a number or a vector of numbers"]
    if not all(math.isfinite(float(v)) for v in numbers):
        return [f"{where}: label {value!r} holds NaN or infinite values"]
    if vector and num_outputs is not None and len(numbers) != num_outputs:
        return [
            f"{where}: label vector has {len(numbers)} value(s), the data set has {num_outputs} output(s)"
        ]
    index = isinstance(value, int | np.integer) and not isinstance(value, bool)
    if index and num_outputs is not None and num_outputs > 1 and not 0 <= int(value) < num_outputs:
        return [f"{where}: class index {value} is outside 0..{num_outputs - 1} ({num_outputs} classes)"]
    return []


def _default_loader() -> Callable[[str], Any]:
    from eisen_lightning.io import load

    return load


def _read(load: Callable[[str], Any], path: str, problems: list[str]) -> Any:
    try:
        return load(path)
    except Exception as err:  # every reader raises its own types; the report names them all
        problems.append(f"{path}: cannot be read ({type(err).__name__}: {str(err).splitlines()[0][:200]})")
        return None


def _image_problems(path: str, image: Any) -> list[str]:
    array = np.asarray(image)
    bad = int(array.size - np.count_nonzero(np.isfinite(array))) if array.dtype.kind == "f" else 0
    return [f"{path}: {bad} voxel(s) are NaN or infinite"] if bad else []


def _dimension_problems(path: str, image: Any, spatial_dims: int | None) -> list[str]:
    shape = list(image.shape[1:])  # channel first
    while len(shape) > (spatial_dims or 0) and shape[-1] == 1:  # a 2D slice stored as (H, W, 1)
        shape.pop()
    found = len(shape)
    if spatial_dims is None or found == spatial_dims:
        return []
    return [
        f"{path}: {found} spatial dimensions (shape {tuple(image.shape[1:])}), the data set needs "
        f"{spatial_dims}; convert the file to a {spatial_dims}D image or leave it out"
    ]


def _label_problems(path: str, label: Any, allowed: set[float] | None, empty_ok: bool = False) -> list[str]:
    array = np.asarray(label)
    values = np.unique(array)
    problems = []
    if array.dtype.kind == "f" and not np.all(np.isfinite(values)):
        problems.append(f"{path}: label has NaN or infinite voxels")
        values = values[np.isfinite(values)]
    undeclared = [] if allowed is None else sorted({float(v) for v in values} - allowed)
    if undeclared:
        problems.append(
            f"{path}: label values {undeclared[:10]} are not declared (allowed: {_plain(allowed)})"
        )
    if values.size and np.all(values == 0) and not empty_ok:
        problems.append(f"{path}: label is empty (background only)")
    return problems


def _plain(values: set[float]) -> list[float]:
    """Sorted values, whole numbers shown as integers (``[0, 1, 2, 4]``)."""
    return [int(v) if v.is_integer() else v for v in sorted(values)]


def _pair_problems(
    image_path: str, image: Any, label_path: str, label: Any, what: str = "label"
) -> list[str]:
    """Shape and affine differences of ``label`` (or a later channel file) from ``image``."""
    problems = []
    if tuple(image.shape[1:]) != tuple(label.shape[1:]):
        problems.append(
            f"{label_path}: shape {tuple(label.shape[1:])} differs from its image {image_path} "
            f"{tuple(image.shape[1:])}"
            + ("" if what == "label" else " (channel files of one image must match)")
        )
    image_affine, label_affine = np.asarray(image.affine), np.asarray(label.affine)
    if image_affine.shape != label_affine.shape or not np.allclose(
        image_affine, label_affine, atol=AFFINE_TOLERANCE
    ):
        problems.append(
            f"{label_path}: affine differs from its image {image_path} (max difference "
            f"{_max_difference(image_affine, label_affine)})"
        )
    return problems


def _max_difference(a: np.ndarray, b: np.ndarray) -> str:
    if a.shape != b.shape:
        return f"shapes {a.shape} vs {b.shape}"
    return f"{float(np.abs(a - b).max()):.4g}"
