"""The summaries benchmark runs (a tiny setting) and reports its ratio; timings are not asserted."""

import importlib.util
import re

from conftest import REPO


def test_benchmark_script_prints_a_ratio(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_summaries", REPO / "benchmarks" / "summaries.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    argv = ["--epochs", "2", "--repeats", "1", "--num-training", "6", "--limit-train-batches", "1"]
    bench.main([*argv, "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert re.search(r"ratio with/without: \d+\.\d+", out), out
    assert "median" in out
