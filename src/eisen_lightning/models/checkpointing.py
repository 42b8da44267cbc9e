"""Activation checkpointing: keep only block inputs in the forward pass and recompute the rest in backward.

A large 3D net stores every intermediate activation of every block until the backward pass; with
checkpointing, a block stores its input only and runs again during backward, trading about one
extra forward pass for memory. The wrapping is PyTorch's (``checkpoint_wrapper``, non-reentrant,
the same one Lightning's ``FSDPStrategy(activation_checkpointing_policy=...)`` applies), so the
state-dict keys stay those of the unwrapped net and checkpoints load either way.

Use it as a callback with any strategy but FSDP (``callbacks=[default,activation_checkpointing]``),
or, with ``trainer=fsdp``, through the strategy's ``activation_checkpointing_policy`` built by
:func:`block_classes`.
"""

import contextlib
import functools
from collections.abc import Iterator, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)

#: the repeated blocks of MONAI's large nets (UNet with residual units, SegResNet, DynUNet, VNet, HighResNet)
DEFAULT_BLOCKS = (
    "monai.networks.blocks.ResidualUnit",
    "monai.networks.blocks.segresnet_block.ResBlock",
    "monai.networks.blocks.dynunet_block.UnetResBlock",
    "monai.networks.blocks.dynunet_block.UnetBasicBlock",
    "monai.networks.nets.vnet.DownTransition",
    "monai.networks.nets.vnet.UpTransition",
    "monai.networks.nets.highresnet.HighResBlock",
)


def block_classes(names: Sequence[str] = DEFAULT_BLOCKS) -> set[type[nn.Module]]:
    """Import the module classes named by dotted paths.

    Also the value of ``FSDPStrategy(activation_checkpointing_policy=...)`` in ``conf/trainer/fsdp.yaml``.

    Args:
        names: Dotted paths such as ``monai.networks.blocks.ResidualUnit``.

    Raises:
        ValueError: If a name is empty, cannot be imported or is not a ``torch.nn.Module`` class.

    >>> sorted(c.__name__ for c in block_classes(["torch.nn.Conv3d"]))
    ['Conv3d']
    """
    from hydra.utils import get_class

    if isinstance(names, str) or not names:
        raise ValueError(f"blocks must be a non-empty list of dotted class paths, got {names!r}")
    classes = set()
    for name in names:
        try:
            cls = get_class(str(name))
        except Exception as error:
            raise ValueError(f"blocks: cannot import {name!r} ({error}); give a dotted class path") from None
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise ValueError(f"blocks: {name!r} is not a torch.nn.Module class")
        classes.add(cls)
    return classes


def checkpoint_blocks(module: nn.Module, blocks: Sequence[str] = DEFAULT_BLOCKS) -> int:
    """Wrap, in place, every submodule of ``module`` whose class is in ``blocks`` in activation checkpointing.

    Norm layers inside a block keep their running statistics from the first forward pass only:
    the recomputation in backward would otherwise update them a second time.

    Args:
        module: The net (or the task holding it).
        blocks: Dotted class paths of the blocks to checkpoint.

    Returns:
        The number of blocks wrapped.

    Raises:
        ValueError: If no submodule is of a class in ``blocks``, listing the classes the net has.
    """
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        CheckpointImpl,
        apply_activation_checkpointing,
        checkpoint_wrapper,
    )

    classes = tuple(block_classes(blocks))
    found = [m for m in module.modules() if isinstance(m, classes)]
    if not found:
        present = sorted({type(m).__name__ for m in module.modules()})
        raise ValueError(
            f"activation checkpointing: the net has no block of {sorted(c.__name__ for c in classes)}; "
            f"its module classes are {present}. Set the blocks to checkpoint, for example "
            "callbacks.activation_checkpointing.blocks=[monai.networks.blocks.Convolution]"
        )

    def wrap(block: nn.Module) -> nn.Module:
        contexts = functools.partial(_contexts, block)
        return checkpoint_wrapper(block, checkpoint_impl=CheckpointImpl.NO_REENTRANT, context_fn=contexts)

    apply_activation_checkpointing(
        module, checkpoint_wrapper_fn=wrap, check_fn=lambda m: isinstance(m, classes)
    )
    return len(found)


def _contexts(block: nn.Module) -> tuple[Any, Any]:
    """Forward and recomputation contexts of ``torch.utils.checkpoint`` for ``block``."""
    return contextlib.nullcontext(), _norm_statistics_kept(block)


@contextlib.contextmanager
def _norm_statistics_kept(block: nn.Module) -> Iterator[None]:
    """Restore the running statistics of the norm layers of ``block`` after its recomputation."""
    norms = [m for m in block.modules() if isinstance(m, nn.modules.batchnorm._NormBase)]
    saved = [{k: v.clone() for k, v in m.named_buffers(recurse=False) if v is not None} for m in norms]
    try:
        yield
    finally:
        with torch.no_grad():
            for norm, buffers in zip(norms, saved, strict=True):
                for name, value in buffers.items():
                    getattr(norm, name).copy_(value)


class ActivationCheckpointing(pl.Callback):
    """Checkpoint the activations of the net's repeated blocks during training.

    Wraps the blocks once, before training starts, for single-device and DDP training; under
    ``trainer=fsdp`` use the strategy's ``activation_checkpointing_policy`` instead.

    Args:
        blocks: Dotted class paths of the blocks to checkpoint (default: the blocks of MONAI's
            UNet, SegResNet, DynUNet, VNet and HighResNet).

    >>> ActivationCheckpointing(blocks=["monai.networks.blocks.ResidualUnit"]).blocks
    ['monai.networks.blocks.ResidualUnit']
    """

    def __init__(self, blocks: Sequence[str] = DEFAULT_BLOCKS) -> None:
        block_classes(blocks)
        self.blocks = [str(b) for b in blocks]
        self.wrapped = 0

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Wrap the blocks of ``pl_module`` before the strategy moves or wraps it."""
        from pytorch_lightning.strategies import FSDPStrategy

        if isinstance(trainer.strategy, FSDPStrategy):
            raise ValueError(
                "the activation_checkpointing callback does not combine with trainer=fsdp: "
                "use trainer.strategy.activation_checkpointing_policy (set in conf/trainer/fsdp.yaml)"
            )
        check_not_pipelined(getattr(pl_module, "net", None))
        if stage != "fit" or self.wrapped:
            return
        self.wrapped = checkpoint_blocks(pl_module, self.blocks)
        log.info("activation checkpointing: %d blocks wrapped", self.wrapped)


def check_not_pipelined(net: Any) -> None:
    """Refuse a net split by ``parallel=pipeline``: its stages are new modules, so no block is found.

    Raises:
        ValueError: If ``net`` is a :class:`~eisen_lightning.parallel.PipelineParallel`.
    """
    if type(net).__name__ == "PipelineParallel":
        raise ValueError(
            "the activation_checkpointing callback does not combine with parallel=pipeline (the split "
            "net has no blocks left to wrap); remove one of them, e.g. callbacks=default"
        )
