"""A training process killed by SIGKILL resumes in its own run directory and ends where it would have."""

import json
import random
import time

import numpy as np
import pytest
import torch
from resume_helpers import kill_mid_epoch, start, tiny_args

from conftest import run_cli
from eisen_lightning.checkpoint import ResumableRandomState, resume_run_dir
from eisen_lightning.data.synthetic import write_demo_task

EPOCHS = ["trainer.max_epochs=5", "data.num_training=16"]


def test_killed_run_resumes_to_the_metrics_of_an_uninterrupted_run(tmp_path):
    write_demo_task(tmp_path / "data" / "Task00_Demo", num_training=16, num_test=0, shape=(24, 24, 16))
    reference = start(tiny_args(tmp_path, *EPOCHS, f"hydra.run.dir={tmp_path / 'reference'}"), tmp_path)
    killed = start(tiny_args(tmp_path, *EPOCHS), tmp_path)  # into outputs/train/runs/<time>
    runs = tmp_path / "outputs" / "train" / "runs"
    try:
        while killed.poll() is None and not list(runs.glob("*/checkpoints")):
            time.sleep(0.1)
        run_dir = next(runs.iterdir())
        epoch = kill_mid_epoch(killed, run_dir / "checkpoints" / "last.ckpt", epochs_done=2)
    finally:
        killed.kill()
        output = reference.communicate(timeout=600)[0]
    assert killed.returncode == -9 and epoch < 4, "the run was not killed before its last epoch"
    assert not (run_dir / "metrics.json").exists()
    assert reference.returncode == 0, output[-3000:]
    splits = (run_dir / "splits.json").read_bytes()

    result = run_cli(tiny_args(tmp_path, *EPOCHS, "resume=true"), tmp_path, OMP_NUM_THREADS="1")

    assert result.returncode == 0
    assert "Restored all states" in result.stdout + result.stderr
    assert sorted(runs.iterdir()) == [run_dir], "the resumed run must write into the killed run's directory"
    assert (run_dir / "splits.json").read_bytes() == splits
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) == 2
    resumed = json.loads((run_dir / "metrics.json").read_text())
    assert resumed == json.loads((tmp_path / "reference" / "metrics.json").read_text())
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 4


def test_resume_without_an_earlier_run_fails_before_training(tmp_path):
    result = run_cli([f"paths.data_dir={tmp_path / 'data'}", "resume=true"], tmp_path)
    assert result.returncode == 2
    assert "resume=true: no earlier run with checkpoints/last.ckpt under" in result.stderr
    assert "start a new run without resume" in result.stderr
    assert not (tmp_path / "data").exists(), "nothing may be built before the error"


def test_resume_lookup_takes_the_newest_run_with_a_last_checkpoint(tmp_path):
    import os

    for name, mtime in (("a", 100), ("b", 300), ("c", 200)):
        last = tmp_path / name / "checkpoints" / "last.ckpt"
        last.parent.mkdir(parents=True)
        last.write_bytes(b"x")
        os.utime(last, (mtime, mtime))
    (tmp_path / "d" / "checkpoints").mkdir(parents=True)  # a newer run that never saved
    assert resume_run_dir(True, tmp_path) == tmp_path / "b"
    assert resume_run_dir(str(tmp_path / "c"), tmp_path) == tmp_path / "c"
    assert resume_run_dir(str(tmp_path / "a" / "checkpoints" / "last.ckpt"), tmp_path) == tmp_path / "a"
    with pytest.raises(
        FileNotFoundError, match=r"d/checkpoints/last.ckpt does not exist; give a run directory"
    ):
        resume_run_dir(str(tmp_path / "d"), tmp_path)


class _Holder:
    """Stands for the trainer: ``datamodule.datasets['train'].transform``."""

    def __init__(self, transform):
        self.datamodule = type(
            "DM", (), {"datasets": {"train": type("DS", (), {"transform": transform})()}}
        )()


def test_random_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    from monai.transforms import Compose, RandFlipd, RandGaussianNoised

    transform = Compose([RandFlipd("image", prob=0.5), RandGaussianNoised("image", prob=0.5)])
    transform.set_random_state(seed=3)
    callback = ResumableRandomState()
    callback.setup(_Holder(transform), None, "fit")

    def draw():
        return (
            torch.rand(3).tolist(),
            np.random.rand(3).tolist(),
            random.random(),
            [t.R.rand() for t in transform.transforms],
        )

    torch.save(callback.state_dict(), tmp_path / "state.pt")
    expected = draw()
    draw()  # the states move on
    callback.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    assert draw() == expected


@pytest.mark.parametrize("override", ["resume=true", "ckpt_path=last"])
def test_resume_and_ckpt_path_last_point_hydra_at_the_earlier_run(tmp_path, monkeypatch, override):
    from eisen_lightning.preflight import preflight as _preflight

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EISEN_LOG_DIR", raising=False)
    run_dir = tmp_path / "outputs" / "train" / "runs" / "2026-01-01_00-00-00"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"x")
    overrides = _preflight("train", [override])
    assert overrides[:1] == [override] and f"hydra.run.dir='{run_dir}'" in overrides
    assert "resume=true" in overrides and len(overrides) == 2 + (override != "resume=true")


def test_run_crashed_mid_epoch_resumes_to_the_same_metrics_in_process(tmp_path):
    """The fast variant of the SIGKILL test: a crash inside the second epoch, then ``resume``."""
    from resume_helpers import TINY, CrashMidEpoch

    from conftest import compose
    from eisen_lightning import run

    overrides = [*TINY, "trainer.max_epochs=3", "data.num_training=12"]
    reference = run.train(compose(overrides, tmp_path / "reference"))
    crash = ["+callbacks.stop._target_=resume_helpers.StopMidEpoch", "+callbacks.stop.epoch=1"]
    with pytest.raises(CrashMidEpoch):
        run.train(compose([*overrides, *crash], tmp_path / "crashed"))
    run_dir = tmp_path / "crashed" / "run"
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0
    resumed = run.train(compose([*overrides, "resume=true"], tmp_path / "crashed"))
    assert resumed == reference
    assert json.loads((run_dir / "metrics.json").read_text()) == reference
