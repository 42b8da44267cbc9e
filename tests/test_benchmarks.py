"""Every benchmark script runs end to end at a tiny size and prints its table (no timing asserted)."""

import re
from pathlib import Path

import pytest

from conftest import REPO, run_cli

BENCHMARKS = REPO / "benchmarks"
NUMBER = r"\d+\.\d+"

#: script -> (smoke arguments, lines its output must contain)
SMOKE: dict[str, tuple[list[str], list[str]]] = {
    "data_pipeline.py": (
        ["--smoke"],
        [
            rf"^ours +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER}$",
            rf"^MONAI PersistentDataset +{NUMBER}",
            rf"^ratio cold, MONAI Dataset 2 workers / ours: {NUMBER}x",
            rf"^ratio warm, MONAI CacheDataset / ours: {NUMBER}x",
            rf"^memory ours: cache {NUMBER} MiB, RSS growth after filling -?{NUMBER} MiB",
            rf"^memory MONAI CacheDataset: cache {NUMBER} MiB",
        ],
    ),
    "inference.py": (
        ["--smoke"],
        [
            rf"^24x24x16 +whole +{NUMBER} +{NUMBER}$",
            rf"^24x24x16 +sliding window +{NUMBER}",
            rf"^24x24x16 +ratio whole / sum of parts: {NUMBER}",
            rf"^24x24x16 +ratio inferer / \d+ bare patches: {NUMBER}",
            r"^growth 24x24x16 +voxels +1\.00x +windows +1\.00x +predict time +1\.00x",
        ],
    ),
    "growth.py": (
        ["--smoke"],
        [rf"^ +{scale}x +\d+ +{NUMBER}" for scale in (1, 2, 4)]
        + [
            rf"^growth 4x: data {NUMBER}x, cold {NUMBER}, warm epoch {NUMBER}, cache {NUMBER} .+: -?{NUMBER}$"
        ],
    ),
    "train_step.py": (
        ["--size", "16", "--steps", "4", "--rounds", "1"],
        [rf"^round 0: ours +{NUMBER} ms +plain +{NUMBER} ms +ratio {NUMBER}"],
    ),
    "startup.py": (
        ["--repeats", "1"],
        [rf"^eisen --help +median +{NUMBER} s", r"^python train.py --cfg job +median"],
    ),
    "gpu_checks.py": (["--epochs", "1", "--only", "fp32"], [r"^\| fp32 \| ok"]),
}
#: Scripts whose smoke run lives beside the code they measure.
ELSEWHERE = {
    "io_readers.py": "tests/io/test_io_benchmark.py",
    "onnx_inference.py": "tests/export/test_onnx_benchmark.py",
    "soak.py": "tests/reliability/test_soak.py",
    "summaries.py": "tests/callbacks/test_summaries_benchmark.py",
}


def test_every_script_has_a_smoke_run():
    # modules whose name starts with "_" are helpers the scripts share, not benchmarks
    scripts = {path.name for path in BENCHMARKS.glob("*.py") if not path.name.startswith("_")}
    uncovered = scripts - set(SMOKE) - set(ELSEWHERE)
    assert not uncovered, f"benchmark scripts without a smoke run: {sorted(uncovered)}"
    for script, test in ELSEWHERE.items():
        if script in scripts:
            assert script in (REPO / test).read_text(), f"{test} does not run {script}"


@pytest.mark.parametrize("script", sorted(SMOKE))
def test_smoke_run_prints_its_table(script: str, tmp_path: Path):
    if not (BENCHMARKS / script).is_file():
        pytest.skip(f"benchmarks/{script} is not in this tree")
    args, patterns = SMOKE[script]
    result = run_cli([str(BENCHMARKS / script), *args], tmp_path, timeout=600, OMP_NUM_THREADS="1")
    assert result.returncode == 0, result.stderr[-3000:]
    missing = [p for p in patterns if not re.search(p, result.stdout, re.M)]
    assert not missing, f"{script} printed no line matching {missing}:\n{result.stdout[-3000:]}"
