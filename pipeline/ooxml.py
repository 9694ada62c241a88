"""Writing Office files safely: atomically (temp file + rename) and reproducibly (fixed zip timestamps)."""

from __future__ import annotations

import errno
import functools
import io
import os
import re
import struct
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

#: Every zip entry and document property gets this timestamp, so a re-run gives byte-identical files.
FIXED_ZIP_TIME = (2021, 9, 26, 0, 0, 0)  # the date of 国办公开办函〔2021〕30号
_FIXED_W3CDTF = "2021-09-26T00:00:00Z"
_CORE_TIMES = re.compile(rb"(<dcterms:(?:created|modified)\b[^>]*>)[^<]*(</dcterms:(?:created|modified)>)")


#: Temporary files are named ``.<start of the final name>.<8 random characters>.tmp`` (tempfile.mkstemp).
TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"^\..*\.[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX) + r"$")
_TEMP_PREFIX_BYTES = 60  # the temporary name stays short whatever the final name's length
#: Names of the files nianbao writes (workbooks, reports), in UTF-8 bytes (a Chinese character is 3): well under
#: the usual 255-byte limit, with room for the temporary name.
MAX_FILE_NAME_BYTES = 180


class OutputError(Exception):
    """An output that cannot be written — disk full, read-only, no permission, the folder busy — or a folder
    that must not be written to; the message is Chinese, names the path and says what to do (exit code 2)."""


#: errno values that mean "the output place cannot take the file" (not a bug of the program)
OUTPUT_ERRNOS = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EROFS, errno.EACCES,
                                      errno.EPERM) if e is not None)


def output_message(e: OSError, path: str | Path | None = None, *, writing: bool = True) -> str:
    """The Chinese message for an OSError of ``OUTPUT_ERRNOS`` met while writing ``path`` (default: e.filename;
    ``writing`` false: met somewhere in the run, reading or writing)."""
    where = e.filename if e.filename else path
    where = f" {where}" if where else ""
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        what = (f"磁盘空间不足（或超出磁盘配额），无法写入{where}：请清理该磁盘，或用 --output 指定其他磁盘上的输出目录后"
                "重新运行。")
    elif e.errno == errno.EROFS:
        what = (f"输出位置是只读的，无法写入{where}（只读的共享文件夹、光盘或写保护的U盘）：请用 --output 指定可以写入的"
                "输出目录后重新运行。")
    else:
        what = (f"没有权限{'写入' if writing else '访问'}{where}：请确认运行本程序的账户对该文件夹有读写权限"
                "（文件夹属性→安全/权限）、文件没有被设为只读，或用 --output 指定其他输出目录后重新运行。")
    return what + "已写完的文件完整保留，未写完的文件不会以正式文件名留下。"


def _umask() -> int:
    """The process umask, read without changing it where /proc allows (os.umask is process-wide)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() gives a new file; mkstemp's temporary files are 0600


def is_temp_name(name: str) -> bool:
    """True for the name of a temporary file written by ``atomic_write_bytes`` (never a final name)."""
    return bool(_TEMP_NAME.match(name))


def remove_temp_files(folder: str | Path, *, skip: tuple[str, ...] = ()) -> list[Path]:
    """Remove the temporary files an interrupted run left under ``folder`` (not under the sub-folders ``skip``)."""
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for p in sorted(folder.rglob(f"*{TEMP_SUFFIX}")):
        rel = p.relative_to(folder).parts
        if rel[0] in skip or not is_temp_name(p.name) or not p.is_file() or p.is_symlink():
            continue
        try:
            p.unlink()
            removed.append(p)
        except FileNotFoundError:
            pass
    return removed


def _temp_prefix(name: str) -> str:
    head = name.encode("utf-8")[:_TEMP_PREFIX_BYTES].decode("utf-8", "ignore")
    return f".{head}."


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and an atomic rename.

    A reader never sees a half-written file under the final name, and an interrupted run leaves at most a
    hidden ``.….tmp`` file (ignored by every reader of the output folder, removed by the next run). The file gets
    the mode a newly created file would (0666 minus the umask), not the temporary file's 0600.
    """
    path = Path(path)
    try:
        return _atomic_write(path, data)
    except OSError as e:  # disk full, read-only, no permission: said plainly, naming the file
        if e.errno in OUTPUT_ERRNOS:
            raise OutputError(output_message(e, path)) from e
        raise


def _atomic_write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.name), suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), _FILE_MODE)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:  # already gone; or the folder turned read-only: the original error is the one to say
            pass
        raise
    return path


_CHAR_REF = re.compile(rb"&#(?:([0-9]{1,7})|x([0-9A-Fa-f]{1,6}));")
_DECLARED = re.compile(rb"^\s*<\?xml[^>]*encoding=[\"']([A-Za-z0-9_-]+)[\"']")


def _literal(m: re.Match) -> bytes:
    cp = int(m.group(1)) if m.group(1) else int(m.group(2), 16)
    if cp < 0x80 or 0xD800 <= cp <= 0xDFFF or cp in (0xFFFE, 0xFFFF) or cp > 0x10FFFF:
        return m.group(0)  # markup characters, whitespace and anything XML cannot hold literally stay escaped
    return chr(cp).encode("utf-8")


def utf8_text(xml: bytes) -> bytes:
    """An XML part in UTF-8 with its non-ASCII character references written as the characters themselves: the
    same document. openpyxl's lxml writer escapes every Chinese character of a worksheet (三 → ``&#19977;``,
    7 bytes for 3): the parts are ~25% smaller and ~35% faster to parse. A part declaring another encoding is
    left as it is."""
    declared = _DECLARED.match(xml)
    if declared is not None and declared.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
        return xml
    return _CHAR_REF.sub(_literal, xml) if b"&#" in xml else xml


def normalise_zip(data: bytes) -> bytes:
    """Rewrite a zip (xlsx/docx) with fixed entry timestamps and attributes, keeping entry order and content
    (worksheets' character references as characters: ``utf8_text``)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            body = src.read(info.filename)
            if info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml"):
                body = utf8_text(body)
            if info.filename == "docProps/core.xml":  # openpyxl stamps "modified" with the time of saving
                body = _CORE_TIMES.sub(rb"\g<1>" + _FIXED_W3CDTF.encode() + rb"\g<2>", body)
            dst.writestr(fixed, body)
    return out.getvalue()


# ---- zipping members whose deflate streams are known -----------------------------------------------------------
#
# zipfile has no public way to write a member deflated earlier, and deflating ~1 MB of unchanged styles for every
# report costs more than rendering it. The archive normalise_zip writes is simple (APPNOTE.TXT: local headers,
# central directory, end record; no extra fields, data descriptors or zip64), so it is written here with struct
# and zlib; ``zip_layout_problem`` compares it with zipfile's on every interpreter, and zipfile writes it when they
# differ.

_DEFLATED = 8
_VERSION = 20  # zipfile's DEFAULT_VERSION: "version needed to extract" and "made by" for deflated members
_UTF8_NAME = 0x800
_CREATE_SYSTEM = 0 if sys.platform == "win32" else 3  # as zipfile.ZipInfo sets it
_EXTERNAL_ATTR = 0o644 << 16
_LIMIT = (1 << 31) - 1  # zipfile's ZIP64_LIMIT: beyond it (and beyond 65,535 members) zipfile writes zip64 records
_DOS_DATE = (FIXED_ZIP_TIME[0] - 1980) << 9 | FIXED_ZIP_TIME[1] << 5 | FIXED_ZIP_TIME[2]
_DOS_TIME = FIXED_ZIP_TIME[3] << 11 | FIXED_ZIP_TIME[4] << 5 | FIXED_ZIP_TIME[5] // 2


def _deflate(body: bytes) -> bytes:
    """The raw deflate stream zipfile writes for a ZIP_DEFLATED member (default level, no zlib header)."""
    c = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    return c.compress(body) + c.flush()


def _zipfile_members(members: Sequence[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, body in members:
            info = zipfile.ZipInfo(name, date_time=FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = _EXTERNAL_ATTR
            dst.writestr(info, body)
    return out.getvalue()


def _struct_members(members: Sequence[tuple[str, bytes]], cache: dict | None) -> bytes | None:
    """The archive laid out here, or None when it would need what this writer does not write (zip64)."""
    local: list[bytes] = []
    central: list[bytes] = []
    offset = 0
    for name, body in members:
        if zipfile.ZipInfo(name).filename != name:  # a name zipfile would change ("\0", os.sep)
            return None
        last = None if cache is None else cache.get(name)
        if last is not None and (last[0] is body or last[0] == body):
            stream, crc = last[1], last[2]
        else:
            stream, crc = _deflate(body), zlib.crc32(body)
            if cache is not None:
                cache[name] = (body, stream, crc)
        if len(body) * 1.05 > _LIMIT or len(stream) > _LIMIT or offset > _LIMIT:
            return None
        if name.isascii():
            raw, flags = name.encode("ascii"), 0
        else:
            raw, flags = name.encode("utf-8"), _UTF8_NAME
        sizes = (_DEFLATED, _DOS_TIME, _DOS_DATE, crc, len(stream), len(body), len(raw))
        local += (struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", _VERSION, 0, flags, *sizes, 0), raw, stream)
        central += (struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", _VERSION, _CREATE_SYSTEM, _VERSION, 0, flags,
                                *sizes, 0, 0, 0, 0, _EXTERNAL_ATTR, offset), raw)
        offset += 30 + len(raw) + len(stream)
    directory = b"".join(central)
    if len(members) > 0xFFFF or offset > _LIMIT or len(directory) > _LIMIT:
        return None
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(directory), offset, 0)
    return b"".join(local) + directory + end


@functools.cache
def zip_layout_problem() -> str:
    """'' when the archives written here are byte for byte zipfile's on this interpreter, else what differs."""
    sample = [("[Content_Types].xml", b"<Types/>" * 700), ("word/document.xml", bytes(range(256)) * 40),
              ("docProps/empty.xml", b""), ("word/media/图.png", b"\x89PNG" + b"\0" * 100)]
    mine, theirs = _struct_members(sample, None), _zipfile_members(sample)
    return "" if mine == theirs else f"zip layout differs from zipfile's ({len(mine or b'')} vs {len(theirs)} bytes)"


def zip_members(members: Sequence[tuple[str, bytes]], cache: dict | None = None) -> bytes:
    """The archive ``normalise_zip`` writes for ``members`` ((name, bytes), in order): the same bytes.

    ``cache`` (name → (bytes, deflate stream, CRC), filled here) keeps each member's deflate stream: a member
    given again with the same bytes is not deflated again.
    """
    if not zip_layout_problem():
        data = _struct_members(members, cache)
        if data is not None:
            return data
    return _zipfile_members(members)


def save_workbook(wb, path: str | Path) -> Path:
    """Save an openpyxl workbook atomically, with fixed document times and zip timestamps."""
    import datetime as _dt

    fixed = _dt.datetime(*FIXED_ZIP_TIME)
    wb.properties.created = fixed
    wb.properties.modified = fixed
    buf = io.BytesIO()
    wb.save(buf)
    return atomic_write_bytes(path, normalise_zip(buf.getvalue()))


def document_bytes(doc) -> bytes:
    """The .docx bytes of a python-docx / docxtpl document, reproducibly (fixed document times and zip entries)."""
    import datetime as _dt

    target = getattr(doc, "docx", None) or doc  # docxtpl wraps a python-docx Document
    core = target.core_properties
    fixed = _dt.datetime(*FIXED_ZIP_TIME)
    core.created = fixed
    core.modified = fixed
    core.last_printed = fixed
    buf = io.BytesIO()
    doc.save(buf)
    return normalise_zip(buf.getvalue())


def save_document(doc, path: str | Path) -> Path:
    """Save a python-docx / docxtpl document atomically and reproducibly."""
    return atomic_write_bytes(path, document_bytes(doc))


# ---- text a part can hold --------------------------------------------------------------------------------------

_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\ud800-\udfff]")
_LINE_BREAKS = re.compile("\r\n|\r|\u2028|\u2029|\x0b|\x0c|\x85")


def sanitise(text: object) -> str:
    """A string safe for WordprocessingML text: no control characters (but \\n), no lone surrogates, no
    U+FFFE/U+FFFF; tabs become spaces. XML specials are escaped later by docxtpl (autoescape)."""
    s = "" if text is None else str(text)
    s = _LINE_BREAKS.sub("\n", s).replace("\t", " ")
    return _INVALID.sub("", s)
