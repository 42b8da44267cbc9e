"""Pipeline (model) parallelism: one net split across devices, micro-batches streamed through it.

How it is built, on torch's own machinery:

* ``torch.fx.symbolic_trace`` turns the net into a graph of leaf-module and function calls;
  ``torch.fx.passes.split_module`` cuts that graph into contiguous stages and threads every
  value a later stage needs from the stage that made it, so nets with skip connections (UNet,
  VNet) split like plain chains.
* The cut points come from measured per-node cost (:mod:`eisen_lightning.parallel.balance`).
* Micro-batches are split and merged with ``torch.distributed.pipelining.microbatch`` and run in
  GPipe order (:mod:`eisen_lightning.parallel.schedule`).

Why not ``torch.distributed.pipelining.pipeline`` and its schedules: they run one process per
stage and pass activations with ``torch.distributed`` send/receive, which needs a process
group and a launcher per stage. Here the wrapper must be a plain ``nn.Module`` inside one
Lightning process (any strategy, the optimizer and checkpoints unchanged), so the stages live in
one process, on several devices, and autograd carries the gradients across them.

The wrapper holds the net's own parameters, buffers and child modules under their own names:
``state_dict``, ``load_state_dict``, ``parameters()`` (same objects, same order), the optimizer,
checkpoints and ``.train()``/``.eval()`` behave exactly as for the unsplit net.
"""

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.split_module import split_module

from eisen_lightning.parallel.balance import (
    BALANCE_MODES,
    node_costs,
    operation_nodes,
    partition,
    stage_totals,
)
from eisen_lightning.parallel.placement import (
    adopt,
    keep_on,
    module_placement,
    resolve_devices,
    track_optimizer_state,
)
from eisen_lightning.parallel.schedule import StagedGraph, to_device
from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)


class PipelineParallel(nn.Module):
    """Split ``net`` across devices, balanced by measured cost, and stream micro-batches through it.

    The split happens on ``example_input`` when it is given, otherwise on the first forward pass.
    Batch normalisation sees micro-batches of ``batch / chunks`` samples in training, so its
    statistics (and the result) differ from the unsplit net's unless ``chunks=1``; instance and
    group normalisation do not depend on the batch split.

    Args:
        net: The net; it must be traceable by ``torch.fx`` (MONAI's UNet, VNet, SegResNet,
            DynUNet, DenseNet and ResNet are; HighResNet and Obelisk are not).
        devices: One device per stage (``["cuda:0", "cuda:1"]``, ``torch.device`` objects or GPU
            indices), or ``auto``: every visible GPU, else ``num_stages`` CPU stages.
        num_stages: Number of stages; with ``devices=auto`` and no GPU it defaults to 2, with
            GPUs to their number (stages then share GPUs in contiguous blocks).
        chunks: Micro-batches per batch.
        example_input: A tensor (or tuple of tensors) to measure the per-node cost on.
        balance: ``time`` (measured forward and backward seconds) or ``memory`` (parameter and
            activation bytes).
        profile_repeats: Timed runs per node when ``balance=time``.

    >>> from monai.networks.nets import UNet
    >>> net = UNet(2, 1, 2, channels=(4, 8, 16), strides=(2, 2))
    >>> pipe = PipelineParallel(net, devices=["cpu", "cpu"], chunks=2, example_input=torch.rand(2, 1, 16, 16))
    >>> pipe(torch.rand(4, 1, 16, 16)).shape
    torch.Size([4, 2, 16, 16])
    >>> list(pipe.state_dict()) == list(net.state_dict())
    True
    """

    def __init__(
        self,
        net: nn.Module,
        devices: str | Sequence[str | int | torch.device] = "auto",
        num_stages: int | None = None,
        chunks: int = 4,
        example_input: torch.Tensor | Sequence[torch.Tensor] | None = None,
        balance: str = "time",
        profile_repeats: int = 2,
    ) -> None:
        super().__init__()
        _check_arguments(net, chunks, balance, profile_repeats)
        object.__setattr__(self, "_net", net)  # kept unregistered: its tensors are adopted below
        object.__setattr__(self, "_traced", None)
        object.__setattr__(self, "_staged", None)
        self.stage_devices = resolve_devices(devices, num_stages)
        self.chunks, self.balance, self.profile_repeats = chunks, balance, profile_repeats
        self.placement: dict[str, torch.device] = {}
        self.stage_costs: list[float] = []
        self.cut: list[int] = []
        adopt(self, net)
        self.training = net.training
        object.__setattr__(self, "_traced", trace(net))
        _warn_batch_norm(net, chunks)
        if example_input is not None:
            inputs = example_input if isinstance(example_input, tuple | list) else (example_input,)
            self.split(*inputs)

    @property
    def net(self) -> nn.Module:
        """The wrapped net (its parameters are this module's)."""
        return self._net

    @property
    def is_split(self) -> bool:
        """Whether the stages have been cut and placed."""
        return self._staged is not None

    @property
    def stages(self) -> list[fx.GraphModule]:
        """The stage submodules in order (empty before the split); they call the net's own layers."""
        if self._staged is None:
            return []
        return [self._staged.split.get_submodule(f"submod_{k}") for k in range(len(self.stage_devices))]

    def split(self, *example_inputs: torch.Tensor) -> None:
        """Measure every node on ``example_inputs``, cut the stages and move each to its device."""
        traced, num_stages = self._traced, len(self.stage_devices)
        nodes = operation_nodes(traced.graph)
        if len(nodes) < num_stages:
            raise ValueError(
                f"{type(self._net).__name__} has {len(nodes)} operations: too few for {num_stages} stages; "
                "use fewer devices (num_stages)"
            )
        inputs = to_device(tuple(example_inputs), _device_of_module(self._net))
        costs = node_costs(traced, inputs, self.balance, self.profile_repeats)
        stages = partition(costs, num_stages)
        self.stage_costs = stage_totals(costs, stages, num_stages)
        self._assemble(stages)
        self._apply(lambda t: t)  # places every stage on its device
        log.info(
            "%s split into %d stages on %s; %s cost per stage: %s",
            type(self._net).__name__,
            num_stages,
            [str(d) for d in self.stage_devices],
            self.balance,
            [f"{c:.3g}" for c in self.stage_costs],
        )

    def _assemble(self, stages: list[int]) -> None:
        """Build the stage submodules from the stage index of every node of the traced graph."""
        nodes = operation_nodes(self._traced.graph)
        stage_of = dict(zip(nodes, stages, strict=True))
        split = split_module(self._traced, self._net, lambda node: stage_of[node], keep_original_order=True)
        self.placement = module_placement(self._net, nodes, stages, self.stage_devices)
        self.cut = list(stages)
        object.__setattr__(self, "_staged", StagedGraph(split, self.stage_devices))
        track_optimizer_state(self)

    def __getstate__(self) -> dict[str, Any]:
        """The module's state without the traced graphs, which are rebuilt when it is unpickled."""
        state = self.__dict__.copy()
        state["_traced"] = state["_staged"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a pickled pipeline: trace the net again and cut it where it was cut."""
        super().__setstate__(state)
        object.__setattr__(self, "_traced", trace(self._net))
        if self.cut:
            self._assemble(self.cut)

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        """Run the pipeline; the output is returned on the device of the first input tensor."""
        if kwargs:
            raise TypeError(
                "PipelineParallel takes the net's inputs as positional arguments, "
                f"got keywords {sorted(kwargs)}"
            )
        if self._staged is None:
            self.split(*inputs)
        output_device = _device_of_inputs(inputs, default=self.stage_devices[-1])
        return self._staged.run(inputs, self.chunks, output_device)

    def train(self, mode: bool = True) -> "PipelineParallel":
        """Set training mode on the net and all its modules (as ``nn.Module.train``).

        The stages run the net's own layers, so they follow; the traced graphs hold no mode.
        """
        super().train(mode)
        self._net.training = mode
        return self

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> "PipelineParallel":
        """Apply ``fn`` (a ``.to``, ``.half()``, ...) keeping every stage's tensors on its device.

        Lightning moves the whole LightningModule to its root device with ``.to(device)``; here
        the dtype part of such a move applies and every stage's tensors stay on (or go straight
        to) the stage's device, never visiting another. Layers no stage uses follow ``fn``.
        """
        for name, module in self._net.named_modules():
            device = self.placement.get(name)
            module._apply(fn if device is None else keep_on(fn, device), recurse=False)
        adopt(self, self._net, refresh=True)
        return self

    def extra_repr(self) -> str:
        """The devices, chunks and balance mode, shown by ``print(module)``."""
        return (
            f"devices={[str(d) for d in self.stage_devices]}, chunks={self.chunks}, balance={self.balance!r}"
        )


def trace(net: nn.Module) -> fx.GraphModule:
    """``net`` traced by ``torch.fx``, checked to compute the same graph in training and evaluation.

    Raises:
        TypeError: If the net cannot be traced (data-dependent control flow, for example), or its
            traced graph depends on ``.train()``/``.eval()`` outside of leaf modules.
    """
    name = type(net).__name__
    modes = {m: m.training for m in net.modules()}
    try:
        codes = []
        for mode in (True, False):
            net.train(mode)
            traced = fx.symbolic_trace(net)
            codes.append(traced.code)
    except Exception as error:  # torch.fx raises many types (TraceError, TypeError, ...)
        raise TypeError(
            f"PipelineParallel cannot split {name}: torch.fx cannot trace it ({type(error).__name__}: "
            f"{error}). Split a net that torch.fx can trace (monai UNet, VNet, SegResNet, DynUNet, "
            "DenseNet, ResNet) or train this one without parallel=pipeline"
        ) from error
    finally:
        for module, mode in modes.items():
            module.training = mode
    if codes[0] != codes[1]:
        raise TypeError(
            f"PipelineParallel cannot split {name}: its forward branches on self.training outside of "
            "torch.nn layers, so one traced graph cannot serve both training and evaluation"
        )
    return traced


def _check_arguments(net: Any, chunks: Any, balance: Any, profile_repeats: Any) -> None:
    if not isinstance(net, nn.Module):
        raise TypeError(f"PipelineParallel: net must be a torch.nn.Module, got {type(net).__name__}")
    if not isinstance(chunks, int) or isinstance(chunks, bool) or chunks < 1:
        raise ValueError(f"PipelineParallel: chunks must be an integer >= 1, got {chunks!r}")
    if balance not in BALANCE_MODES:
        raise ValueError(f"PipelineParallel: balance must be one of {BALANCE_MODES}, got {balance!r}")
    if not isinstance(profile_repeats, int) or profile_repeats < 1:
        raise ValueError(
            f"PipelineParallel: profile_repeats must be an integer >= 1, got {profile_repeats!r}"
        )


def _warn_batch_norm(net: nn.Module, chunks: int) -> None:
    if chunks > 1 and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules()):
        log.warning(
            "%s has batch normalisation: with chunks=%d it normalises each micro-batch by its own "
            "statistics, so training differs from the unsplit net (chunks=1 keeps it identical)",
            type(net).__name__,
            chunks,
        )


def _device_of_module(module: nn.Module) -> torch.device:
    tensor = next(iter(module.parameters()), None)
    if tensor is None:
        tensor = next(iter(module.buffers()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def _device_of_inputs(inputs: Sequence[Any], default: torch.device) -> torch.device:
    from torch.utils._pytree import tree_leaves

    tensors = [t for t in tree_leaves(list(inputs)) if isinstance(t, torch.Tensor)]
    return tensors[0].device if tensors else default
