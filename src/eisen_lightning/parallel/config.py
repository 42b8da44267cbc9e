"""The config switch: ``parallel=pipeline`` wraps the task's net when the run is built."""

from typing import Any

import torch
from torch import nn

from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)


def parallel_net(cfg: Any, net: nn.Module) -> nn.Module:
    """``net`` wrapped by ``cfg.parallel`` (a partial, such as ``conf/parallel/pipeline.yaml``).

    The split is measured on one random patch of ``data.patch_size`` when the net takes patches
    of that size; otherwise on the first training batch.

    Args:
        cfg: The composed run config, with ``cfg.dataset`` filled from the data set.
        net: The task's net.
    """
    from hydra.utils import instantiate

    check_single_process(cfg)
    factory = instantiate(cfg.parallel, _convert_="all")
    if not callable(factory):
        raise TypeError(
            f"parallel must build a wrapper taking the net (_partial_: true), got {type(factory).__name__}"
        )
    return factory(net, example_input=example_input(cfg))


def check_single_process(cfg: Any) -> None:
    """Refuse a trainer that starts one process per device: the stages share one process.

    Raises:
        ValueError: Naming ``trainer.devices`` and ``trainer.strategy`` and what works.
    """
    trainer = cfg.get("trainer") or {}
    devices, strategy = trainer.get("devices", 1), str(trainer.get("strategy", "auto"))
    if devices in (1, "1", None) and strategy in ("auto", "single_device"):
        return
    raise ValueError(
        f"parallel=pipeline runs every stage in one process, on its own device; trainer.devices={devices} "
        f"with trainer.strategy={strategy} would start one process per device. Use trainer=default or "
        "trainer=gpu (devices: 1) and choose the stages' devices with parallel.devices"
    )


def example_input(cfg: Any) -> torch.Tensor | None:
    """A seeded random batch of one ``[1, in_channels, *data.patch_size]`` patch, or ``None``.

    ``None`` when the patch size is unknown or does not match ``dataset.spatial_dims`` (a 2D net
    trained on slices of 3D patches, for example).
    """
    data, dataset = cfg.get("data") or {}, cfg.get("dataset") or {}
    patch, channels, dims = data.get("patch_size"), dataset.get("in_channels"), dataset.get("spatial_dims")
    if patch is None or not isinstance(channels, int) or len(patch) != dims:
        log.info("parallel: no example patch in the config; the net is split on the first batch")
        return None
    generator = torch.Generator().manual_seed(0)  # leaves the global random stream untouched
    return torch.rand(1, channels, *[int(s) for s in patch], generator=generator)
