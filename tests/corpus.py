"""The bad-input corpus: broken workbooks derived from the sample county's valid ones (issue 5, part 1).

Every case breaks a copy of a valid 2024 workbook of the sample county (``examples/sample_county``) the way
agencies, their tools or an attacker really break them, and declares what the January run must make of it:
the file(s) it writes into the year folder, each file's verdict (read / rejected / ignored), the finding
codes (from ``pipeline.findings.REGISTRY``) with the sheet and cells they must name, and whether the
agency still gets its Word report.

So that every case can sit in one workspace beside the others, a case's workbook belongs to an agency of
its own: the sample's 财政局 workbook, re-identified (单位名称 and 单位代码 rewritten in the XML, nothing
else touched) as a roster agency ``BAD-nn`` added for the case.

    build(folder)                                  # every case's files, once: <folder>/<key>/…
    write_case_workspace(root, [case], built=folder)   # the sample's 城关镇 (untouched, must pass) + the case
    write_case_workspace(root, CASES, full=True, built=folder)   # the whole sample county + every case
    prepare_and_execute(root, keys, full, jobs, charts, built)   # a workspace under root/ws, run into root/out

Files are built from the sample's bytes (zip parts edited as XML, or through openpyxl where Excel itself
would rewrite the workbook), deterministically; the zip bomb is written by streaming, never held expanded.
"""

from __future__ import annotations

import csv
import io
import os
import random
import re
import shutil
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from openpyxl import load_workbook
from openpyxl.workbook.defined_name import DefinedName

from pipeline import ooxml, spec
from pipeline.workspace import Agency

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample_county"
YEAR = 2024
SOURCE_CODE = "SLX-101"  # 示例县财政局: the valid workbook every case breaks a copy of
SOURCE_NAME = "示例县财政局"
BYSTANDER_CODE = "SLX-201"  # 示例县城关镇人民政府: untouched in every per-case workspace; must get its report

Status = str  # read / rejected / ignored


def pos(name: str) -> tuple[str, str]:
    """(sheet, A1) of a defined name of the template."""
    return spec.all_defined_names()[name]


def ref(name: str) -> str:
    return pos(name)[1]


# =============================================================================================================
# What a case expects


@dataclass(frozen=True)
class Want:
    """A finding the run must report for a file: its code and, where it has one, the sheet and cells."""

    code: str
    sheet: str | None = None  # None: not checked
    cells: tuple[str, ...] = ()  # each must be among the finding's cells


@dataclass(frozen=True)
class Expect:
    """One file a case writes into the year folder, and what the run must make of it."""

    file: str  # relative to the year folder (posix)
    status: Status  # read / rejected / ignored
    wants: tuple[Want, ...] = ()
    report: bool = False  # its agency passes and gets its Word report
    #: codes of severity 错误 this file may raise besides ``wants`` (the tests check there are no others)
    also: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    key: str
    what: str  # one line: the real-world failure
    make: Callable[[Path, Case], None]  # writes the case's files into the year folder
    expects: tuple[Expect, ...]
    agencies: tuple[Agency, ...] = ()  # roster rows the case adds
    #: texts that must come out verbatim in the agency's Word report (the report must be expected)
    report_texts: tuple[str, ...] = ()
    #: agency texts that look like formulas: no output workbook may hold them as a formula
    formula_texts: tuple[str, ...] = ()
    #: texts that must be in 校验结果.xlsx as text (a finding's value, an agency's name)
    results_texts: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)

    @property
    def agency(self) -> Agency:
        return self.agencies[0]

    @property
    def file(self) -> str:
        return self.expects[0].file


# =============================================================================================================
# Sources


def sample_book(code: str = SOURCE_CODE, year: int = YEAR) -> Path:
    name = _roster()[code].name
    return SAMPLE / str(year) / f"{name}{year}年报.xlsx"


def _roster() -> dict[str, Agency]:
    with open(SAMPLE / "agencies.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {r["code"]: Agency(**r) for r in rows}


class Book:
    """An .xlsx held as its zip parts (in order), edited as XML; written with the original entry order."""

    def __init__(self, data: bytes):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            self.parts: dict[str, bytes] = {i.filename: zf.read(i.filename) for i in zf.infolist()}

    @classmethod
    def of(cls, path: Path) -> Book:
        return cls(path.read_bytes())

    def bytes(self) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, body in self.parts.items():
                zf.writestr(zipfile.ZipInfo(name, date_time=ooxml.FIXED_ZIP_TIME), body,
                            compress_type=zipfile.ZIP_DEFLATED)
        return buf.getvalue()

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.bytes())
        return path

    # ---- parts
    def sheet_part(self, sheet: str) -> str:
        wb = self.parts["xl/workbook.xml"].decode("utf-8")
        rels = self.parts["xl/_rels/workbook.xml.rels"].decode("utf-8")
        m = re.search(r'<sheet\b[^>]*\bname="' + re.escape(escape(sheet)) + r'"[^>]*\br:id="([^"]+)"', wb)
        if m is None:
            raise KeyError(sheet)
        t = re.search(r'<Relationship\b[^>]*Target="([^"]+)"[^>]*Id="' + m.group(1) + '"', rels)
        return t.group(1).lstrip("/")

    def xml(self, part: str) -> str:
        return self.parts[part].decode("utf-8")

    def set_xml(self, part: str, text: str) -> None:
        self.parts[part] = text.encode("utf-8")

    # ---- cells
    def set_cell(self, sheet: str, a1: str, inner: str, t: str | None = None) -> None:
        """Replace cell ``a1`` of ``sheet`` by ``<c r=a1 s=(kept) t=t>inner</c>``."""
        part = self.sheet_part(sheet)
        xml = self.xml(part)
        pat = re.compile(r'<c r="' + a1 + r'"(?P<attrs>[^>]*?)(?:/>|>.*?</c>)', re.S)
        m = pat.search(xml)
        if m is None:
            raise KeyError(f"{sheet}!{a1}")
        style = re.search(r'\ss="(\d+)"', m.group("attrs"))
        attrs = f' r="{a1}"' + (f' s="{style.group(1)}"' if style else "") + (f' t="{t}"' if t else "")
        self.set_xml(part, xml[: m.start()] + f"<c{attrs}>{inner}</c>" + xml[m.end():])

    def set_text(self, name: str, text: str, *, raw: bool = False) -> None:
        """An inline string in the cell of defined name ``name``; ``raw``: ``text`` is already XML."""
        sheet, a1 = pos(name)
        body = text if raw else escape(text)
        self.set_cell(sheet, a1, f'<is><t xml:space="preserve">{body}</t></is>', "inlineStr")

    def set_number(self, name: str, value: str) -> None:
        sheet, a1 = pos(name)
        self.set_cell(sheet, a1, f"<v>{value}</v>")

    def set_formula(self, name: str, formula: str, cached: str | None, t: str | None = None) -> None:
        sheet, a1 = pos(name)
        v = "" if cached is None else f"<v>{escape(cached)}</v>"
        self.set_cell(sheet, a1, f"<f>{escape(formula)}</f>{v}", t)

    def number(self, name: str) -> int:
        sheet, a1 = pos(name)
        m = re.search(r'<c r="' + a1 + r'"[^>]*>\s*<v>([^<]*)</v>', self.xml(self.sheet_part(sheet)))
        return int(float(m.group(1)))

    def add_shared_strings(self, body: bytes) -> None:
        """Add xl/sharedStrings.xml with its relationship and content type, as Excel writes it."""
        self.parts["xl/sharedStrings.xml"] = body
        rels = self.xml("xl/_rels/workbook.xml.rels").replace(
            "</Relationships>",
            '<Relationship Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"'
            ' Target="sharedStrings.xml" Id="rIdSst"/></Relationships>')
        self.set_xml("xl/_rels/workbook.xml.rels", rels)
        self._content_type("/xl/sharedStrings.xml",
                           "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml")

    def _content_type(self, part: str, ctype: str) -> None:
        ct = self.xml("[Content_Types].xml")
        ct = ct.replace("</Types>", f'<Override PartName="{part}" ContentType="{ctype}"/></Types>')
        self.set_xml("[Content_Types].xml", ct)


def reidentified(agency: Agency, year: int = YEAR, source: str = SOURCE_CODE) -> Book:
    """The sample's valid workbook of ``source`` for ``year``, its 单位名称/单位代码 set to ``agency``."""
    book = Book.of(sample_book(source, year))
    book.set_text("INFO_agency_name", agency.name)
    book.set_text("INFO_agency_code", agency.code)
    return book


def via_openpyxl(book: Book, fn: Callable) -> Book:
    """Open in openpyxl, apply ``fn(wb)``, save (as Excel would rewrite the file after an edit)."""
    wb = load_workbook(io.BytesIO(book.bytes()))
    fn(wb)
    buf = io.BytesIO()
    wb.save(buf)
    return Book(buf.getvalue())


# =============================================================================================================
# Raw bytes: OLE compound files, a .docx, bombs

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_FREE, _END, _FATSECT, _NOSTREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF


def cfb(streams: list[tuple[str, bytes]]) -> bytes:
    """A minimal, well-formed OLE compound file (CFB v3, 512-byte sectors) holding ``streams`` at its root.

    Streams are padded to 4,096 bytes so they all live in the regular FAT (no mini stream); at most three.
    """
    assert 1 <= len(streams) <= 3
    sectors: list[bytes] = []
    chains: list[tuple[int, int, int]] = []  # (first sector, sector count, size)
    first = 2  # sector 0: FAT, sector 1: directory
    for _, data in streams:
        data = data.ljust(max(4096, len(data)), b"\0")
        n = -(-len(data) // 512)
        data = data.ljust(n * 512, b"\0")
        chains.append((first, n, len(data)))
        sectors += [data[i * 512:(i + 1) * 512] for i in range(n)]
        first += n
    total = 2 + len(sectors)
    assert total <= 128, "one FAT sector"
    fat = [_FATSECT, _END]
    for start, n, _ in chains:
        fat += [start + i + 1 for i in range(n - 1)] + [_END]
    fat += [_FREE] * (128 - len(fat))

    def entry(name: str, kind: int, child: int, right: int, start: int, size: int) -> bytes:
        raw = name.encode("utf-16-le") + b"\0\0" if name else b""
        return (raw.ljust(64, b"\0") + struct.pack("<HBB", len(raw), kind, 1)
                + struct.pack("<III", _NOSTREAM, right, child) + b"\0" * 16 + b"\0" * 4 + b"\0" * 16
                + struct.pack("<IQ", start, size))

    # siblings in CFB order (shorter names first, then case-insensitive), chained to the right
    order = sorted(range(len(streams)), key=lambda i: (len(streams[i][0]), streams[i][0].upper()))
    entries = [entry("Root Entry", 5, order[0] + 1, _NOSTREAM, _END, 0)]
    for i, (name, _) in enumerate(streams):
        k = order.index(i)
        right = order[k + 1] + 1 if k + 1 < len(order) else _NOSTREAM
        entries.append(entry(name, 2, _NOSTREAM, right, chains[i][0], chains[i][2]))
    while len(entries) < 4:
        entries.append(entry("", 0, _NOSTREAM, _NOSTREAM, 0, 0))
    header = (_OLE_MAGIC + b"\0" * 16 + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + b"\0" * 6
              + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, _END, 0, _END, 0)
              + struct.pack("<I", 0) + struct.pack("<I", _FREE) * 108)
    assert len(header) == 512
    return header + struct.pack("<128I", *fat) + b"".join(entries) + b"".join(sectors)


def encrypted_ooxml() -> bytes:
    """What Excel writes for a workbook with an open password: a CFB with EncryptionInfo + EncryptedPackage."""
    info = struct.pack("<HHI", 4, 4, 0x40) + (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
        b'<encryption xmlns="http://schemas.microsoft.com/office/2006/encryption" '
        b'xmlns:p="http://schemas.microsoft.com/office/2006/keyEncryptor/password">'
        b'<keyData saltSize="16" blockSize="16" keyBits="256" hashSize="64" cipherAlgorithm="AES" '
        b'cipherChaining="ChainingModeCBC" hashAlgorithm="SHA512" saltValue="AAAAAAAAAAAAAAAAAAAAAA=="/>'
        b'<keyEncryptors><keyEncryptor uri="http://schemas.microsoft.com/office/2006/keyEncryptor/password">'
        b'<p:encryptedKey spinCount="100000" saltSize="16" blockSize="16" keyBits="256" hashSize="64" '
        b'cipherAlgorithm="AES" cipherChaining="ChainingModeCBC" hashAlgorithm="SHA512"/></keyEncryptor>'
        b'</keyEncryptors></encryption>')
    package = struct.pack("<Q", 30000) + random.Random(5).randbytes(8192)
    return cfb([("EncryptionInfo", info), ("EncryptedPackage", package)])


def biff8_xls() -> bytes:
    """An Excel 97-2003 workbook: a CFB whose Workbook stream starts with a BIFF8 BOF and ends with EOF."""
    bof = struct.pack("<HH", 0x0809, 16) + struct.pack("<HHHHII", 0x0600, 0x0005, 0x0DBB, 0x07CC, 0x41, 0x06)
    eof = struct.pack("<HH", 0x000A, 0)
    return cfb([("Workbook", bof + eof)])


def docx_bytes() -> bytes:
    from docx import Document

    doc = Document()
    doc.add_paragraph("示例县财政局2024年政府信息公开工作年度报告（Word 稿）")
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def zip_bomb(book: Book, path: Path, expanded: int = 128 * 1024 * 1024) -> None:
    """The workbook with a sharedStrings.xml of ``expanded`` bytes (one repeated string) that deflates to
    a few hundred KB; written by streaming, never held in memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    item = b"<si><t>" + "政务公开".encode() * 16 + b"</t></si>"
    head = b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    chunk = item * (1024 * 1024 // len(item))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, body in book.parts.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=ooxml.FIXED_ZIP_TIME), body, compress_type=zipfile.ZIP_DEFLATED)
        info = zipfile.ZipInfo("xl/sharedStrings.xml", date_time=ooxml.FIXED_ZIP_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as fh:
            fh.write(head)
            written = len(head)
            while written < expanded:
                fh.write(chunk)
                written += len(chunk)
            fh.write(b"</sst>")


def lying_sizes(book: Book, part: str, expanded: int = 64 * 1024 * 1024) -> bytes:
    """A zip whose ``part`` deflates to ``expanded`` bytes while its headers declare 1 KB (a bomb that lies)."""
    body = book.parts[part] + b" " * (expanded - len(book.parts[part]))
    parts = dict(book.parts)
    parts[part] = body
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=ooxml.FIXED_ZIP_TIME), data, compress_type=zipfile.ZIP_DEFLATED)
    data = bytearray(buf.getvalue())
    name = part.encode()
    for sig, off_size, off_name in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        at = 0
        while (at := data.find(sig, at)) >= 0:
            if data[at + off_name: at + off_name + len(name)] == name:
                struct.pack_into("<I", data, at + off_size, 1024)
            at += 4
    return bytes(data)


BILLION_LAUGHS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(f' <!ENTITY lol{i} "{("&lol%s;" % ("" if i == 1 else i - 1)) * 10}">\n' for i in range(1, 10))
    + "]>\n"
)


def with_doctype(xml: bytes, doctype: str) -> bytes:
    """``xml`` with ``doctype`` (and its own XML declaration) in front of the root element."""
    body = xml.split(b"?>", 1)[1] if xml.startswith(b"<?xml") else xml
    return doctype.encode("utf-8") + body


# =============================================================================================================
# Text helpers


def fullwidth(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if ch.isdigit() or ch == "." else ch for ch in text)


def random_cjk(n_bytes: int, seed: int = 7) -> str:
    """About ``n_bytes`` of UTF-8 text that does not compress much: random characters of the CJK block."""
    rnd = random.Random(seed)
    n = n_bytes // 3
    raw = rnd.randbytes(2 * n)
    codes = struct.unpack(f"<{n}H", raw)
    return "".join(chr(0x4E00 + c % 20000) for c in codes)


# =============================================================================================================
# The cases

_cases: list[Case] = []
_AGENCY_NO = iter(range(1, 100))


def victim(label: str, name: str | None = None, category: str = "县直部门") -> Agency:
    """A roster agency of the corpus: ``BAD-nn``, named 示例县<label> unless ``name`` is given."""
    return Agency(f"BAD-{next(_AGENCY_NO):02d}", name if name is not None else f"示例县{label}", category)


def workbook_name(agency: Agency, year: int = YEAR, suffix: str = ".xlsx") -> str:
    return f"{agency.name}{year}年报{suffix}"


def case(key: str, what: str, *, agencies: tuple[Agency, ...] = (), **kw):
    """Register a case whose files ``fn(year_dir, case)`` writes."""

    def deco(fn):
        _cases.append(Case(key, what, fn, agencies=agencies, **kw))
        return fn

    return deco


def simple(key: str, what: str, label: str, status: Status, wants: tuple[Want, ...] = (), *, report: bool = False,
           suffix: str = ".xlsx", also: tuple[str, ...] = (), name: str | None = None, file: str | None = None,
           **kw):
    """A case with one agency and one file ``<name>2024年报<suffix>`` (or ``file``)."""
    a = victim(label, name)
    fname = file or workbook_name(a, suffix=suffix)
    return case(key, what, agencies=(a,), expects=(Expect(fname, status, wants, report, also),), **kw)


# ---- files that are no workbook at all, or not the format ------------------------------------------------


@simple("truncated_zip", "upload cut off: the first 60 % of the .xlsx", "截断文件局", "rejected", (Want("FILE_CORRUPT"),))
def _(d: Path, c: Case) -> None:
    data = reidentified(c.agency).bytes()
    (d / c.file).write_bytes(data[: len(data) * 6 // 10])


@simple("zero_bytes", "an empty file (disk full, failed copy)", "空文件局", "rejected", (Want("FILE_CORRUPT"),))
def _(d: Path, c: Case) -> None:
    (d / c.file).write_bytes(b"")


@simple("docx_as_xlsx", "the Word report renamed to .xlsx", "改名文档局", "rejected", (Want("FILE_NOT_XLSX"),))
def _(d: Path, c: Case) -> None:
    (d / c.file).write_bytes(docx_bytes())


@simple("encrypted", "a workbook with an open password (encrypted OLE package)", "加密文件局", "rejected",
        (Want("FILE_ENCRYPTED"),))
def _(d: Path, c: Case) -> None:
    (d / c.file).write_bytes(encrypted_ooxml())


@simple("xls", "Excel 97-2003 workbook (.xls)", "旧版格式局", "rejected", (Want("FILE_XLS"),), suffix=".xls")
def _(d: Path, c: Case) -> None:
    (d / c.file).write_bytes(biff8_xls())


@simple("xls_renamed_xlsx", "an .xls renamed to .xlsx by hand", "旧版改名局", "rejected", (Want("FILE_XLS"),))
def _(d: Path, c: Case) -> None:
    (d / c.file).write_bytes(biff8_xls())


@simple("html_as_xls", "an \"Excel\" export of a web system: an HTML table named .xls", "网页导出局", "rejected",
        (Want("FILE_XLS"),), suffix=".xls")
def _(d: Path, c: Case) -> None:
    (d / c.file).write_text("<html><body><table><tr><td>单位</td><td>件数</td></tr></table></body></html>",
                            encoding="utf-8")


@simple("csv", "the tables saved as CSV", "逗号分隔局", "rejected", (Want("FILE_NOT_XLSX"),), suffix=".csv")
def _(d: Path, c: Case) -> None:
    (d / c.file).write_text("单位,件数\n示例县逗号分隔局,5\n", encoding="utf-8")


@simple("xlsm_macro", "saved as a macro-enabled workbook (.xlsm with vbaProject.bin)", "宏文件局", "read",
        (Want("FILE_NOT_XLSX"),), suffix=".xlsm")
def _(d: Path, c: Case) -> None:
    book = reidentified(c.agency)
    book.parts["xl/vbaProject.bin"] = cfb([("PROJECT", b'ID="{00000000-0000-0000-0000-000000000000}"\r\n'
                                                      b'Document=ThisWorkbook/&H00000000\r\n')])
    ct = book.xml("[Content_Types].xml").replace(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
        "application/vnd.ms-excel.sheet.macroEnabled.main+xml")
    ct = ct.replace('<Default Extension="xml"',
                    '<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/><Default Extension="xml"')
    book.set_xml("[Content_Types].xml", ct)
    rels = book.xml("xl/_rels/workbook.xml.rels").replace(
        "</Relationships>",
        '<Relationship Type="http://schemas.microsoft.com/office/2006/relationships/vbaProject" '
        'Target="vbaProject.bin" Id="rIdVba"/></Relationships>')
    book.set_xml("xl/_rels/workbook.xml.rels", rels)
    book.write(d / c.file)


@simple("not_template", "a workbook of the agency's own design", "自制表格局", "rejected", (Want("NOT_TEMPLATE"),))
def _(d: Path, c: Case) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["单位", "新收申请", "办结"])
    wb.active.append([c.agency.name, 5, 5])
    ooxml.save_workbook(wb, d / c.file)


# ---- hostile archives ------------------------------------------------------------------------------------


@simple("zip_bomb", "a zip bomb: 128 MB of sharedStrings deflated to a few hundred KB", "压缩炸弹局", "rejected",
        (Want("FILE_TOO_LARGE"),))
def _(d: Path, c: Case) -> None:
    zip_bomb(reidentified(c.agency), d / c.file)


@simple("zip_lying_sizes", "a zip bomb whose headers declare 1 KB for a part that inflates to 64 MB",
        "虚报大小局", "rejected", (Want("FILE_CORRUPT"),))
def _(d: Path, c: Case) -> None:
    (d / c.file).write_bytes(lying_sizes(reidentified(c.agency), "xl/worksheets/sheet5.xml"))


@simple("entity_bomb", "billion laughs: a DTD of nested entities in a worksheet part", "实体炸弹局", "rejected",
        (Want("FILE_CORRUPT"),))
def _(d: Path, c: Case) -> None:
    book = reidentified(c.agency)
    part = book.sheet_part(spec.T3_SHEET)
    xml = book.parts[part]
    book.parts[part] = with_doctype(xml, BILLION_LAUGHS).replace(b"<v>", b"<v>&lol9;", 1)
    book.write(d / c.file)


@simple("entity_bomb_utf16", "billion laughs in a UTF-16 encoded sharedStrings part", "宽字节炸弹局", "rejected",
        (Want("FILE_CORRUPT"),))
def _(d: Path, c: Case) -> None:
    book = reidentified(c.agency)
    xml = (BILLION_LAUGHS.replace('encoding="UTF-8"', 'encoding="UTF-16"')
           + '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1">'
           '<si><t>&lol9;</t></si></sst>')
    book.add_shared_strings(xml.encode("utf-16"))
    book.write(d / c.file)


@simple("external_entity", "XXE: an external entity reading /etc/passwd in workbook.xml", "外部实体局", "rejected",
        (Want("FILE_CORRUPT"),))
def _(d: Path, c: Case) -> None:
    book = reidentified(c.agency)
    xml = with_doctype(book.parts["xl/workbook.xml"],
                       '<?xml version="1.0"?><!DOCTYPE workbook [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>')
    book.parts["xl/workbook.xml"] = xml.replace(b"<definedNames>", b'<definedNames><definedName name="leak">&xxe;</definedName>', 1)
    book.write(d / c.file)


@simple("broken_part", "a worksheet part cut off mid-XML inside an intact zip", "残缺工作表局", "rejected",
        (Want("FILE_CORRUPT"),))
def _(d: Path, c: Case) -> None:
    book = reidentified(c.agency)
    part = book.sheet_part(spec.T3_SHEET)
    book.parts[part] = book.parts[part][: len(book.parts[part]) // 2]
    book.write(d / c.file)


# ---- the workbook's structure changed ------------------------------------------------------------------


def _names_to_ref(wb, sheet: str) -> None:
    """What Excel does to the names of a deleted sheet: they become #REF!."""
    for name, (s, _) in spec.all_defined_names().items():
        if s == sheet:
            wb.defined_names[name] = DefinedName(name, attr_text="#REF!")


@simple("sheet_deleted", "sheet 四、复议诉讼 deleted (its names become #REF!)", "删表局", "read",
        (Want("SHEET_MISSING", spec.T4_SHEET), Want("NAME_MISSING", spec.T4_SHEET, (ref("T4_reconsideration_upheld"),))))
def _(d: Path, c: Case) -> None:
    def fn(wb):
        wb.remove(wb[spec.T4_SHEET])
        _names_to_ref(wb, spec.T4_SHEET)

    via_openpyxl(reidentified(c.agency), fn).write(d / c.file)


RENAMED = "三、依申请公开情况"


@simple("sheet_renamed", "sheet 三、依申请公开 renamed (Excel moves its names along)", "改表名局", "read",
        (Want("SHEET_MISSING", spec.T3_SHEET),))
def _(d: Path, c: Case) -> None:
    def fn(wb):
        wb[spec.T3_SHEET].title = RENAMED
        for name, (s, a1) in spec.all_defined_names().items():
            if s == spec.T3_SHEET:
                wb.defined_names[name] = DefinedName(name, attr_text=spec.defined_name_formula(RENAMED, a1))

    via_openpyxl(reidentified(c.agency), fn).write(d / c.file)


def _shift_names(wb, sheet: str, from_row: int, delta: int, drop_row: int | None = None) -> None:
    for name, (s, a1) in spec.all_defined_names().items():
        if s != sheet:
            continue
        col = a1.rstrip("0123456789")
        row = int(a1[len(col):])
        if drop_row is not None and row == drop_row:
            wb.defined_names[name] = DefinedName(name, attr_text="#REF!")
        elif row >= from_row:
            wb.defined_names[name] = DefinedName(name, attr_text=spec.defined_name_formula(sheet, f"{col}{row + delta}"))


ROW = 12  # a row of table 三 (its input cells D12:I12)


@simple("row_inserted", "a row inserted into table 三 (names move with their cells)", "插行局", "read",
        (Want("STRUCTURE_CHANGED", spec.T3_SHEET),))
def _(d: Path, c: Case) -> None:
    def fn(wb):
        ws = wb[spec.T3_SHEET]
        ws.merged_cells.ranges = set()
        ws.insert_rows(ROW)
        _shift_names(wb, spec.T3_SHEET, ROW, 1)

    via_openpyxl(reidentified(c.agency), fn).write(d / c.file)


@simple("row_deleted", "a row of table 三 deleted (its names become #REF!)", "删行局", "read",
        (Want("NAME_MISSING", spec.T3_SHEET, (f"D{ROW}",)),), also=("STRUCTURE_CHANGED",))
def _(d: Path, c: Case) -> None:
    def fn(wb):
        ws = wb[spec.T3_SHEET]
        ws.merged_cells.ranges = set()
        ws.delete_rows(ROW)
        _shift_names(wb, spec.T3_SHEET, ROW + 1, -1, drop_row=ROW)

    via_openpyxl(reidentified(c.agency), fn).write(d / c.file)


LICENSING = "T2_licensing_decisions"  # B8 (merged B8:D8)
PENALTIES = "T2_penalties_decisions"  # B11 (merged B11:D11), 3 in the source workbook


@simple("merge_broken", "the merged input cell B11:D11 of table 二 unmerged and its number typed into D11: read, reported",
        "拆分单元格局", "read", (Want("CELL_COERCED", spec.T2_SHEET, ("B11",)),), report=True,
        results_texts=("3（填在 D11）",))
def _(d: Path, c: Case) -> None:
    def fn(wb):
        ws = wb[spec.T2_SHEET]
        value = ws["B11"].value
        assert value == 3
        ws.unmerge_cells("B11:D11")
        ws["B11"].value = None
        ws["D11"].value = value

    via_openpyxl(reidentified(c.agency), fn).write(d / c.file)


@simple("merge_two_values", "the merged input cell B11:D11 unmerged, and two numbers in it (B11 and C11)",
        "拆分两数局", "read", (Want("CELL_TEXT", spec.T2_SHEET, ("B11",)),), results_texts=("B11=3、C11=5",))
def _(d: Path, c: Case) -> None:
    def fn(wb):
        ws = wb[spec.T2_SHEET]
        ws.unmerge_cells("B11:D11")
        ws["C11"].value = 5

    via_openpyxl(reidentified(c.agency), fn).write(d / c.file)


LABEL = "C11"


@simple("label_edited", "a row label of table 三 edited", "改标题局", "read", (Want("LABEL_CHANGED", spec.T3_SHEET, (LABEL,)),))
def _(d: Path, c: Case) -> None:
    book = reidentified(c.agency)
    book.set_cell(spec.T3_SHEET, LABEL, f"<is><t>{escape('3.危及安全稳定')}</t></is>", "inlineStr")
    book.write(d / c.file)


@simple("names_deleted", "every defined name deleted (the table itself intact): read by position",
        "删名称局", "read", report=True)
def _(d: Path, c: Case) -> None:
    book = reidentified(c.agency)
    book.set_xml("xl/workbook.xml", re.sub(r"<definedNames>.*?</definedNames>", "", book.xml("xl/workbook.xml"),
                                           flags=re.S))
    book.write(d / c.file)


@simple("names_deleted_row_inserted", "names deleted and a row inserted: the labels give the move away",
        "删名称插行局", "read", (Want("LABEL_CHANGED", spec.T3_SHEET, (f"C{ROW + 1}",)),),
        also=("R1", "R3", "CELL_TEXT"))
def _(d: Path, c: Case) -> None:
    def fn(wb):
        for name in list(wb.defined_names):
            del wb.defined_names[name]
        ws = wb[spec.T3_SHEET]
        ws.merged_cells.ranges = set()
        ws.insert_rows(ROW)

    via_openpyxl(reidentified(c.agency), fn).write(d / c.file)


# ---- cell contents ---------------------------------------------------------------------------------------

NEW_NAT = spec.cell_name("三", "new", "natural")
OTHER_NAT = spec.cell_name("三", "other_other", "natural")
FEES = spec.cell_name("二", "fees", "amount")


@simple("fullwidth_units", "numbers typed as text: full-width digits and units (“５件”, “１２.５万元”)", "全角数字局",
        "read", (Want("CELL_COERCED", spec.T3_SHEET, (ref(NEW_NAT),)), Want("CELL_COERCED", spec.T2_SHEET, (ref(FEES),))),
        report=True)
def _(d: Path, c: Case) -> None:
    book = reidentified(c.agency)
    book.set_text(NEW_NAT, fullwidth(str(book.number(NEW_NAT))) + "件")
    book.set_text(FEES, fullwidth("12.5") + "万元")
    book.write(d / c.file)


@simple("external_formula", "a count taken by formula from another workbook (=[台账.xlsx]Sheet1!A1, cached value)",
        "外部引用局", "read", (Want("CELL_COERCED", spec.T3_SHEET, (ref(NEW_NAT),)),), report=True,
        results_texts=("=[1]Sheet1!A1",))
def _(d: Path, c: Case) -> None:
    book = reidentified(c.agency)
    book.set_formula(NEW_NAT, "[1]Sheet1!A1", str(book.number(NEW_NAT)))
    book.write(d / c.file)


@simple("external_formula_no_value", "a formula to another workbook without a cached value (never calculated)",
        "外部引用无值局", "read", (Want("CELL_TEXT", spec.T3_SHEET, (ref(OTHER_NAT),)),),
        results_texts=("='[台账.xlsx]Sheet1'!A1",))
def _(d: Path, c: Case) -> None:
    book = reidentified(c.agency)
    book.set_formula(OTHER_NAT, "'[台账.xlsx]Sheet1'!A1", None)
    book.write(d / c.file)


@simple("excel_errors", "#REF! and #DIV/0! shown in count cells", "错误值局", "read",
        (Want("CELL_EXCEL_ERROR", spec.T3_SHEET, (ref(OTHER_NAT),)),
         Want("CELL_EXCEL_ERROR", spec.T2_SHEET, (ref(LICENSING),))))
def _(d: Path, c: Case) -> None:
    book = reidentified(c.agency)
    book.set_formula(OTHER_NAT, "#REF!+1", "#REF!", "e")
    book.set_formula(LICENSING, "B7/0", "#DIV/0!", "e")
    book.write(d / c.file)


HUGE = "TXT_platform"


@simple("huge_text", "a 10 MB text cell (pasted from a document)", "超长文字局", "read",
        (Want("TEXT_TOO_LONG_CELL", spec.SECTION["一"].sheet, (ref(HUGE),)),), report=True)
def _(d: Path, c: Case) -> None:
    book = reidentified(c.agency)
    text = random_cjk(10 * 1024 * 1024)
    book.add_shared_strings(
        ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
         '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1">'
         f"<si><t>{text}</t></si></sst>").encode())
    sheet, a1 = pos(HUGE)
    book.set_cell(sheet, a1, "<v>0</v>", "s")
    book.write(d / c.file)


@simple("million_breaks_r1", "1,000,000 typed for 12 in 本年新收申请 (R1 broken)", "百万申请局", "read",
        (Want("R1", spec.T3_SHEET, (ref(NEW_NAT),)),), also=())
def _(d: Path, c: Case) -> None:
    book = reidentified(c.agency)
    book.set_number(NEW_NAT, "1000000")
    book.write(d / c.file)


@simple("million_consistent", "1,000,000 行政许可 decisions (no rule broken): read, summed, reported", "百万许可局",
        "read", (), report=True, report_texts=("1000000",))
def _(d: Path, c: Case) -> None:
    book = reidentified(c.agency)
    book.set_number(LICENSING, "1000000")
    text = re.sub(r"行政许可(决定)?\d+件", "行政许可1000000件", _text_of(book, "TXT_proactive"))
    book.set_text("TXT_proactive", text)
    book.write(d / c.file)


def _text_of(book: Book, name: str) -> str:
    import html

    sheet, a1 = pos(name)
    xml = book.xml(book.sheet_part(sheet))
    m = re.search(r'<c r="' + a1 + r'"[^>]*>.*?<t[^>]*>(.*?)</t>', xml, re.S)
    return html.unescape(m.group(1)) if m else ""


XML_SPECIALS = "依申请公开 <b>加粗</b> & “引号” ' \" ]]> <w:p/> {{ name }} {% if x %}模板{% endif %} &amp; &#x41;"


@simple("xml_specials", "XML and template syntax in agency text (& < > ]]> {{ }} {% %})", "特殊字符局", "read", (),
        report=True, report_texts=(XML_SPECIALS,))
def _(d: Path, c: Case) -> None:
    book = reidentified(c.agency)
    book.set_text("TXT_other_matters", XML_SPECIALS)
    book.write(d / c.file)


# Excel writes characters XML cannot hold as _xHHHH_ (ST_Xstring); emoji are plain UTF-8.
CONTROL_XML = "第一行_x000B_第二行_x0007_响铃_x0000_空字符😀表情_xD83D_孤立代理项_xDE00_再来_xD83D__xDE00_成对"


@simple("control_chars", "control characters (Excel's _x000B_ escapes), emoji and lone surrogates in text",
        "控制字符局", "read", (), report=True, report_texts=("第一行", "第二行", "😀表情"))
def _(d: Path, c: Case) -> None:
    book = reidentified(c.agency)
    book.set_text("TXT_other_matters", CONTROL_XML, raw=True)
    book.set_text("INFO_contact_office", "办公室_x0001__xDFFF_😀")
    book.write(d / c.file)


FORMULA_TEXTS = ('=HYPERLINK("http://example.invalid","点击查看")', "+86 0855-3222310", "-无-", "@办公室 =1+1")


@simple("formula_text", "agency text starting with = + - @ (formula injection)", "公式文字局", "read", (),
        report=True, report_texts=FORMULA_TEXTS[:3], formula_texts=FORMULA_TEXTS)
def _(d: Path, c: Case) -> None:
    book = reidentified(c.agency)
    book.set_text("TXT_other_matters", FORMULA_TEXTS[0])  # in the report's part 六
    book.set_text("INFO_phone", FORMULA_TEXTS[1])  # in the report's opening paragraph
    book.set_text("TXT_fee_note", FORMULA_TEXTS[2])
    book.set_text("INFO_preparer", FORMULA_TEXTS[3])  # not in the report; in the returned copy if any
    book.write(d / c.file)


@simple("formula_text_in_number", "“=SUM(A1:A2)” typed as text into a count cell", "公式数字局", "read",
        (Want("CELL_TEXT", spec.T3_SHEET, (ref(OTHER_NAT),)),), formula_texts=("=SUM(A1:A2)",),
        results_texts=("=SUM(A1:A2)",))
def _(d: Path, c: Case) -> None:
    book = reidentified(c.agency)
    book.set_text(OTHER_NAT, "=SUM(A1:A2)")
    book.write(d / c.file)


# ---- agency names that would make bad paths -------------------------------------------------------------


def _named(d: Path, c: Case, *, blank: str | None = None) -> None:
    """The agency's workbook under its own (hostile) name; ``blank``: a cell left empty (a 提示 → a returned copy)."""
    book = reidentified(c.agency)
    if blank:
        sheet, a1 = pos(blank)
        book.set_cell(sheet, a1, "")
    book.write(d / c.expects[0].file)


@simple("name_path_traversal", "an agency named with / and .. (示例县/../../逃逸局)", "", "read",
        (Want("CELL_BLANK", spec.T3_SHEET, (ref(OTHER_NAT),)),), report=True,
        name="示例县/../../../逃逸局", file="逃逸局2024年报.xlsx")
def _(d: Path, c: Case) -> None:
    _named(d, c, blank=OTHER_NAT)


@simple("name_windows_reserved", "an agency named CON", "", "read", (Want("CELL_BLANK", spec.T3_SHEET, (ref(OTHER_NAT),)),),
        report=True, name="CON", file="CON局2024年报.xlsx")
def _(d: Path, c: Case) -> None:
    _named(d, c, blank=OTHER_NAT)


@simple("name_windows_chars", 'an agency name with <>:"|?* and a trailing dot', "", "read",
        (Want("CELL_BLANK", spec.T3_SHEET, (ref(OTHER_NAT),)),), report=True,
        name='示例县<>:"|?*\\局.', file="保留字符局2024年报.xlsx")
def _(d: Path, c: Case) -> None:
    _named(d, c, blank=OTHER_NAT)


@simple("name_too_long", "an agency name of 120 characters (360 bytes: too long for a file name)", "", "read",
        (Want("CELL_BLANK", spec.T3_SHEET, (ref(OTHER_NAT),)),), report=True,
        name="示例县" + "超长名称" * 29 + "局", file="超长名称局2024年报.xlsx")
def _(d: Path, c: Case) -> None:
    _named(d, c, blank=OTHER_NAT)


@simple("name_formula", "an agency name that is a formula", "", "read", (Want("CELL_BLANK", spec.T3_SHEET, (ref(OTHER_NAT),)),),
        report=True, name='=HYPERLINK("http://example.invalid","示例县公式局")', file="公式名称局2024年报.xlsx",
        formula_texts=('=HYPERLINK("http://example.invalid","示例县公式局")',),
        results_texts=('=HYPERLINK("http://example.invalid","示例县公式局")',))
def _(d: Path, c: Case) -> None:
    _named(d, c, blank=OTHER_NAT)


_TWIN_A = victim("", name="示例县甲/乙局")
_TWIN_B = victim("", name="示例县甲_乙局")


@case("names_collide", "two agencies whose names make the same file name (甲/乙 and 甲_乙)",
      agencies=(_TWIN_A, _TWIN_B),
      expects=(Expect("甲斜杠乙局2024年报.xlsx", "read", (Want("CELL_BLANK"),), report=True),
               Expect("甲下划线乙局2024年报.xlsx", "read", (Want("CELL_BLANK"),), report=True)))
def _(d: Path, c: Case) -> None:
    for a, e in zip(c.agencies, c.expects):
        book = reidentified(a)
        sheet, a1 = pos(OTHER_NAT)
        book.set_cell(sheet, a1, "")
        book.write(d / e.file)


# ---- agencies: duplicates, another year, the folder's other files --------------------------------------

_DUP = victim("重复报送局")


@case("duplicate_agency", "the same agency twice: 年报.xlsx and 年报（修改版）.xlsx",
      agencies=(_DUP,),
      expects=(Expect(workbook_name(_DUP), "read", (Want("AGENCY_DUPLICATE", spec.SHEET_INFO, (ref("INFO_agency_code"),)),)),
               Expect(f"{_DUP.name}{YEAR}年报（修改版）.xlsx", "read", (Want("AGENCY_DUPLICATE"),))))
def _(d: Path, c: Case) -> None:
    reidentified(c.agency).write(d / c.expects[0].file)
    book = reidentified(c.agency)
    book.set_number(LICENSING, str(book.number(LICENSING) + 1))
    book.write(d / c.expects[1].file)


_DUP_SUB = victim("备份重复局")


@case("duplicate_in_subfolder", "a byte-identical backup copy in a sub-folder (备份/)",
      agencies=(_DUP_SUB,),
      expects=(Expect(workbook_name(_DUP_SUB), "read", (Want("AGENCY_DUPLICATE"),)),
               Expect(f"备份/{workbook_name(_DUP_SUB)}", "read", (Want("AGENCY_DUPLICATE"),))))
def _(d: Path, c: Case) -> None:
    data = reidentified(c.agency).bytes()
    for e in c.expects:
        (d / e.file).parent.mkdir(parents=True, exist_ok=True)
        (d / e.file).write_bytes(data)


_DUP_LONG = victim("", name="示例县" + "长名称单位" * 9 + "局")  # 49 characters: its name fills a file name


@case("duplicate_long_name", "an agency with a 49-character name sends three versions (returned copies need three names)",
      agencies=(_DUP_LONG,),
      expects=tuple(Expect(f"长名称单位{v}.xlsx".replace("长名称单位", _DUP_LONG.name, 1), "read",
                           (Want("AGENCY_DUPLICATE"),)) for v in ("2024年报", "2024年报（修改版）", "2024年报（最终版）")))
def _(d: Path, c: Case) -> None:
    for i, e in enumerate(c.expects):
        book = reidentified(c.agency)
        book.set_number(LICENSING, str(i))
        book.write(d / e.file)


@simple("other_year", "last year's workbook sent instead of this year's", "上年报表局", "read",
        (Want("REPORT_YEAR", spec.SHEET_INFO, (ref("INFO_report_year"),)),), also=(),
        file="上年报表局2023年报.xlsx")
def _(d: Path, c: Case) -> None:
    reidentified(c.agency, YEAR - 1).write(d / c.file)


_STRANGER = Agency("X-999", "示例县名册外局", "县直部门")  # not in the roster


@case("unknown_agency", "a workbook of an agency not in the roster", agencies=(),
      expects=(Expect(workbook_name(_STRANGER), "read",
                      (Want("AGENCY_UNKNOWN", spec.SHEET_INFO, (ref("INFO_agency_code"),)),)),))
def _(d: Path, c: Case) -> None:
    reidentified(_STRANGER).write(d / c.file)


_LOCK = victim("锁定文件局")


@case("lock_file", "an Excel lock file ~$… beside the workbook", agencies=(_LOCK,),
      expects=(Expect(f"~${workbook_name(_LOCK)}", "ignored"), Expect(workbook_name(_LOCK), "read", report=True)))
def _(d: Path, c: Case) -> None:
    owner = "张三".encode("utf-16-le")
    (d / c.expects[0].file).write_bytes(bytes([len("张三")]) + b"\0" + owner.ljust(108, b" ") + b"\0" * 53)
    reidentified(c.agency).write(d / c.expects[1].file)


@case("other_files", "files that are no workbook: readme.txt, Thumbs.db, .DS_Store", agencies=(),
      expects=(Expect("readme.txt", "ignored"), Expect("Thumbs.db", "ignored"), Expect(".DS_Store", "ignored")))
def _(d: Path, c: Case) -> None:
    (d / "readme.txt").write_text("各单位报表请放在本文件夹。\n", encoding="utf-8")
    (d / "Thumbs.db").write_bytes(_OLE_MAGIC + b"\0" * 504)
    (d / ".DS_Store").write_bytes(b"\0\0\0\1Bud1" + b"\0" * 100)


_GBK = victim("编码文件名局")


@case("gbk_file_name", "a file name in GBK bytes (a zip from Windows unpacked on Linux)", agencies=(_GBK,),
      expects=(Expect(workbook_name(_GBK), "read", report=True),), extra={"gbk": True})
def _(d: Path, c: Case) -> None:
    name = os.fsencode(d) + b"/" + workbook_name(c.agency).encode("gbk")
    with open(name, "wb") as fh:
        fh.write(reidentified(c.agency).bytes())


CASES: tuple[Case, ...] = tuple(_cases)
CASE = {c.key: c for c in CASES}


def on_disk(e: Expect, c: Case) -> str:
    """The file's name as it lies in the folder (os.fsdecode of its bytes)."""
    if c.extra.get("gbk"):
        return os.fsdecode(e.file.encode("gbk"))
    return e.file


# =============================================================================================================
# Workspaces


def build(folder: Path, cases: list[Case] | tuple[Case, ...] = CASES) -> Path:
    """Every case's files, generated once: ``<folder>/<case key>/`` holds what the case puts in the year folder."""
    for c in cases:
        (folder / c.key).mkdir(parents=True, exist_ok=True)
        c.make(folder / c.key, c)
    return folder


def write_case_workspace(root: Path, cases: list[Case] | tuple[Case, ...], *, full: bool = False,
                         built: Path | None = None) -> Path:
    """A workspace at ``root``: the sample county (``full``) or only its bystander agency, plus the cases'
    agencies in the roster and their files in ``<root>/2024/`` (copied from ``built``, see ``build``, or
    generated). Returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SAMPLE / "county.toml", root / "county.toml")
    roster = _roster()
    keep = list(roster.values()) if full else [roster[BYSTANDER_CODE]]
    for a in keep:
        for y in (YEAR - 1, YEAR):
            src = sample_book(a.code, y)
            (root / str(y)).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, root / str(y) / src.name)
    agencies = keep + [a for c in cases for a in c.agencies]
    with open(root / "agencies.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["code", "name", "category"])
        for a in agencies:
            w.writerow([a.code, a.name, a.category])
    year_dir = root / str(YEAR)
    for c in cases:
        if built is not None:
            shutil.copytree(built / c.key, year_dir, dirs_exist_ok=True)
        else:
            c.make(year_dir, c)
    return root


def bystanders(full: bool) -> list[Agency]:
    roster = _roster()
    return list(roster.values()) if full else [roster[BYSTANDER_CODE]]


# =============================================================================================================
# Running


@dataclass
class Outcome:
    """What one run over a corpus workspace left: the run's result or its traceback, and the folder before/after."""

    root: Path
    out: Path  # <output>/<year>
    exit_code: int | None
    error: str  # the traceback when the run raised
    before: dict[str, str]  # every file under the workspace (and anything else under root but the output) → sha256
    after: dict[str, str]


def snapshot(root: Path, skip: Path) -> dict[str, str]:
    import hashlib

    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == skip:
            dirnames[:] = []
            continue
        for f in filenames:
            p = Path(dirpath) / f
            out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def png_1x1() -> bytes:
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\xff\xff")) + chunk(b"IEND", b""))


def execute(root: Path, jobs: int = 1, charts: bool = True) -> Outcome:
    """``run.run`` (render=True) over the workspace ``<root>/ws`` into ``<root>/out``; never raises.

    ``charts=False`` puts a 1×1 picture in place of the county summary's matplotlib charts (two thirds of a
    small run's time); the run over every case together draws them, with every case's agency names.
    """
    import traceback

    from pipeline import render, run, workspace

    out = root / "out"
    before = snapshot(root, out)
    code, error = None, ""
    real = render.chart_png
    if not charts:
        render.chart_png = lambda chart: png_1x1()
    try:
        ws = workspace.load(root / "ws")
        code = run.run(ws, YEAR, out, render=True, jobs=jobs).exit_code
    except BaseException:  # noqa: BLE001 - the test reports it
        error = traceback.format_exc()
    finally:
        render.chart_png = real
    return Outcome(root, out / str(YEAR), code, error, before, snapshot(root, out))


def prepare_and_execute(root: Path, keys: tuple[str, ...], full: bool, jobs: int = 1, charts: bool = True,
                        built: Path | None = None) -> Outcome:
    """A workspace for the cases ``keys`` under ``<root>/ws`` (see write_case_workspace), then ``execute``."""
    write_case_workspace(root / "ws", [CASE[k] for k in keys], full=full, built=built)
    return execute(root, jobs, charts)
