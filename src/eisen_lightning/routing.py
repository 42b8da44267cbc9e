"""Field routing: nets, data sets and transforms addressed by dict keys, and torchvision nets adapted.

Eisen routed everything by names (``EisenModuleWrapper(module, input_names, output_names)``) and
zipped outputs with names, dropping extra outputs silently. Here a mismatch is an error naming
both sides. Tasks route their own inputs (``task.input_keys``, ``task.target_key``; see
docs/routing.md); these pieces are for everything around them: research loops, evaluation
scripts, tuple-returning data sets such as torchvision's, and torchvision transforms and nets.
"""

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import Lambdad
from torch import nn
from torch.utils.data import Dataset

TORCHVISION_HINT = "pip install eisen-lightning[torchvision]"


def _names(value: Any, argument: str) -> list[str]:
    names = [value] if isinstance(value, str) else list(value) if isinstance(value, Sequence) else None
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"{argument} must be a non-empty list of key names, got {value!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{argument} must not repeat a key, got {names}")
    return names


class RoutedModule(nn.Module):
    """Call a module on batch keys and name its outputs: ``{output_keys: module(*batch[input_keys])}``.

    Args:
        module: Any module; it receives the tensors of ``input_keys`` as positional arguments.
        input_keys: Batch keys passed to ``module``, in order.
        output_keys: One name per output: a tensor output needs one name, a tuple or list output
            one name per element. A different count raises ``ValueError``.

    >>> routed = RoutedModule(nn.Linear(4, 2), input_keys=["image"], output_keys=["logits"])
    >>> routed({"image": torch.zeros(3, 4), "label": torch.zeros(3)})["logits"].shape
    torch.Size([3, 2])
    """

    def __init__(self, module: nn.Module, input_keys: Sequence[str], output_keys: Sequence[str]) -> None:
        super().__init__()
        if not isinstance(module, nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        self.module = module
        self.input_keys = _names(input_keys, "input_keys")
        self.output_keys = _names(output_keys, "output_keys")

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Run the module on ``batch[input_keys]``; return its outputs by ``output_keys``."""
        missing = [k for k in self.input_keys if k not in batch]
        if missing:
            raise KeyError(f"batch has no key(s) {missing} named in input_keys; it has {sorted(batch)}")
        outputs = self.module(*(batch[k] for k in self.input_keys))
        name = type(self.module).__name__
        if isinstance(outputs, torch.Tensor):
            outputs = (outputs,)
        elif not isinstance(outputs, tuple | list):
            raise TypeError(
                f"{name} returned a {type(outputs).__name__}; RoutedModule names a tensor or a tuple/list "
                f"of outputs with output_keys {self.output_keys}"
            )
        if len(outputs) != len(self.output_keys):
            raise ValueError(
                f"{name} returned {len(outputs)} output(s) but output_keys names {len(self.output_keys)}: "
                f"{self.output_keys}; give one key per output (none is dropped)"
            )
        return dict(zip(self.output_keys, outputs, strict=True))


class DictDataset(Dataset):
    """Turn a data set of tuples (torchvision's ``MNIST``: ``(image, target)``) into one of dicts.

    Args:
        dataset: Any map-style data set; an item that is not a tuple or list counts as one field.
        keys: One key per field of an item, in order.
        transform: Applied to each dict (a MONAI ``Compose`` of dictionary transforms), or ``None``.

    >>> from torch.utils.data import TensorDataset
    >>> data = DictDataset(TensorDataset(torch.zeros(5, 1, 2, 2), torch.arange(5)), ["image", "label"])
    >>> len(data), data[3]["label"]
    (5, tensor(3))
    """

    def __init__(
        self,
        dataset: Any,
        keys: Sequence[str],
        transform: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        if not hasattr(dataset, "__getitem__"):
            raise TypeError(f"dataset must be indexable (a map-style data set), got {type(dataset).__name__}")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable or None, got {type(transform).__name__}")
        self.dataset, self.keys, self.transform = dataset, _names(keys, "keys"), transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        item = self.dataset[index]
        fields = tuple(item) if isinstance(item, tuple | list) else (item,)
        if len(fields) != len(self.keys):
            raise ValueError(
                f"item {index} of {type(self.dataset).__name__} has {len(fields)} field(s) but keys names "
                f"{len(self.keys)}: {self.keys}"
            )
        sample = dict(zip(self.keys, fields, strict=True))
        return sample if self.transform is None else self.transform(sample)


class ApplyToKeysd(Lambdad):
    """Apply any one-argument callable to each listed key (Eisen's ``EisenTransformWrapper``).

    This is MONAI's ``Lambdad`` with ``track_meta=False``: the value's type is left as the callable
    returns it (a PIL image stays a PIL image, an array is not turned into a MetaTensor), which is
    what a torchvision transform expects. Use ``Lambdad`` directly for an inverse function.

    Args:
        func: The callable, such as ``torchvision.transforms.CenterCrop(224)``.
        keys: Keys to apply it to.
        allow_missing_keys: Skip keys that are absent instead of raising ``KeyError``.

    >>> ApplyToKeysd(str.upper, ["name"])({"name": "spleen", "id": 1})
    {'name': 'SPLEEN', 'id': 1}
    """

    def __init__(
        self, func: Callable[[Any], Any], keys: KeysCollection, allow_missing_keys: bool = False
    ) -> None:
        if not callable(func):
            raise TypeError(f"func must be callable (a function or a transform), got {type(func).__name__}")
        super().__init__(keys, func=func, track_meta=False, allow_missing_keys=allow_missing_keys)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Return a copy of ``data`` with ``func`` applied to the keys."""
        return dict(super().__call__(data))


def torchvision_net(
    name: str, in_channels: int = 3, num_classes: int = 1000, weights: str | None = None
) -> nn.Module:
    """A torchvision classification net for ``in_channels`` inputs and ``num_classes`` outputs.

    The net comes from ``torchvision.models.get_model``; then :func:`adapt_classifier` replaces the
    first convolution when ``in_channels != 3`` and the last linear layer when ``num_classes``
    differs from the net's. Auxiliary heads (GoogLeNet, Inception v3) are left as they are.

    Args:
        name: A torchvision classification model, such as ``resnet18`` or ``densenet121``.
        in_channels: Input channels (1 for grey-level medical images).
        num_classes: Outputs of the final layer.
        weights: torchvision weights name (``"DEFAULT"``, ``"IMAGENET1K_V1"``), or ``None`` for random
            initialisation. Downloading weights needs network access.

    Raises:
        ImportError: If torchvision is not installed.
        ValueError: If ``name`` is not a torchvision classification model.
    """
    try:
        import torchvision
    except ImportError as error:
        raise ImportError(f"torchvision_net needs torchvision: {TORCHVISION_HINT}") from error
    available = torchvision.models.list_models(module=torchvision.models)
    if name not in available:
        raise ValueError(
            f"name must be a torchvision classification model, got {name!r}; available: {available}"
        )
    return adapt_classifier(torchvision.models.get_model(name, weights=weights), in_channels, num_classes)


def adapt_classifier(model: nn.Module, in_channels: int, num_classes: int) -> nn.Module:
    """Fit a classification net to ``in_channels`` inputs and ``num_classes`` outputs, in place.

    The first ``Conv2d`` (in module order) gets ``in_channels`` inputs, its weights made from the
    old ones as pretrained RGB nets are usually adapted: summed over RGB for one channel, otherwise
    repeated and scaled by ``3 / in_channels``, so activations keep their scale. The last ``Linear``
    is replaced by a freshly initialised one with ``num_classes`` outputs.

    Args:
        model: The net (modified and returned).
        in_channels: Input channels.
        num_classes: Outputs of the final layer.

    >>> net = adapt_classifier(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(10)), 1, 2)
    >>> net[0].in_channels, net(torch.zeros(1, 1, 8, 8)).shape
    (1, torch.Size([1, 2]))
    """
    for argument, value in (("in_channels", in_channels), ("num_classes", num_classes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{argument} must be a positive integer, got {value!r}")
    modules = list(model.named_modules())
    convs = [(n, m) for n, m in modules if isinstance(m, nn.Conv2d)]
    linears = [(n, m) for n, m in modules if isinstance(m, nn.Linear | nn.LazyLinear)]
    if not convs or not linears:
        raise ValueError(
            f"{type(model).__name__} has no Conv2d input layer or no Linear output layer to adapt; "
            "adapt it by hand"
        )
    conv_name, conv = convs[0]
    if conv.in_channels != in_channels:
        _replace(model, conv_name, _adapted_conv(conv, in_channels))
    linear_name, linear = linears[-1]
    if isinstance(linear, nn.LazyLinear) or linear.out_features != num_classes:
        replacement = (
            nn.LazyLinear(num_classes, bias=linear.bias is not None)
            if isinstance(linear, nn.LazyLinear)
            else nn.Linear(linear.in_features, num_classes, bias=linear.bias is not None)
        )
        _replace(model, linear_name, replacement)
    return model


def _adapted_conv(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    if conv.groups != 1:
        raise ValueError(
            f"the first Conv2d has groups={conv.groups}; only groups=1 can change its input channels"
        )
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    )
    with torch.no_grad():
        weight = conv.weight
        if in_channels == 1:
            new.weight.copy_(weight.sum(dim=1, keepdim=True))
        else:
            repeats = math.ceil(in_channels / weight.shape[1])
            new.weight.copy_(
                weight.repeat(1, repeats, 1, 1)[:, :in_channels] * (weight.shape[1] / in_channels)
            )
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)
