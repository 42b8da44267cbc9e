"""TensorBoardSummaries as a callback: argument checks, when it draws, and when it does nothing."""

from types import SimpleNamespace

import pytest
import torch
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger
from pytorch_lightning.trainer.states import TrainerFn

from eisen_lightning.callbacks import TensorBoardSummaries


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("every_n_epochs", 0),
        ("every_n_epochs", 1.5),
        ("max_images", 0),
        ("worst_cases", -1),
        ("max_frames", 0),
        ("fps", 0),
        ("axes", [3]),
        ("axes", []),
        ("comparison_pairs", [["label"]]),
        ("comparison_pairs", [["label", 3]]),
        ("stages", ["training"]),
    ],
)
def test_bad_arguments_name_the_option_and_the_value(argument, value):
    with pytest.raises(
        ValueError, match=rf"callbacks\.summaries\.{argument} .*got {value!r}".replace("[", r"\[")
    ):
        TensorBoardSummaries(**{argument: value})


def test_defaults():
    callback = TensorBoardSummaries()
    assert callback.axes == [2], "one GIF axis: the last spatial one"
    assert callback.comparison_pairs == [("label", "pred")]
    assert (callback.max_images, callback.worst_cases) == (4, 3)


def _trainer(tmp_path, loggers, global_zero=True, epoch=0, fn=TrainerFn.FITTING, max_epochs=30):
    return SimpleNamespace(
        is_global_zero=global_zero,
        loggers=loggers,
        sanity_checking=False,
        current_epoch=epoch,
        max_epochs=max_epochs,
        global_step=7,
        state=SimpleNamespace(fn=fn),
    )


def _module():
    return SimpleNamespace(input_keys=["image"], target_key="label", num_classes=2, label_names=["bg", "fg"])


def _one_epoch(callback, trainer):
    module = _module()
    batch = {"image": torch.randn(2, 1, 8, 8), "label": torch.randint(0, 2, (2, 1, 8, 8)).float(), "meta": {}}
    outputs = {"loss": torch.tensor(0.3), "output": torch.randn(2, 2, 8, 8)}
    callback.setup(trainer, module, "fit")
    callback.on_validation_epoch_start(trainer, module)
    callback.on_validation_batch_end(trainer, module, outputs, batch, 0)
    started = dict(callback._records)
    callback.on_validation_epoch_end(trainer, module)
    return started


def test_without_a_tensorboard_logger_it_does_nothing(tmp_path):
    callback = TensorBoardSummaries()
    assert _one_epoch(callback, _trainer(tmp_path, [])) == {}
    assert _one_epoch(callback, _trainer(tmp_path, [CSVLogger(str(tmp_path))])) == {}
    assert not list(tmp_path.rglob("events.out.tfevents.*"))


def test_a_real_run_without_logger_trains_and_writes_nothing(tmp_path):
    from summaries_helpers import ShapesData, classification_task, trainer

    callback = TensorBoardSummaries()
    run = trainer(tmp_path, [callback], logger=False, max_epochs=1)
    run.fit(classification_task(), datamodule=ShapesData())
    assert callback._records == {}
    assert not list(tmp_path.rglob("events.out.tfevents.*"))


def test_on_any_rank_but_zero_it_does_nothing(tmp_path):
    logger = TensorBoardLogger(str(tmp_path), name="tb", version="")
    callback = TensorBoardSummaries()
    assert _one_epoch(callback, _trainer(tmp_path, [logger], global_zero=False)) == {}
    assert not list(tmp_path.rglob("events.out.tfevents.*"))


def test_on_rank_zero_with_tensorboard_it_writes(tmp_path):
    from summaries_helpers import events

    logger = TensorBoardLogger(str(tmp_path), name="tb", version="")
    started = _one_epoch(TensorBoardSummaries(), _trainer(tmp_path, [logger]))
    assert "val" in started
    accumulator = events(tmp_path / "tb")
    assert "val/loss/mean" in accumulator.Tags()["scalars"]
    assert accumulator.Scalars("val/loss/mean")[0].step == 7, "written at the trainer's global step"
    assert "val/compare/label_vs_pred" in accumulator.Tags()["images"]


@pytest.mark.parametrize(("val_every", "drawn"), [(1, [0, 10, 20, 29]), (3, [2, 11, 20, 29])])
def test_images_every_n_epochs_and_on_the_last(val_every, drawn, tmp_path):
    callback = TensorBoardSummaries(every_n_epochs=10)
    logger = TensorBoardLogger(str(tmp_path), name="tb", version="")
    seen = {"train": [], "val": []}
    for epoch in range(30):
        trainer = _trainer(tmp_path, [logger], epoch=epoch)
        callback.on_train_epoch_start(trainer, _module())
        seen["train"] += [epoch] if callback._records["train"].images else []
        if (epoch + 1) % val_every == 0:  # Lightning's check_val_every_n_epoch
            callback.on_validation_epoch_start(trainer, _module())
            seen["val"] += [epoch] if callback._records["val"].images else []
    assert seen == {"train": [0, 10, 20, 29], "val": drawn}


@pytest.mark.parametrize("fn", [TrainerFn.VALIDATING, TrainerFn.TESTING])
def test_evaluation_outside_fit_always_draws(fn, tmp_path):
    callback = TensorBoardSummaries(every_n_epochs=10)
    logger = TensorBoardLogger(str(tmp_path), name="tb", version="")
    for _ in range(2):
        callback.on_validation_epoch_start(_trainer(tmp_path, [logger], epoch=3, fn=fn), _module())
        assert callback._records["val"].images


def test_a_failing_batch_is_logged_and_never_stops_training(tmp_path, caplog):
    logger = TensorBoardLogger(str(tmp_path), name="tb", version="")
    callback = TensorBoardSummaries()
    trainer = _trainer(tmp_path, [logger])
    callback.on_validation_epoch_start(trainer, _module())
    batch = {"image": torch.randn(2, 1, 8, 8), "label": torch.zeros(2, 1, 8, 8), "meta": {}}
    wrong = {
        "loss": 1.0,
        "output": torch.randn(2, 2, 8, 8),
        "pred": torch.zeros(2, 1, 3, 3, dtype=torch.long),
    }
    callback.on_validation_batch_end(trainer, _module(), wrong, batch, 0)
    assert "val" not in callback._records
    assert "summaries" in caplog.text


def test_both_configs_hold_the_class_defaults():
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from conftest import CONF

    alone = OmegaConf.load(CONF / "callbacks" / "summaries.yaml").summaries
    assert OmegaConf.load(CONF / "callbacks" / "default.yaml").summaries == alone
    configured, default = instantiate(alone), TensorBoardSummaries()
    for name in (
        "every_n_epochs",
        "max_images",
        "axes",
        "comparison_pairs",
        "worst_cases",
        "drawing",
        "stages",
    ):
        assert getattr(configured, name) == getattr(default, name), name
