"""Checksummed, resumable downloads of the public data sets, unpacked safely and atomically.

A file is fetched into ``<data_dir>/.downloads/<name>.part`` (an interrupted download resumes with
an HTTP ``Range`` request), verified against its published md5 or sha256, unpacked into a
temporary folder beside the target (archive members that would land outside it are refused) and
renamed into place: a failed download never leaves a folder that looks complete. A file lock
makes concurrent processes (DDP ranks, several jobs on one node) wait for one download.

>>> from eisen_lightning.data.download import download_dataset
>>> download_dataset("decathlon", "data", "Task04_Hippocampus")  # doctest: +SKIP
PosixPath('data/Task04_Hippocampus')
"""

import gzip
import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from eisen_lightning.data.sources import MANUAL_SOURCES, NOT_PUBLISHED, SOURCES, RemoteFile, Source
from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)

MIRROR_ENV = "EISEN_DOWNLOAD_MIRROR"
DOWNLOADS = ".downloads"
CHUNK = 1 << 20
ATTEMPTS = 3
TIMEOUT_S = 60.0
USER_AGENT = "eisen-lightning"
_KINDS = {"tar": "a tar archive", "zip": "a zip archive"}


class DownloadError(RuntimeError):
    """A download, its verification or its unpacking failed; the message says what to do."""


class ChecksumError(DownloadError):
    """A downloaded file does not match its published checksum."""


class UnsafeArchiveError(DownloadError):
    """An archive holds members that would be written outside the folder it is extracted into."""


class ManualDownloadRequired(DownloadError):
    """The data set is behind a login or a registration: the message says where to get it."""


@dataclass
class DownloadResult:
    """What :func:`download` did.

    Attributes:
        folder: The data set's folder.
        notes: One line per file: verified, or its sha256 where no checksum is published.
        downloaded: Whether anything was fetched (``False``: the folder was complete already).
    """

    folder: Path
    notes: list[str] = field(default_factory=list)
    downloaded: bool = False


def download_dataset(name: str, data_dir: str | Path, task: str | None = None) -> Path:
    """Download data set ``name`` into ``data_dir`` unless it is there already; return its folder.

    Args:
        name: A name of :data:`~eisen_lightning.data.sources.SOURCES` (``decathlon``, ``pcam``,
            ``ucsd_covid``, ``medseg_covid``).
        data_dir: The data directory (``paths.data_dir``).
        task: The task of a data set that has several (Decathlon: ``Task04_Hippocampus``).

    Raises:
        ManualDownloadRequired: For a data set behind a login (the message says where to get it).
        DownloadError: If fetching, verifying or unpacking fails.
        ValueError: For an unknown name or task.
    """
    return download(name, data_dir, task).folder


def download(
    name: str, data_dir: str | Path, task: str | None = None, mirror: str | None = None
) -> DownloadResult:
    """Like :func:`download_dataset`, with a mirror and a report of what was verified.

    Args:
        name: Data set name.
        data_dir: The data directory.
        task: The task, where the data set has several.
        mirror: Base URL serving every file by its name; defaults to ``$EISEN_DOWNLOAD_MIRROR``.
    """
    from filelock import FileLock

    source = find_source(name, data_dir)
    task = _checked_task(source, task)
    data_dir = Path(data_dir)
    target = data_dir / source.folder.format(task=task)
    if _is_complete(target, source):
        return DownloadResult(target)
    downloads = data_dir / DOWNLOADS
    try:
        downloads.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DownloadError(f"cannot write into the data directory {data_dir}: {error}") from error
    with FileLock(str(downloads / f"{target.name}.lock")):
        if _is_complete(target, source):  # another process finished it while this one waited
            return DownloadResult(target)
        _refuse_incomplete_folder(target, source)
        result = DownloadResult(target, downloaded=True)
        mirror = mirror or os.environ.get(MIRROR_ENV) or None
        fetched = [fetch_verified(f, downloads, mirror, result.notes) for f in source.files_for(task)]
        try:
            _install(fetched, source, task, target)
        finally:  # installed, or unusable: either way the next run must not reuse these files
            for path, _ in fetched:
                path.unlink(missing_ok=True)
    log.info("%s is ready in %s", source.title, target)
    return result


def find_source(name: str, data_dir: str | Path = "data") -> Source:
    """Return the source ``name``; a data set behind a login raises with where to get and put it."""
    if name in SOURCES:
        return SOURCES[name]
    if name in MANUAL_SOURCES:
        manual = MANUAL_SOURCES[name]
        raise ManualDownloadRequired(
            f"{manual.title} cannot be downloaded automatically (it needs a login or a registration).\n"
            f"  get it from: {manual.url}\n  then: {manual.how.format(root=Path(data_dir))}\n"
            "  (the data directory is paths.data_dir: ./data by default, or the environment variable "
            "EISEN_DATA_DIR, or --data-dir)"
        )
    known = sorted([*SOURCES, *MANUAL_SOURCES])
    raise ValueError(f"unknown data set {name!r}; choose one of {known} (eisen download --list)")


def _checked_task(source: Source, task: str | None) -> str | None:
    if not source.tasks:
        if task is not None:
            raise ValueError(f"{source.name} has no tasks; got task {task!r}: leave it out")
        return None
    if task not in source.tasks:
        raise ValueError(f"{source.name} needs a task, one of {list(source.tasks)}; got {task!r}")
    return task


def _is_complete(target: Path, source: Source) -> bool:
    return target.is_dir() and all((target / p).exists() for p in source.expected)


def _refuse_incomplete_folder(target: Path, source: Source) -> None:
    if target.exists():
        missing = [p for p in source.expected if not (target / p).exists()]
        raise DownloadError(
            f"{target} exists but lacks {missing}: it is not a complete {source.title} folder. "
            "Move it aside or delete it, then download again (existing files are never overwritten)."
        )


def fetch_verified(remote: RemoteFile, downloads: Path, mirror: str | None, notes: list[str]) -> tuple:
    """Download ``remote`` into ``downloads`` (resuming a ``.part``), verify it, return ``(path, remote)``.

    Raises:
        ChecksumError: If the file does not match its published checksum (the file is deleted).
    """
    url = f"{mirror.rstrip('/')}/{remote.name}" if mirror else remote.url
    dest = downloads / remote.name
    part = dest.with_name(dest.name + ".part")
    if not dest.is_file():
        _fetch_resuming(url, part)
        os.replace(part, dest)
    notes.append(verify_checksum(dest, remote, url))
    return dest, remote


def _fetch_resuming(url: str, part: Path) -> None:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            _http_get(url, part)
            return
        except (OSError, http.client.HTTPException) as error:
            if isinstance(error, urllib.error.HTTPError) or attempt == ATTEMPTS:
                raise DownloadError(_failure_message(url, part, error)) from error
            log.warning("download of %s interrupted (%s); resuming (attempt %d)", url, error, attempt + 1)


def _failure_message(url: str, part: Path, error: BaseException) -> str:
    kept = f"; the {part.stat().st_size} bytes received are kept in {part}" if part.is_file() else ""
    return (
        f"downloading {url} failed: {error}{kept}. Run the same command again to resume, "
        f"or set {MIRROR_ENV} to a mirror that serves the same files."
    )


def _http_get(url: str, part: Path) -> None:
    """Append ``url``'s bytes to ``part``, from its current size on (HTTP ``Range``)."""
    start = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": USER_AGENT, **({"Range": f"bytes={start}-"} if start else {})}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        if error.code == 416 and start:  # the part is complete already; the checksum decides
            return
        raise
    with response:
        if start and response.status != 206:
            log.info("%s does not resume downloads; starting over", url)
            start = 0
        _refuse_html(url, response.headers.get("Content-Type", ""))
        length = response.headers.get("Content-Length")
        total = start + int(length) if length else None
        log.info("downloading %s (%s bytes, from byte %d) into %s", url, total or "unknown", start, part)
        _copy(response, part, start, total)
    if total is not None and part.stat().st_size < total:
        raise urllib.error.ContentTooShortError(
            f"connection closed after {part.stat().st_size} of {total} bytes", None
        )


def _refuse_html(url: str, content_type: str) -> None:
    if content_type.startswith("text/html"):
        raise DownloadError(
            f"{url} answered with a web page instead of the file (a login, quota or confirmation "
            "page). Download the file in a browser and put it where `eisen download --list` says."
        )


def _copy(response, part: Path, start: int, total: int | None) -> None:
    from tqdm import tqdm

    name = part.name.removesuffix(".part")[:40]
    bar = tqdm(
        total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
        file=sys.stderr, mininterval=1.0, disable=not sys.stderr.isatty(),
    )  # fmt: skip
    with open(part, "ab" if start else "wb") as out, bar:
        while chunk := response.read(CHUNK):
            out.write(chunk)
            bar.update(len(chunk))


def verify_checksum(path: Path, remote: RemoteFile, url: str) -> str:
    """Check ``path`` against ``remote``'s published checksums; return a line for the report.

    Raises:
        ChecksumError: On a mismatch; the file is deleted so that the next run downloads it again.
    """
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            md5.update(chunk)
            sha256.update(chunk)
    got = {"md5": md5.hexdigest(), "sha256": sha256.hexdigest()}
    expected = {"md5": remote.md5, "sha256": remote.sha256}
    for kind, value in expected.items():
        if value != NOT_PUBLISHED and value.lower() != got[kind]:
            path.unlink(missing_ok=True)
            raise ChecksumError(
                f"{remote.name} from {url}: {kind} is {got[kind]}, expected {value}. The file is "
                "damaged or not the published one; it was deleted: run the same command again."
            )
    if not remote.verified:
        return f"{remote.name}: checksum not published by the source; sha256 {got['sha256']} (not verified)"
    kind = "md5" if remote.md5 != NOT_PUBLISHED else "sha256"
    return f"{remote.name}: {kind} verified"


def _install(fetched: list, source: Source, task: str | None, target: Path) -> None:
    """Unpack every file into a temporary folder beside ``target``, check it, rename it into place."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        for path, remote in fetched:
            unpack(path, remote.unpack, staging)
        root = staging / source.archive_root.format(task=task)
        missing = [p for p in source.expected if not (root / p).exists()]
        if missing:
            raise DownloadError(
                f"the downloaded files of {source.title} do not hold {missing} under "
                f"{source.archive_root.format(task=task)}/: the layout has changed or the files are wrong"
            )
        os.replace(root, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def unpack(path: Path, kind: str, staging: Path) -> None:
    """Unpack ``path`` into ``staging``: ``tar``/``zip`` extracted, ``gz`` decompressed, ``file`` moved.

    macOS metadata (``__MACOSX/``, ``._*`` files) is left out.

    Raises:
        UnsafeArchiveError: If a member has an absolute path or ``..``, is a link leading outside
            ``staging``, or is a device; nothing is extracted then.
        DownloadError: If the file cannot be read as ``kind``.
    """
    try:
        if kind == "tar":
            _extract_tar(path, staging)
        elif kind == "zip":
            _extract_zip(path, staging)
        elif kind == "gz":
            with gzip.open(path, "rb") as src, open(staging / path.name[: -len(".gz")], "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
        elif kind == "file":
            if path.name.endswith(".gz"):  # a truncated gzip file fails its end-of-stream check here
                with gzip.open(path, "rb") as src:
                    while src.read(CHUNK):
                        pass
            os.replace(path, staging / path.name)
        else:
            raise ValueError(f"unpack kind must be tar, zip, gz or file, got {kind!r}")
    except (tarfile.TarError, zipfile.BadZipFile, gzip.BadGzipFile, EOFError, OSError) as error:
        raise DownloadError(
            f"{path.name} cannot be read as {_KINDS.get(kind, 'a gzip file')} ({error}): it is damaged "
            "or truncated. It was deleted: run the same command again to download it again."
        ) from error


def _extract_tar(path: Path, staging: Path) -> None:
    with tarfile.open(path) as tar:
        members = tar.getmembers()
        _refuse_unsafe(path, [p for m in members if (p := _tar_problem(m))])
        wanted = [m for m in members if not _is_macos_metadata(m.name)]
        tar.extractall(staging, members=wanted, filter="data")  # the data filter as a second guard


def _extract_zip(path: Path, staging: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        problems = [f"{i.filename}: {p}" for i in infos if (p := _path_problem(i.filename))]
        problems += [
            f"{i.filename}: a symbolic link" for i in infos if (i.external_attr >> 16) & 0o170000 == 0o120000
        ]
        _refuse_unsafe(path, problems)
        archive.extractall(staging, members=[i for i in infos if not _is_macos_metadata(i.filename)])


def _refuse_unsafe(path: Path, problems: list[str]) -> None:
    if problems:
        listed = "\n  ".join(problems[:20])
        raise UnsafeArchiveError(
            f"{path} was not extracted: {len(problems)} member(s) would be written outside the "
            f"data folder:\n  {listed}\nThe file is not the published archive; it was deleted."
        )


def _path_problem(name: str) -> str | None:
    parts = PurePosixPath(name.replace("\\", "/"))
    if parts.is_absolute() or (parts.parts and parts.parts[0].endswith(":")):
        return "an absolute path"
    if ".." in parts.parts:
        return "a path with '..'"
    return None


def _tar_problem(member: tarfile.TarInfo) -> str | None:
    problem = _path_problem(member.name)
    if problem:
        return f"{member.name}: {problem}"
    if member.isdev() or member.isfifo():
        return f"{member.name}: a device or pipe"
    if member.issym() or member.islnk():
        link = PurePosixPath(member.linkname)
        base = PurePosixPath(member.name).parent if member.issym() else PurePosixPath()
        if link.is_absolute() or not _stays_inside(base / link):
            return f"{member.name}: a link to {member.linkname}, outside the archive"
    return None


def _stays_inside(path: PurePosixPath) -> bool:
    normal = os.path.normpath(str(path))
    return normal != ".." and not normal.startswith(("../", "/"))


def _is_macos_metadata(name: str) -> bool:
    return name.startswith("__MACOSX/") or PurePosixPath(name).name.startswith("._")
