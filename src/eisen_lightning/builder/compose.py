"""Hydra access for the builder: the same config tree and compose calls as ``python train.py``.

Hydra's global state is a process-wide singleton, so every compose runs under one lock.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eisen_lightning.cli import CONFIG_PATH

_LOCK = threading.RLock()
#: groups that are no component of an experiment: Hydra's own settings and the experiments themselves
HIDDEN_GROUPS = ("hydra", "experiment")
#: placeholders of the values ``run.build`` fills from the data set at start-up (validation only)
DATASET_PLACEHOLDERS = [
    "dataset.in_channels=1",
    "dataset.num_classes=2",
    "dataset.label_names=[background,foreground]",
    "dataset.spatial_dims=3",
]


@contextmanager
def hydra_context(config_dirs: list[Path]) -> Iterator[Any]:
    """Initialise Hydra on the packaged config tree plus ``config_dirs``; yields the config loader."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    with _LOCK:
        GlobalHydra.instance().clear()
        try:
            with initialize_config_module(CONFIG_PATH.removeprefix("pkg://"), version_base="1.3"):
                yield GlobalHydra.instance().config_loader()
        finally:
            GlobalHydra.instance().clear()


def searchpath(config_dirs: list[Path]) -> list[str]:
    """The override that adds ``config_dirs`` to Hydra's search path (as ``--config-dir`` does)."""
    if not config_dirs:
        return []
    dirs = ",".join(f"file://{Path(d).resolve()}" for d in config_dirs)
    return [f"hydra.searchpath=[{dirs}]"]


def compose(config_dirs: list[Path], overrides: list[str], hydra_cfg: bool = False) -> Any:
    """Compose ``train`` with ``overrides``, ``config_dirs`` on the search path.

    Raises:
        hydra.errors.HydraException: If the overrides do not compose.
    """
    from hydra import compose as hydra_compose
    from hydra.core.hydra_config import HydraConfig

    with hydra_context(config_dirs):
        cfg = hydra_compose(
            "train", overrides=[*searchpath(config_dirs), *overrides], return_hydra_config=True
        )
        HydraConfig.instance().set_config(cfg)
    if not hydra_cfg:
        from omegaconf import open_dict

        with open_dict(cfg):
            del cfg["hydra"]
    return cfg


def groups_and_options(config_dirs: list[Path]) -> dict[str, list[str]]:
    """Every top-level config group (but Hydra's own) and its options, as Hydra's loader sees them.

    The options of ``config_dirs`` (plain folders, as ``--config-dir`` adds them) are added.
    """
    with hydra_context(config_dirs) as loader:
        found = {g: set(loader.get_group_options(g)) for g in loader.list_groups("") if g != "hydra"}
    for folder in config_dirs:
        for path in Path(folder).glob("*/*.yaml"):
            found.setdefault(path.parent.name, set()).add(path.stem)
    return {group: sorted(options) for group, options in sorted(found.items())}


def selected_options(config_dirs: list[Path], overrides: list[str]) -> dict[str, list[str]]:
    """The option(s) of each top-level group that composing ``train`` with ``overrides`` selects.

    Read from Hydra's defaults list, so list-valued groups (``callbacks: [default, onnx_export]``)
    come back in order.
    """
    from hydra.types import RunMode

    with hydra_context(config_dirs) as loader:
        defaults = loader.compute_defaults_list(
            "train", [*searchpath(config_dirs), *overrides], run_mode=RunMode.RUN
        )
    chosen: dict[str, list[str]] = {}
    for default in defaults.defaults:
        path = default.config_path or ""
        group, _, option = path.rpartition("/")
        if group and "/" not in group and group not in HIDDEN_GROUPS and not default.is_self:
            chosen.setdefault(group, []).append(option)
    return chosen
