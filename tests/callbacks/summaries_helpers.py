"""Shared by the summaries tests: a tiny synthetic classification problem and reading event files."""

import io
from functools import partial
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

NAMES = ["cat", "dog", "bird"]


class Shapes(Dataset):
    """16x16 one-channel images whose mean intensity tells the class (learnable in a few steps)."""

    def __init__(self, count: int, seed: int, multilabel: bool) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, len(NAMES), (count,), generator=generator)
        noise = torch.randn(count, 1, 16, 16, generator=generator)
        self.images = noise + self.labels.view(-1, 1, 1, 1).float()
        self.multilabel = multilabel

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        label = self.labels[i]
        if self.multilabel:
            label = nn.functional.one_hot(label, len(NAMES)).float()
        return {"image": self.images[i], "label": label, "case_id": f"img{i:03d}"}


class ShapesData(pl.LightningDataModule):
    def __init__(self, multilabel: bool = False) -> None:
        super().__init__()
        self.multilabel = multilabel

    def _loader(self, count: int, seed: int) -> DataLoader:
        return DataLoader(Shapes(count, seed, self.multilabel), batch_size=8)

    def train_dataloader(self) -> DataLoader:
        return self._loader(32, 0)

    def val_dataloader(self) -> DataLoader:
        return self._loader(16, 1)

    def test_dataloader(self) -> DataLoader:
        return self._loader(16, 2)


def classification_task(multilabel: bool = False):
    from torchmetrics import classification as tm

    from eisen_lightning.tasks import ClassificationTask

    metric = tm.MultilabelAccuracy if multilabel else tm.MulticlassAccuracy
    return ClassificationTask(
        net=nn.Sequential(nn.Flatten(), nn.Linear(256, len(NAMES))),
        loss=nn.BCEWithLogitsLoss() if multilabel else nn.CrossEntropyLoss(),
        optimizer=partial(torch.optim.Adam, lr=1e-2),
        num_classes=len(NAMES),
        label_names=NAMES,
        multilabel=multilabel,
        metrics={"accuracy": partial(metric)},
    )


def trainer(root: Path, callbacks: list, logger=True, max_epochs: int = 2) -> pl.Trainer:
    from pytorch_lightning.loggers import TensorBoardLogger

    tb = TensorBoardLogger(str(root), name="tensorboard", version="", default_hp_metric=False)
    return pl.Trainer(
        max_epochs=max_epochs,
        logger=tb if logger else False,
        callbacks=callbacks,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        accelerator="cpu",
    )


def events(folder: Path):
    """Every summary in the event files of ``folder``, read back with TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import (
        HISTOGRAMS,
        IMAGES,
        SCALARS,
        TENSORS,
        EventAccumulator,
    )

    accumulator = EventAccumulator(
        str(folder), size_guidance={SCALARS: 0, HISTOGRAMS: 0, IMAGES: 0, TENSORS: 0}
    )
    return accumulator.Reload()


def image_bytes(accumulator, tag: str) -> bytes:
    return accumulator.Images(tag)[-1].encoded_image_string


def frame_count(encoded: bytes) -> int:
    from PIL import Image

    return getattr(Image.open(io.BytesIO(encoded)), "n_frames", 1)


def text(accumulator, tag: str) -> str:
    """The last text summary of ``tag`` (SummaryWriter.add_text stores it under ``tag/text_summary``)."""
    return accumulator.Tensors(f"{tag}/text_summary")[-1].tensor_proto.string_val[0].decode()


def plugin(accumulator, tag: str) -> str:
    return accumulator.SummaryMetadata(tag).plugin_data.plugin_name
