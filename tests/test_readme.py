"""The README's research example runs as written: a SegmentationTask subclass trained through the config."""

import re
import sys

from conftest import QUIET, REPO, compose
from eisen_lightning import SegmentationTask, run

README = (REPO / "README.md").read_text()


def _example() -> tuple[str, list[str]]:
    section = README.split("<!-- example: research-subclass -->", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    command = re.search(r"```bash\n(.*?)```", section, re.S).group(1).strip()
    overrides = command.split("python train.py", 1)[1].split()
    return code, overrides


def test_research_subclass_example_trains(tmp_path, monkeypatch):
    code, overrides = _example()
    package = tmp_path / "my_research"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tasks.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    short = [
        "data.num_training=10",
        "data.num_test=0",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
    ]
    cfg = compose([*overrides, *short, *QUIET], tmp_path)
    metrics = run.train(cfg)
    task_class = sys.modules["my_research.tasks"].VolumePriorTask
    assert issubclass(task_class, SegmentationTask)
    assert cfg.task._target_ == "my_research.tasks.VolumePriorTask" and cfg.task.volume_weight == 0.05
    assert metrics["train/volume_penalty"] >= 0.0
    assert "val/dice/lesion" in metrics
