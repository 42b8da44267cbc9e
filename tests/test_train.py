"""Training, resuming, testing and evaluating through run.train / run.evaluate, in process."""

import json

import pytest
import torch
from hydra.utils import get_class

from conftest import CONF, QUIET, compose
from eisen_lightning import run

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def _write_data(cfg) -> None:
    get_class(cfg.data._target_).write_replica(**cfg.data)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_runs_fast_dev_run(experiment, tmp_path):
    cfg = compose([f"+experiment={experiment}", "debug=fast_dev_run", *QUIET], tmp_path)
    _write_data(cfg)
    metrics = run.train(cfg)
    assert metrics["train/loss"] > 0
    optimized = cfg.optimized_metric
    assert optimized in metrics, f"{experiment}: optimized_metric {optimized} not logged: {sorted(metrics)}"
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())[optimized] == pytest.approx(
        metrics[optimized], nan_ok=True
    )
    if optimized == "val/dice":
        assert 0.0 <= metrics["val/dice"] <= 1.0
        names = cfg.dataset.label_names[1:]
        assert {f"val/dice/{n}" for n in names} <= metrics.keys()


@pytest.mark.parametrize("task", ["Task01_BrainTumour", "Task04_Hippocampus"])
def test_decathlon_task_override_sets_channels_and_classes(task, tmp_path):
    cfg = compose(
        [
            "+experiment=decathlon",
            f"data.task={task}",
            "debug=fast_dev_run",
            "data.patch_size=[32,32,32]",
            "net=unet3d_small",
            *QUIET,
        ],
        tmp_path,
    )
    _write_data(cfg)
    metrics = run.train(cfg)
    expected = {"Task01_BrainTumour": (4, 4), "Task04_Hippocampus": (1, 3)}[task]
    assert (cfg.dataset.in_channels, cfg.dataset.num_classes) == expected
    assert len([k for k in metrics if k.startswith("val/dice/")]) == expected[1] - 1


def _demo(tmp_path, *overrides):
    base = [
        "data.num_training=12",
        "data.num_test=0",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=3",
        *QUIET,
    ]
    return compose([*base, *overrides], tmp_path)


def test_run_directory_contents(tmp_path):
    cfg = _demo(tmp_path, "test_after_fit=true")
    metrics = run.train(cfg)
    out = tmp_path / "run"
    assert {"splits.json", "metrics.json", "checkpoints", "tensorboard"} <= {p.name for p in out.iterdir()}
    assert (out / "checkpoints" / "best.ckpt").is_file() and (out / "checkpoints" / "last.ckpt").is_file()
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    splits = json.loads((out / "splits.json").read_text())
    assert sorted(splits["train"] + splits["val"] + splits["test"]) == sorted(f"demo_{i}" for i in range(12))
    saved = json.loads((out / "metrics.json").read_text())
    assert {
        "val/dice",
        "val/dice/organ",
        "val/dice/lesion",
        "val/dice_best",
        "test/dice",
        "test/dice/lesion",
    } <= set(saved)
    assert saved == pytest.approx(metrics)


def test_resume_from_last_checkpoint_continues_the_epoch_count(tmp_path):
    first = _demo(tmp_path / "a")
    run.train(first)
    last = tmp_path / "a" / "run" / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=False)
    assert (state["epoch"], state["global_step"]) == (1, 6)
    second = _demo(tmp_path / "b", f"ckpt_path={last}", "trainer.max_epochs=4")
    second.paths.data_dir = first.paths.data_dir
    run.train(second)
    resumed = torch.load(tmp_path / "b" / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert (resumed["epoch"], resumed["global_step"]) == (3, 12)
    assert resumed["optimizer_states"][0]["state"], "optimizer state carried over"


def test_eval_reuses_the_training_splits_and_writes_metrics(tmp_path):
    trained = _demo(tmp_path / "train", "data.seed=3")
    run.train(trained)
    best = tmp_path / "train" / "run" / "checkpoints" / "best.ckpt"
    cfg = compose(
        [f"ckpt_path={best}", "data.num_training=12", "data.num_test=0", *QUIET],
        tmp_path / "eval",
        config_name="eval",
    )
    cfg.paths.data_dir = trained.paths.data_dir
    metrics = run.evaluate(cfg)
    train_splits = json.loads((tmp_path / "train" / "run" / "splits.json").read_text())
    eval_splits = json.loads((tmp_path / "eval" / "run" / "splits.json").read_text())
    assert {k: eval_splits[k] for k in ("train", "val", "test")} == {
        k: train_splits[k] for k in ("train", "val", "test")
    }
    saved = json.loads((tmp_path / "eval" / "run" / "metrics.json").read_text())
    assert {"val/dice", "test/dice", "val/dice/organ", "test/dice/lesion"} <= set(saved)
    assert saved["test/dice"] == pytest.approx(metrics["test/dice"])


def test_missing_decathlon_data_fails_before_anything_is_built(tmp_path):
    from eisen_lightning.data.datasets import LayoutError

    cfg = compose(["+experiment=decathlon"], tmp_path)
    with pytest.raises(LayoutError, match="medicaldecathlon.com") as err:
        run.train(cfg)
    assert "Task09_Spleen" in str(err.value)
    assert not (tmp_path / "run").exists()


def test_scheduler_and_logger_can_be_removed(tmp_path):
    cfg = _demo(tmp_path, "~scheduler", "~logger", "trainer.max_epochs=1")
    metrics = run.train(cfg)
    assert "train/lr" not in metrics and not (tmp_path / "run" / "tensorboard").exists()
    assert "val/dice" in metrics


def test_patch_size_the_net_cannot_take_fails_before_training(tmp_path):
    cfg = compose(["+experiment=decathlon", "data.patch_size=[40,40,40]"], tmp_path)
    _write_data(cfg)
    with pytest.raises(ValueError, match=r"net=unet3d .* divisible by 16; data.patch_size is \[40, 40, 40\]"):
        run.train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()
