"""Write one stage epoch's record to TensorBoard: scalars, histograms, images, GIFs, text, PR curves."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from eisen_lightning import keys
from eisen_lightning.callbacks import figures, render
from eisen_lightning.callbacks.collect import CLASSIFICATION, SEGMENTATION, EpochRecord, TaskInfo, moments

#: Rows of the per-case table (worst first); the rest are counted, not listed.
MAX_TABLE_ROWS = 500
#: Bins of the histograms (TensorBoard re-bins for display; its default of ~1500 edges is slower).
HISTOGRAM_BINS = 64


@dataclass
class Drawing:
    """How images are drawn: GIF axes, frame cap and rate."""

    axes: Sequence[int]
    max_frames: int
    fps: float


def write_record(
    writer: Any, record: EpochRecord, info: TaskInfo, drawing: Drawing, step: int, legend: bool = False
) -> list[str]:
    """Write everything ``record`` holds at ``step``; returns the tags written.

    Args:
        writer: A ``SummaryWriter``.
        record: What the stage gathered over the epoch.
        info: The task's routing and classes.
        drawing: How to draw images.
        step: The global step to write at.
        legend: Also write the colour legend of label maps (once per run) if there are label maps.
    """
    out = _Out(writer, step, drawing)
    stage = record.stage
    out.stats(f"{stage}/{keys.LOSS}", _cat(record.losses), "batches", record.images)
    for name, parts in record.metrics.items():
        per = "cases" if record.kind == SEGMENTATION else "batches"
        out.stats(f"{stage}/{name}", _cat(parts), per, record.images)
    for name, parts in record.moments.items():
        mean, std = moments(parts)
        out.scalar(f"{stage}/{name}/mean", mean)
        out.scalar(f"{stage}/{name}/std", std)
    for name, parts in record.values.items():
        out.histogram(f"{stage}/{name}/values", _cat(parts))
    if record.images:
        _images(out, record, info, legend)
        if record.kind == CLASSIFICATION and record.rows.get("prob"):
            _classification_figures(out, record, info)
    if stage in (keys.VAL, keys.TEST):
        _case_table(out, record, info)
    return out.tags


class _Out:
    """The writer, the step and the tags written so far."""

    def __init__(self, writer: Any, step: int, drawing: Drawing) -> None:
        self.writer, self.step, self.drawing, self.tags = writer, step, drawing, []

    def scalar(self, tag: str, value: float) -> None:
        if np.isfinite(value):
            self.writer.add_scalar(tag, value, self.step)
            self.tags.append(tag)

    def histogram(self, tag: str, values: np.ndarray) -> None:
        values = values[np.isfinite(values)]
        if values.size:
            self.writer.add_histogram(tag, values, self.step, bins=HISTOGRAM_BINS)
            self.tags.append(tag)

    def stats(self, base: str, values: np.ndarray, per: str, with_histogram: bool) -> None:
        finite = values[np.isfinite(values)]
        if finite.size:
            self.scalar(f"{base}/mean", float(finite.mean()))
            self.scalar(f"{base}/std", float(finite.std()))
        if with_histogram:
            self.histogram(f"{base}/{per}", finite)

    def frames(self, tag: str, rows: list[list[np.ndarray]], grey: bool = False) -> None:
        """A PNG for 2D panels; one animated GIF per axis (``tag/axis<k>``) for 3D ones."""
        if not rows or not any(rows):
            return
        if rows[0][0].ndim == 3:
            self.image(tag, render.grid_frames(rows)[0])
            return
        for axis in self.drawing.axes:
            frames = render.grid_frames(rows, axis, self.drawing.max_frames)
            self.gif(f"{tag}/axis{axis % 3}", frames, grey)

    def image(self, tag: str, image: np.ndarray) -> None:
        """An ``(H, W, 3)`` uint8 image, PNG-encoded by the writer."""
        self.writer.add_image(tag, image, self.step, dataformats="HWC")
        self.tags.append(tag)

    def gif(self, tag: str, frames: list[np.ndarray], grey: bool = False) -> None:
        # TensorBoard shows an image summary whose encoded bytes are a GIF as an animation;
        # SummaryWriter.add_image only encodes PNG, so the summary is built here.
        from tensorboard.compat.proto.summary_pb2 import Summary

        height, width = frames[0].shape[:2]
        encoded = render.encode_gif(frames, self.drawing.fps, grey)
        image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=encoded)
        # _get_file_writer is the writer's own accessor (it reopens a closed writer); MONAI uses it too.
        self.writer._get_file_writer().add_summary(
            Summary(value=[Summary.Value(tag=tag, image=image)]), self.step
        )
        self.tags.append(tag)

    def text(self, tag: str, markdown: str) -> None:
        self.writer.add_text(tag, markdown, self.step)
        self.tags.append(tag)


def _images(out: _Out, record: EpochRecord, info: TaskInfo, legend: bool) -> None:
    stage, samples = record.stage, record.samples
    compared = {k for pair in record.comparison_pairs if set(pair) <= set(samples) for k in pair}
    for key, arrays in samples.items():
        if key in compared:
            continue  # drawn side by side and over the image below
        if key == keys.OUTPUT and keys.PRED in samples and key in record.label_keys:
            continue  # the argmax of the logits: the very same picture as the prediction
        is_label = key in record.label_keys
        rows = _square([_panels(a, is_label) for a in arrays])
        out.frames(f"{stage}/images/{key}", rows, grey=not is_label)
    background = samples.get(info.input_keys[0])
    greys = [render.grey(bg[0]) for bg in background] if background is not None else []
    for a, b in record.comparison_pairs:
        if a in samples and b in samples:
            rows = _comparison_rows(
                samples[a], samples[b], a in record.label_keys, b in record.label_keys, greys
            )
            out.frames(f"{stage}/compare/{a}_vs_{b}", rows)
    worst = record.worst_first()
    if worst:  # one picture, one row per case, worst first (the ranks of the case table)
        out.frames(f"{stage}/worst_cases", [_case_panels(arrays, record, info) for _, _, arrays in worst])
    if record.label_keys and legend:
        _legend(out, info)


def _panels(array: np.ndarray, is_label: bool) -> list[np.ndarray]:
    return [render.colour_labels(array)] if is_label else render.image_panels(array)


def _spatial(array: np.ndarray, is_label: bool) -> tuple[int, ...]:
    return array.shape if is_label else array.shape[1:]


def _square(rows: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    """Rows of one panel each (one per sample) regrouped into a near-square grid."""
    if any(len(row) != 1 for row in rows):
        return rows
    columns = math.ceil(math.sqrt(len(rows)))
    return [[row[0] for row in rows[i : i + columns]] for i in range(0, len(rows), columns)]


def _comparison_rows(
    firsts: list[np.ndarray], seconds: list[np.ndarray], first_label: bool, second_label: bool, greys: list
) -> list[list[np.ndarray]]:
    """Per sample: both side by side, then both over the image when both are label maps on its grid."""
    rows = []
    for i, (x, y) in enumerate(zip(firsts, seconds, strict=False)):
        if _spatial(x, first_label) != _spatial(y, second_label):
            continue  # not the same grid (a prediction at another resolution, say): nothing to compare
        row = _panels(x, first_label)[:1] + _panels(y, second_label)[:1]
        if first_label and second_label and i < len(greys) and greys[i].shape == x.shape:
            row += [render.overlay(greys[i], x), render.overlay(greys[i], y)]
        rows.append(row)
    return rows


def _case_panels(arrays: dict[str, np.ndarray], record: EpochRecord, info: TaskInfo) -> list[np.ndarray]:
    """The image, then each key of the comparison pairs: over the image when it is a label map."""
    image = arrays.get(info.input_keys[0])
    grey = render.grey(image[0]) if image is not None else None
    panels = [np.repeat(grey[..., None], 3, axis=-1)] if grey is not None else []
    for key in dict.fromkeys(k for pair in record.comparison_pairs for k in pair):
        if key not in arrays or key == info.input_keys[0]:
            continue
        is_label = key in record.label_keys
        if is_label and grey is not None and arrays[key].shape == grey.shape:
            panels.append(render.overlay(grey, arrays[key]))
        else:
            panels.extend(_panels(arrays[key], is_label)[:1])
    return panels


def _classification_figures(out: _Out, record: EpochRecord, info: TaskInfo) -> None:
    """Confusion matrix (one 2x2 per label when multi-label) and one PR curve per class."""
    prob, target, pred = (torch.cat(record.rows[k]).cpu().numpy() for k in ("prob", "target", "pred"))
    names = info.names(prob.shape[1])
    if target.ndim == 1:
        matrix = figures.confusion_matrix(target, pred, prob.shape[1])
        image = figures.confusion_matrix_image(matrix, names)
        binary = target[:, None] == np.arange(prob.shape[1])[None, :]
    else:
        image = figures.multilabel_confusion_image(target, pred, names)
        binary = target.astype(bool)
    out.image(f"{record.stage}/confusion_matrix", image)
    for c, name in enumerate(names):
        out.writer.add_pr_curve(f"{record.stage}/pr_curve/{name}", binary[:, c], prob[:, c], out.step)
        out.tags.append(f"{record.stage}/pr_curve/{name}")


def _case_table(out: _Out, record: EpochRecord, info: TaskInfo) -> None:
    if record.kind == SEGMENTATION and record.rows.get("dice"):
        dice = torch.cat(record.rows["dice"]).cpu().numpy()
        names = info.score_names(dice.shape[1])
        header = ["case", *(f"dice/{n}" for n in names), "mean"]
        score = _row_means(dice)
        cells = [[*(_fmt(v) for v in row), _fmt(s)] for row, s in zip(dice, score, strict=True)]
    elif record.kind == CLASSIFICATION and record.rows.get("prob"):
        prob, target, pred = (torch.cat(record.rows[k]).cpu().numpy() for k in ("prob", "target", "pred"))
        header, score, cells = _classification_rows(prob, target, pred, info.names(prob.shape[1]))
    else:
        return
    order = np.argsort(np.where(np.isnan(score), np.inf, score), kind="stable")
    lines = ["| rank | " + " | ".join(header) + " |", "|" + " --- |" * (len(header) + 1)]
    for rank, i in enumerate(order[:MAX_TABLE_ROWS], start=1):
        lines.append(f"| {rank} | {record.case_ids[i]} | " + " | ".join(cells[i]) + " |")
    if len(order) > MAX_TABLE_ROWS:
        lines.append(f"\n{len(order) - MAX_TABLE_ROWS} more cases not listed.")
    drawn = len(record.worst)
    note = f"{len(order)} cases, worst first; the first {drawn} are drawn in `worst_cases`, one row each."
    out.text(f"{record.stage}/cases", note + "\n\n" + "\n".join(lines))


def _classification_rows(
    prob: np.ndarray, target: np.ndarray, pred: np.ndarray, names: list[str]
) -> tuple[list[str], np.ndarray, list[list[str]]]:
    if target.ndim == 1:
        safe = np.clip(target, 0, prob.shape[1] - 1)
        score = prob[np.arange(len(prob)), safe]
        cells = [[names[t], _name(names, p), _fmt(s)] for t, p, s in zip(safe, pred, score, strict=True)]
        return ["case", "true", "predicted", "p(true)"], score, cells
    score = 1.0 - np.abs(prob - target).mean(axis=1)
    cells = [
        [_labels(names, t), _labels(names, p), _fmt(s)] for t, p, s in zip(target, pred, score, strict=True)
    ]
    return ["case", "true labels", "predicted labels", "1 - mean error"], score, cells


def _name(names: list[str], index: int) -> str:
    return names[index] if 0 <= index < len(names) else str(index)


def _labels(names: list[str], row: np.ndarray) -> str:
    return ", ".join(n for n, v in zip(names, row, strict=True) if v) or "-"


def _legend(out: _Out, info: TaskInfo) -> None:
    names = info.legend_names()
    lines = ["| value | class | colour (RGB) |", "| --- | --- | --- |"]
    lines += [f"| {v} | {n} | {render.palette_colour(v)} |" for v, n in enumerate(names)]
    out.text("legend", "Colours of label maps in every image.\n\n" + "\n".join(lines))


def _row_means(values: np.ndarray) -> np.ndarray:
    finite = np.isfinite(values)
    counts = finite.sum(axis=1)
    sums = np.where(finite, values, 0).sum(axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _cat(parts: list[torch.Tensor]) -> np.ndarray:
    if not parts:
        return np.zeros(0, dtype=np.float32)
    return torch.cat([p.reshape(-1) for p in parts]).float().cpu().numpy()


def _fmt(value: float) -> str:
    return "-" if not np.isfinite(value) else f"{value:.3f}"
