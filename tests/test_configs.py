"""Every option of every conf/ group composes and instantiates; a new YAML is covered with no new test."""

import pytest
import torch
from hydra.utils import get_class, instantiate

from conftest import CONF, compose

GROUPS_WITHOUT_OBJECTS = {"hydra", "paths", "debug", "experiment", "hparams_search"}
DATASET = [
    "dataset.in_channels=1",
    "dataset.num_classes=3",
    "dataset.label_names=[background,organ,lesion]",
    "dataset.spatial_dims=3",
]


def _options():
    for group in sorted(p for p in CONF.iterdir() if p.is_dir() and not p.name.startswith("_")):
        for option in sorted(group.glob("*.yaml")):
            yield pytest.param(group.name, option.stem, id=f"{group.name}={option.stem}")


def _override(group: str, option: str) -> str:
    return f"+{group}={option}" if group == "experiment" else f"{group}={option}"


@pytest.mark.parametrize(("group", "option"), list(_options()))
def test_option_composes_and_instantiates(group, option, tmp_path):
    cfg = compose([_override(group, option), *DATASET], tmp_path)
    if group in GROUPS_WITHOUT_OBJECTS:
        assert cfg.paths.output_dir == str(tmp_path / "run")
        return
    node = cfg[group]
    if group in ("callbacks", "logger", "transforms"):
        objects = [instantiate(entry) for entry in (node or {}).values()]
        assert all(obj is not None for obj in objects)
        return
    if group == "trainer" and node.get("accelerator") == "gpu" and not torch.cuda.is_available():
        assert get_class(node._target_).__name__ == "Trainer"
        pytest.skip("this trainer option needs a GPU; composed and its target checked only")
    obj = instantiate(node)
    expected = get_class(node._target_)
    assert isinstance(obj, expected) or (callable(obj) and getattr(obj, "func", None) is expected)


def test_every_group_has_an_option():
    groups = [p for p in CONF.iterdir() if p.is_dir() and not p.name.startswith("_")]
    assert {g.name for g in groups} >= {"data", "net", "loss", "optimizer", "scheduler", "task", "trainer"}
    assert all(any(g.glob("*.yaml")) for g in groups)


def test_default_is_the_offline_demo(tmp_path):
    cfg = compose([], tmp_path)
    assert cfg.data._target_ == "eisen_lightning.data.DemoDataModule"
    assert cfg.data.data_dir == str(tmp_path / "data")
    assert cfg.optimized_metric == "val/dice"


def test_experiment_overrides_groups(tmp_path):
    cfg = compose(["+experiment=decathlon", "data.task=Task04_Hippocampus", "optimizer.lr=3e-4"], tmp_path)
    assert cfg.data._target_ == "eisen_lightning.data.DecathlonDataModule"
    assert cfg.data.task == "Task04_Hippocampus"
    assert cfg.net.channels == [16, 32, 64, 128, 256]
    assert cfg.optimizer.lr == pytest.approx(3e-4)


def test_eval_config_requires_a_checkpoint(tmp_path):
    from eisen_lightning import run

    cfg = compose([], tmp_path, config_name="eval")
    assert cfg.task_name == "eval"
    with pytest.raises(ValueError, match="ckpt_path is required"):
        run.evaluate(cfg)
    cfg.ckpt_path = str(tmp_path / "missing.ckpt")
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        run.evaluate(cfg)
    assert not (tmp_path / "data").exists(), "nothing is generated before the checkpoint is checked"


def test_every_sliceable_data_module_exposes_slice_axis():
    from omegaconf import OmegaConf

    for path in sorted((CONF / "data").glob("*.yaml")):
        node = OmegaConf.load(path)
        sliceable = getattr(get_class(node._target_), "sliceable", False)
        assert ("slice_axis" in node) == sliceable, (
            f"conf/data/{path.name}: {node._target_} has sliceable={sliceable}; its YAML must "
            f"{'list' if sliceable else 'not list'} slice_axis"
        )
