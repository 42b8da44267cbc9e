"""PandaDataModule: PANDA ISUP grade from a mosaic of the tissue-richest tiles of each slide."""

import math
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import torch
from monai.transforms import MapTransform

from eisen_lightning import keys
from eisen_lightning.data.classification import ImageDataModule, ImageLayout
from eisen_lightning.data.datamodule import DatasetInfo
from eisen_lightning.data.datasets.panda import ISUP_GRADES, PANDA_HINT, has_panda, read_panda


class TileMosaicd(MapTransform):
    """Arrange ``N`` tiles ``(N, C, h, w)`` (from ``GridPatchd``) row by row into one ``(C, g*h, g*w)`` image.

    ``g = ceil(sqrt(N))``; cells past the last tile are filled with ``fill``.

    Args:
        keys: Keys holding tile stacks.
        fill: Value of empty cells (255: white, the slide background).

    >>> TileMosaicd(["image"])({"image": torch.ones(4, 3, 2, 2)})["image"].shape
    torch.Size([3, 4, 4])
    """

    def __init__(self, keys: list[str], fill: float = 255.0) -> None:
        super().__init__(keys)
        self.fill = fill

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Return a copy of ``data`` with each tile stack made a mosaic."""
        out = dict(data)
        for key in self.key_iterator(out):
            tiles = torch.as_tensor(out[key])
            count, channels, height, width = tiles.shape
            side = math.ceil(math.sqrt(count))
            grid = torch.full((side * side, channels, height, width), self.fill, dtype=tiles.dtype)
            grid[:count] = tiles
            grid = grid.reshape(side, side, channels, height, width).permute(2, 0, 3, 1, 4)
            out[key] = grid.reshape(channels, side * height, side * width).contiguous()
        return out


class PandaDataModule(ImageDataModule):
    """PANDA from ``<data_dir>/<folder>``: each slide read at ``level`` and cut into ``tile_size`` tiles.

    The ``num_tiles`` tiles with the most tissue (darkest, as MONAI's ``GridPatchd`` with
    ``sort_fn="min"`` picks them) are arranged as a square mosaic, inverted so that the white
    background is 0 and scaled to [0, 1]. The label is the ISUP grade, 6 classes. Splits keep the
    grade proportions (one slide per patient in PANDA's release).

    Args:
        data_dir: Folder holding the data-set folder.
        folder: The data-set folder.
        level: Pyramid level read (0: full resolution, 1: 1/4, 2: 1/16 in PANDA's TIFFs).
        tile_size: Tile side in pixels at ``level``.
        num_tiles: Tiles per slide (a square number gives a full mosaic).
        **kwargs: Settings of :class:`ImageDataModule` (``image_size`` resizes the mosaic; null keeps it).

    >>> PandaDataModule("data", tile_size=64, num_tiles=16).mosaic_size
    256
    """

    def __init__(
        self,
        data_dir: str,
        folder: str = "panda",
        level: int = 1,
        tile_size: int = 64,
        num_tiles: int = 16,
        image_size: list[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(data_dir, folder, image_size=image_size, **kwargs)
        for name, value, low in (
            ("level", level, 0),
            ("tile_size", tile_size, 1),
            ("num_tiles", num_tiles, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"data.{name} must be an integer >= {low}, got {value!r}")
        self.level, self.tile_size, self.num_tiles = level, tile_size, num_tiles

    @property
    def mosaic_size(self) -> int:
        """Side of the mosaic in pixels."""
        return math.ceil(math.sqrt(self.num_tiles)) * self.tile_size

    @classmethod
    def write_replica(cls, data_dir: str, folder: str = "panda", **_: Any) -> Path:
        """Write a tiny replica: train.csv and pyramidal tiled TIFF slides with their masks."""
        from eisen_lightning.data.synthetic.panda import write_panda_replica

        return write_panda_replica(Path(data_dir) / folder)

    @property
    def missing_hint(self) -> str:
        """Where to get the data (Kaggle, behind a login)."""
        return PANDA_HINT.format(root=self.root)

    @property
    def info(self) -> DatasetInfo:
        """RGB mosaics, ISUP grades 0-5."""
        return self.image_info(3, [f"isup{g}" for g in range(ISUP_GRADES)])

    def has_data(self) -> bool:
        """``train.csv`` or ``train_images/`` is present."""
        return has_panda(self.root)

    def read_layout(self) -> ImageLayout:
        """Parse ``train.csv`` and the slide folders."""
        return read_panda(self.root)

    def load_transforms(self, with_label: bool) -> list:
        """Read the slide level, pick the tissue-richest tiles, make the mosaic, invert and scale."""
        from monai import transforms as mt

        from eisen_lightning.io import readers

        tile = (self.tile_size, self.tile_size)
        return [
            mt.LoadImaged(
                keys.IMAGE, reader=readers(wsi_level=self.level), image_only=True, ensure_channel_first=True
            ),
            mt.GridPatchd(
                keys.IMAGE,
                patch_size=tile,
                num_patches=self.num_tiles,
                sort_fn="min",
                pad_mode="constant",
                constant_values=255,
            ),
            TileMosaicd([keys.IMAGE]),
            mt.ScaleIntensityRanged(keys.IMAGE, a_min=255.0, a_max=0.0, b_min=0.0, b_max=1.0, clip=True),
            *self.resize_transforms(),
        ]
