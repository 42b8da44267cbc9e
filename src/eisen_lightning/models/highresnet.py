"""HighResNet with logits out: MONAI's HighResNet less the activation it puts on its output."""

from typing import Any

from monai.networks.blocks import Convolution
from monai.networks.nets import HighResNet as MonaiHighResNet
from monai.networks.nets.highresnet import DEFAULT_LAYER_PARAMS_3D


class HighResNet(MonaiHighResNet):
    """MONAI's HighResNet (Li et al., IPMI 2017) whose last layer is a plain 1x1 convolution.

    MONAI ends the net with convolution, normalisation and activation (ReLU by default), so its
    "logits" are never negative and the class scores of a voxel often tie at 0: the kind of
    hidden output activation Eisen's UNet3D had. The original (NiftyNet's highres3dnet) ends with
    a linear layer. Here the last block is replaced by a 1x1 convolution with a bias; everything
    else (and every argument) is MONAI's. Spatial sizes are kept (any input size works).

    Args:
        spatial_dims: 2 or 3.
        in_channels: Input channels.
        out_channels: Classes (logit channels).
        layer_params: MONAI's layer description; the default is the paper's (16/32/64 features at
            dilations 1/2/4, then 80 features).
        **kwargs: Other arguments of ``monai.networks.nets.HighResNet``.

    >>> import torch
    >>> net = HighResNet(spatial_dims=2, in_channels=1, out_channels=3).eval()
    >>> bool((net(torch.randn(1, 1, 21, 18)) < 0).any())
    True
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        out_channels: int = 1,
        layer_params: Any = DEFAULT_LAYER_PARAMS_3D,
        **kwargs: Any,
    ) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, layer_params=layer_params, **kwargs)
        last = self.blocks[-1]
        self.blocks[-1] = Convolution(
            spatial_dims=spatial_dims,
            in_channels=last.in_channels,
            out_channels=out_channels,
            kernel_size=layer_params[-1]["kernel_size"],
            bias=True,
            conv_only=True,
        )
