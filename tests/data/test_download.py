"""Downloads against an HTTP server on 127.0.0.1: verification, resuming, safe and atomic unpacking."""

import dataclasses
import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import QUIET, compose
from eisen_lightning import cli
from eisen_lightning.data import download as dl
from eisen_lightning.data import sources
from eisen_lightning.data.sources import NOT_PUBLISHED, RemoteFile, Source
from eisen_lightning.data.synthetic import write_decathlon_replica

TASK = "Task04_Hippocampus"


class Server:
    """Serves ``files`` by name with HTTP Range; records every request's path and Range header."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_first: set[str] = set()  # first answer stops half-way (an interrupted connection)
        self.ignore_range: set[str] = set()
        self.html: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def gets(self, name: str) -> list[str | None]:
        return [rng for path, rng in self.requests if path == name]

    def _handler(self) -> type:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                name = self.path.lstrip("/")
                server.requests.append((name, self.headers.get("Range")))
                if name not in server.files:
                    self.send_error(404)
                    return
                body = server.files[name]
                start = 0
                wanted = self.headers.get("Range")
                if wanted and name not in server.ignore_range:
                    start = int(wanted.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                kind = "text/html" if name in server.html else "application/octet-stream"
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if name in server.cut_first:
                    server.cut_first.discard(name)
                    self.wfile.write(body[start : start + (len(body) - start) // 2])
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        return Handler


@pytest.fixture
def server():
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture(scope="module")
def decathlon_tar(tmp_path_factory) -> bytes:
    """The replica of Task04_Hippocampus packed like the official tar (one top folder, macOS ``._`` files)."""
    src = tmp_path_factory.mktemp("replica")
    root = write_decathlon_replica(src, TASK)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(root, arcname=TASK)
        _add_bytes(tar, f"{TASK}/imagesTr/._hippocampus_001.nii.gz", b"\x00\x05\x16\x07 AppleDouble")
    return buffer.getvalue()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def hippocampus(server, decathlon_tar, monkeypatch):
    """The replica tar on the server, with its md5 standing in for the published one."""
    server.files[f"{TASK}.tar"] = decathlon_tar
    monkeypatch.setitem(sources.DECATHLON_MD5, TASK, md5(decathlon_tar))
    return server


def _leftovers(data_dir: Path) -> list[str]:
    """Anything a download leaves beside the data sets: staging folders, parts, archives."""
    staged = [p.name for p in data_dir.glob(".*.partial")]
    downloads = data_dir / dl.DOWNLOADS
    kept = [p.name for p in downloads.iterdir() if not p.name.endswith(".lock")] if downloads.is_dir() else []
    return staged + kept


def test_decathlon_task_is_downloaded_verified_and_unpacked(hippocampus, tmp_path):
    result = dl.download("decathlon", tmp_path, TASK, mirror=hippocampus.url)
    assert result.folder == tmp_path / TASK and result.downloaded
    assert (tmp_path / TASK / "dataset.json").is_file()
    assert (tmp_path / TASK / "imagesTr").is_dir()
    assert not list((tmp_path / TASK).rglob("._*")), "macOS metadata is left out"
    assert result.notes == [f"{TASK}.tar: md5 verified"]
    assert _leftovers(tmp_path) == [], "the archive and temporary folders are removed"
    again = dl.download("decathlon", tmp_path, TASK, mirror=hippocampus.url)
    assert not again.downloaded and len(hippocampus.gets(f"{TASK}.tar")) == 1


def test_download_dataset_uses_the_mirror_environment_variable(hippocampus, tmp_path, monkeypatch):
    monkeypatch.setenv(dl.MIRROR_ENV, hippocampus.url + "/")
    assert dl.download_dataset("decathlon", tmp_path, TASK) == tmp_path / TASK
    assert (tmp_path / TASK / "dataset.json").is_file()


def test_wrong_checksum_fails_and_leaves_nothing_that_looks_complete(server, decathlon_tar, tmp_path):
    server.files[f"{TASK}.tar"] = decathlon_tar  # the published md5 is MONAI's, not the replica's
    with pytest.raises(dl.ChecksumError, match=sources.DECATHLON_MD5[TASK]) as error:
        dl.download("decathlon", tmp_path, TASK, mirror=server.url)
    assert f"{TASK}.tar" in str(error.value) and md5(decathlon_tar) in str(error.value)
    assert not (tmp_path / TASK).exists()
    assert _leftovers(tmp_path) == [], "the damaged file is deleted so that the next run fetches it again"


def _test_source(
    monkeypatch, server, name: str, unpack: str, data: bytes, expected: tuple, checksum=True
) -> None:
    server.files[name] = data
    remote = RemoteFile(f"{server.url}/{name}", name, unpack, md5=md5(data) if checksum else NOT_PUBLISHED)
    source = Source("testset", "Test set", "http://example.org", "testset", (remote,), expected)
    monkeypatch.setitem(sources.SOURCES, "testset", source)
    monkeypatch.setitem(dl.SOURCES, "testset", source)


def test_truncated_archive_without_published_checksum_is_refused(
    server, decathlon_tar, tmp_path, monkeypatch
):
    truncated = decathlon_tar[: len(decathlon_tar) // 3]
    _test_source(monkeypatch, server, "set.tar", "tar", truncated, ("dataset.json",), checksum=False)
    with pytest.raises(dl.DownloadError, match="cannot be read as a tar archive"):
        dl.download("testset", tmp_path)
    assert not (tmp_path / "testset").exists()
    assert _leftovers(tmp_path) == [], "the unusable file is deleted so that the next run fetches it again"


def test_interrupted_download_resumes_with_a_range_request(hippocampus, tmp_path):
    name = f"{TASK}.tar"
    hippocampus.cut_first.add(name)
    result = dl.download("decathlon", tmp_path, TASK, mirror=hippocampus.url)
    assert result.notes == [f"{name}: md5 verified"]
    size = len(hippocampus.files[name])
    assert hippocampus.gets(name) == [None, f"bytes={size // 2}-"]


def test_a_part_file_from_an_earlier_run_is_resumed(hippocampus, decathlon_tar, tmp_path):
    part = tmp_path / dl.DOWNLOADS / f"{TASK}.tar.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(decathlon_tar[:1000])
    dl.download("decathlon", tmp_path, TASK, mirror=hippocampus.url)
    assert hippocampus.gets(f"{TASK}.tar") == ["bytes=1000-"]
    assert (tmp_path / TASK / "dataset.json").is_file()


def test_a_server_without_range_support_restarts_the_file(hippocampus, decathlon_tar, tmp_path):
    part = tmp_path / dl.DOWNLOADS / f"{TASK}.tar.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"garbage that must not stay in front")
    hippocampus.ignore_range.add(f"{TASK}.tar")
    result = dl.download("decathlon", tmp_path, TASK, mirror=hippocampus.url)
    assert result.notes == [f"{TASK}.tar: md5 verified"]


def _tar(*members: tarfile.TarInfo) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        _add_bytes(tar, "dataset.json", b"{}")
        for member in members:
            tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    return buffer.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, 1 if kind == tarfile.REGTYPE else 0
    return info


MALICIOUS = {
    "absolute path": lambda out: [_member(str(out / "evil.txt"))],
    "dot-dot path": lambda out: [_member(f"../{out.name}/evil.txt")],
    "escaping symlink": lambda out: [_member("link", tarfile.SYMTYPE, str(out)), _member("link/evil.txt")],
    "relative escaping symlink": lambda out: [_member("a/link", tarfile.SYMTYPE, "../../outside")],
    "escaping hard link": lambda out: [_member("hard", tarfile.LNKTYPE, "../outside/evil.txt")],
}


@pytest.mark.parametrize("case", MALICIOUS)
def test_archive_members_leading_outside_the_target_are_refused(case, server, tmp_path, monkeypatch):
    outside = tmp_path / "outside"
    outside.mkdir()
    data_dir = tmp_path / "data"
    _test_source(monkeypatch, server, "evil.tar", "tar", _tar(*MALICIOUS[case](outside)), ("dataset.json",))
    with pytest.raises(dl.UnsafeArchiveError, match="outside"):
        dl.download("testset", data_dir)
    assert list(outside.iterdir()) == [], "nothing was written outside"
    assert not (data_dir / "testset").exists() and _leftovers(data_dir) == []


def test_zip_members_leading_outside_are_refused(server, tmp_path, monkeypatch):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("CT_COVID/a.png", b"png")
        archive.writestr("../evil.txt", b"x")
    _test_source(monkeypatch, server, "evil.zip", "zip", buffer.getvalue(), ("CT_COVID",))
    with pytest.raises(dl.UnsafeArchiveError, match=r"\.\./evil.txt: a path with '\.\.'"):
        dl.download("testset", tmp_path / "data")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "data" / "testset").exists()


def test_zips_and_gz_files_are_unpacked_into_one_folder(server, tmp_path, monkeypatch):
    """The UCSD COVID-CT and PCam shapes: zips of class folders, single gzipped files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("CT_COVID/1.png", b"png")
        archive.writestr("__MACOSX/CT_COVID/._1.png", b"meta")
    _test_source(monkeypatch, server, "CT_COVID.zip", "zip", buffer.getvalue(), ("CT_COVID/1.png", "y.h5"))
    gz = gzip.compress(b"hdf5 bytes")
    server.files["y.h5.gz"] = gz
    source = sources.SOURCES["testset"]
    files = (
        *source.files,
        RemoteFile(f"{server.url}/y.h5.gz", "y.h5.gz", "gz", sha256=hashlib.sha256(gz).hexdigest()),
    )
    monkeypatch.setitem(dl.SOURCES, "testset", dataclasses.replace(source, files=files))
    result = dl.download("testset", tmp_path)
    assert (tmp_path / "testset" / "y.h5").read_bytes() == b"hdf5 bytes"
    assert sorted(p.name for p in (tmp_path / "testset").iterdir()) == ["CT_COVID", "y.h5"]
    assert result.notes == ["CT_COVID.zip: md5 verified", "y.h5.gz: sha256 verified"]


def test_a_truncated_gzip_file_without_published_checksum_is_refused(server, tmp_path, monkeypatch):
    """MedSeg's files publish no checksum: a cut ``.nii.gz`` is caught by its gzip end-of-stream check."""
    whole = gzip.compress(os.urandom(4096))
    _test_source(monkeypatch, server, "tr_im.nii.gz", "file", whole[:-100], ("tr_im.nii.gz",), checksum=False)
    with pytest.raises(dl.DownloadError, match="tr_im.nii.gz cannot be read as a gzip file"):
        dl.download("testset", tmp_path)
    assert not (tmp_path / "testset").exists() and _leftovers(tmp_path) == []


def test_a_web_page_instead_of_the_file_is_refused(server, tmp_path, monkeypatch):
    _test_source(
        monkeypatch, server, "tr_im.nii.gz", "file", b"<html>sign in</html>", ("tr_im.nii.gz",), False
    )
    server.html.add("tr_im.nii.gz")
    with pytest.raises(dl.DownloadError, match="web page instead of the file"):
        dl.download("testset", tmp_path)


def test_an_incomplete_existing_folder_is_never_overwritten(hippocampus, tmp_path):
    (tmp_path / TASK).mkdir()
    (tmp_path / TASK / "mine.txt").write_text("keep")
    with pytest.raises(dl.DownloadError, match=r"exists but lacks \['dataset.json'\]"):
        dl.download("decathlon", tmp_path, TASK, mirror=hippocampus.url)
    assert (tmp_path / TASK / "mine.txt").read_text() == "keep"
    assert hippocampus.requests == []


def test_concurrent_callers_wait_for_one_download(hippocampus, tmp_path):
    """Callers that start together (as DDP ranks do in prepare_data) wait for one download.

    Each thread opens the lock file itself, as separate processes do, and flock excludes them alike.
    """
    results: list[bool] = []

    def call() -> None:
        results.append(dl.download("decathlon", tmp_path, TASK, mirror=hippocampus.url).downloaded)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(results) == [False, False, True], "exactly one caller downloaded"
    assert len(hippocampus.gets(f"{TASK}.tar")) == 1


@pytest.mark.slow
def test_concurrent_processes_wait_for_one_download(hippocampus, tmp_path):
    code = (
        "import sys; from eisen_lightning.data import sources; "
        f"sources.DECATHLON_MD5['{TASK}'] = sys.argv[3]; "
        "from eisen_lightning.data.download import download; "
        f"print(download('decathlon', sys.argv[1], '{TASK}', mirror=sys.argv[2]).downloaded)"
    )
    command = [sys.executable, "-c", code, str(tmp_path), hippocampus.url, sources.DECATHLON_MD5[TASK]]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outputs = sorted(p.communicate(timeout=300)[0].split()[-1] for p in procs)
    assert outputs == ["False", "True"], "exactly one process downloaded"
    assert len(hippocampus.gets(f"{TASK}.tar")) == 1


def test_eisen_download_through_the_cli(hippocampus, tmp_path, capsys):
    args = ["download", "decathlon", TASK, "--data-dir", str(tmp_path), "--mirror", hippocampus.url]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert f"{TASK}.tar: md5 verified" in out and f"downloaded to {tmp_path / TASK}" in out
    assert cli.main(args) == 0 and f"already in {tmp_path / TASK}" in capsys.readouterr().out


def _eisen(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **env}
    command = [sys.executable, "-m", "eisen_lightning", "download", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, env=full_env)


def test_eisen_download_subprocess_reports_unpublished_checksums(server, tmp_path):
    """medseg_covid publishes no checksum: the files are kept and their sha256 shown as not verified."""
    for name in sources.MEDSEG_DRIVE_IDS:
        server.files[name] = gzip.compress(name.encode())
    result = _eisen(
        ["medseg_covid"], tmp_path, EISEN_DOWNLOAD_MIRROR=server.url, EISEN_DATA_DIR=str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    digest = hashlib.sha256(server.files["tr_im.nii.gz"]).hexdigest()
    assert (
        f"tr_im.nii.gz: checksum not published by the source; sha256 {digest} (not verified)" in result.stdout
    )
    assert sorted(p.name for p in (tmp_path / "medseg_covid").iterdir()) == ["tr_im.nii.gz", "tr_mask.nii.gz"]


def test_eisen_download_fails_on_a_checksum_mismatch(server, decathlon_tar, tmp_path, capsys, monkeypatch):
    server.files[f"{TASK}.tar"] = decathlon_tar  # not the published file: MONAI's md5 does not match
    monkeypatch.setenv(dl.MIRROR_ENV, server.url)
    assert cli.main(["download", "decathlon", TASK, "--data-dir", str(tmp_path)]) == 1
    assert f"md5 is {md5(decathlon_tar)}, expected {sources.DECATHLON_MD5[TASK]}" in capsys.readouterr().err
    assert not (tmp_path / TASK).exists()


def test_eisen_download_of_a_data_set_behind_a_login_says_where_to_get_and_put_it(tmp_path, capsys):
    assert cli.main(["download", "rsna_ich", "--data-dir", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert "https://www.kaggle.com/c/rsna-intracranial-hemorrhage-detection/data" in err
    assert str(tmp_path / "rsna_ich") in err


def test_eisen_download_list_and_bad_arguments(capsys, tmp_path):
    assert cli.main(["download", "--list"]) == 0
    listing = capsys.readouterr().out
    for name in [*sources.SOURCES, *sources.MANUAL_SOURCES]:
        assert f"  {name} " in listing
    assert cli.main(["download", "decathlon", "Task99_Nope", "--data-dir", str(tmp_path)]) == 1
    assert "decathlon needs a task, one of" in capsys.readouterr().err
    assert cli.main(["download", "nonsense", "--data-dir", str(tmp_path)]) == 1
    assert "unknown data set 'nonsense'" in capsys.readouterr().err


def test_decathlon_datamodule_downloads_a_missing_task_and_trains(hippocampus, tmp_path, monkeypatch):
    from eisen_lightning import run

    monkeypatch.setenv(dl.MIRROR_ENV, hippocampus.url)
    overrides = ["+experiment=decathlon", f"data.task={TASK}", "data.download=true", "debug=fast_dev_run"]
    cfg = compose([*overrides, "data.patch_size=[16,16,16]", "net=unet3d_small", *QUIET], tmp_path)
    metrics = run.train(cfg)
    assert (tmp_path / "data" / TASK / "dataset.json").is_file()
    assert cfg.dataset.num_classes == 3 and "val/dice" in metrics


def test_decathlon_datamodule_refuses_download_of_an_unknown_task(tmp_path):
    from eisen_lightning.data import DecathlonDataModule

    with pytest.raises(ValueError, match="data.download=true needs data.task to be one of"):
        DecathlonDataModule(str(tmp_path), task="Task11_Mine", download=True)
