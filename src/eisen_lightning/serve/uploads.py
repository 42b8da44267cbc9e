"""Uploads of the model server: a NIfTI file (``.nii``/``.nii.gz``) or a zipped DICOM series.

The format is told by the bytes, not by a header the client may get wrong; archives are unpacked
with limits on their size and file count, and member names never leave the request's folder.
"""

import gzip
import io
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from eisen_lightning.predict_inputs import is_dicom_folder

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
#: ``sizeof_hdr`` of NIfTI-1 and NIfTI-2 headers (either byte order).
NIFTI_HEADER_SIZES = (348, 540)


class UploadError(ValueError):
    """A request the server refuses; ``status`` is the HTTP status to answer with.

    >>> UploadError(415, "not an image").status
    415
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    """Request limits of the model server.

    Attributes:
        max_request_bytes: Largest request body.
        max_unpacked_bytes: Largest total size of a gunzipped or unzipped upload.
        max_files: Most files in a zip.
    """

    max_request_bytes: int
    max_unpacked_bytes: int
    max_files: int

    def describe(self) -> dict[str, int]:
        """The limits in MB (and files), as the server reports them."""
        mb = 1024 * 1024
        return {
            "max_request_mb": self.max_request_bytes // mb,
            "max_unpacked_mb": self.max_unpacked_bytes // mb,
            "max_files": self.max_files,
        }


def save_upload(body: bytes, folder: Path, limits: Limits) -> Path:
    """Write an upload into ``folder`` as something the readers open: a ``.nii`` file or a DICOM folder.

    Args:
        body: The request body.
        folder: An empty folder of this request.
        limits: Size limits of unpacked data.

    Returns:
        The path to predict from.

    Raises:
        UploadError: 415 for an unknown format, 413 for an upload that unpacks too large, 400 for a
            broken archive or a zip without DICOM files.
    """
    if body.startswith(GZIP_MAGIC):
        return _write_nifti(_gunzip(body, limits.max_unpacked_bytes), folder)
    if body.startswith(ZIP_MAGIC):
        return _unzip_dicom(body, folder, limits)
    if _is_nifti(body):
        return _write_nifti(body, folder)
    raise UploadError(
        415,
        "POST a NIfTI image (.nii or .nii.gz) or a zip of one DICOM series as the request body; "
        f"got {len(body)} bytes starting with {body[:8].hex(' ') or 'nothing'}",
    )


def _is_nifti(data: bytes) -> bool:
    if len(data) < 4:
        return False
    return any(struct.unpack(f"{order}i", data[:4])[0] in NIFTI_HEADER_SIZES for order in "<>")


def _gunzip(body: bytes, max_bytes: int) -> bytes:
    """Inflate a gzip body, refusing one that inflates beyond ``max_bytes``."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error as err:
        raise UploadError(400, f"the gzip upload is broken ({err}); send a complete .nii.gz file") from err
    if len(data) > max_bytes:
        raise UploadError(413, f"the gzip upload inflates beyond the limit of {max_bytes // 2**20} MB")
    if not inflater.eof:
        raise UploadError(400, "the gzip upload is truncated; send the complete .nii.gz file")
    if inflater.unused_data.startswith(GZIP_MAGIC):  # several gzip members: let gzip join them
        data = gzip.decompress(body)
        if len(data) > max_bytes:
            raise UploadError(413, f"the gzip upload inflates beyond the limit of {max_bytes // 2**20} MB")
    if not _is_nifti(data):
        raise UploadError(415, "the gzip upload does not hold a NIfTI image (.nii.gz); send a NIfTI file")
    return data


def _write_nifti(data: bytes, folder: Path) -> Path:
    path = folder / "upload.nii"
    path.write_bytes(data)
    return path


def _unzip_dicom(body: bytes, folder: Path, limits: Limits) -> Path:
    try:
        archive = zipfile.ZipFile(io.BytesIO(body))
        members = [m for m in archive.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, ValueError) as err:
        raise UploadError(400, f"the zip upload is broken ({err}); send a complete zip file") from err
    if len(members) > limits.max_files:
        raise UploadError(413, f"the zip holds {len(members)} files; the limit is {limits.max_files}")
    total = sum(m.file_size for m in members)
    if total > limits.max_unpacked_bytes:
        raise UploadError(
            413,
            f"the zip unpacks to {total // 2**20} MB; the limit is {limits.max_unpacked_bytes // 2**20} MB",
        )
    target = folder / "dicom"
    target.mkdir()
    for index, member in enumerate(members):
        # flat, numbered names: nothing in the archive chooses where a file lands
        with archive.open(member) as source:
            data = source.read(limits.max_unpacked_bytes + 1)
        if len(data) > member.file_size:
            raise UploadError(400, f"zip member {member.filename!r} is larger than its header says")
        if data[128:132] == b"DICM" and Path(member.filename).name.upper() != "DICOMDIR":
            # other members (DICOMDIR, notes) are left out
            (target / f"{index:06d}.dcm").write_bytes(data)
    if not is_dicom_folder(target):
        raise UploadError(
            400, "the zip holds no DICOM file (no file with the DICM preamble); zip the files of one series"
        )
    return target
