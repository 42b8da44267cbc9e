"""Shared by the benchmark scripts (not a benchmark itself): the training config they run."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def compose(overrides: list[str], root: Path) -> Any:
    """Compose ``conf/train.yaml`` as ``python train.py OVERRIDES`` would, data and outputs under ``root``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    base = [f"paths.data_dir={root / 'data'}", f"paths.output_dir={root / 'run'}"]
    with initialize_config_module("eisen_lightning.conf", version_base="1.3"):
        cfg = hydra_compose("train", overrides=base + overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg
