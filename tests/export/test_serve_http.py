"""`eisen serve` through real HTTP on loopback: masks in the upload's geometry, clear 4xx, still serving."""

import gzip
import http.client
import io
import json
import subprocess
import sys
import threading
import zipfile
from functools import partial

import nibabel as nib
import numpy as np
import pytest
import torch
from export_shared import IntensityIsLabel, sitk_series
from monai.inferers import SlidingWindowInferer
from monai.losses import DiceLoss
from omegaconf import OmegaConf

from eisen_lightning.data import DemoDataModule
from eisen_lightning.export import export_task
from eisen_lightning.io import load
from eisen_lightning.serve import make_server
from eisen_lightning.tasks import SegmentationTask

LABELS = ["background", "organ", "lesion"]


@pytest.fixture(scope="module")
def label_file(demo_data):
    return demo_data / "Task00_Demo" / "labelsTr" / "demo_0.nii.gz"


@pytest.fixture(scope="module")
def model(tmp_path_factory, demo_data, label_file):
    """An exported model that maps a label image onto itself, with the demo's pipeline (no resampling)."""
    datamodule = DemoDataModule(str(demo_data), patch_size=[32, 32, 32], spacing=None, normalization="none")
    datamodule.prepare_data()
    inferer = SlidingWindowInferer([32, 32, 32], sw_batch_size=2, overlap=0.5, mode="gaussian")
    task = SegmentationTask(
        IntensityIsLabel(), DiceLoss(), partial(torch.optim.SGD, lr=0.1), 3, LABELS, inferer=inferer
    )
    path = tmp_path_factory.mktemp("served") / "model.onnx"
    return export_task(task.eval(), datamodule, str(label_file), path).model_path


@pytest.fixture(scope="module")
def server(model):
    settings = {"model": str(model), "host": "127.0.0.1", "port": 0, "threads": 1, "device": "cpu"}
    limits = {"max_request_mb": 1, "max_unpacked_mb": 8, "max_files": 100, "request_timeout_s": 30}
    server = make_server(OmegaConf.create({**settings, **limits}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def request(server, method, path, body=None, headers=None):
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _label_map(data: bytes, tmp_path):
    path = tmp_path / "answer.nii.gz"
    path.write_bytes(data)
    return nib.load(path)


def test_info_describes_inputs_outputs_labels_and_limits(server):
    status, headers, body = request(server, "GET", "/info")
    assert status == 200 and headers["Content-Type"] == "application/json"
    info = json.loads(body)
    assert info["output"]["labels"] == {"0": "background", "1": "organ", "2": "lesion"}
    assert info["input"]["channels"] == 1 and info["input"]["orientation"] == "RAS"
    assert info["inference"]["patch_size"] == [32, 32, 32] and info["limits"]["max_request_mb"] == 1
    assert "POST /predict" in info["endpoints"]
    assert request(server, "GET", "/health")[:1] == (200,)


@pytest.mark.parametrize("compressed", [True, False])
def test_a_nifti_upload_gets_its_mask_back_in_place(server, label_file, tmp_path, compressed):
    body = label_file.read_bytes() if compressed else gzip.decompress(label_file.read_bytes())
    status, headers, answer = request(server, "POST", "/predict", body)
    assert status == 200 and headers["Content-Type"] == "application/gzip"
    mask, source = _label_map(answer, tmp_path), nib.load(label_file)
    assert mask.shape == source.shape and np.allclose(mask.affine, source.affine, atol=1e-5)
    assert np.array_equal(np.asarray(mask.dataobj), np.asarray(source.dataobj))


def test_a_zipped_dicom_series_gets_its_mask_back_in_place(server, label_file, tmp_path):
    series = tmp_path / "series"
    sitk_series(label_file, series)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(series.iterdir()):
            zipped.write(path, f"patient/study/{path.name}")
        zipped.writestr("README.txt", "not a DICOM file")
    status, _, answer = request(server, "POST", "/predict", archive.getvalue())
    assert status == 200, answer[:500]
    mask, read = _label_map(answer, tmp_path), load(str(series))
    assert mask.shape == tuple(read.shape[1:])
    assert np.allclose(mask.affine, np.asarray(read.affine), atol=1e-4)
    assert np.array_equal(np.asarray(mask.dataobj), np.asarray(nib.load(label_file).dataobj))


def _zip(files: dict[str, bytes]) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, data in files.items():
            zipped.writestr(name, data)
    return archive.getvalue()


BAD = [
    ("text", b"hello, server", 415, "POST a NIfTI image"),
    ("gzip of text", gzip.compress(b"hello"), 415, "does not hold a NIfTI image"),
    ("truncated gzip", "TRUNCATED", 400, "truncated"),
    ("header only", "HEADER", 400, "cannot be segmented: cannot read upload.nii"),
    ("zip without DICOM", _zip({"notes.txt": b"hi"}), 400, "holds no DICOM file"),
    ("zip bomb", _zip({"zeros.dcm": bytes(9 * 2**20)}), 413, "limit is 8 MB"),
    ("too large", bytes(2 * 2**20), 413, "limit is 1 MB"),
    ("empty", b"", 400, "body is empty"),
]


@pytest.mark.parametrize(("body", "status", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_uploads_get_a_clear_4xx_and_the_server_keeps_serving(server, label_file, body, status, message):
    nifti = gzip.decompress(label_file.read_bytes())
    compressed = label_file.read_bytes()
    body = {"TRUNCATED": compressed[: len(compressed) // 2], "HEADER": nifti[:352]}.get(body, body)
    got, headers, answer = request(server, "POST", "/predict", body)
    assert got == status and headers["Content-Type"] == "application/json"
    error = json.loads(answer)
    assert message in error["error"] and error["status"] == status
    assert "eisen-serve-" not in error["error"], "no server-side temporary paths in messages"
    assert request(server, "POST", "/predict", label_file.read_bytes())[0] == 200


def test_requests_the_server_does_not_take(server):
    chunked = request(server, "POST", "/predict", iter([b"abc"]), {"Transfer-Encoding": "chunked"})
    assert chunked[0] == 411 and b"Content-Length" in chunked[2]
    assert request(server, "POST", "/segment", b"x")[0] == 404
    assert request(server, "GET", "/predict")[0] == 404
    assert request(server, "PUT", "/predict", b"x")[0] == 501
    assert request(server, "GET", "/health")[0] == 200


def test_eisen_serve_command_answers_on_loopback(model, tmp_path):
    command = [sys.executable, "-m", "eisen_lightning", "serve", f"model={model}", "port=0", "threads=1"]
    process = subprocess.Popen(
        [*command, "hydra.run.dir=run"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = ""
        while "serving" not in line and process.poll() is None:
            line = process.stdout.readline()
        assert "http://127.0.0.1:" in line, f"no serving line; exit status {process.poll()}"
        port = int(line.split("http://127.0.0.1:")[1].split()[0])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/info")
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["output"]["labels"]["2"] == "lesion"
        connection.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
