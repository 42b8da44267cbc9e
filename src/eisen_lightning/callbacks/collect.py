"""What the summaries gather during one stage epoch, from the batch and the step outputs at hand.

Nothing here runs the net: every value comes from the batch and the dict a task step returns.
Per-batch work on the device is a few reductions (mean and variance, a ``bincount`` per batch);
copies to the CPU are bounded by ``max_images`` samples and a fixed number of histogram values.
"""

import heapq
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from eisen_lightning import keys
from eisen_lightning.callbacks import render

#: Values per tensor and epoch kept for histograms (strided subsamples of each batch).
HIST_VALUES = 1 << 16
#: Values per tensor and batch that mean and standard deviation are computed from (evenly strided).
MOMENT_VALUES = 1 << 12
_HIST_PER_BATCH = 1 << 12
#: Classification rows (probabilities and targets) kept per epoch for PR curves and the case table.
MAX_ROWS = 20000

SEGMENTATION, CLASSIFICATION, OTHER = "segmentation", "classification", "other"


@dataclass
class TaskInfo:
    """What the summaries need to know of the task (read from the LightningModule once)."""

    input_keys: list[str]
    target_key: str
    num_classes: int | None = None
    label_names: list[str] | None = None
    multilabel: bool | None = None

    @classmethod
    def of(cls, module: Any) -> "TaskInfo":
        """Read the task's routing and classes; any attribute may be missing."""
        names = getattr(module, "label_names", None)
        return cls(
            input_keys=list(getattr(module, "input_keys", None) or [keys.IMAGE]),
            target_key=getattr(module, "target_key", None) or keys.LABEL,
            num_classes=getattr(module, "num_classes", None),
            label_names=list(names) if names else None,
            multilabel=getattr(module, "multilabel", None),
        )

    def names(self, count: int) -> list[str]:
        """One name per class for ``count`` classes (the task's when they match)."""
        if self.label_names and len(self.label_names) == count:
            return self.label_names
        return [f"class{i}" for i in range(count)]

    @property
    def regions(self) -> bool:
        """Whether the task segments overlapping regions: one 0/1 channel each, no background."""
        return bool(self.multilabel)

    def score_names(self, count: int) -> list[str]:
        """Names of ``count`` per-case Dice columns: every region, or the classes after background."""
        return self.names(count) if self.regions else self.names(count + 1)[1:]

    def legend_names(self) -> list[str]:
        """The name of each value of a drawn label map (regions are drawn as ``1 + channel``)."""
        names = self.label_names or [f"class{i}" for i in range(self.num_classes or 2)]
        return ["background", *names] if self.regions else names


@dataclass
class EpochRecord:
    """Everything one stage gathers over one epoch; ``images`` says whether this epoch is drawn."""

    stage: str
    images: bool
    max_images: int
    worst_cases: int
    comparison_pairs: list[tuple[str, str]]
    kind: str | None = None
    losses: list[torch.Tensor] = field(default_factory=list)
    metrics: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    moments: dict[str, list[tuple[int, torch.Tensor, torch.Tensor]]] = field(default_factory=dict)
    values: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    samples: dict[str, list[np.ndarray]] = field(default_factory=dict)
    label_keys: set[str] = field(default_factory=set)
    case_ids: list[str] = field(default_factory=list)
    rows: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    worst: list[tuple[float, int, str, dict[str, np.ndarray]]] = field(default_factory=list)
    _kept: int = 0
    _hist_count: dict[str, int] = field(default_factory=dict)
    _order: itertools.count = field(default_factory=itertools.count)

    # -- one batch ------------------------------------------------------------------------------
    def add(self, batch: Mapping[str, Any], outputs: Any, info: TaskInfo) -> None:
        """Gather what this batch adds: loss, metrics, moments and, on drawn epochs, samples."""
        outputs = _as_dict(outputs)
        tensors = {k: v for k, v in batch.items() if torch.is_tensor(v) and k != keys.META}
        target = tensors.get(info.target_key)
        output = outputs.get(keys.OUTPUT)
        self.kind = self.kind or _kind(output, target)
        outputs = _complete(outputs, self.kind, info, target)
        if torch.is_tensor(outputs.get(keys.LOSS)):
            self.losses.append(outputs[keys.LOSS].detach().float().reshape(-1)[:1])
        size = _batch_size(tensors)
        ids = [str(i) for i in batch.get(keys.CASE_ID) or []]
        ids = ids if len(ids) == size else [f"#{len(self.case_ids) + i}" for i in range(size)]
        named = {f"inputs/{k}": v for k, v in tensors.items()}
        named.update({f"outputs/{k}": v for k, v in outputs.items() if k != keys.LOSS and torch.is_tensor(v)})
        for name, value in named.items():
            self._moments(name, value)
        scores = self._metrics(outputs, target, info, ids)
        if self.images:
            for name, value in named.items():
                self._histogram_values(name, value)
            self._keep_samples(tensors, outputs, info)
            if self.worst_cases and scores is not None:
                self._keep_worst(scores, ids, tensors, outputs, info)

    def _moments(self, name: str, value: torch.Tensor) -> None:
        flat = value.detach().reshape(-1)
        if flat.numel() == 0:
            return
        part = flat[:: max(1, flat.numel() // MOMENT_VALUES)].float()
        var, mean = torch.var_mean(part, unbiased=False)
        self.moments.setdefault(name, []).append((part.numel(), mean, var))

    def _metrics(
        self, outputs: dict[str, Any], target: torch.Tensor | None, info: TaskInfo, ids: list[str]
    ) -> torch.Tensor | None:
        """Per-case Dice (segmentation) or per-batch accuracy (classification); returns case scores."""
        pred = outputs.get(keys.PRED)
        if target is None or not torch.is_tensor(pred):
            return None
        if self.kind == SEGMENTATION:
            if info.regions:
                dice = region_dice(pred, target)
            else:
                if target.shape[1] > 1:  # one-hot or soft reference
                    target = target.argmax(dim=1, keepdim=True)
                dice = case_dice(pred, target, _classes(info, outputs))
            for c, name in enumerate(info.score_names(dice.shape[1])):
                self.metrics.setdefault(f"dice/{name}", []).append(dice[:, c])
            self.rows.setdefault("dice", []).append(dice)
            self.case_ids.extend(ids)
            return _nanmean(dice)
        if self.kind == CLASSIFICATION:
            prob, target = (
                outputs[keys.PROB].detach().float(),
                _class_target(target, outputs[keys.PROB], info),
            )
            correct = (pred.reshape(target.shape) == target).float()
            self.metrics.setdefault("accuracy", []).append(correct.mean().reshape(1))
            if sum(len(p) for p in self.rows.get("prob", [])) < MAX_ROWS:
                self.rows.setdefault("prob", []).append(prob)
                self.rows.setdefault("target", []).append(target)
                self.rows.setdefault("pred", []).append(pred.reshape(target.shape).long())
                self.case_ids.extend(ids)
            return _class_score(prob, target, info)
        return None

    def _histogram_values(self, name: str, value: torch.Tensor) -> None:
        kept = self._hist_count.get(name, 0)
        if kept >= HIST_VALUES:
            return
        flat = value.detach().reshape(-1)
        stride = max(1, flat.numel() // _HIST_PER_BATCH)
        # A copy, not a view: a view would hold the whole batch tensor until the epoch ends, and
        # every step would then fault in fresh pages for its activations (about 15% of a 64^3 step).
        part = flat[::stride][: HIST_VALUES - kept].to(torch.float32, copy=True)
        self.values.setdefault(name, []).append(part)
        self._hist_count[name] = kept + part.numel()

    def _keep_samples(self, tensors: dict[str, Any], outputs: dict[str, Any], info: TaskInfo) -> None:
        take = min(self.max_images - self._kept, _batch_size(tensors))
        if take <= 0:
            return
        for key, value in {**tensors, **outputs}.items():
            if torch.is_tensor(value) and value.ndim in (4, 5) and key != keys.LOSS:
                is_label = _is_label(key, value, info)
                self.label_keys.update({key} if is_label else set())
                for sample in value[:take].detach():
                    self.samples.setdefault(key, []).append(_reduce(sample, is_label, _cut(key, info)))
        if self.kind == SEGMENTATION and keys.PRED not in outputs and keys.OUTPUT in self.label_keys:
            self.label_keys.add(keys.PRED)
            self.samples.setdefault(keys.PRED, []).extend(self.samples[keys.OUTPUT][-take:])
        self._kept += take

    def _keep_worst(
        self,
        scores: torch.Tensor,
        ids: list[str],
        tensors: dict[str, Any],
        outputs: dict[str, Any],
        info: TaskInfo,
    ) -> None:
        both = {**tensors, **outputs}
        for i, score in enumerate(scores.tolist()):
            if score != score:  # NaN: nothing to score in this case
                continue
            if len(self.worst) >= self.worst_cases and -score <= self.worst[0][0]:
                continue
            item = (-score, next(self._order), ids[i], self._case_arrays(both, i, info))
            if len(self.worst) < self.worst_cases:
                heapq.heappush(self.worst, item)
            else:
                heapq.heapreplace(self.worst, item)

    def _case_arrays(self, both: dict[str, Any], i: int, info: TaskInfo) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {}
        image = both.get(info.input_keys[0])
        if torch.is_tensor(image) and image.ndim in (4, 5):
            arrays[info.input_keys[0]] = _reduce(image[i].detach(), False, None)
        for a, b in self.comparison_pairs:
            for key in (a, b):
                value = both.get(key)
                if key not in arrays and torch.is_tensor(value) and value.ndim in (4, 5):
                    is_label = _is_label(key, value, info)
                    self.label_keys.update({key} if is_label else set())
                    arrays[key] = _reduce(value[i].detach(), is_label, _cut(key, info))
        return arrays

    # -- epoch end ------------------------------------------------------------------------------
    def worst_first(self) -> list[tuple[float, str, dict[str, np.ndarray]]]:
        """The kept worst cases, lowest score first: ``(score, case id, arrays)``."""
        return [(-neg, case, arrays) for neg, _, case, arrays in sorted(self.worst, reverse=True)]


def moments(parts: Sequence[tuple[int, torch.Tensor, torch.Tensor]]) -> tuple[float, float]:
    """Mean and standard deviation of all values from per-batch ``(count, mean, variance)``."""
    counts = torch.tensor([n for n, _, _ in parts], dtype=torch.float64)
    # One stack on the device and one copy each, not one per batch (each copy waits for the device).
    means = torch.stack([m for _, m, _ in parts]).cpu().double()
    variances = torch.stack([v for _, _, v in parts]).cpu().double()
    mean = (counts * means).sum() / counts.sum()
    variance = (counts * (variances + (means - mean) ** 2)).sum() / counts.sum()
    return float(mean), float(variance.clamp_min(0).sqrt())


def case_dice(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Dice of each foreground class in each case, ``(B, num_classes - 1)``.

    NaN where a class is absent from both the prediction and the reference: such a case does not
    count for that class (the rule of the task's metrics). Computed here rather than with MONAI's
    ``compute_dice``, which needs one-hot copies of the volumes and, with ``ignore_empty``, gives
    NaN whenever the reference is empty, even when the prediction is not (a false positive, 0).
    Three reductions per class: several times faster on CPU than one ``bincount``.

    >>> case_dice(torch.tensor([[[0, 1, 1]]]), torch.tensor([[[0, 1, 0]]]), 3)
    tensor([[0.6667,    nan]])
    """
    batch = len(pred)
    p, t = pred.detach().reshape(batch, -1), target.detach().reshape(batch, -1)
    scores = []
    for c in range(1, num_classes):
        in_pred, in_target = p == c, t == c
        both = (in_pred & in_target).sum(dim=1)
        total = in_pred.sum(dim=1) + in_target.sum(dim=1)
        scores.append(torch.where(total > 0, 2.0 * both / total.clamp_min(1), torch.nan))
    if not scores:
        return torch.zeros(batch, 0, device=pred.device)
    return torch.stack(scores, dim=1).float()


def region_dice(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Dice of each region channel in each case from 0/1 maps ``(B, C, ...)``: ``(B, C)``.

    NaN where a region is absent from both the prediction and the reference, as in :func:`case_dice`.

    >>> region_dice(torch.tensor([[[1, 1, 0], [0, 0, 0]]]), torch.tensor([[[1, 0, 0], [0, 0, 0]]]))
    tensor([[0.6667,    nan]])

    Raises:
        ValueError: When the prediction and the reference have different shapes.
    """
    if pred.shape != target.shape:
        raise ValueError(
            f"region Dice needs a prediction and a reference of the same shape (B, regions, ...), got "
            f"{tuple(pred.shape)} and {tuple(target.shape)}"
        )
    p = pred.detach().reshape(*pred.shape[:2], -1) > 0.5
    t = target.detach().reshape(*target.shape[:2], -1) > 0.5
    both = (p & t).sum(dim=2)
    total = p.sum(dim=2) + t.sum(dim=2)
    return torch.where(total > 0, 2.0 * both / total.clamp_min(1), torch.nan).float()


def _batch_size(tensors: Mapping[str, torch.Tensor]) -> int:
    return next((len(v) for v in tensors.values() if v.ndim), 0)


def _as_dict(outputs: Any) -> dict[str, Any]:
    if isinstance(outputs, Mapping):
        return dict(outputs)
    if torch.is_tensor(outputs) and outputs.ndim == 0:
        return {keys.LOSS: outputs}
    return {}


def _kind(output: Any, target: Any) -> str | None:
    if not torch.is_tensor(output):
        return None
    if torch.is_tensor(target) and output.ndim >= 4 and target.ndim == output.ndim:
        return SEGMENTATION
    if output.ndim == 2 and torch.is_tensor(target):
        return CLASSIFICATION
    return OTHER


def _complete(outputs: dict[str, Any], kind: str | None, info: TaskInfo, target: Any) -> dict[str, Any]:
    """Detach the logits; for classification derive ``prob`` and ``pred`` where the step gave none.

    Segmentation training steps return no ``pred``: an argmax over every training batch would cost
    more than the rest of the summaries, so training Dice is left out (the task logs none either)
    and the training ``pred`` is drawn from the kept samples only (see ``_keep_samples``).
    """
    output = outputs.get(keys.OUTPUT)
    if torch.is_tensor(output):
        output = outputs[keys.OUTPUT] = output.detach()
    if kind == CLASSIFICATION:
        multilabel = _multilabel(info, output, target)
        if keys.PROB not in outputs:
            outputs[keys.PROB] = output.sigmoid() if multilabel else output.softmax(dim=1)
        if keys.PRED not in outputs:
            prob = outputs[keys.PROB]
            outputs[keys.PRED] = (prob >= 0.5).long() if multilabel else prob.argmax(dim=1)
    return outputs


def _multilabel(info: TaskInfo, output: torch.Tensor, target: Any) -> bool:
    if info.multilabel is not None:
        return bool(info.multilabel)
    return torch.is_tensor(target) and target.ndim == 2 and target.shape[1] == output.shape[1] > 1


def _class_target(target: torch.Tensor, prob: torch.Tensor, info: TaskInfo) -> torch.Tensor:
    if _multilabel(info, prob, target):
        return target.detach().reshape(len(target), -1).long()
    return target.detach().reshape(len(target)).long()


def _class_score(prob: torch.Tensor, target: torch.Tensor, info: TaskInfo) -> torch.Tensor:
    """Per case: the probability given to the true class, or 1 - mean label error (multi-label)."""
    if target.ndim == 2:
        return 1.0 - (prob - target.float()).abs().mean(dim=1)
    return prob.gather(1, target.clamp(0, prob.shape[1] - 1).unsqueeze(1)).squeeze(1)


def _classes(info: TaskInfo, outputs: dict[str, Any]) -> int:
    output = outputs.get(keys.OUTPUT)
    channels = output.shape[1] if torch.is_tensor(output) and output.ndim > 1 else 0
    return max(info.num_classes or 0, channels, 2)


def _is_label(key: str, value: torch.Tensor, info: TaskInfo) -> bool:
    if key in (info.target_key, keys.PRED) or not torch.is_floating_point(value):
        return True
    return (
        key == keys.OUTPUT and value.shape[1] > 1 and value.shape[1] == (info.num_classes or value.shape[1])
    )


def _cut(key: str, info: TaskInfo) -> float | None:
    """For region tasks, the value above which a channel of ``key`` is in its region (logits: 0)."""
    if not info.regions or key not in (info.target_key, keys.PRED, keys.OUTPUT):
        return None
    return 0.0 if key == keys.OUTPUT else 0.5


def _reduce(sample: torch.Tensor, is_label: bool, cut: float | None) -> np.ndarray:
    """A sample as it is kept: an int16 label map, or the first channels as float32.

    With ``cut`` (region tasks), the channels are overlapping regions: drawn by :func:`render.region_map`.
    """
    if is_label and cut is not None and sample.shape[0] > 1:
        return render.region_map((sample > cut).cpu().numpy()).astype(np.int16)
    if is_label:
        return render.label_map(sample.float().cpu().numpy()).astype(np.int16)
    # A copy: a view would keep the whole batch tensor alive until the epoch is written.
    return np.array(sample[: render.MAX_CHANNELS].float().cpu().numpy(), copy=True)


def _nanmean(values: torch.Tensor) -> torch.Tensor:
    return torch.nanmean(values, dim=1) if values.shape[1] else torch.full((len(values),), torch.nan)
