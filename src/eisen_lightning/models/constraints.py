"""Input-size constraints of the nets, read from the net instance and checked before training starts.

An encoder-decoder with skip connections that halves a size ``k`` times needs every spatial size
divisible by ``2**k``: otherwise a decoder feature map and its skip differ by a voxel and the
forward pass fails deep inside the net (or, worse, Lightning's first validation fails after an
epoch of training). :func:`check_input_size` turns that into one message before anything runs.

Known nets (MONAI's and ours) are recognised by class; a wrapper (such as a module routing batch
fields to a net) is searched for the first known net it holds. Any other net may declare its own
rule with an ``input_size_divisor`` attribute (an int, or one int per axis); otherwise it is
assumed to take any size.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn

from eisen_lightning.models.obelisk import Obelisk


@dataclass(frozen=True)
class SizeConstraint:
    """What spatial sizes a net takes.

    Attributes:
        divisor: Per axis, the number every size must be a multiple of (1: any size).
        minimum: Per axis, the smallest size the net takes.
        reason: Where the constraint comes from, such as ``monai UNet, strides [2, 2, 2, 2]``.
    """

    divisor: tuple[int, ...]
    minimum: tuple[int, ...]
    reason: str

    def allows(self, spatial_size: Sequence[int]) -> bool:
        """Whether ``spatial_size`` satisfies the constraint."""
        return all(
            s >= m and s % d == 0 for s, d, m in zip(spatial_size, self.divisor, self.minimum, strict=True)
        )


def spatial_dims_of(net: nn.Module) -> int:
    """The number of spatial axes ``net`` works on (2 or 3), from its attributes or first convolution.

    Raises:
        ValueError: When the net has neither a ``spatial_dims``/``dimensions`` attribute nor a
            convolution.
    """
    for attribute in ("spatial_dims", "dimensions"):
        value = getattr(net, attribute, None)
        if isinstance(value, int):
            return value
    for module in net.modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            return len(module.kernel_size)
    raise ValueError(f"cannot tell the spatial dimensions of {type(net).__name__}: it has no convolution")


def size_constraint(net: nn.Module) -> SizeConstraint:
    """The input-size constraint of ``net`` (or of the first known net inside a wrapper).

    >>> from monai.networks.nets import UNet
    >>> size_constraint(UNet(3, 1, 2, channels=(4, 8, 16), strides=(2, 2))).divisor
    (4, 4, 4)
    """
    known = _find_known(net)
    dims = spatial_dims_of(known if known is not None else net)
    declared = getattr(net, "input_size_divisor", None)
    if declared is not None:
        divisor = _per_axis(declared, dims)
        return SizeConstraint(divisor, divisor, f"{type(net).__name__}.input_size_divisor {list(divisor)}")
    if known is None:
        ones = (1,) * dims
        return SizeConstraint(ones, ones, f"{type(net).__name__}, no known constraint")
    return _rule_for(known)(known, dims)


def required_divisor(net: nn.Module) -> tuple[int, ...]:
    """Per spatial axis, the number every input size of ``net`` must be a multiple of (1: any size).

    >>> from monai.networks.nets import SegResNet
    >>> required_divisor(SegResNet(spatial_dims=2, blocks_down=(1, 2, 2, 4)))
    (8, 8)
    """
    return size_constraint(net).divisor


def nearest_valid_size(net: nn.Module, spatial_size: Sequence[int]) -> tuple[int, ...]:
    """The smallest size ``>= spatial_size`` on every axis that ``net`` takes.

    >>> from monai.networks.nets import UNet
    >>> nearest_valid_size(UNet(3, 1, 2, channels=(4, 8, 16, 32, 64), strides=(2, 2, 2, 2)), [40, 40, 20])
    (48, 48, 32)
    """
    constraint = size_constraint(net)
    _check_length(net, constraint, spatial_size, "spatial_size", "net")
    return tuple(
        math.ceil(max(int(s), m) / d) * d
        for s, d, m in zip(spatial_size, constraint.divisor, constraint.minimum, strict=True)
    )


def check_input_size(
    net: nn.Module,
    spatial_size: Sequence[int],
    net_name: str = "net",
    size_name: str = "data.patch_size",
) -> None:
    """Fail early, with the sizes allowed, when ``net`` cannot take inputs of ``spatial_size``.

    Args:
        net: The net (or a wrapper holding it).
        spatial_size: The spatial size the net will see (the training patch, which is also the
            sliding-window size).
        net_name: How the net is named in the message, such as ``net=unet3d``.
        size_name: The config key the size comes from.

    Raises:
        ValueError: Naming the net, its constraint, the size received and a size that works, such as
            ``net=unet3d (monai UNet, strides [2, 2, 2, 2]) needs every spatial size divisible by 16;
            data.patch_size is [40, 40, 40]; use e.g. [48, 48, 48]``.

    >>> from monai.networks.nets import UNet
    >>> check_input_size(UNet(2, 1, 2, channels=(4, 8), strides=(2,)), [31, 32], "net=tiny")
    Traceback (most recent call last):
    ...
    ValueError: net=tiny (monai UNet, strides [2]) needs every spatial size divisible by 2; \
data.patch_size is [31, 32]; use e.g. [32, 32]
    """
    constraint = size_constraint(net)
    _check_length(net, constraint, spatial_size, size_name, net_name)
    size = [int(s) for s in spatial_size]
    if constraint.allows(size):
        return
    needs = []
    if any(d > 1 for d in constraint.divisor):
        needs.append(_rule_text("divisible by", constraint.divisor))
    if any(m > d for m, d in zip(constraint.minimum, constraint.divisor, strict=True)):
        needs.append(_rule_text("at least", constraint.minimum))
    raise ValueError(
        f"{net_name} ({constraint.reason}) needs {' and '.join(needs)}; {size_name} is {size}; "
        f"use e.g. {list(nearest_valid_size(net, size))}"
    )


# -- the rules -----------------------------------------------------------------------------------


def _rule_text(what: str, values: tuple[int, ...]) -> str:
    if len(set(values)) == 1:
        return f"every spatial size {what} {values[0]}"
    return f"spatial sizes {what} {list(values)} per axis"


def _per_axis(value: int | Sequence[int], dims: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * dims
    values = tuple(int(v) for v in value)
    if len(values) != dims:
        raise ValueError(f"{values} gives {len(values)} sizes for a {dims}D net")
    return values


def _product_of_strides(strides: Sequence[int | Sequence[int]], dims: int) -> tuple[int, ...]:
    divisor = [1] * dims
    for stride in strides:
        divisor = [d * s for d, s in zip(divisor, _per_axis(stride, dims), strict=True)]
    return tuple(divisor)


def _unet(net: nn.Module, dims: int) -> SizeConstraint:
    divisor = _product_of_strides(net.strides, dims)
    return SizeConstraint(divisor, divisor, f"monai UNet, strides {_plain(net.strides)}")


def _dynunet(net: nn.Module, dims: int) -> SizeConstraint:
    divisor = _product_of_strides(net.strides, dims)
    return SizeConstraint(divisor, divisor, f"monai DynUNet, strides {_plain(net.strides)}")


def _vnet(net: nn.Module, dims: int) -> SizeConstraint:
    from monai.networks.nets.vnet import DownTransition

    downs = sum(isinstance(m, DownTransition) for m in net.modules())
    divisor = (2**downs,) * dims
    return SizeConstraint(divisor, divisor, f"monai VNet, {downs} stride-2 down transitions")


def _segresnet(net: nn.Module, dims: int) -> SizeConstraint:
    downs = len(net.blocks_down) - 1
    divisor = (2**downs,) * dims
    return SizeConstraint(divisor, divisor, f"monai SegResNet, blocks_down {_plain(net.blocks_down)}")


def _densenet(net: nn.Module, dims: int) -> SizeConstraint:
    from monai.networks.nets.densenet import _Transition

    transitions = sum(isinstance(m, _Transition) for m in net.modules())
    # conv0 (stride 2) and pool0 (stride 2) round up; each transition's 2-pool rounds down and
    # must leave at least one voxel: ceil(ceil(n / 2) / 2) >= 2**transitions.
    minimum = (2 ** (transitions + 2) - 3,) * dims
    return SizeConstraint((1,) * dims, minimum, f"monai DenseNet, {transitions} pooling transitions")


def _any_size(name: str) -> Callable[[nn.Module, int], SizeConstraint]:
    def rule(net: nn.Module, dims: int) -> SizeConstraint:
        return SizeConstraint((1,) * dims, (1,) * dims, f"{name}, any size")

    return rule


def _plain(values: Sequence) -> list:
    return [_plain(v) if isinstance(v, Sequence) and not isinstance(v, str) else int(v) for v in values]


def _rules() -> list[tuple[type, Callable[[nn.Module, int], SizeConstraint]]]:
    from monai.networks import nets

    return [
        (nets.UNet, _unet),
        (nets.DynUNet, _dynunet),
        (nets.VNet, _vnet),
        (nets.SegResNet, _segresnet),
        (nets.DenseNet, _densenet),
        (nets.HighResNet, _any_size("monai HighResNet")),
        (nets.ResNet, _any_size("monai ResNet")),
        (Obelisk, _any_size("Obelisk")),
    ]


def _rule_for(net: nn.Module) -> Callable[[nn.Module, int], SizeConstraint]:
    return next(rule for cls, rule in _rules() if isinstance(net, cls))


def _find_known(net: nn.Module) -> nn.Module | None:
    classes = tuple(cls for cls, _ in _rules())
    return next((m for m in net.modules() if isinstance(m, classes)), None)


def _check_length(
    net: nn.Module, constraint: SizeConstraint, spatial_size: Sequence[int], size_name: str, net_name: str
) -> None:
    dims = len(constraint.divisor)
    if len(spatial_size) != dims:
        raise ValueError(
            f"{net_name} ({type(net).__name__}) is {dims}D: {size_name} must have {dims} sizes, "
            f"got {list(spatial_size)}"
        )
