"""OBELISK: learned sparse deformable sampling followed by a dense network of 1x1 convolutions.

After Heinrich, Oktay and Bouteldja, "OBELISK - One Kernel to Solve Nearly Everything: Unified
3D Binary Convolutions for Image Analysis" (MIDL 2018) and "OBELISK-Net: Fewer layers to solve 3D
multi-organ segmentation with sparse deformable convolutions" (MedIA 2019). MONAI has no OBELISK,
and Eisen's ``ObeliskMIDL`` fails on its first forward pass (2048 sampled channels against 1024
weights), takes one input channel only and fixes the image size at construction.

This version derives its sampling grid from the input at every forward pass, so it takes any
spatial size and any number of channels, in 2D and 3D. Offsets are learned in voxels (not in
coordinates normalised to the image), so a net trained on patches sees the same neighbourhood
when it runs on a whole volume of another size.
"""

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

SPATIAL_DIMS = (2, 3)


class Obelisk(nn.Module):
    """OBELISK segmentation net: sparse deformable sampling, a dense 1x1 network, upsampled logits.

    1. The input is smoothed (a 3-wide mean filter) so that single samples are less noisy.
    2. A coarse grid of ``ceil(size / grid_stride)`` points per axis spans the input.
    3. ``num_offsets`` learned offsets (in voxels) are added to every grid point, and every
       input channel is read there by ``grid_sample`` (linear, border padding,
       ``align_corners=False``): ``in_channels * num_offsets`` features per grid point. Together
       with the first 1x1 convolution this is a sparse convolution whose taps are learned.
    4. A network of 1x1 convolutions (BatchNorm, ReLU, densely connected layers) maps the
       features to ``out_channels`` logits on the grid (run as ``Conv1d`` over the flattened grid).
    5. The logits are upsampled (bilinear or trilinear) to the input size. No activation
       follows: losses take logits.

    Args:
        spatial_dims: 2 or 3.
        in_channels: Channels of the input image.
        out_channels: Classes (logit channels), background included.
        num_offsets: Learned sampling positions per grid point (1024 in the paper).
        grid_stride: Voxels between grid points (the resolution of the dense network).
        offset_scale: Initial offsets are drawn from N(0, offset_scale²) voxels and learned in
            units of ``offset_scale`` voxels.
        hidden_channels: Width of the 1x1 network.
        growth: Channels added by each densely connected layer.
        num_dense_layers: Densely connected layers.
        smooth: Mean-filter the input before sampling.

    Raises:
        ValueError: When an argument is out of range (the message names it).

    >>> net = Obelisk(spatial_dims=3, in_channels=2, out_channels=3, num_offsets=16)
    >>> net(torch.zeros(1, 2, 21, 30, 17)).shape
    torch.Size([1, 3, 21, 30, 17])
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        out_channels: int = 2,
        num_offsets: int = 128,
        grid_stride: int = 2,
        offset_scale: float = 4.0,
        hidden_channels: int = 64,
        growth: int = 16,
        num_dense_layers: int = 4,
        smooth: bool = True,
    ) -> None:
        super().__init__()
        _check_arguments(
            spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            num_offsets=num_offsets,
            grid_stride=grid_stride,
            hidden_channels=hidden_channels,
            growth=growth,
        )
        if offset_scale <= 0:
            raise ValueError(f"net.offset_scale must be > 0 (voxels), got {offset_scale}")
        if num_dense_layers < 0:
            raise ValueError(f"net.num_dense_layers must be >= 0, got {num_dense_layers}")
        self.spatial_dims, self.in_channels, self.out_channels = spatial_dims, in_channels, out_channels
        self.num_offsets, self.grid_stride = num_offsets, grid_stride
        self.offset_scale, self.smooth = float(offset_scale), smooth
        # (num_offsets, spatial_dims) in grid_sample's axis order (x = last axis first).
        self.offsets = nn.Parameter(torch.randn(num_offsets, spatial_dims))
        # The 1x1(x1) network runs on the grid points flattened to one axis: Conv1d with kernel 1
        # and BatchNorm1d compute exactly what Conv3d/BatchNorm3d would, about 15x faster on a CPU.
        self.stem = nn.Sequential(
            nn.Conv1d(in_channels * num_offsets, hidden_channels, 1, bias=False),
            nn.BatchNorm1d(hidden_channels),
            nn.ReLU(inplace=True),
            nn.Conv1d(hidden_channels, hidden_channels, 1, bias=False),
        )
        self.dense = nn.ModuleList(
            nn.Sequential(
                nn.BatchNorm1d(hidden_channels + i * growth),
                nn.Conv1d(hidden_channels + i * growth, growth, 1, bias=False),
                nn.ReLU(inplace=True),
            )
            for i in range(num_dense_layers)
        )
        width = hidden_channels + num_dense_layers * growth
        self.head = nn.Sequential(nn.BatchNorm1d(width), nn.Conv1d(width, out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(B, out_channels, *x.shape[2:])``."""
        if x.ndim != self.spatial_dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"Obelisk(spatial_dims={self.spatial_dims}, in_channels={self.in_channels}) takes "
                f"(B, {self.in_channels}, {', '.join('S' * self.spatial_dims)}) input, got {tuple(x.shape)}"
            )
        size = [int(s) for s in x.shape[2:]]
        features = self.stem(self.sample(x))
        for layer in self.dense:
            features = torch.cat([features, layer(features)], dim=1)
        logits = self.head(features).reshape(-1, self.out_channels, *self._grid_size(size))
        mode = "trilinear" if self.spatial_dims == 3 else "bilinear"
        return F.interpolate(logits, size=size, mode=mode, align_corners=False)

    def _grid_size(self, size: Sequence[int]) -> list[int]:
        return [-(-s // self.grid_stride) for s in size]

    def sample(self, x: torch.Tensor) -> torch.Tensor:
        """Every channel read at every offset from every grid point: ``(B, C * num_offsets, G)``.

        ``G`` is the number of grid points (the grid flattened, last axis fastest).
        """
        size = [int(s) for s in x.shape[2:]]
        grid_size = self._grid_size(size)
        if self.smooth:
            pool = F.avg_pool3d if self.spatial_dims == 3 else F.avg_pool2d
            x = pool(x, 3, stride=1, padding=1, count_include_pad=False)
        # One grid for the whole batch: the batch is folded into the channels, so no shape here
        # depends on the batch size (an ONNX export keeps a dynamic batch axis).
        points = _grid_points(grid_size, x)  # (G, dims), normalised, x-first
        voxel = torch.tensor([2.0 / s for s in reversed(size)], dtype=x.dtype, device=x.device)
        offsets = self.offsets.to(x.dtype) * (self.offset_scale * voxel)  # (N, dims), normalised
        grid = points.unsqueeze(0) + offsets.unsqueeze(1)  # (N, G, dims)
        channels = x.shape[1]
        if self.spatial_dims == 3:
            grid = grid.unsqueeze(0).unsqueeze(3)  # (1, N, G, 1, 3)
        else:
            grid = grid.unsqueeze(0)  # (1, N, G, 2)
        folded = x.reshape(1, -1, *size)
        sampled = F.grid_sample(folded, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return sampled.reshape(-1, channels * self.num_offsets, math.prod(grid_size))


def _grid_points(grid_size: Sequence[int], like: torch.Tensor) -> torch.Tensor:
    """Centres of a ``grid_size`` grid spanning [-1, 1] per axis, as ``(G, dims)`` in x-first order.

    These are the cell centres of ``F.affine_grid(identity, align_corners=False)``, so the grid
    and the final ``F.interpolate(..., align_corners=False)`` agree on where each point lies.
    """
    axes = [(torch.arange(n, dtype=like.dtype, device=like.device) * 2 + 1) / n - 1 for n in grid_size]
    mesh = torch.meshgrid(*axes, indexing="ij")  # z, y, x
    return torch.stack([m.reshape(-1) for m in reversed(mesh)], dim=-1)


def _check_arguments(spatial_dims: int, **positive: int) -> None:
    if spatial_dims not in SPATIAL_DIMS:
        raise ValueError(f"net.spatial_dims must be one of {SPATIAL_DIMS}, got {spatial_dims!r}")
    for name, value in positive.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"net.{name} must be a positive integer, got {value!r}")
