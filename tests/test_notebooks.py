"""The notebooks in notebooks/: each runs top to bottom on synthetic data, and none is committed with outputs.

Each notebook is executed by nbclient in its own temporary working directory, with EISEN_DATA_DIR
and EISEN_LOG_DIR pointing into it, on a kernel that runs this interpreter (so the package under
test, and the ``eisen`` script next to it, are the ones used).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
STRIP_SCRIPT = REPO / "notebooks" / "strip_outputs.py"
CELL_TIMEOUT_S = 240


def test_notebooks_exist():
    names = {path.name for path in NOTEBOOKS}
    expected = {
        "01_quickstart.ipynb",
        "02_your_own_data.ipynb",
        "03_subclass_a_task.ipynb",
        "04_tensorboard_summaries.ipynb",
        "05_sweeps.ipynb",
        "06_export_predict_serve.ipynb",
        "07_builder.ipynb",
    }
    assert expected <= names, f"missing notebooks: {sorted(expected - names)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_has_no_outputs(path: Path):
    notebook = json.loads(path.read_text())
    dirty = [
        index
        for index, cell in enumerate(notebook["cells"])
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} keep outputs; run `make notebooks-clean` before committing"


def test_strip_script_removes_outputs(tmp_path: Path):
    notebook = json.loads(NOTEBOOKS[0].read_text())
    code = next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hello\n"]}]
    code["execution_count"] = 3
    notebook["metadata"]["widgets"] = {"state": {}}
    dirty = tmp_path / "dirty.ipynb"
    dirty.write_text(json.dumps(notebook, indent=1))

    result = subprocess.run([sys.executable, str(STRIP_SCRIPT), str(dirty)], capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    cleaned = json.loads(dirty.read_text())
    codes = [cell for cell in cleaned["cells"] if cell["cell_type"] == "code"]
    assert all(cell["outputs"] == [] and cell["execution_count"] is None for cell in codes)
    assert "widgets" not in cleaned["metadata"]
    assert [c["source"] for c in cleaned["cells"]] == [c["source"] for c in notebook["cells"]]
    assert "1 notebook(s) stripped" in result.stdout


def test_strip_script_check_mode_reports_dirty_notebook(tmp_path: Path):
    notebook = json.loads(NOTEBOOKS[0].read_text())
    next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")["execution_count"] = 1
    dirty = tmp_path / "dirty.ipynb"
    dirty.write_text(json.dumps(notebook))

    result = subprocess.run(
        [sys.executable, str(STRIP_SCRIPT), "--check", str(dirty)], capture_output=True, text=True
    )

    assert result.returncode == 1
    assert "dirty.ipynb" in result.stdout
    assert json.loads(dirty.read_text()) == notebook  # --check never writes


@pytest.fixture(scope="module")
def kernel_spec_manager(tmp_path_factory):
    """A kernelspec that runs this interpreter, whatever kernels the machine has installed."""
    try:
        from ipykernel.kernelspec import write_kernel_spec
        from jupyter_client.kernelspec import KernelSpecManager
    except ImportError as error:
        pytest.fail(
            f"executing the notebooks needs nbclient, nbformat and ipykernel ({error}): pip install -e .[dev]"
        )

    kernels = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(kernels / "eisen-test")
    spec = json.loads((kernels / "eisen-test" / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    return KernelSpecManager(kernel_dirs=[str(kernels)])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch, kernel_spec_manager):
    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(path, work / path.name)
    bin_dir = str(Path(sys.executable).parent)
    monkeypatch.setenv("EISEN_DATA_DIR", str(work / "data"))
    monkeypatch.setenv("EISEN_LOG_DIR", str(work / "outputs"))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("PYTHONWARNINGS", "ignore")
    notebook = nbformat.read(work / path.name, as_version=4)
    manager = KernelManager(kernel_name="eisen-test", kernel_spec_manager=kernel_spec_manager)
    client = NotebookClient(
        notebook,
        km=manager,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(work)}},
    )

    client.execute()

    errors = [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors
    executed = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in executed)
