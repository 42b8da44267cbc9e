"""Input-size constraints read from net instances, and the message that names the sizes allowed."""

import pytest
import torch
from monai.networks.nets import UNet
from torch import nn

from eisen_lightning.models import (
    Obelisk,
    check_input_size,
    nearest_valid_size,
    required_divisor,
    size_constraint,
    spatial_dims_of,
)


def _unet3d(strides=(2, 2, 2, 2)):
    return UNet(3, 1, 3, channels=(4, 8, 16, 32, 64)[: len(strides) + 1], strides=strides)


def test_message_names_net_rule_size_and_a_size_that_works():
    with pytest.raises(ValueError) as err:
        check_input_size(_unet3d(), [40, 40, 40], net_name="net=unet3d")
    assert str(err.value) == (
        "net=unet3d (monai UNet, strides [2, 2, 2, 2]) needs every spatial size divisible by 16; "
        "data.patch_size is [40, 40, 40]; use e.g. [48, 48, 48]"
    )


def test_valid_sizes_pass_and_the_size_key_is_named():
    check_input_size(_unet3d(), [48, 32, 16])
    with pytest.raises(ValueError, match=r"^net \(.*\) .* data.image_size is \[48, 32, 15\]"):
        check_input_size(_unet3d(), (48, 32, 15), size_name="data.image_size")


def test_per_axis_strides_give_per_axis_divisors():
    from monai.networks.nets import DynUNet

    net = DynUNet(
        3, 1, 2, kernel_size=[3, 3, 3], strides=[1, [2, 2, 1], [2, 2, 2]], upsample_kernel_size=[[2, 2, 1], 2]
    )
    assert required_divisor(net) == (4, 4, 2)
    assert nearest_valid_size(net, [30, 32, 5]) == (32, 32, 6)
    with pytest.raises(
        ValueError, match=r"spatial sizes divisible by \[4, 4, 2\] per axis; .* use e.g. \[32, 32, 6\]"
    ):
        check_input_size(net, [30, 32, 5], net_name="net=dynunet")
    assert net(torch.zeros(1, 1, 32, 32, 6)).shape == (1, 2, 32, 32, 6)


def test_minimum_size_of_densenet_is_exact():
    from monai.networks.nets import DenseNet121

    net = DenseNet121(spatial_dims=2, in_channels=1, out_channels=2).eval()
    assert size_constraint(net).minimum == (29, 29)
    with torch.no_grad():
        net(torch.zeros(1, 1, 29, 29))
        with pytest.raises(RuntimeError):
            net(torch.zeros(1, 1, 28, 29))
    with pytest.raises(
        ValueError, match=r"needs every spatial size at least 29; .* \[28, 64\]; use e.g. \[29, 64\]"
    ):
        check_input_size(net, [28, 64])


def test_a_wrapped_net_is_found_and_unknown_nets_take_any_size():
    class Router(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _unet3d((2, 2))

        def forward(self, image):
            return self.net(image)

    assert required_divisor(Router()) == (4, 4, 4)
    assert required_divisor(nn.Sequential(nn.Conv2d(1, 2, 3))) == (1, 1)
    assert required_divisor(Obelisk(spatial_dims=2)) == (1, 1)


def test_a_net_can_declare_its_divisor():
    net = nn.Conv3d(1, 1, 1)
    net.input_size_divisor = [1, 2, 4]
    assert required_divisor(net) == (1, 2, 4)
    with pytest.raises(ValueError, match=r"Conv3d.input_size_divisor \[1, 2, 4\]"):
        check_input_size(net, [3, 3, 3])


def test_the_number_of_sizes_must_match_the_net():
    with pytest.raises(
        ValueError, match=r"net=unet3d \(UNet\) is 3D: data.patch_size must have 3 sizes, got \[64, 64\]"
    ):
        check_input_size(_unet3d(), [64, 64], net_name="net=unet3d")
    assert spatial_dims_of(UNet(2, 1, 2, channels=(4, 8), strides=(2,))) == 2
    with pytest.raises(ValueError, match="no convolution"):
        spatial_dims_of(nn.Linear(2, 2))
