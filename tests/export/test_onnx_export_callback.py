"""The ONNX export callback: exports on improvement only, with history, and refuses what it cannot watch."""

import math
from types import SimpleNamespace

import onnxruntime as ort
import pytest
import torch
from export_shared import trained_run

from eisen_lightning.callbacks import OnnxExport
from eisen_lightning.export import PipelineSpec


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, demo_data):
    return trained_run(tmp_path_factory, demo_data)


def test_every_improvement_is_exported_and_kept_in_the_history(run_dir):
    exports = run_dir / "exports"
    history = sorted((exports / "history").glob("*.onnx"))
    assert history, "the first validation is always an improvement"
    specs = [PipelineSpec.load(p.with_name(p.name.removesuffix(".onnx") + ".pipeline.json")) for p in history]
    values = [s.export["monitor"]["value"] for s in specs]
    epochs = [s.export["source"]["epoch"] for s in specs]
    assert values == sorted(values) and len(set(values)) == len(values), "strictly improving val/dice"
    assert epochs == sorted(epochs) and all(s.export["monitor"]["key"] == "val/dice" for s in specs)
    assert history[-1].read_bytes() == (exports / "model.onnx").read_bytes(), "model.onnx is the best"
    for spec in specs:
        assert max(spec.export["parity"]["max_abs_diff"].values()) <= 1e-4
        assert spec.label_names == ["background", "organ", "lesion"]
        assert spec.inference["patch_size"] == [32, 32, 32] and spec.spacing == [2.0, 2.0, 2.0]


def test_the_export_holds_the_best_checkpoints_weights(run_dir):
    from eisen_lightning.export import OnnxModel

    checkpoint = torch.load(run_dir / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    model = OnnxModel(run_dir / "exports" / "model.onnx", threads=1)
    assert model.spec.export["source"]["epoch"] == checkpoint["epoch"]
    assert isinstance(model.session, ort.InferenceSession)


@pytest.mark.parametrize(
    ("mode", "values", "exported"),
    [("max", [0.1, 0.3, 0.2, 0.4], [0.1, 0.3, 0.4]), ("min", [0.5, 0.6, 0.4, math.nan, 0.4], [0.5, 0.4])],
)
def test_improvement_follows_the_mode(mode, values, exported):
    callback = OnnxExport(monitor="val/loss", mode=mode)
    taken = []
    for value in values:
        if callback.improves(value):
            callback.best_score = value
            taken.append(value)
    assert taken == exported
    restored = OnnxExport(monitor="val/loss", mode=mode)
    restored.load_state_dict(callback.state_dict())
    assert restored.best_score == callback.best_score
    other = OnnxExport(monitor="val/dice", mode=mode)
    other.load_state_dict(callback.state_dict())  # another metric's best score is not taken
    assert math.isinf(other.best_score)


def test_an_unlogged_monitor_is_named_with_the_logged_ones():
    callback = OnnxExport(monitor="val/dise")
    trainer = SimpleNamespace(
        sanity_checking=False, fast_dev_run=False, callback_metrics={"val/dice": torch.tensor(0.5)}
    )
    with pytest.raises(KeyError, match=r"monitor='val/dise' was not logged; logged metrics: \['val/dice'\]"):
        callback.on_validation_end(trainer, None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "best"}, "mode must be one of"),
        ({"filename": "model.pt"}, "ending in .onnx"),
        ({"tolerance": 0}, "tolerance must be > 0"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OnnxExport(**kwargs)
