"""Where the stages live: device lists, per-module placement, and keeping tensors on their stage."""

import weakref
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import fx, nn

_PIPELINES: "weakref.WeakSet[nn.Module]" = weakref.WeakSet()
_OPTIMIZER_HOOK: list[Any] = []


def resolve_devices(
    devices: str | Sequence[str | int | torch.device], num_stages: int | None
) -> list[torch.device]:
    """One device per stage.

    Args:
        devices: ``auto`` (every visible GPU, else ``num_stages`` CPU stages, 2 by default) or a
            list of devices (``"cuda:1"``, ``torch.device``, a GPU index).
        num_stages: Number of stages, or ``None`` for one per device.

    Raises:
        ValueError: If a device is unknown or unavailable, or ``num_stages`` does not fit.
        TypeError: If ``devices`` is neither ``auto`` nor a list.
    """
    if num_stages is not None and (not isinstance(num_stages, int) or num_stages < 1):
        raise ValueError(f"PipelineParallel: num_stages must be an integer >= 1 or null, got {num_stages!r}")
    if isinstance(devices, str):
        if devices != "auto":
            raise ValueError(
                "PipelineParallel: devices must be 'auto' or a list such as ['cuda:0', 'cuda:1'], "
                f"got {devices!r}"
            )
        gpus = torch.cuda.device_count()
        if gpus == 0:
            return [torch.device("cpu")] * (num_stages or 2)
        count = num_stages or gpus
        return [torch.device("cuda", stage * gpus // count) for stage in range(count)]
    if not isinstance(devices, Sequence) or not devices:
        raise TypeError(f"PipelineParallel: devices must be 'auto' or a non-empty list, got {devices!r}")
    resolved = [_device(d) for d in devices]
    if num_stages is not None and num_stages != len(resolved):
        raise ValueError(
            f"PipelineParallel: num_stages={num_stages} but {len(resolved)} devices were given "
            f"({[str(d) for d in resolved]}); give one device per stage or leave num_stages null"
        )
    return resolved


def _device(value: str | int | torch.device) -> torch.device:
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"PipelineParallel: {value!r} is not a device ({error})") from error
    if device.type == "cuda":
        count = torch.cuda.device_count()
        index = device.index if device.index is not None else torch.cuda.current_device() if count else 0
        if index >= count:
            raise ValueError(
                f"PipelineParallel: device {value!r} is not available; this machine has {count} GPU(s)"
            )
        device = torch.device("cuda", index)
    return device


def adopt(wrapper: nn.Module, net: nn.Module, refresh: bool = False) -> None:
    """Register ``net``'s own parameters, buffers and children on ``wrapper`` under their names.

    The wrapper then has exactly the net's ``state_dict`` keys and ``parameters()`` order.

    Raises:
        ValueError: If a name of the net clashes with an attribute of the wrapper.
    """
    if not refresh:
        clashes = [n for n in (*net._parameters, *net._buffers, *net._modules) if hasattr(wrapper, n)]
        if clashes:
            raise ValueError(
                f"PipelineParallel cannot wrap {type(net).__name__}: its attribute(s) {clashes} clash with "
                f"PipelineParallel's own; rename them in the net"
            )
    wrapper._parameters.update(net._parameters)
    wrapper._buffers.update(net._buffers)
    wrapper._non_persistent_buffers_set.update(net._non_persistent_buffers_set)
    wrapper._modules.update(net._modules)


def module_placement(
    net: nn.Module, nodes: Sequence[fx.Node], stages: Sequence[int], devices: Sequence[torch.device]
) -> dict[str, torch.device]:
    """The device of every module of ``net`` that a stage uses, by qualified name.

    Raises:
        ValueError: If one module (shared weights) is used by stages on different devices.
    """
    owner: dict[str, int] = {}
    for node, stage in zip(nodes, stages, strict=True):
        for name in _modules_used(net, node):
            first = owner.setdefault(name, stage)
            if devices[first] != devices[stage]:
                raise ValueError(
                    f"PipelineParallel: module {name or type(net).__name__!r} is used by stage {first} on "
                    f"{devices[first]} and stage {stage} on {devices[stage]} (shared weights); "
                    "one module cannot live on two devices: use fewer devices or untie the weights"
                )
    return {name: devices[stage] for name, stage in owner.items()}


def _modules_used(net: nn.Module, node: fx.Node) -> list[str]:
    target = str(node.target)
    if node.op == "call_module":
        return [name for name, _ in net.get_submodule(target).named_modules(prefix=target)]
    if node.op == "get_attr":
        owner = target.rpartition(".")[0]
        try:
            net.get_submodule(owner)
        except AttributeError:
            return []
        return [owner]
    return []


def keep_on(
    fn: Callable[[torch.Tensor], torch.Tensor], device: torch.device
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``fn`` (a ``.to``, ``.half()``, ...) with its device move replaced by a move to ``device``.

    What ``fn`` does is read from an empty probe of the tensor's device and dtype: when it moves
    tensors elsewhere, only its dtype is applied, so no tensor ever visits another device.
    """

    def placed(tensor: torch.Tensor) -> torch.Tensor:
        probe = _probe(fn, tensor)
        if probe.device != tensor.device:
            return tensor.to(device=device, dtype=probe.dtype)
        out = fn(tensor)
        return out if out.device == device else out.to(device)

    return placed


def _probe(fn: Callable[[torch.Tensor], torch.Tensor], tensor: torch.Tensor) -> torch.Tensor:
    try:
        return fn(torch.empty(0, dtype=tensor.dtype, device=tensor.device))
    except NotImplementedError:  # a meta tensor cannot be copied anywhere: ask a CPU probe
        return fn(torch.empty(0, dtype=tensor.dtype))


def track_optimizer_state(pipeline: nn.Module) -> None:
    """Keep optimizer state on the device of its parameter for a pipeline over several devices.

    Lightning moves restored optimizer state to its root device when it resumes from a checkpoint
    (``_optimizer_to_device``); a stage on another device would then step with state on the wrong
    device. A global optimizer step pre-hook moves such state back before each step.
    """
    if len(set(pipeline.stage_devices)) < 2:
        return
    _PIPELINES.add(pipeline)
    if not _OPTIMIZER_HOOK:
        from torch.optim.optimizer import register_optimizer_step_pre_hook

        _OPTIMIZER_HOOK.append(register_optimizer_step_pre_hook(state_to_param_devices))


def state_to_param_devices(optimizer: torch.optim.Optimizer, args: Any = (), kwargs: Any = None) -> None:
    """Move every tensor of ``optimizer``'s state (but ``step``) to its parameter's device."""
    if not _PIPELINES:
        return
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param)
            for key, value in (state or {}).items():
                if key != "step" and isinstance(value, torch.Tensor) and value.device != param.device:
                    state[key] = value.to(param.device)
