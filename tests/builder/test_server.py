"""The builder's HTTP API: security checks, validate/save/import, and runs it starts and stops."""

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from builder_specs import REPO, demo_spec, node
from builder_support import builder_fixture, client_fixture, palette_fixture  # noqa: F401  (fixtures)

from eisen_lightning.builder.runs import train_command


def test_static_page_is_served_without_token_but_api_needs_it(client):
    status, page = client.call("GET", "/", token=False)
    assert status == 200 and b'<script type="module" src="app.js">' in page
    assert client.call("GET", "/app.js", token=False)[0] == 200
    status, body = client.json("GET", "/api/palette", token=False)
    assert status == 403 and "X-Builder-Token" in body["errors"][0]["msg"]
    assert client.call("GET", "/api/palette", headers={"X-Builder-Token": "wrong"}, token=False)[0] == 403
    assert (
        client.call("GET", "/../setup.py", token=False)[0] == 403
        or client.call("GET", "/../setup.py")[0] == 404
    )


def test_host_and_origin_are_checked(client):
    assert client.call("GET", "/", headers={"Host": "attacker.example:80"})[0] == 403
    assert client.call("GET", "/api/palette", headers={"Origin": "http://attacker.example"})[0] == 403
    port = client.server.server_address[1]
    assert client.call("GET", "/api/palette", headers={"Origin": f"http://localhost:{port}"})[0] == 200


def test_body_must_be_json(client):
    status, _ = client.call("POST", "/api/validate", headers={"Content-Type": "text/plain"})
    assert status == 400


def test_palette_endpoint(client):
    status, palette = client.json("GET", "/api/palette")
    assert status == 200
    assert {g["name"] for g in palette["groups"]} >= {"data", "net", "loss", "task", "callbacks", "trainer"}
    assert palette["config_dir"] == str(client.server.config_dir)


def test_validate_reports_errors_and_save_writes_only_in_the_config_dir(client, palette):
    body = demo_spec(palette, "api_demo")
    node(body, "trainer")["params"] = {"max_epochs": "ten"}
    status, out = client.json("POST", "/api/validate", body)
    assert (
        status == 422 and out["errors"][0]["node"] == "trainer" and out["errors"][0]["field"] == "max_epochs"
    )
    node(body, "trainer")["params"] = {"max_epochs": 2}
    status, out = client.json("POST", "/api/save", body)
    assert status == 200, out
    path = client.server.config_dir / "experiment" / "api_demo.yaml"
    assert out["path"] == str(path) and path.read_text() == out["yaml"]
    assert out["command"] == f"python train.py --config-dir {client.server.config_dir} +experiment=api_demo"
    for name in ("../escape", "a/b", "demo"):
        status, out = client.json("POST", "/api/save", {**body, "name": name})
        assert status == 422 and out["errors"][0]["field"] == "name", out
    assert sorted(p.name for p in client.server.config_dir.rglob("*.yaml")) == ["api_demo.yaml"]


def test_import_lists_and_loads_experiments(client, palette):
    client.json("POST", "/api/save", demo_spec(palette, "listed"))
    status, out = client.json("GET", "/api/experiments")
    names = {e["name"]: e["saved"] for e in out["experiments"]}
    assert names["listed"] is True and names["decathlon"] is False
    status, spec = client.json("GET", "/api/experiments/decathlon")
    assert status == 200 and node(spec, "data")["option"] == "decathlon"
    assert node(spec, "trainer")["params"]["max_epochs"] == 300
    assert client.json("GET", "/api/experiments/nope")[0] == 404


def test_run_needs_a_saved_experiment(client):
    status, out = client.json("POST", "/api/runs", {"name": "never_saved"})
    assert status == 400 and "save experiment" in out["errors"][0]["msg"]


def test_run_is_a_fixed_argument_list():
    command = train_command(REPO / "conf_x", "exp", REPO / "run", dry_run=True)
    assert command[:4] == [sys.executable, "-m", "eisen_lightning", "train"]
    assert command[4:7] == ["--config-dir", str(REPO / "conf_x"), "+experiment=exp"]
    assert command[-1] == "trainer.fast_dev_run=true"


def test_run_streams_progress_and_can_be_stopped(client, palette):
    body = demo_spec(palette, "stoppable")
    node(body, "trainer")["params"] = {"max_epochs": 50, "limit_train_batches": 2, "limit_val_batches": 1}
    assert client.json("POST", "/api/save", body)[0] == 200
    status, run = client.json("POST", "/api/runs", {"name": "stoppable"})
    assert status == 200, run
    assert client.json("POST", "/api/runs", {"name": "stoppable"})[0] == 409, "one run at a time"
    deadline = time.time() + 120
    progress = client.server.runs.runs[run["id"]].progress
    while time.time() < deadline and not any(p["event"] == "epoch" for p in progress()):
        time.sleep(0.5)
    assert any(p["event"] == "epoch" for p in progress()), "\n".join(
        client.server.runs.runs[run["id"]].lines[-30:]
    )
    assert client.json("DELETE", f"/api/runs/{run['id']}")[1] == {"stopped": True}
    status, raw = client.call("GET", f"/api/runs/{run['id']}/events")
    events = [json.loads(line) for line in raw.decode().splitlines()]
    assert events[0]["type"] == "start" and events[-1]["type"] == "end"
    assert events[-1]["stopped"] is True
    assert sum(e["type"] == "progress" and e["event"] == "epoch" for e in events) < 50, (
        "stopped before the end"
    )
    assert any(e["type"] == "progress" and "train/loss" in e["metrics"] for e in events)


def test_builder_verb_help(capsys):
    from eisen_lightning.cli import USAGE, main

    with pytest.raises(SystemExit) as exit_info:
        main(["builder", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--config-dir" in out and "--allow-target" in out and "127.0.0.1" in out
    assert "eisen builder" in USAGE


@pytest.mark.parametrize("name", ["index.html", "app.js", "style.css"])
def test_static_files_ship_in_the_installed_package(name, installed):
    assert (installed / "eisen_lightning" / "builder" / "static" / name).is_file()


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target"]
    subprocess.run([*pip, str(target), str(REPO)], check=True, capture_output=True, timeout=300)
    return target


def test_saved_experiment_runs_from_the_command_line(client, palette, tmp_path):
    """What the page prints, `python train.py --config-dir DIR +experiment=NAME`, trains the saved file."""
    body = demo_spec(palette, "cli_demo")
    node(body, "net")["params"] = {"channels": [8, 16, 32, 64]}
    status, out = client.json("POST", "/api/save", body)
    assert status == 200, out
    args = out["command"].split()[2:]
    assert args == ["--config-dir", str(client.server.config_dir), "+experiment=cli_demo"]
    overrides = ["debug=fast_dev_run", "hydra.run.dir=run", "trainer.enable_progress_bar=false"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args, *overrides],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    composed = (tmp_path / "run" / ".hydra" / "config.yaml").read_text()
    assert "- 8\n" in composed and (tmp_path / "run" / "metrics.json").is_file()


def test_eisen_builder_prints_a_tokened_url_on_localhost(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "eisen_lightning", "builder", "--config-dir", str(tmp_path / "mine")]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, text=True, env=env)
    try:
        lines = [process.stdout.readline() for _ in range(2)]
        assert str(tmp_path / "mine" / "experiment") in lines[0]
        url = lines[1].split("open ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:") and "/#token=" in url
        base, token = url.split("/#token=")
        request = urllib.request.Request(base + "/api/experiments", headers={"X-Builder-Token": token})
        with urllib.request.urlopen(request, timeout=60) as response:
            assert "decathlon" in response.read().decode()
    finally:
        process.terminate()
        process.wait(timeout=30)
