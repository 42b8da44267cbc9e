"""The memory soak script runs (its smoke version); memory is measured by the full run, not here."""

from conftest import REPO, run_cli


def test_soak_script_prints_its_table(tmp_path):
    args = ["--epochs", "2", "--warmup", "0", "--window", "1", "--print-every", "1", "--num-training", "6"]
    result = run_cli([str(REPO / "benchmarks" / "soak.py"), *args], tmp_path, OMP_NUM_THREADS="1")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    rows = [line for line in lines if line.startswith("| 0 |") or line.startswith("| 1 |")]
    assert len(rows) == 2 and all(len(row.split("|")) == 6 for row in rows), result.stdout
    assert any(line.startswith("main + workers:") and "growth" in line for line in lines), result.stdout
    main_mib = float(rows[0].split("|")[2])
    workers = rows[0].split("|")[3].split("+")
    assert main_mib > 50 and len(workers) == 2, "the main process and its two workers are sampled"
