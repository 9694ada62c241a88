"""The importer's fast workbook writer: the template built once per process, each report's values written into
copies of its XML parts.

Building the template with openpyxl (styles, validations, protection, ~200 defined names) and saving it costs
~140 ms a report — most of an import. Here the workbook of an empty plan (output.build_plan: the template of the
year, with the roster's fields an agency has, and a 来源 sheet of one row so that its styles exist) is built once per
process and its parts kept (``_Base``). A report's workbook is then those parts with its cells replaced: each cell
the plan writes is found in the template's sheet XML by its defined name's sheet and reference (the span of its
``<c>`` element) and replaced by a ``<c>`` of the same style holding the number (its exact literal) or an inline
string (XML-escaped; ST_Xstring escapes are the plan's); a total the report prints replaces its formula; an
unreadable cell's note is added to the sheet's comments and VML drawing; the 来源 sheet's rows replace its
``sheetData``; the agency's name and code go into the document properties. Parts that do not change are not
deflated again (ooxml.zip_members with a cache). A few milliseconds a report.

It writes what output.build_plan writes: the first report of each base in a process is also built with openpyxl
and the two workbooks are compared part by part (``differences``: every cell's reference, style, type, value and
formula; comments and their shapes; document properties; every other part byte for byte). When they differ, or
the template's XML is not what this writer expects (a cell not found), the process writes with openpyxl from then
on and logs why — the same workbook, only slower. Nothing here reaches into openpyxl: it reads the XML openpyxl
wrote, and checks it.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import re
import xml.etree.ElementTree as ET
import zipfile
from decimal import Decimal
from pathlib import PurePosixPath

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from .. import ooxml, spec
from ..xlsx_reader import resolve_target
from ..workspace import Agency
from . import output

log = logging.getLogger(__name__)

# Placeholders of the roster agency's values in the base (private-use characters no report contains).
_NAME_MARK, _CODE_MARK, _FIELD_MARK = "\ue000", "\ue001", "\ue002"
_CELL_RE = re.compile(rb'<c r="([A-Z]{1,3}[0-9]{1,7})"(?: s="([0-9]+)")?[^>]*?(?:/>|>.*?</c>)', re.S)
_SHAPE_RE = re.compile(rb"<(\w+):shape [^>]*>.*?</\1:shape>", re.S)
_SHAPE_ID_RE = re.compile(rb'id="_x0000_s([0-9]+)"')
_NS = {"main": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
       "rel": "http://schemas.openxmlformats.org/package/2006/relationships"}
_REL_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_COMMENTS_REL = "/comments"
_VML_REL = "/vmlDrawing"

#: Why this process writes with openpyxl ('' while the fast path is in use).
_disabled = ""
_bases: dict[tuple, _Base | None] = {}


class NotFast(Exception):
    """The base (or one report) cannot be written by this writer: openpyxl writes it."""


def problem() -> str:
    """'' while this process writes with the fast path, else why it does not."""
    return _disabled


def workbook_bytes(p: output.Plan) -> bytes:
    """The .xlsx bytes of a plan: what ``output.workbook_bytes(p)`` gives (read back), in a few milliseconds."""
    global _disabled
    if _disabled:
        return output.workbook_bytes(p)
    key = (p.year, _cover_key(p.agency), spec.FORMAT_VERSION)
    try:
        base = _bases.get(key)
        if base is None:
            base = _bases[key] = _Base.build(p.year, p.agency)
        data = base.fill(p)
    except NotFast as e:
        if e.args and e.args[0] == "report":  # this report only (say, a note on a sheet without comments)
            return output.workbook_bytes(p)
        _disabled = f"fast workbook writer off: {e}"
        log.warning(_disabled)
        return output.workbook_bytes(p)
    if not base.checked:
        reference = output.workbook_bytes(p)
        diff = differences(data, reference)
        if diff:
            _disabled = "fast workbook writer off: differs from openpyxl's workbook: " + "; ".join(diff[:5])
            log.warning(_disabled)
            return reference
        base.checked = True
    return data


def _cover_key(agency: Agency | None) -> tuple[str, ...] | None:
    return None if agency is None else tuple(sorted(agency.cover()))


def _dummy(agency: Agency) -> Agency:
    """An agency with the same roster fields as ``agency``, each holding a placeholder."""
    values = {}
    for f in dataclasses.fields(Agency):
        marks = {"name": _NAME_MARK, "code": _CODE_MARK}
        values[f.name] = marks.get(f.name, _FIELD_MARK) if getattr(agency, f.name) else ""
    return Agency(**values)


def _clean(text: str) -> str:
    return ILLEGAL_CHARACTERS_RE.sub("", text)


def _escape(text: str) -> bytes:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").encode("utf-8")


def _literal(value) -> bytes:
    """The exact decimal literal of a number, without exponent."""
    if isinstance(value, bool):
        raise TypeError("不支持布尔值")
    if isinstance(value, int):
        return str(value).encode()
    d = Decimal(repr(value)) if isinstance(value, float) else value
    if not isinstance(d, Decimal) or not d.is_finite():
        raise ValueError(f"{value!r} 不是有限数值")
    if d == d.to_integral_value():
        return str(int(d)).encode()
    return format(d.normalize(), "f").encode()


def _string_cell(ref: bytes, style: bytes, text: str) -> bytes:
    if ILLEGAL_CHARACTERS_RE.search(text):
        raise ValueError("文字中含有工作表不能保存的控制字符")
    if not text:
        return b'<c r="%s"%s t="inlineStr"/>' % (ref, style)
    space = b' xml:space="preserve"' if text != text.strip() else b""
    return b'<c r="%s"%s t="inlineStr"><is><t%s>%s</t></is></c>' % (ref, style, space, _escape(text))


def _cell(ref: bytes, style: bytes, value) -> bytes:
    if isinstance(value, str):
        return _string_cell(ref, style, value)
    return b'<c r="%s"%s t="n"><v>%s</v></c>' % (ref, style, _literal(value))


def _col_row(ref: str) -> tuple[int, int]:
    m = re.fullmatch(r"([A-Z]+)([0-9]+)", ref)
    col = 0
    for ch in m.group(1):
        col = col * 26 + ord(ch) - 64
    return col, int(m.group(2))


@dataclasses.dataclass
class _Base:
    members: list[tuple[str, bytes]]
    sheet_part: dict[str, str]  # sheet name → part
    cells: dict[str, dict[str, tuple[int, int, bytes]]]  # part → ref → (start, end, ' s="N"')
    comments: dict[str, tuple[str, str]]  # part → (its comments part, its VML part)
    source: tuple[str, bytes, bytes, bytes, bytes, bytes]  # part, head, between, tail, header style, body style
    properties: dict[str, tuple[bytes, str]]  # part → (the placeholder it holds, what replaces it)
    cache: dict = dataclasses.field(default_factory=dict)
    checked: bool = False

    @classmethod
    def build(cls, year: int, agency: Agency | None) -> _Base:
        dummy = _dummy(agency) if agency is not None else None
        rows = (("x", "x", "x", "x"),)
        data = output.workbook_bytes(output.Plan(year, dummy, {}, {}, {}, {}, rows))
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            members = [(i.filename, z.read(i.filename)) for i in z.infolist()]
        body = dict(members)
        try:
            wb = ET.fromstring(body["xl/workbook.xml"])
            rels = ET.fromstring(body["xl/_rels/workbook.xml.rels"])
        except (KeyError, ET.ParseError) as e:
            raise NotFast(f"template parts: {e}") from e
        target = {r.get("Id"): resolve_target("xl/workbook.xml", r.get("Target", "")) for r in rels}
        sheet_part = {s.get("name"): target.get(s.get(_REL_ID), "") for s in wb.iter(f"{{{_NS['main']}}}sheet")}
        cells: dict[str, dict[str, tuple[int, int, bytes]]] = {}
        comments: dict[str, tuple[str, str]] = {}
        for part in sheet_part.values():
            if part not in body:
                raise NotFast(f"no part {part}")
            cells[part] = {m.group(1).decode(): (m.start(), m.end(), b' s="%s"' % m.group(2) if m.group(2) else b"")
                           for m in _CELL_RE.finditer(body[part])}
            rel_part = str(PurePosixPath(part).parent / "_rels" / (PurePosixPath(part).name + ".rels"))
            if rel_part in body:
                found = {}
                for r in ET.fromstring(body[rel_part]):
                    for kind in (_COMMENTS_REL, _VML_REL):
                        if r.get("Type", "").endswith(kind):
                            found[kind] = resolve_target(part, r.get("Target", ""))
                if len(found) == 2 and all(p in body for p in found.values()):
                    comments[part] = (found[_COMMENTS_REL], found[_VML_REL])
        names = spec.all_defined_names()
        for name in [f.name for f in spec.FIELDS] + [c.name for c in spec.CELLS]:
            sheet, ref = names[name]
            if ref not in cells.get(sheet_part.get(sheet, ""), {}):
                raise NotFast(f"{name} ({sheet}!{ref}) not found in the template's XML")
        part = sheet_part.get(output.SOURCE_SHEET, "")
        src = body.get(part, b"")
        try:
            i = src.index(b'<dimension ref="') + len(b'<dimension ref="')
            j = src.index(b'"', i)
            k = src.index(b"<sheetData>") + len(b"<sheetData>")
            m = src.index(b"</sheetData>")
        except ValueError as e:
            raise NotFast("the 来源 sheet's XML") from e
        styles = [cells[part].get(ref, (0, 0, b""))[2] for ref in ("A1", "A2")]
        source = (part, src[:i], src[j:k], src[m:], styles[0], styles[1])
        properties = {}
        if agency is not None:
            for part_name, mark in (("docProps/core.xml", _NAME_MARK), ("docProps/custom.xml", _CODE_MARK)):
                if body.get(part_name, b"").count(mark.encode()) != 1:
                    raise NotFast(f"the agency's placeholder in {part_name}")
                properties[part_name] = (mark.encode(), "name" if mark == _NAME_MARK else "code")
        return cls(members, sheet_part, cells, comments, source, properties)

    def fill(self, p: output.Plan) -> bytes:
        names = spec.all_defined_names()
        by_part: dict[str, dict[str, bytes]] = {}

        def put(name: str, value) -> None:
            sheet, ref = names[name]
            part = self.sheet_part[sheet]
            style = self.cells[part][ref][2]
            by_part.setdefault(part, {})[ref] = _cell(ref.encode(), style, value)

        if p.agency is not None:
            cover = p.agency.cover()
            for f in spec.fields(sheet=spec.SHEET_INFO):
                if f.key in cover:
                    put(f.name, _clean(cover[f.key]))
        for name, value in p.fields.items():
            put(name, value)
        for name, value in p.inputs.items():
            put(name, value)
        for name, value in p.printed.items():
            put(name, value)
        notes: dict[str, list[tuple[str, str]]] = {}
        for name, note in p.unreadable.items():
            put(name, output.UNREADABLE_MARK)
            sheet, ref = names[name]
            notes.setdefault(self.sheet_part[sheet], []).append((ref, note))
        changed: dict[str, bytes] = {}
        body = dict(self.members)
        for part, repl in by_part.items():
            changed[part] = self._splice(part, body[part], repl)
        for part, items in notes.items():
            if part not in self.comments:
                raise NotFast("report")
            cpart, vpart = self.comments[part]
            changed[cpart], changed[vpart] = _add_comments(body[cpart], body[vpart], items)
        changed[self.source[0]] = self._source(p.source_rows)
        for part, (mark, what) in self.properties.items():
            value = p.agency.name if what == "name" else p.agency.code
            changed[part] = body[part].replace(mark, _escape(_clean(value)))
        return ooxml.zip_members([(n, changed.get(n, b)) for n, b in self.members], self.cache)

    def _splice(self, part: str, data: bytes, repl: dict[str, bytes]) -> bytes:
        spans = self.cells[part]
        out, at = [], 0
        for ref in sorted(repl, key=lambda r: spans[r][0]):
            start, end, _ = spans[ref]
            out += (data[at:start], repl[ref])
            at = end
        out.append(data[at:])
        return b"".join(out)

    def _source(self, rows) -> bytes:
        part, head, between, tail, header_style, body_style = self.source
        out = [head, b"A1:D%d" % (len(rows) + 1), between]
        for r, values in enumerate((output.SOURCE_HEADER, *rows), start=1):
            style = header_style if r == 1 else body_style
            out.append(b'<row r="%d">' % r)
            for col, text in zip(b"ABCD", values):
                out.append(_string_cell(b"%c%d" % (col, r), style, text))
            out.append(b"</row>")
        out.append(tail)
        return b"".join(out)


def _add_comments(comments: bytes, vml: bytes, items: list[tuple[str, str]]) -> tuple[bytes, bytes]:
    """The sheet's comments and VML drawing with a note (output.AUTHOR's) on each (ref, text) of ``items``."""
    author = b"<author>%s</author>" % _escape(output.AUTHOR)
    authors = re.findall(rb"<author>.*?</author>|<author/>", comments)
    if author in authors:
        author_id = authors.index(author)
    else:
        author_id = len(authors)
        if b"</authors>" not in comments:
            raise NotFast("report")
        comments = comments.replace(b"</authors>", author + b"</authors>", 1)
    shape = _SHAPE_RE.search(vml)
    if shape is None or b"</commentList>" not in comments or not vml.rstrip().endswith(b"</xml>"):
        raise NotFast("report")
    next_id = max(int(i) for i in _SHAPE_ID_RE.findall(vml)) + 1
    added, shapes = [], []
    width, height = output.COMMENT_SIZE
    for ref, text in items:
        added.append(b'<comment ref="%s" authorId="%d" shapeId="0"><text><t>%s</t></text></comment>'
                     % (ref.encode(), author_id, _escape(_clean(text))))
        col, row = _col_row(ref)
        s = shape.group(0)
        s = re.sub(rb"(<\w+:Row>)[0-9]+(</\w+:Row>)", rb"\g<1>%d\g<2>" % (row - 1), s)
        s = re.sub(rb"(<\w+:Column>)[0-9]+(</\w+:Column>)", rb"\g<1>%d\g<2>" % (col - 1), s)
        s = re.sub(rb"width:[0-9.]+px;height:[0-9.]+px", b"width:%dpx;height:%dpx" % (width, height), s)
        s = _SHAPE_ID_RE.sub(b'id="_x0000_s%04d"' % next_id, s)
        next_id += 1
        shapes.append(s)
    comments = comments.replace(b"</commentList>", b"".join(added) + b"</commentList>", 1)
    end = vml.rindex(b"</xml>")
    return comments, vml[:end] + b"".join(shapes) + vml[end:]


# ---- the check: two workbooks that read the same --------------------------------------------------------------


def _sheet_digest(data: bytes):
    root = ET.fromstring(data)
    out = []
    for child in root:
        if child.tag.endswith("}sheetData"):
            for row in child:
                cells = []
                for c in row:
                    v = c.find(f"{{{_NS['main']}}}v")
                    f = c.find(f"{{{_NS['main']}}}f")
                    inline = c.find(f"{{{_NS['main']}}}is")
                    text = "".join(inline.itertext()) if inline is not None else v.text if v is not None else None
                    if c.get("t") == "n" and text not in (None, ""):
                        text = Decimal(text)
                    cells.append((c.get("r"), c.get("s"), c.get("t"), text or None,
                                  None if f is None else (f.text, tuple(sorted(f.attrib.items())))))
                out.append((tuple(sorted(row.attrib.items())), cells))
        else:
            out.append(ET.tostring(child))
    return out


def _comments_digest(data: bytes):
    root = ET.fromstring(data)
    authors = [a.text for a in root.iter(f"{{{_NS['main']}}}author")]
    return sorted((c.get("ref"), authors[int(c.get("authorId", 0))], "".join(c.itertext()))
                  for c in root.iter(f"{{{_NS['main']}}}comment"))


def _vml_digest(data: bytes):
    shapes = []
    for m in _SHAPE_RE.finditer(data):
        s = _SHAPE_ID_RE.sub(b"", m.group(0))
        shapes.append(s)
    return sorted(shapes), _SHAPE_RE.sub(b"", data)


def _tree_digest(data: bytes):
    return [(el.tag, tuple(sorted(el.attrib.items())), el.text or "") for el in ET.fromstring(data).iter()]


def differences(mine: bytes, theirs: bytes) -> list[str]:
    """How two workbooks differ in what they hold (parts, cells, comments, properties); [] when they do not."""
    out = []
    with zipfile.ZipFile(io.BytesIO(mine)) as a, zipfile.ZipFile(io.BytesIO(theirs)) as b:
        if a.namelist() != b.namelist():
            return [f"parts {sorted(set(a.namelist()) ^ set(b.namelist()))}"]
        for name in a.namelist():
            x, y = a.read(name), b.read(name)
            if x == y:
                continue
            if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                dx, dy = _sheet_digest(x), _sheet_digest(y)
            elif name.startswith("xl/comments/"):
                dx, dy = _comments_digest(x), _comments_digest(y)
            elif name.endswith(".vml"):
                dx, dy = _vml_digest(x), _vml_digest(y)
            elif name.startswith("docProps/"):
                dx, dy = _tree_digest(x), _tree_digest(y)
            else:
                dx, dy = x, y
            if dx != dy:
                out.append(_first_difference(name, dx, dy))
    return out


def _first_difference(name: str, x, y) -> str:
    if isinstance(x, list) and isinstance(y, list):
        for i, (p, q) in enumerate(zip(x, y)):
            if p != q:
                return f"{name} item {i}: {str(p)[:200]} != {str(q)[:200]}"
        return f"{name}: {len(x)} items != {len(y)}"
    return f"{name} differs"
