"""trainer.deterministic=true with a seed: two runs of the demo give the same metrics.json to the bit."""

from conftest import QUIET, compose
from eisen_lightning import run

SHORT = [
    "trainer.deterministic=true",
    "seed=0",
    "data.num_workers=2",
    "data.num_training=12",
    "data.num_test=0",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=3",
    "~logger",
    "callbacks=none",
    *QUIET,
]


def test_two_seeded_runs_with_loader_workers_give_identical_metrics(tmp_path):
    texts = []
    for name in ("first", "second"):
        cfg = compose(SHORT, tmp_path / name)
        cfg.paths.data_dir = str(tmp_path / "data")
        run.train(cfg)
        texts.append((tmp_path / name / "run" / "metrics.json").read_text())
    assert '"val/dice"' in texts[0] and '"train/loss"' in texts[0]
    assert texts[0] == texts[1]
