"""The commands exactly as users type them, in subprocesses: the demo, a sweep, DDP, help, a plain install."""

import json
import os
import subprocess
import sys

import pytest

from conftest import QUIET, REPO, compose, run_cli
from eisen_lightning import run
from eisen_lightning.data.synthetic import write_decathlon_replica

SMALL_DECATHLON = [
    "data.patch_size=[32,32,32]",
    "trainer.max_epochs=1",
    "trainer.check_val_every_n_epoch=1",
    "trainer.limit_train_batches=2",
    "data.num_workers=0",
    *QUIET,
]


def test_demo_end_to_end_reaches_the_dice_bar(tmp_path):
    """`python train.py` as typed: generate the demo task, train, print the summary."""
    result = run_cli([f"hydra.run.dir={tmp_path / 'run'}", *QUIET], cwd=tmp_path)
    assert result.returncode == 0
    assert (tmp_path / "data" / "Task00_Demo" / "dataset.json").is_file(), "generated into ./data by default"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["val/dice"] >= 0.80, metrics
    assert min(metrics["val/dice/organ"], metrics["val/dice/lesion"]) >= 0.6, metrics
    out = result.stdout
    for expected in (
        "val mean Dice",
        "organ",
        "lesion",
        str(tmp_path / "run"),
        "best.ckpt",
        "tensorboard --logdir",
    ):
        assert expected in out, expected


def test_multirun_sweep_gives_one_run_directory_per_job(tmp_path):
    write_decathlon_replica(tmp_path / "data", "Task09_Spleen")
    args = [
        "-m",
        "+experiment=decathlon",
        "net=unet3d",
        "optimizer.lr=1e-3,3e-4",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    result = run_cli([*args, *SMALL_DECATHLON], cwd=tmp_path)
    assert result.returncode == 0
    jobs = sorted(p for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0", "1"]
    lrs = []
    for job in jobs:
        assert "val/dice/spleen" in json.loads((job / "metrics.json").read_text())
        assert (job / "splits.json").is_file() and (job / "checkpoints" / "last.ckpt").is_file()
        lrs += [o for o in (job / ".hydra" / "overrides.yaml").read_text().split() if "optimizer.lr" in o]
    assert lrs == ["optimizer.lr=0.001", "optimizer.lr=0.0003"]


def test_ddp_on_cpu_with_two_processes(tmp_path):
    """Two gloo processes train; validation scores each case once (3 cases over 2 processes)."""
    args = [
        "trainer=ddp_cpu",
        "trainer.max_epochs=1",
        "data.num_training=16",
        "data.num_test=0",
        f"hydra.run.dir={tmp_path / 'run'}",
        *QUIET,
    ]
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0
    run_dir = tmp_path / "run"
    assert (run_dir / "train_ddp_process_1.log").is_file(), "a second process ran"
    assert len(json.loads((run_dir / "splits.json").read_text())["val"]) == 3
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert result.stdout.count("=== eisen-lightning training finished ===") == 1, (
        "summary printed on rank zero only"
    )
    single = compose([f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", "data.num_training=16", *QUIET],
                     tmp_path / "eval", config_name="eval")  # fmt: skip
    single.paths.data_dir = str(tmp_path / "data")
    alone = run.evaluate(single)
    for key in ("val/dice/organ", "val/dice/lesion"):
        assert metrics[key] == pytest.approx(alone[key], abs=1e-5), key


def test_eisen_help_and_unknown_verb(tmp_path):
    eisen = [sys.executable, "-m", "eisen_lightning"]
    helped = subprocess.run([*eisen, "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert helped.returncode == 0 and "train" in helped.stdout and "eval" in helped.stdout
    wrong = subprocess.run([*eisen, "trian"], capture_output=True, text=True, cwd=tmp_path)
    assert wrong.returncode == 2 and "unknown verb 'trian'" in wrong.stderr
    groups = subprocess.run([*eisen, "train", "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert groups.returncode == 0
    options = {
        line.split(":")[0]: set(line.split(":")[1].replace(" ", "").split(","))
        for line in groups.stdout.split("== Config ==")[0].splitlines()
        if ":" in line and not line.startswith(" ")
    }
    assert {"unet3d", "unet3d_small"} <= options["net"] and {"decathlon", "demo"} <= options["experiment"]
    assert {"demo", "demo2d", "decathlon"} <= options["data"]


@pytest.mark.parametrize("command", [["--help"], ["download", "--list"]])
def test_output_into_a_closed_pipe_ends_without_a_traceback(command, tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-m", "eisen_lightning", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    child.stdout.close()  # as `| head -0` does before the command writes
    stderr = child.stderr.read().decode()
    assert child.wait(timeout=60) == 1 and "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr


def test_bad_override_names_the_key(tmp_path):
    result = run_cli(["optimizer.lrr=1e-3"], cwd=tmp_path)
    assert result.returncode != 0
    assert "optimizer.lrr" in result.stderr


def test_non_editable_install_runs_from_another_directory(tmp_path):
    """`pip install .` (no editable link to the checkout) still finds conf/ and runs an experiment."""
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target"]
    subprocess.run([*pip, str(target), str(REPO)], check=True, capture_output=True, timeout=300)
    assert (target / "eisen_lightning" / "conf" / "experiment" / "decathlon.yaml").is_file()
    elsewhere = tmp_path / "elsewhere"
    write_decathlon_replica(elsewhere / "data", "Task09_Spleen")
    env = {**os.environ, "PYTHONPATH": str(target), "PYTHONWARNINGS": "ignore"}
    code = (
        "import sys, eisen_lightning; from eisen_lightning.cli import main; "
        "print(eisen_lightning.__file__); sys.exit(main())"
    )
    args = [
        "train",
        "+experiment=decathlon",
        "debug=fast_dev_run",
        "data.patch_size=[32,32,32]",
        "hydra.run.dir=run",
    ]
    result = subprocess.run(
        [sys.executable, "-c", code, *args, *QUIET],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith(str(target)), "the installed copy ran, not the checkout"
    assert (elsewhere / "run" / "metrics.json").is_file()


@pytest.mark.parametrize("verb", ["train", "eval"])
def test_verbs_accept_hydra_help(verb, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "eisen_lightning", verb, "--cfg", "job", "ckpt_path=x"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0
    assert f"task_name: {verb}" in result.stdout
