"""Checkpoints are written atomically, load with weights_only, and a checkpoint of another net or data
set is explained instead of a shape traceback (eval, predict, resume)."""

import argparse
import errno

import pytest
import torch
from resume_helpers import TINY

from conftest import compose, run_cli
from eisen_lightning import run
from eisen_lightning.checkpoint import (
    AtomicCheckpointIO,
    CheckpointMismatchError,
    ResumableRandomState,
    atomic_torch_save,
    load_checkpoint,
)

MISMATCH = "the checkpoint's net has 3 output classes, this config's data set has 2"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """A real one-epoch demo run (3 classes): its run directory."""
    root = tmp_path_factory.mktemp("demo_run")
    overrides = [o for o in TINY if not o.startswith("callbacks.")]
    cfg = compose([*overrides, "trainer.max_epochs=1", "trainer.limit_train_batches=1"], root)
    metrics = run.train(cfg)
    assert "val/dice" in metrics
    return root


@pytest.fixture(scope="module")
def spleen(tmp_path_factory):
    """A Decathlon Task09_Spleen replica (1 channel, 2 classes) and the overrides that use it."""
    root = tmp_path_factory.mktemp("spleen")
    cfg = compose(["+experiment=decathlon"], root)
    get_class(cfg.data._target_).write_replica(**cfg.data)
    return root, [
        "+experiment=decathlon",
        "net=unet3d_small",
        "data.patch_size=[32,32,32]",
        "data.num_workers=0",
    ]


def get_class(path: str):
    from hydra.utils import get_class as hydra_get_class

    return hydra_get_class(path)


def test_training_checkpoints_load_with_weights_only(demo_run):
    for name in ("last.ckpt", "best.ckpt"):
        checkpoint = torch.load(demo_run / "run" / "checkpoints" / name, weights_only=True)
        states = [v for k, v in checkpoint["callbacks"].items() if k.startswith("ResumableRandomState")]
        assert len(states) == 1 and set(states[0]) >= {"torch", "numpy", "python", "transforms"}
        assert checkpoint["DemoDataModule"]["label_names"] == ["background", "organ", "lesion"]
    assert not list((demo_run / "run" / "checkpoints").glob(".*.tmp")), "no temporary file may be left"


def test_trainer_of_a_run_saves_atomically(tmp_path):
    cfg = compose([*TINY, "trainer.max_epochs=1"], tmp_path)
    _, _, trainer = run.build(cfg)
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    assert any(isinstance(c, ResumableRandomState) for c in trainer.callbacks)


def test_a_crash_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(4)}, "epoch": 1}, path)
    good = path.read_bytes()

    def write_half_then_fail(obj, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 half a zip archive")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", write_half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(4)}, "epoch": 2}, path)
    assert path.read_bytes() == good
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]
    assert load_checkpoint(path)["epoch"] == 1


def test_an_interrupt_while_saving_keeps_the_previous_file(tmp_path, monkeypatch):
    path = atomic_torch_save({"state_dict": {}, "epoch": 1}, tmp_path / "best.ckpt")
    monkeypatch.setattr(torch, "save", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        atomic_torch_save({"state_dict": {}, "epoch": 2}, path)
    assert torch.load(path, weights_only=True)["epoch"] == 1 and len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the checkpoint file is empty"),
        (b"not a zip file at all", "cannot be read as a checkpoint, it is truncated or corrupt"),
    ],
)
def test_unreadable_checkpoint_names_the_file_and_the_fix(tmp_path, content, message):
    path = tmp_path / "bad.ckpt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and "use another checkpoint" in str(info.value)


def test_truncated_checkpoint_is_refused_with_its_name(demo_run, tmp_path):
    raw = (demo_run / "run" / "checkpoints" / "last.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"cut.ckpt: cannot be read as a checkpoint, it is truncated"):
        load_checkpoint(tmp_path / "cut.ckpt")


def test_checkpoint_with_arbitrary_objects_is_refused(tmp_path):
    torch.save({"state_dict": {}, "payload": argparse.Namespace(code="anything")}, tmp_path / "odd.ckpt")
    with pytest.raises(ValueError, match="holds objects other than tensors and plain values"):
        load_checkpoint(tmp_path / "odd.ckpt")


def test_eval_of_another_data_sets_checkpoint_explains_the_mismatch(demo_run, spleen):
    root, overrides = spleen
    ckpt = demo_run / "run" / "checkpoints" / "best.ckpt"
    args = ["eval", *overrides, *TINY[:2], f"paths.data_dir={root / 'data'}", f"ckpt_path={ckpt}"]
    result = run_cli([str(_eisen()), *args], root)
    assert result.returncode == 1
    assert MISMATCH in result.stderr and "checkpoint shape (3," in result.stderr
    assert "use the same data set and net config as training" in result.stderr
    assert "Traceback" not in result.stderr


def _eisen():
    from conftest import REPO

    return REPO / "src" / "eisen_lightning" / "__main__.py"


def test_predict_with_another_data_sets_checkpoint_explains_the_mismatch(demo_run, spleen):
    from eisen_lightning.predict import predict

    root, overrides = spleen
    ckpt = demo_run / "run" / "checkpoints" / "best.ckpt"
    cfg = compose(
        [
            *overrides,
            f"ckpt_path={ckpt}",
            f"input={root / 'data' / 'Task09_Spleen' / 'imagesTr'}",
            f"output={root / 'out'}",
        ],
        root,
        "predict",
    )
    with pytest.raises(CheckpointMismatchError, match=MISMATCH):
        predict(cfg)
    assert not (root / "out").exists()


def test_training_from_another_data_sets_checkpoint_fails_before_fit(demo_run, spleen):
    root, overrides = spleen
    ckpt = demo_run / "run" / "checkpoints" / "last.ckpt"
    cfg = compose([*overrides, *TINY[:2], "trainer.max_epochs=1", f"ckpt_path={ckpt}"], root)
    with pytest.raises(CheckpointMismatchError, match=MISMATCH) as info:
        run.train(cfg)
    assert "net.model." in str(info.value) or "checkpoint shape" in str(info.value)
    assert not (root / "run" / "checkpoints").exists()


def test_checkpoint_of_another_net_says_so(demo_run, tmp_path):
    cfg = compose(
        [*TINY, "net=unet3d", f"ckpt_path={demo_run / 'run' / 'checkpoints' / 'last.ckpt'}"], tmp_path
    )
    with pytest.raises(CheckpointMismatchError, match="trained with another net|checkpoint shape"):
        run.train(cfg)
