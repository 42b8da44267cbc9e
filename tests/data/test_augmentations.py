"""The ``transforms`` config group: extra training augmentations appended, in order, to a data set's own."""

import copy
import re

import pytest
import torch
from hydra.utils import get_class, instantiate
from monai.transforms import MapTransform, RandGaussianNoise, RandGaussianNoised

from conftest import CONF, QUIET, compose
from eisen_lightning import run
from eisen_lightning.data.cache import copy_cache_needed, transform_fingerprint
from eisen_lightning.data.datamodule import check_augmentations
from eisen_lightning.transforms.meta import flat_transforms

TRANSFORMS = sorted(p.stem for p in (CONF / "transforms").glob("*.yaml"))
SMALL = ["data.num_training=4", "data.num_test=0", "data.num_folds=2"]


def _tags(option: str) -> dict[str, str]:
    text = (CONF / "transforms" / f"{option}.yaml").read_text()
    return dict(re.findall(r"^# (augments|dims): (\w+)", text, re.M))


def _datamodule(tmp_path, *overrides, small=True):
    cfg = compose([*(SMALL if small else []), *QUIET, *overrides], tmp_path)
    get_class(cfg.data._target_).write_replica(**cfg.data)
    datamodule = instantiate(cfg.data, **run._augmentations(cfg))
    datamodule.prepare_data()
    return cfg, datamodule


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """One training sample (a crop) of the 3D demo and one of the 2D demo, with their labels."""
    out = {}
    for dims, overrides in ((3, []), (2, ["+experiment=demo2d"])):
        _, datamodule = _datamodule(tmp_path_factory.mktemp(f"demo{dims}d"), *overrides)
        datamodule.setup("fit")
        sample = datamodule.datasets["train"][0]
        out[dims] = sample[0] if isinstance(sample, list) else sample
    return out


def test_the_group_offers_several_augmentations_each_tagged():
    assert len(TRANSFORMS) >= 7
    for option in TRANSFORMS:
        assert _tags(option).get("augments") in ("intensity", "spatial"), option
        assert _tags(option).get("dims") in ("any", "3d", "2d"), option


@pytest.mark.parametrize("option", TRANSFORMS)
@pytest.mark.parametrize("dims", [3, 2])
def test_each_transform_runs_on_a_training_sample(option, dims, samples, tmp_path):
    if _tags(option)["dims"] not in ("any", f"{dims}d"):
        pytest.skip(f"{option} declares dims: {_tags(option)['dims']}")
    cfg = compose([f"transforms=[{option}]", f"transforms.{option}.prob=1.0"], tmp_path)
    transform = instantiate(cfg.transforms[option])
    assert isinstance(transform, MapTransform)
    transform.set_random_state(seed=1)
    sample = samples[dims]
    out = transform(copy.deepcopy(sample))
    image, label = out["image"], out["label"]
    assert image.shape == sample["image"].shape and label.shape == sample["label"].shape
    assert torch.isfinite(torch.as_tensor(image)).all()
    assert not torch.equal(torch.as_tensor(image), torch.as_tensor(sample["image"]))
    if _tags(option)["augments"] == "spatial":  # nearest: no new label values
        assert set(torch.unique(torch.as_tensor(label)).tolist()) <= set(
            torch.unique(torch.as_tensor(sample["label"])).tolist()
        )
    else:
        assert torch.equal(torch.as_tensor(label), torch.as_tensor(sample["label"]))


def test_transforms_compose_to_a_mapping_in_list_order(tmp_path):
    assert list(compose(["transforms=[rand_affine,rand_gaussian_noise]"], tmp_path).transforms) == [
        "rand_affine",
        "rand_gaussian_noise",
    ]
    assert list(compose(["transforms=[rand_gaussian_noise,rand_affine]"], tmp_path).transforms) == [
        "rand_gaussian_noise",
        "rand_affine",
    ]
    assert compose([], tmp_path).get("transforms") is None
    assert compose(["transforms=[]"], tmp_path).get("transforms") is None
    assert compose(["~transforms"], tmp_path).get("transforms") is None
    assert run._augmentations(compose([], tmp_path)) == {}


@pytest.mark.parametrize(
    "order", [["rand_gaussian_noise", "rand_affine"], ["rand_affine", "rand_gaussian_noise"]]
)
def test_augmentations_follow_the_data_sets_own_training_transforms_in_order(order, tmp_path):
    _, datamodule = _datamodule(tmp_path, f"transforms=[{','.join(order)}]")
    datamodule.setup("fit")
    own = [type(t) for t in datamodule.train_transforms()]
    steps = [type(t) for t in flat_transforms(datamodule.datasets["train"].transform)]
    names = {"rand_gaussian_noise": "RandGaussianNoised", "rand_affine": "RandAffined"}
    assert steps[: len(own)] == own
    assert [t.__name__ for t in steps[len(own) :]] == [names[o] for o in order]
    evaluated = [type(t).__name__ for t in flat_transforms(datamodule.datasets["val"].transform)]
    assert "RandGaussianNoised" not in evaluated and "RandAffined" not in evaluated


def test_augmentations_keep_the_cache_key_and_the_copy_when_they_may_write_in_place(tmp_path):
    _, plain = _datamodule(tmp_path / "a", "data.cache=disk")
    _, augmented = _datamodule(tmp_path / "b", "data.cache=disk", "transforms=[rand_coarse_dropout]")
    plain.setup("fit")
    augmented.setup("fit")
    assert plain.datasets["train"].transform_hash == augmented.datasets["train"].transform_hash
    prefix = flat_transforms(plain.datasets["train"].transform)
    assert transform_fingerprint(prefix[:3]) == transform_fingerprint(
        flat_transforms(augmented.datasets["train"].transform)[:3]
    )
    steps = flat_transforms(augmented.datasets["train"].transform)
    assert type(steps[-1]).__name__ == "RandCoarseDropoutd"
    assert copy_cache_needed(steps)


def test_train_with_two_augmentations_fast_dev_run(tmp_path):
    cfg = compose(["transforms=[rand_gaussian_noise,rand_affine]", "debug=fast_dev_run", *QUIET], tmp_path)
    metrics = run.train(cfg)
    assert metrics["train/loss"] > 0
    assert 0.0 <= metrics["val/dice"] <= 1.0


def test_a_transform_that_is_not_a_dictionary_transform_is_refused():
    with pytest.raises(TypeError, match=r"transforms\.noise: got monai\..*RandGaussianNoise, which is not"):
        check_augmentations({"noise": RandGaussianNoise()})
    with pytest.raises(TypeError, match=r"transforms\.1: .*MapTransform"):
        check_augmentations([RandGaussianNoised(keys="image"), torch.nn.Identity()])
    with pytest.raises(TypeError, match="mapping name -> transform or a list, got int"):
        check_augmentations(3)
    assert list(check_augmentations({"a": RandGaussianNoised(keys="image"), "b": None})) == ["a"]


def test_a_non_map_transform_from_the_config_is_refused_before_training(tmp_path):
    cfg = compose(
        [
            "transforms=[rand_gaussian_noise]",
            "transforms.rand_gaussian_noise._target_=monai.transforms.RandGaussianNoise",
            "~transforms.rand_gaussian_noise.keys",
        ],
        tmp_path,
    )
    with pytest.raises(
        TypeError, match=r"transforms\.rand_gaussian_noise: .*not a MONAI dictionary transform"
    ):
        run.build(cfg)


def test_classification_refuses_spatial_augmentations_and_takes_intensity_ones(tmp_path):
    _, datamodule = _datamodule(
        tmp_path / "a", "+experiment=ucsd_covid", "transforms=[rand_affine]", small=False
    )
    with pytest.raises(ValueError, match=r"transforms\.rand_affine transforms keys \['label'\].*intensity"):
        datamodule.setup("fit")
    _, datamodule = _datamodule(
        tmp_path / "b", "+experiment=ucsd_covid", "transforms=[rand_gaussian_noise]", small=False
    )
    datamodule.setup("fit")
    assert type(flat_transforms(datamodule.datasets["train"].transform)[-1]).__name__ == "RandGaussianNoised"


def test_with_slice_axis_the_augmentations_run_on_the_2d_slices(tmp_path):
    sliced = ["data.slice_axis=2", "data.patch_size=[32,32]", "net=unet2d"]
    _, datamodule = _datamodule(tmp_path, *sliced, "transforms=[rand_affine,rand_gaussian_noise]")
    datamodule.setup("fit")
    steps = flat_transforms(datamodule.datasets["train"].transform)
    assert [type(t).__name__ for t in steps[-2:]] == ["RandAffined", "RandGaussianNoised"]
    steps[-2].set_random_state(seed=0)
    steps[-2].prob = 1.0
    sample = datamodule.datasets["train"][0]
    sample = sample[0] if isinstance(sample, list) else sample
    assert sample["image"].shape[1:] == (32, 32) and sample["label"].shape[1:] == (32, 32)
