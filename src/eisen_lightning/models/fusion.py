"""FusionNet: a CNN backbone's image features joined with extra scalar inputs (sex, age), then a head."""

from collections.abc import Sequence

import torch
from torch import nn


class FusionNet(nn.Module):
    """``head(concat(backbone(image), extras))``: image features fused with per-image scalars.

    The backbone is any net that maps an image to a feature vector ``(B, F)`` (a MONAI ResNet or
    DenseNet built with ``F`` outputs). Each extra input is a scalar or a short vector per image
    (``(B,)`` or ``(B, k)``, booleans included), cast to float and concatenated to the features.

    Args:
        backbone: Image -> ``(B, num_features)`` features.
        num_features: Size of the backbone's feature vector.
        extra_sizes: Size of each extra input, in the order they are passed (``[1]``: one scalar).
        out_channels: Outputs of the head (1 for a single regressed value).
        hidden: Width of the head's hidden layer (0: a single linear layer).
        extra_defaults: Values used for the extras when the net is called with the image alone
            (one per extra value; such as 0.5 for an unknown 0/1 flag), or ``None`` to require them.
        dropout: Dropout before the head's last layer.

    >>> net = FusionNet(nn.Sequential(nn.Flatten(), nn.Linear(16, 8)), 8, [1], out_channels=1)
    >>> net(torch.zeros(3, 1, 4, 4), torch.tensor([True, False, True])).shape
    torch.Size([3, 1])
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_features: int,
        extra_sizes: Sequence[int] = (1,),
        out_channels: int = 1,
        hidden: int = 32,
        extra_defaults: Sequence[float] | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not isinstance(backbone, nn.Module):
            raise TypeError(f"backbone must be a torch.nn.Module, got {type(backbone).__name__}")
        for name, value in (("num_features", num_features), ("out_channels", out_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.extra_sizes = [int(s) for s in extra_sizes]
        if any(s < 1 for s in self.extra_sizes):
            raise ValueError(f"extra_sizes must be positive sizes, got {list(extra_sizes)}")
        total = sum(self.extra_sizes)
        if extra_defaults is not None and len(extra_defaults) != total:
            raise ValueError(
                f"extra_defaults needs one value per extra value ({total} for extra_sizes "
                f"{self.extra_sizes}), got {list(extra_defaults)}"
            )
        defaults = torch.tensor(list(extra_defaults or []), dtype=torch.float32)
        self.register_buffer("extra_defaults", defaults if extra_defaults is not None else None)
        self.backbone = backbone
        width = num_features + total
        layers: list[nn.Module] = [nn.Linear(width, hidden), nn.ReLU(inplace=True)] if hidden else []
        layers += [nn.Dropout(dropout), nn.Linear(hidden or width, out_channels)]
        self.head = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, *extras: torch.Tensor) -> torch.Tensor:
        """Fuse the image features with ``extras`` (one tensor per entry of ``extra_sizes``)."""
        features = self.backbone(image)
        features = features.flatten(1)
        return self.head(torch.cat([features, self._extras(extras, features)], dim=1))

    def _extras(self, extras: Sequence[torch.Tensor], features: torch.Tensor) -> torch.Tensor:
        if not extras and self.extra_defaults is not None:
            return self.extra_defaults.to(features.dtype).expand(features.shape[0], -1)
        if len(extras) != len(self.extra_sizes):
            raise ValueError(
                f"FusionNet takes the image and {len(self.extra_sizes)} extra input(s) (extra_sizes "
                f"{self.extra_sizes}), got {len(extras)}; list them in task.input_keys after the image"
            )
        columns = [torch.as_tensor(e, device=features.device).reshape(features.shape[0], -1) for e in extras]
        for column, size in zip(columns, self.extra_sizes, strict=True):
            if column.shape[1] != size:
                raise ValueError(f"an extra input has {column.shape[1]} values per image, expected {size}")
        return torch.cat([c.to(features.dtype) for c in columns], dim=1)
