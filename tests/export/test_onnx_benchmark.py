"""The ONNX inference benchmark runs (a tiny setting) and writes its tables; timings are not asserted."""

import importlib.util
import re

from conftest import REPO


def test_benchmark_writes_ratios_side_by_side(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_onnx", REPO / "benchmarks" / "onnx_inference.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    output = tmp_path / "onnx_inference.md"
    argv = ["--repeats", "1", "--batches", "1", "--threads", "1", "--case", "48", "48", "24"]
    bench.main([*argv, "--output", str(output)])
    text = output.read_text()
    assert "python benchmarks/onnx_inference.py --repeats 1" in text and "Machine: " in text
    assert re.search(r"\| 1 \| 1 \| torch eager \| [\d.]+ \| 1\.00 \|", text), text
    assert len(re.findall(r"\| 1 \| 1 \| onnxruntime .* \| [\d.]+ \| [\d.]+ \|", text)) == 3, text
    case = re.search(r"\| 1 \| onnxruntime \(eisen defaults\) \| [\d.]+ \| [\d.]+ \| ([\d.]+) \|", text)
    assert case and float(case.group(1)) >= 0.999, text
