"""Figures drawn with Pillow (matplotlib is not a dependency): the confusion matrix.

>>> image = confusion_matrix_image(np.array([[5, 1], [0, 4]]), ["cat", "dog"])
>>> image.ndim, image.shape[-1], image.dtype
(3, 3, dtype('uint8'))
"""

from collections.abc import Sequence

import numpy as np

_CELL = 44
_MARGIN = 8
_FONT_SIZE = 11
_MAX_NAME = 24
#: Beyond this many classes the cells carry no numbers (only their colour).
MAX_ANNOTATED = 30


def confusion_matrix(target: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts of (true, predicted) class pairs; values outside ``[0, num_classes)`` are left out.

    >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), 2).tolist()
    [[1, 0], [1, 1]]
    """
    target, pred = np.asarray(target).ravel().astype(np.int64), np.asarray(pred).ravel().astype(np.int64)
    valid = (target >= 0) & (target < num_classes) & (pred >= 0) & (pred < num_classes)
    flat = target[valid] * num_classes + pred[valid]
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def confusion_matrix_image(
    matrix: np.ndarray, names: Sequence[str], title: str = "rows: true class, columns: predicted"
) -> np.ndarray:
    """Draw a confusion matrix with class names; cell colour is the share of its row (the recall).

    Args:
        matrix: ``(C, C)`` counts, rows true classes, columns predicted ones.
        names: One name per class.
        title: Caption drawn above the matrix.

    Returns:
        An ``(H, W, 3)`` uint8 RGB image.
    """
    from PIL import Image, ImageDraw

    matrix = np.asarray(matrix, dtype=np.int64)
    size = matrix.shape[0]
    if matrix.shape != (size, size) or len(names) != size:
        raise ValueError(f"confusion matrix {matrix.shape} does not match {len(names)} class names")
    font = _font()
    names = [_short(str(n)) for n in names]
    name_w = max(_text_size(font, n)[0] for n in names) + 2 * _MARGIN
    title_h = _text_size(font, title)[1] + 2 * _MARGIN
    left, top = name_w, title_h + name_w
    width = max(left + size * _CELL + _MARGIN, _text_size(font, title)[0] + 2 * _MARGIN)
    canvas = Image.new("RGB", (width, top + size * _CELL + _MARGIN), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((_MARGIN, _MARGIN), title, fill="black", font=font)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=np.float64), where=rows > 0)
    for i in range(size):
        _centred(draw, (_MARGIN, top + i * _CELL, _MARGIN, top + (i + 1) * _CELL), names[i], font, "black")
        strip = _vertical(names[i], font)
        canvas.paste(
            strip, (left + i * _CELL + (_CELL - strip.width) // 2, top - strip.height - _MARGIN // 2)
        )
        for j in range(size):
            box = (left + j * _CELL, top + i * _CELL, left + (j + 1) * _CELL - 1, top + (i + 1) * _CELL - 1)
            shade = int(255 * (1.0 - 0.8 * share[i, j]))
            draw.rectangle(box, fill=(shade, shade, 255), outline=(200, 200, 200))
            if size <= MAX_ANNOTATED:
                colour = "white" if share[i, j] > 0.55 else "black"
                upper, lower = (
                    (box[0], box[1], box[2], box[1] + _CELL // 2),
                    (box[0], box[1] + _CELL // 2, *box[2:]),
                )
                _centred(draw, upper, str(matrix[i, j]), font, colour)
                _centred(draw, lower, f"{100 * share[i, j]:.0f}%", font, colour)
    return np.asarray(canvas, dtype=np.uint8)


def multilabel_confusion_image(target: np.ndarray, pred: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """One 2x2 confusion matrix per label (absent, present), side by side, each titled with its name.

    Args:
        target: ``(N, C)`` 0/1 true labels.
        pred: ``(N, C)`` 0/1 predicted labels.
        names: One name per label.
    """
    target, pred = np.asarray(target).astype(np.int64), np.asarray(pred).astype(np.int64)
    images = [
        confusion_matrix_image(
            confusion_matrix(target[:, c], pred[:, c], 2), [f"not {_short(name)}", _short(name)], title=name
        )
        for c, name in enumerate(names)
    ]
    height = max(i.shape[0] for i in images)
    padded = [np.pad(i, ((0, height - i.shape[0]), (0, 0), (0, 0)), constant_values=255) for i in images]
    return np.concatenate(padded, axis=1)


def _font():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=_FONT_SIZE)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _text_size(font, text: str) -> tuple[int, int]:
    left, top, right, bottom = font.getbbox(text)
    return int(right - left), int(bottom - top)


def _centred(draw, box: tuple[int, int, int, int], text: str, font, colour: str) -> None:
    """Draw ``text`` centred in ``box`` (left-aligned when the box has no width).

    Positions are computed, not anchored: the bitmap font of a Pillow without FreeType has no anchors.
    """
    left, top, right, bottom = font.getbbox(text)
    width, height = right - left, bottom - top
    x = box[0] if box[2] <= box[0] else (box[0] + box[2] - width) // 2
    draw.text((x - left, (box[1] + box[3] - height) // 2 - top), text, fill=colour, font=font)


def _vertical(text: str, font):
    from PIL import Image, ImageDraw

    width, height = _text_size(font, text)
    strip = Image.new("RGB", (width + 2, height + 6), "white")
    ImageDraw.Draw(strip).text((1, 1), text, fill="black", font=font)
    return strip.rotate(90, expand=True)


def _short(name: str) -> str:
    return name if len(name) <= _MAX_NAME else name[: _MAX_NAME - 1] + "…"
