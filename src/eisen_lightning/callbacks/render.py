"""Turn tensors into pictures: grey images, coloured label maps, overlays, grids and animated GIFs.

Everything here works on one sample at a time, on NumPy arrays, with any channel count:

* an *image* ``(C, *spatial)`` becomes one grey panel per channel (at most :data:`MAX_CHANNELS`);
* a *label map* (integer values, or scores with several channels, reduced by argmax) becomes one
  panel coloured with the fixed :data:`PALETTE`; values beyond the table wrap around it;
* panels are ``(*spatial, 3)`` uint8 arrays (2D or 3D); :func:`grid_frames` lays rows of panels
  out and slices 3D ones along an axis into the frames of an animation.

>>> label = np.array([[0, 1], [2, 40]])
>>> colour_labels(label).shape
(2, 2, 3)
>>> frames = grid_frames([[colour_labels(np.zeros((4, 5, 6), dtype=int))]], axis=2)
>>> len(frames), frames[0].shape, frames[0].dtype
(6, (30, 24, 3), dtype('uint8'))
"""

import io
import math
from collections.abc import Sequence

import numpy as np

#: Fixed colours of label values: 0 (background) is black; 1, 2, ... follow a table of distinct
#: colours and wrap around it; negative values (ignore indices) are mid grey.
PALETTE = np.array(
    [
        (0, 0, 0),
        (230, 25, 75),
        (60, 180, 75),
        (0, 130, 200),
        (255, 225, 25),
        (245, 130, 48),
        (145, 30, 180),
        (70, 240, 240),
        (240, 50, 230),
        (210, 245, 60),
        (250, 190, 212),
        (0, 128, 128),
        (220, 190, 255),
        (170, 110, 40),
        (255, 250, 200),
        (128, 0, 0),
        (170, 255, 195),
        (128, 128, 0),
        (255, 215, 180),
        (0, 0, 128),
    ],
    dtype=np.uint8,
)
IGNORE_COLOUR = np.array((128, 128, 128), dtype=np.uint8)
#: Grey levels of drawn images (see :func:`grey`).
GREY_LEVELS = 64
#: Channels of a multi-channel image drawn side by side; later channels are left out.
MAX_CHANNELS = 4
#: Panels smaller than this (pixels, shorter side) are enlarged by an integer factor.
MIN_SIDE = 24
_MAX_ZOOM = 8
_GAP = 2
_WINDOW_SAMPLES = 4096
_PALETTE_FRAMES = 8


def palette_colour(value: int) -> tuple[int, int, int]:
    """The colour of label ``value`` (see :data:`PALETTE`).

    >>> palette_colour(0), palette_colour(1) == palette_colour(len(PALETTE))
    ((0, 0, 0), True)
    """
    return tuple(int(c) for c in colour_labels(np.array([value]))[0])  # type: ignore[return-value]


def colour_labels(labels: np.ndarray) -> np.ndarray:
    """Colour a label map of any shape with :data:`PALETTE`; returns ``(*labels.shape, 3)`` uint8."""
    labels = np.asarray(labels)
    if labels.size and 0 <= labels.min() and labels.max() < len(PALETTE):  # the usual case: one lookup
        return PALETTE[labels]
    labels = labels.astype(np.int64, copy=False)
    index = np.where(labels > 0, (labels - 1) % (len(PALETTE) - 1) + 1, 0)
    rgb = PALETTE[index]
    rgb[labels < 0] = IGNORE_COLOUR
    return rgb


def window(image: np.ndarray, low: float = 0.5, high: float = 99.5) -> tuple[float, float]:
    """Robust display range of ``image``: its ``low`` and ``high`` percentiles (of a subsample)."""
    values = np.asarray(image, dtype=np.float32).ravel()
    if values.size > _WINDOW_SAMPLES:
        values = values[:: values.size // _WINDOW_SAMPLES]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(values, (low, high))
    return float(lo), float(hi)


def grey(image: np.ndarray, display_range: tuple[float, float] | None = None) -> np.ndarray:
    """Map one channel of any shape to uint8 grey over ``display_range`` (default :func:`window`).

    The result has :data:`GREY_LEVELS` levels: noisy medical images compress badly, and 64 levels
    instead of 256 make their GIFs about a third smaller (TensorBoard's event writer checksums every
    byte in pure Python) with no visible loss at thumbnail size.
    """
    image = np.asarray(image, dtype=np.float32)
    lo, hi = display_range or window(image)
    scale = GREY_LEVELS / (hi - lo) if hi > lo else 0.0
    with np.errstate(invalid="ignore"):  # inf * 0 for a constant image: NaN, zeroed below
        scaled = np.clip((image - lo) * scale, 0, GREY_LEVELS - 1)
    scaled[np.isnan(scaled)] = 0  # clip keeps NaN; infinities are clipped already
    step = 256 // GREY_LEVELS
    return (scaled.astype(np.uint8) * step + step // 2).astype(np.uint8)


def image_panels(image: np.ndarray, max_channels: int = MAX_CHANNELS) -> list[np.ndarray]:
    """One RGB grey panel per channel of ``image`` ``(C, *spatial)``, at most ``max_channels``."""
    image = np.asarray(image)
    return [np.repeat(grey(channel)[..., None], 3, axis=-1) for channel in image[:max_channels]]


def label_map(tensor: np.ndarray) -> np.ndarray:
    """Reduce ``(C, *spatial)`` to an integer label map: argmax over several channels, else the values.

    A single float channel is rounded (labels stored as floats); scores with several channels are
    reduced by argmax, so multi-class outputs of any channel count are drawn as label maps.
    """
    tensor = np.asarray(tensor)
    if tensor.shape[0] > 1:
        return np.argmax(tensor, axis=0)
    values = tensor[0]
    if np.issubdtype(values.dtype, np.floating):
        values = np.rint(np.nan_to_num(values))
    return values.astype(np.int64)


def region_map(regions: np.ndarray) -> np.ndarray:
    """Reduce overlapping 0/1 regions ``(C, *spatial)`` to a label map: region ``c`` is value ``c + 1``.

    Larger regions are painted first, so a region nested in another (BraTS' enhancing tumour in
    the tumour core in the whole tumour) stays visible over it.

    >>> region_map(np.array([[[1, 1, 1]], [[0, 1, 0]]])).tolist()
    [[1, 2, 1]]
    """
    on = np.asarray(regions) > 0
    labels = np.zeros(on.shape[1:], dtype=np.int64)
    for channel in np.argsort(-on.reshape(len(on), -1).sum(axis=1), kind="stable"):
        labels[on[channel]] = channel + 1
    return labels


def overlay(background: np.ndarray, labels: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend the colours of ``labels`` over the grey ``background`` (same spatial shape) where non-zero."""
    rgb = background.ndim == labels.ndim + 1
    mixed = background.copy() if rgb else np.repeat(background[..., None], 3, axis=-1)
    mask = labels != 0
    weight = round(alpha * 256)
    under = mixed[mask].astype(np.uint16) * (256 - weight)
    mixed[mask] = ((under + colour_labels(labels[mask]).astype(np.uint16) * weight) >> 8).astype(np.uint8)
    return mixed


def grid_frames(
    rows: Sequence[Sequence[np.ndarray]], axis: int = -1, max_frames: int = 24
) -> list[np.ndarray]:
    """Lay out rows of panels into frames: one frame for 2D panels, slices along ``axis`` for 3D.

    Panels may differ in size: each cell is padded to the largest panel of the grid, and 3D panels
    are sliced at the same relative position, so volumes of different depths move together.

    Args:
        rows: One list of panels per sample; a panel is ``(H, W, 3)`` or ``(X, Y, Z, 3)`` uint8.
        axis: Spatial axis of 3D panels that the animation runs through (``0``, ``1``, ``2`` or negative).
        max_frames: Most frames of an animation (slices are subsampled evenly beyond it).

    Returns:
        A list of ``(H, W, 3)`` uint8 frames (a single one for 2D panels).
    """
    panels = [p for row in rows for p in row]
    if not panels:
        raise ValueError("grid_frames needs at least one panel")
    if any(p.ndim != panels[0].ndim or p.ndim not in (3, 4) for p in panels):
        raise ValueError(f"panels must all be 2D or all 3D RGB arrays, got {[p.shape for p in panels]}")
    if panels[0].ndim == 3:
        return [_tile([list(row) for row in rows])]
    axis = axis % 3
    depth = min(max(p.shape[axis] for p in panels), max_frames)
    # Views with the animation axis first, each slice turned so that the first remaining axis runs
    # left to right and the second bottom to top (as in a viewer); slicing them copies nothing.
    oriented = [[np.rot90(np.moveaxis(p, axis, 0), axes=(1, 2)) for p in row] for row in rows]
    frames = []
    for t in range(depth):
        position = t / (depth - 1) if depth > 1 else 0.5
        frames.append(_tile([[p[round(position * (len(p) - 1))] for p in row] for row in oriented]))
    return frames


def _tile(rows: list[list[np.ndarray]]) -> np.ndarray:
    height = max(p.shape[0] for row in rows for p in row)
    width = max(p.shape[1] for row in rows for p in row)
    columns = max(len(row) for row in rows)
    zoom = min(_MAX_ZOOM, max(1, math.ceil(MIN_SIDE / max(1, min(height, width)))))
    cell_h, cell_w = height * zoom + _GAP, width * zoom + _GAP
    canvas = np.full((len(rows) * cell_h - _GAP, columns * cell_w - _GAP, 3), 40, dtype=np.uint8)
    for r, row in enumerate(rows):
        for c, panel in enumerate(row):
            big = panel.repeat(zoom, axis=0).repeat(zoom, axis=1) if zoom > 1 else panel
            canvas[r * cell_h : r * cell_h + big.shape[0], c * cell_w : c * cell_w + big.shape[1]] = big
    return canvas


def encode_gif(frames: Sequence[np.ndarray], fps: float = 10.0, grey: bool = False) -> bytes:
    """Encode ``(H, W, 3)`` uint8 frames as a looping animated GIF.

    MONAI's ``make_animated_gif_summary`` is not used: it animates one grey channel only (no colour
    label maps or overlays), writes a fixed 10x10 size into the summary and sets no frame duration.

    Args:
        frames: The frames, all of one size.
        fps: Frames per second.
        grey: The frames are grey (R = G = B): encoded with the 256 grey levels, no quantisation.
    """
    from PIL import Image

    if not frames:
        raise ValueError("encode_gif needs at least one frame")
    if grey:
        images = [Image.fromarray(np.ascontiguousarray(f[..., 0])) for f in frames]
    else:
        # One palette for the whole animation, from a mosaic of a few frames (fast octree: PIL's
        # default median cut is about 50 times slower); mapping every frame onto it and sharing it
        # halves the encoding time of per-frame palettes.
        step = max(1, len(frames) // _PALETTE_FRAMES)
        mosaic = np.concatenate([np.asarray(f) for f in frames[::step]], axis=0)
        palette = Image.fromarray(mosaic).quantize(255, method=Image.Quantize.FASTOCTREE)
        images = [
            Image.fromarray(np.ascontiguousarray(f)).quantize(palette=palette, dither=Image.Dither.NONE)
            for f in frames
        ]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=max(1, round(1000 / fps)),
        loop=0,
        optimize=False,
        disposal=1,
    )
    return buffer.getvalue()
