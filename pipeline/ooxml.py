"""Writing Office files safely: atomically (temp file + rename) and reproducibly (fixed zip timestamps)."""

from __future__ import annotations

import io
import os
import re
import tempfile
import zipfile
from pathlib import Path

#: Every zip entry and document property gets this timestamp, so a re-run gives byte-identical files.
FIXED_ZIP_TIME = (2021, 9, 26, 0, 0, 0)  # the date of 国办公开办函〔2021〕30号
_FIXED_W3CDTF = "2021-09-26T00:00:00Z"
_CORE_TIMES = re.compile(rb"(<dcterms:(?:created|modified)\b[^>]*>)[^<]*(</dcterms:(?:created|modified)>)")


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and an atomic rename.

    A reader never sees a half-written file under the final name, and an interrupted run leaves at most a
    ``.tmp`` file (ignored by every reader of the output folder).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def normalise_zip(data: bytes) -> bytes:
    """Rewrite a zip (xlsx/docx) with fixed entry timestamps and attributes, keeping entry order and content."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps "modified" with the time of saving
                body = _CORE_TIMES.sub(rb"\g<1>" + _FIXED_W3CDTF.encode() + rb"\g<2>", body)
            dst.writestr(fixed, body)
    return out.getvalue()


def save_workbook(wb, path: str | Path) -> Path:
    """Save an openpyxl workbook atomically, with fixed document times and zip timestamps."""
    import datetime as _dt

    fixed = _dt.datetime(*FIXED_ZIP_TIME)
    wb.properties.created = fixed
    wb.properties.modified = fixed
    buf = io.BytesIO()
    wb.save(buf)
    return atomic_write_bytes(path, normalise_zip(buf.getvalue()))


def save_document(doc, path: str | Path) -> Path:
    """Save a python-docx / docxtpl document atomically and reproducibly."""
    import datetime as _dt

    target = getattr(doc, "docx", None) or doc  # docxtpl wraps a python-docx Document
    core = target.core_properties
    fixed = _dt.datetime(*FIXED_ZIP_TIME)
    core.created = fixed
    core.modified = fixed
    core.last_printed = fixed
    buf = io.BytesIO()
    doc.save(buf)
    return atomic_write_bytes(path, normalise_zip(buf.getvalue()))
