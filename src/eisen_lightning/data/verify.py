"""Read every file of a data set once and report all its problems together (``eisen verify``)."""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eisen_lightning import keys

AFFINE_TOLERANCE = 1e-3


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
    label_values: Iterable[int],
    load: Callable[[str], Any] | None = None,
) -> VerifyReport:
    """Check every case: readable files, image/label agreement, declared label values, finite voxels.

    Args:
        cases: Sample dicts with an ``image`` path and, when labelled, a ``label`` path.
        label_values: The label values the data set declares (``range(num_classes)``).
        load: ``path -> MetaTensor`` (channel first); :func:`eisen_lightning.io.load` by default.
    """
    load = load or _default_loader()
    allowed = {int(v) for v in label_values}
    report = VerifyReport()
    for case in cases:
        report.cases += 1
        image = _read(load, case[keys.IMAGE], report.problems)
        if image is not None:
            report.problems += _image_problems(case[keys.IMAGE], image)
        if keys.LABEL not in case:
            continue
        label = _read(load, case[keys.LABEL], report.problems)
        if label is None:
            continue
        report.problems += _label_problems(case[keys.LABEL], label, allowed)
        if image is not None:
            report.problems += _pair_problems(case[keys.IMAGE], image, case[keys.LABEL], label)
    return report


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


def _label_problems(path: str, label: Any, allowed: set[int]) -> list[str]:
    array = np.asarray(label)
    values = np.unique(array)
    problems = []
    if array.dtype.kind == "f" and not np.all(np.isfinite(values)):
        problems.append(f"{path}: label has NaN or infinite voxels")
        values = values[np.isfinite(values)]
    undeclared = sorted({float(v) for v in values} - allowed)
    if undeclared:
        problems.append(
            f"{path}: label values {undeclared[:10]} are not declared (allowed: {sorted(allowed)})"
        )
    if values.size and np.all(values == 0):
        problems.append(f"{path}: label is empty (background only)")
    return problems


def _pair_problems(image_path: str, image: Any, label_path: str, label: Any) -> list[str]:
    problems = []
    if tuple(image.shape[1:]) != tuple(label.shape[1:]):
        problems.append(
            f"{label_path}: shape {tuple(label.shape[1:])} differs from its image {image_path} "
            f"{tuple(image.shape[1:])}"
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
