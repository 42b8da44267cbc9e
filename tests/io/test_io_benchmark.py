"""The reading benchmark runs end to end (tiny size, one repeat) and prints a ratio per format."""

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "io_readers.py"


def test_benchmark_prints_ratios():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--size", "12", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ratios = re.findall(r"^(\S+)\s+ratio ours / .+: (\d+\.\d+) \(of the minima", result.stdout, re.M)
    assert [fmt for fmt, _ in ratios] == ["nii", "nii.gz", "mha", "nrrd", "dicom"]
    assert all(float(value) > 0 for _, value in ratios)
