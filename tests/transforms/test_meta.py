"""Untracked: the random part of the training transforms without MONAI's metadata tracking."""

import pytest
import torch
from monai.data import MetaTensor, get_track_meta
from monai.transforms import Compose, Lambdad, RandFlipd, RandGaussianNoised, RandSpatialCropSamplesd

from eisen_lightning.transforms.meta import Untracked, flat_transforms, untrack_random_part


def _sample() -> dict:
    return {"image": MetaTensor(torch.arange(64.0).reshape(1, 4, 4, 4), affine=torch.eye(4) * 2)}


def _steps() -> list:
    return [RandSpatialCropSamplesd("image", roi_size=(2, 2, 2), num_samples=3), RandFlipd("image", prob=0.5)]


def test_untracked_gives_the_values_of_tracked_as_plain_tensors():
    tracked = Compose(_steps()).set_random_state(seed=4)(_sample())
    wrapper = Untracked(_steps())
    wrapper.transform.set_random_state(seed=4)  # as the tracked Compose seeds its steps
    untracked = wrapper(_sample())
    assert all(isinstance(c["image"], MetaTensor) for c in tracked)
    assert all(type(c["image"]) is torch.Tensor for c in untracked)
    assert all(
        torch.equal(a["image"].as_tensor(), b["image"]) for a, b in zip(tracked, untracked, strict=True)
    )
    assert get_track_meta()


def test_tracking_is_put_back_when_a_transform_fails():
    def fail(_):
        raise RuntimeError("broken")

    with pytest.raises(RuntimeError):
        Untracked([Lambdad("image", fail)])(_sample())
    assert get_track_meta()


def test_a_seed_reaches_the_wrapped_transforms():
    steps = untrack_random_part([RandGaussianNoised("image", prob=1.0)])
    draws = [Compose(steps).set_random_state(seed=s)(_sample())["image"] for s in (1, 1, 2)]
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])


def test_the_deterministic_prefix_is_left_tracked():
    steps = untrack_random_part([Lambdad("image", lambda x: x + 1), RandFlipd("image", prob=1.0)])
    assert isinstance(steps[-1], Untracked)
    assert [type(s).__name__ for s in flat_transforms(Compose(steps))] == ["Lambdad", "RandFlipd"]
    assert untrack_random_part([Lambdad("image", lambda x: x)])[0].__class__.__name__ == "Lambdad"
