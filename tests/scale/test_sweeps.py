"""Sweeps as users type them: a multirun whose jobs train with DDP, and an Optuna search."""

import json

import yaml

from conftest import QUIET, run_cli

FAST = ["debug=fast_dev_run", "data.num_training=8", "data.num_test=0", *QUIET]


def _job_dirs(root):
    return sorted(p for p in root.rglob("*") if p.is_dir() and p.name.isdigit())


def test_multirun_with_ddp_runs_each_job_once_in_its_own_directory(tmp_path):
    """Two jobs of two gloo processes each: every rank runs its own job only, in that job's directory."""
    args = ["-m", "trainer=ddp_cpu", "optimizer.lr=1e-3,3e-4", *FAST]
    result = run_cli(args, cwd=tmp_path, EISEN_LOG_DIR=str(tmp_path / "logs"), OMP_NUM_THREADS="1")
    assert result.returncode == 0
    sweeps = list((tmp_path / "logs" / "train" / "multiruns").iterdir())
    assert len(sweeps) == 1, f"one sweep directory, not one per rank: {sweeps}"
    jobs = sorted(p for p in sweeps[0].iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0", "1"]
    assert _job_dirs(tmp_path) == jobs, "no other run or job directory anywhere"
    for job, lr in zip(jobs, ["optimizer.lr=0.001", "optimizer.lr=0.0003"], strict=True):
        assert "val/dice" in json.loads((job / "metrics.json").read_text())
        assert lr in (job / ".hydra" / "overrides.yaml").read_text()
        assert (job / "train_ddp_process_1.log").is_file(), "the second rank ran in this job's directory"
    output = result.stdout + result.stderr
    assert output.count("Launching 2 jobs locally") == 1, "a rank started the sweep again"
    assert output.count("=== eisen-lightning training finished ===") == 2


def test_optuna_search_runs_trials_and_reports_the_best(tmp_path):
    args = ["hparams_search=optuna", "hydra.sweeper.n_trials=2", *FAST]
    result = run_cli(args, cwd=tmp_path, EISEN_LOG_DIR=str(tmp_path / "logs"), OMP_NUM_THREADS="1")
    assert result.returncode == 0
    assert [p.name for p in (tmp_path / "logs" / "train").iterdir()] == ["multiruns"], "no run directory"
    (sweep,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    values = [json.loads((job / "metrics.json").read_text())["val/dice"] for job in _job_dirs(sweep)]
    assert len(values) == 2 and _job_dirs(tmp_path) == _job_dirs(sweep)
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["name"] == "optuna" and set(best["best_params"]) == {"optimizer.lr", "loss"}
    assert best["best_value"] == max(values)


def test_a_sweep_job_command_line_names_the_verb_and_only_that_job():
    """What Lightning re-runs for the other ranks of a sweep job, from `eisen train -m ...`."""
    from omegaconf import OmegaConf

    from eisen_lightning.sweeps import job_argv as _job_argv

    original = [
        "/venv/bin/eisen",
        "train",
        "-m",
        "-cd",
        "my_conf",
        "optimizer.lr=1e-3,3e-4",
        "trainer=ddp_cpu",
    ]
    overrides = ["-m", "-cd", "my_conf", "optimizer.lr=1e-3,3e-4", "trainer=ddp_cpu", "hydra.run.dir='x'"]
    job = OmegaConf.create(
        {
            "overrides": {
                "task": ["optimizer.lr=0.0003", "trainer=ddp_cpu"],
                "hydra": ["hydra.sweep.dir=/s", "hydra.mode=MULTIRUN", "hydra.job.chdir=false"],
            }
        }
    )
    assert _job_argv(original, overrides, job) == [
        "/venv/bin/eisen",
        "train",
        "-cd",
        "my_conf",
        "optimizer.lr=0.0003",
        "trainer=ddp_cpu",
        "hydra.job.chdir=false",
        "hydra.mode=RUN",
    ]


def test_a_missing_plugin_fails_with_the_install_hint(monkeypatch, capsys):
    import importlib.util

    from eisen_lightning import cli

    real = importlib.util.find_spec

    def without_optuna(name, *args):
        return None if name.startswith("hydra_plugins.hydra_optuna_sweeper") else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_optuna)
    assert cli.main(["train", "hparams_search=optuna"]) == 2
    err = capsys.readouterr().err
    assert "hparams_search=optuna needs the hydra_optuna_sweeper plugin" in err
    assert "pip install eisen-lightning[optuna]" in err
