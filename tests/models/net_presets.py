"""Shared by the tests of tests/models: every preset of conf/net/, built as `net=NAME` builds it."""

import contextlib
import copy
import functools
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from conftest import CONF, compose

NUM_CLASSES = 3
AGNOSTIC = "${dataset.spatial_dims}"
KINDS = ("segmentation", "classification")
OUTPUT_LINE = re.compile(r"^#\s*output:\s*(.*?)\s*$", re.M)
#: A small non-cubic size per dimensionality, rounded up per net to a size the net takes.
BASE_SIZE = {2: (32, 48), 3: (16, 24, 12)}


def preset_names() -> list[str]:
    return sorted(p.stem for p in (CONF / "net").glob("*.yaml"))


def preset_dims(name: str) -> list[int]:
    """The dimensionalities a preset builds: its own, or 2 and 3 when it reads ${dataset.spatial_dims}."""
    raw = OmegaConf.to_container(OmegaConf.load(CONF / "net" / f"{name}.yaml"), resolve=False)
    value = raw.get("spatial_dims", 3)
    return [2, 3] if value == AGNOSTIC else [int(value)]


def preset_kind(name: str) -> str:
    """What the preset returns, from its comment line ``# output: segmentation|classification``."""
    found = OUTPUT_LINE.findall((CONF / "net" / f"{name}.yaml").read_text())
    if len(found) != 1 or found[0] not in KINDS:
        pytest.fail(
            f"conf/net/{name}.yaml must have exactly one comment line '# output: <kind>' with kind one of "
            f"{KINDS} (see docs/models.md); found {found}"
        )
    return found[0]


def preset_cases() -> list:
    return [
        pytest.param(name, dims, id=f"{name}-{dims}d")
        for name in preset_names()
        for dims in preset_dims(name)
    ]


def dataset_overrides(dims: int, in_channels: int = 1) -> list[str]:
    return [
        f"dataset.in_channels={in_channels}",
        f"dataset.num_classes={NUM_CLASSES}",
        "dataset.label_names=[a,b,c]",
        f"dataset.spatial_dims={dims}",
    ]


def build_net(name: str, dims: int, tmp_path: Path, in_channels: int = 1):
    cfg = compose([f"net={name}", *dataset_overrides(dims, in_channels)], tmp_path)
    return instantiate(cfg.net)


@functools.cache
def _seeded_net(name: str, dims: int):
    import torch

    torch.manual_seed(0)
    return build_net(name, dims, Path(tempfile.gettempdir()) / "eisen-net-presets")


def seeded_net(name: str, dims: int):
    """A private copy of the preset built once per session under seed 0 (big nets take a while to build)."""
    return copy.deepcopy(_seeded_net(name, dims))


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread: these nets are small, and with two threads on two cores that other
    processes share, OpenMP's barriers dominate (a DenseNet121 epoch: 42 s with 2 threads, 0.9 s
    with 1, measured here under load)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
