"""The fast path of :class:`~eisen_lightning.io.SimpleITKReader` for uncompressed MetaImage and NRRD.

The voxel block of an uncompressed single-component file is read straight into a NumPy array with
one ``readinto``, which costs about half of ITK's own read of the same bytes (its buffer allocation,
pixel conversion and the Python wrapper). The geometry is ITK's: from ``ReadImageInformation``, or,
for a MetaImage header holding only the keys SimpleITK writes, parsed here by ITK's own rules (the
tests compare both on oblique 2D and 3D images). Anything this path does not recognise with
certainty (compression, vector pixels, unknown header keys, detached or listed data files with
offsets, a size that does not add up) returns ``None`` and goes through ITK's full read instead.
"""

from __future__ import annotations

import os

import numpy as np

# MetaImage element types with a fixed size (MET_LONG/MET_ULONG depend on the writer's platform).
_MET_TYPES = {
    "MET_UCHAR": "u1",
    "MET_CHAR": "i1",
    "MET_USHORT": "u2",
    "MET_SHORT": "i2",
    "MET_UINT": "u4",
    "MET_INT": "i4",
    "MET_ULONG_LONG": "u8",
    "MET_LONG_LONG": "i8",
    "MET_FLOAT": "f4",
    "MET_DOUBLE": "f8",
}
_NRRD_TYPES = {
    **dict.fromkeys(("uchar", "unsigned char", "uint8", "uint8_t"), "u1"),
    **dict.fromkeys(("signed char", "int8", "int8_t"), "i1"),
    **dict.fromkeys(("short", "short int", "signed short", "signed short int", "int16", "int16_t"), "i2"),
    **dict.fromkeys(("ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"), "u2"),
    **dict.fromkeys(("int", "signed int", "int32", "int32_t"), "i4"),
    **dict.fromkeys(("uint", "unsigned int", "uint32", "uint32_t"), "u4"),
    **dict.fromkeys(("longlong", "long long", "signed long long", "int64", "int64_t"), "i8"),
    **dict.fromkeys(("ulonglong", "unsigned long long", "uint64", "uint64_t"), "u8"),
    "float": "f4",
    "double": "f8",
}
_HEADER_LIMIT = 65536


class _Header:
    """Geometry of a MetaImage header, with the accessors of a SimpleITK image.

    ITK's MetaImageIO takes axis ``i``'s direction from row ``i`` of ``TransformMatrix``, so the
    direction matrix (axes as columns) is its transpose.
    """

    def __init__(self, fields: dict[str, str]):
        self.dim = int(fields["NDims"])
        self.size = tuple(int(v) for v in fields["DimSize"].split())
        self.spacing = tuple(float(v) for v in fields["ElementSpacing"].split())
        self.origin = tuple(float(v) for v in fields["Offset"].split())
        matrix = np.array([float(v) for v in fields["TransformMatrix"].split()]).reshape(self.dim, self.dim)
        self.direction = tuple(matrix.T.ravel())
        if not len(self.size) == len(self.spacing) == len(self.origin) == self.dim:
            raise ValueError("inconsistent header")

    def GetDimension(self) -> int:  # noqa: N802 - the accessor names of SimpleITK
        return self.dim

    def GetSize(self) -> tuple[int, ...]:  # noqa: N802
        return self.size

    def GetSpacing(self) -> tuple[float, ...]:  # noqa: N802
        return self.spacing

    def GetOrigin(self) -> tuple[float, ...]:  # noqa: N802
        return self.origin

    def GetDirection(self) -> tuple[float, ...]:  # noqa: N802
        return self.direction


# The MetaImage keys SimpleITK writes; a header with any other key gets its geometry from ITK.
_PLAIN_META_KEYS = {
    "ObjectType", "NDims", "BinaryData", "BinaryDataByteOrderMSB", "ElementByteOrderMSB",
    "CompressedData", "TransformMatrix", "Offset", "CenterOfRotation", "AnatomicalOrientation",
    "ElementSpacing", "DimSize", "ElementType", "ElementDataFile", "ElementNumberOfChannels",
}  # fmt: skip
_REQUIRED_META_KEYS = {"NDims", "TransformMatrix", "Offset", "ElementSpacing", "DimSize"}


def read_raw(path: str, fmt: str, reader) -> tuple[np.ndarray, object] | None:
    """The voxels of ``path`` as an ``x, y[, z]`` array and their geometry, or ``None`` for ITK's read.

    The geometry is a header object for a MetaImage whose header holds only the keys SimpleITK
    writes, else ``reader`` after ITK's ``ReadImageInformation``.

    Args:
        path: A ``.mha``, ``.mhd`` or ``.nrrd`` file.
        fmt: Its format name (``mha``, ``mhd``, ``nrrd``).
        reader: A SimpleITK ``ImageFileReader`` set to ``path`` and its ImageIO.
    """
    with open(path, "rb") as handle:
        head = handle.read(_HEADER_LIMIT)
    fields: dict[str, str] = {}
    layout = _metaimage(head, path, fields) if fmt in ("mha", "mhd") else _nrrd(head, path)
    if layout is None:
        return None
    geometry = _header(fields)
    if geometry is None:
        reader.ReadImageInformation()
        if reader.GetNumberOfComponents() != 1:
            return None
        geometry = reader
    if geometry.GetDimension() not in (2, 3):
        return None
    array = _read_block(*layout, tuple(int(n) for n in geometry.GetSize())[::-1])  # z, y, x
    return None if array is None else (array.transpose(tuple(range(array.ndim))[::-1]), geometry)


def _header(fields: dict[str, str]) -> _Header | None:
    if not fields or set(fields) - _PLAIN_META_KEYS or _REQUIRED_META_KEYS - set(fields):
        return None
    if fields.get("ObjectType", "Image") != "Image":
        return None
    try:
        return _Header(fields)
    except ValueError:
        return None


def _read_block(data_path: str, offset: int, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray | None:
    """Read the voxel block with one ``readinto``, if the file holds exactly that many bytes."""
    count = int(np.prod(shape))
    if os.path.getsize(data_path) != offset + count * dtype.itemsize:
        return None
    array = np.empty(shape, dtype=dtype)
    with open(data_path, "rb") as handle:
        handle.seek(offset)
        if handle.readinto(memoryview(array).cast("B")) != array.nbytes:
            return None
    return array if dtype.isnative else array.astype(dtype.newbyteorder("="))


def _metaimage(head: bytes, path: str, fields: dict[str, str]) -> tuple[str, int, np.dtype] | None:
    """(data file, offset, dtype) of an uncompressed MetaImage; its header's fields go into ``fields``."""
    position = 0
    while True:
        end = head.find(b"\n", position)
        if end < 0:
            return None
        key, sep, value = head[position:end].decode("latin-1").partition("=")
        if not sep:
            return None
        fields[key.strip()] = value.strip()
        position = end + 1
        if key.strip() == "ElementDataFile":
            break
    if fields.get("CompressedData", "False") != "False" or fields.get("BinaryData") != "True":
        return None
    kind = _MET_TYPES.get(fields.get("ElementType", ""))
    if kind is None or fields.get("ElementNumberOfChannels", "1") != "1":
        return None
    msb = fields.get("ElementByteOrderMSB", fields.get("BinaryDataByteOrderMSB", "False")) == "True"
    dtype = np.dtype(kind).newbyteorder(">" if msb else "<")
    name = fields["ElementDataFile"]
    if name == "LOCAL":
        return (path, position, dtype) if fields.get("HeaderSize") is None else None
    if fields.get("HeaderSize", "0") != "0" or " " in name or name.upper().startswith("LIST") or "%" in name:
        return None
    return (name if os.path.isabs(name) else os.path.join(os.path.dirname(path), name)), 0, dtype


def _nrrd(head: bytes, path: str) -> tuple[str, int, np.dtype] | None:
    """(data file, offset, dtype) of an attached, raw-encoded NRRD, from its ``field: value`` header."""
    end = head.find(b"\n\n")
    if not head.startswith(b"NRRD") or end < 0:
        return None
    fields = {}
    for line in head[:end].decode("latin-1").splitlines()[1:]:
        if line.startswith("#") or ":=" in line:
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    if fields.get("encoding") != "raw" or {"data file", "datafile", "line skip", "byte skip"} & set(fields):
        return None
    kind = _NRRD_TYPES.get(fields.get("type", ""))
    if kind is None:
        return None
    big = fields.get("endian", "little") == "big"
    return path, end + 2, np.dtype(kind).newbyteorder(">" if big else "<")
