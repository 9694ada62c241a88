"""Published reports → one neutral document model: paragraphs and tables in reading order, with provenance.

A table is a grid of cell texts with its row and column spans resolved: every cell is kept once, at the row and
column where it starts, with how many rows and columns it covers (a merged label of table 三 is one cell of
rowspan 22, not 22 copies). Paragraphs keep their text as printed (line breaks inside a paragraph removed only
where the source wraps lines: PDF). Nothing here knows the format; pipeline/importer/recognise.py reads it.

Extractors (one kept library per kind, no hand-written parsing of the markup itself):

- .docx: the main document part (found by the package's relationships) parsed with lxml as python-docx parses it
  (python-docx itself opens a package that does not say where its main part is); the body is walked in order
  (w:p, w:tbl), merged cells from w:gridSpan and w:vMerge, w:gridBefore honoured.
- .html / .htm: lxml.html (libxml2's HTML parser, made for real-world markup); rowspan/colspan resolved, <p>, <br>
  and <div> inside cells as line breaks, &nbsp; as a space, scripts and styles dropped; the charset from the
  page's <meta> (else UTF-8, else GB18030).
- .pdf: pdfplumber (pdfminer.six): ruled tables by their lines, the text outside them as lines joined into
  paragraphs by their first-line indent; page numbers dropped; spaces pdfminer puts between Chinese and
  Latin/digit runs (a change of font, not a space) removed.
- .txt / .md: paragraphs by line; Markdown pipe tables and tab-separated lines as tables; '#' headings as
  paragraphs.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

SUFFIXES: dict[str, str] = {".docx": "docx", ".html": "html", ".htm": "html", ".shtml": "html", ".pdf": "pdf",
                            ".txt": "text", ".md": "text", ".markdown": "text"}
KIND_LABEL = {"docx": "Word 文档", "html": "网页", "pdf": "PDF", "text": "文本"}


class ExtractError(Exception):
    """A source that cannot be opened as its kind (the message is Chinese)."""


@dataclass(frozen=True)
class Cell:
    text: str
    row: int  # 0-based grid row where the cell starts
    col: int  # 0-based grid column where the cell starts
    rowspan: int = 1
    colspan: int = 1


@dataclass(frozen=True)
class Table:
    index: int  # 1-based, in document order
    cells: tuple[Cell, ...]  # each cell once, row-major by where it starts
    page: int = 0  # PDF page (1-based), 0 elsewhere

    @property
    def nrows(self) -> int:
        return max((c.row + c.rowspan for c in self.cells), default=0)

    @property
    def ncols(self) -> int:
        return max((c.col + c.colspan for c in self.cells), default=0)

    def rows(self) -> list[list[Cell]]:
        """The cells that start in each grid row, in column order."""
        out: list[list[Cell]] = [[] for _ in range(self.nrows)]
        for c in self.cells:
            out[c.row].append(c)
        for r in out:
            r.sort(key=lambda c: c.col)
        return out

    def grid(self) -> list[list[Cell | None]]:
        """Every grid position → the cell covering it (a merged cell at each position it covers)."""
        g: list[list[Cell | None]] = [[None] * self.ncols for _ in range(self.nrows)]
        for c in self.cells:
            for r in range(c.row, c.row + c.rowspan):
                for k in range(c.col, c.col + c.colspan):
                    g[r][k] = c
        return g


@dataclass(frozen=True)
class Paragraph:
    index: int  # 1-based, in document order
    text: str
    page: int = 0


Block = Paragraph | Table


@dataclass(frozen=True)
class Document:
    path: Path
    kind: str  # docx / html / pdf / text
    blocks: tuple[Block, ...]
    meta: dict = field(default_factory=dict)  # e.g. the HTML <title>

    def paragraphs(self) -> list[Paragraph]:
        return [b for b in self.blocks if isinstance(b, Paragraph)]

    def tables(self) -> list[Table]:
        return [b for b in self.blocks if isinstance(b, Table)]


def kind_of(path: Path) -> str | None:
    return SUFFIXES.get(path.suffix.lower())


def extract(path: Path, data: bytes | None = None) -> Document:
    """The document model of one source file (``data``: its bytes, when already read)."""
    kind = kind_of(path)
    if kind is None:
        raise ExtractError(f"不支持的文件类型“{path.suffix}”")
    data = path.read_bytes() if data is None else data
    try:
        return _EXTRACTORS[kind](path, data)
    except ExtractError:
        raise
    except Exception as e:  # a damaged file of that kind: the library's own exception
        raise ExtractError(f"无法按{KIND_LABEL[kind]}打开（{type(e).__name__}: {str(e)[:120]}）") from e


class _Builder:
    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.tables = 0
        self.paras = 0

    def para(self, text: str, page: int = 0) -> None:
        text = text.strip()
        if text:
            self.paras += 1
            self.blocks.append(Paragraph(self.paras, text, page))

    def table(self, cells: list[Cell], page: int = 0) -> None:
        if cells:
            self.tables += 1
            self.blocks.append(Table(self.tables, tuple(sorted(cells, key=lambda c: (c.row, c.col))), page))


# ------------------------------------------------------------------------------------------------ .docx

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _docx_text(el) -> str:
    """The text of a w:p or w:tc: runs' text, w:tab as a space, w:br / w:cr and paragraph ends as line breaks."""
    out: list[str] = []
    for node in el.iter(_W + "t", _W + "tab", _W + "br", _W + "cr", _W + "p"):
        tag = node.tag
        if tag == _W + "t":
            out.append(node.text or "")
        elif tag == _W + "tab":
            out.append(" ")
        elif tag == _W + "p":
            if out:
                out.append("\n")
        else:
            out.append("\n")
    return "".join(out).strip()


#: The relationship type of a package's main document part (_rels/.rels), transitional and strict OOXML.
_OFFICE_DOCUMENT = ("http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument",
                    "http://purl.oclc.org/ooxml/officeDocument/relationships/officeDocument")
MAX_DOCX_PART_BYTES = 64 * 1024 * 1024  # the main document part, uncompressed (a report's is ~100 KB)


def _docx_body(data: bytes):
    """The w:body of a .docx: its main document part, found by the package's relationships and parsed with lxml
    as python-docx parses it (no entities, blank text removed) — without loading the package's other parts
    (styles, numbering, theme…), which python-docx parses on opening and nothing here reads. None when the package
    does not say where its main part is (python-docx then opens it, and says what is wrong)."""
    import io
    import posixpath
    import zipfile

    from lxml import etree

    with zipfile.ZipFile(io.BytesIO(data)) as z:
        try:
            rels = etree.fromstring(z.read("_rels/.rels"), _xml_parser())
        except (KeyError, etree.XMLSyntaxError):
            return None
        target = next((r.get("Target", "") for r in rels if r.get("Type") in _OFFICE_DOCUMENT), None)
        if not target:
            return None
        name = posixpath.normpath(target.lstrip("/"))
        try:
            info = z.getinfo(name)
        except KeyError:
            return None
        if info.file_size > MAX_DOCX_PART_BYTES:
            raise ExtractError(f"Word 文档正文过大（{info.file_size // 1024 // 1024} MB）")
        root = etree.fromstring(z.read(info), _xml_parser())
    return root.find(_W + "body") if root.tag == _W + "document" else None


@functools.cache
def _xml_parser():
    """python-docx's parser options (docx.oxml.parser), and no network."""
    from lxml import etree

    return etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)


def _docx(path: Path, data: bytes) -> Document:
    import io

    body = _docx_body(data)
    if body is None:
        import docx

        body = docx.Document(io.BytesIO(data)).element.body
    b = _Builder()
    for el in body.iterchildren():
        if el.tag == _W + "p":
            b.para(_docx_text(el))
        elif el.tag == _W + "tbl":
            b.table(_docx_table(el))
        elif el.tag == _W + "sdt":  # content controls wrap paragraphs and tables
            for sub in el.iter(_W + "p", _W + "tbl"):
                if sub.tag == _W + "tbl":
                    b.table(_docx_table(sub))
                elif sub.getparent().tag != _W + "tc":
                    b.para(_docx_text(sub))
    return Document(path, "docx", tuple(b.blocks))


def _int_attr(el, tag: str, default: int) -> int:
    node = el.find(tag)
    if node is None:
        return default
    try:
        return int(node.get(_W + "val"))
    except (TypeError, ValueError):
        return default


def _docx_table(tbl) -> list[Cell]:
    cells: list[dict] = []
    above: dict[int, dict] = {}  # grid column → the cell covering it in the row above
    for r, tr in enumerate(tbl.iterchildren(_W + "tr")):
        trpr = tr.find(_W + "trPr")
        col = _int_attr(trpr, _W + "gridBefore", 0) if trpr is not None else 0
        here: dict[int, dict] = {}
        for tc in tr.iterchildren(_W + "tc"):
            tcpr = tc.find(_W + "tcPr")
            span = _int_attr(tcpr, _W + "gridSpan", 1) if tcpr is not None else 1
            vmerge = tcpr.find(_W + "vMerge") if tcpr is not None else None
            cont = vmerge is not None and vmerge.get(_W + "val", "continue") == "continue"
            origin = above.get(col) if cont else None
            if origin is not None and origin["row"] + origin["rowspan"] == r:
                origin["rowspan"] += 1
            else:
                origin = {"text": _docx_text(tc), "row": r, "col": col, "rowspan": 1, "colspan": max(span, 1)}
                cells.append(origin)
            for k in range(col, col + max(span, 1)):
                here[k] = origin
            col += max(span, 1)
        above = here
    return [Cell(**c) for c in cells]


# ------------------------------------------------------------------------------------------------ .html

_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-]+)""", re.I)
_BLOCK_TAGS = frozenset({"p", "div", "br", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "section", "article",
                         "blockquote", "pre", "dt", "dd", "center", "hr", "ul", "ol", "dl", "form", "header",
                         "footer", "main", "nav", "aside", "caption", "figure", "address"})
_SKIP_TAGS = frozenset({"script", "style", "noscript", "head", "template", "iframe", "object", "select", "button"})


def _decode_html(data: bytes) -> str:
    m = _CHARSET.search(data[:4096])
    candidates = ([m.group(1).decode("ascii")] if m else []) + ["utf-8", "gb18030"]
    for enc in candidates:
        enc = {"gb2312": "gb18030", "gbk": "gb18030"}.get(enc.lower(), enc)
        try:
            return data.decode(enc)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("utf-8", errors="replace")


def _html(path: Path, data: bytes) -> Document:
    import lxml.html

    text = _decode_html(data)
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)  # an XML declaration in a str is refused by lxml
    root = lxml.html.document_fromstring(text or "<html></html>")
    title = (root.findtext(".//title") or "").strip()
    body = root.find("body")
    b = _Builder()
    buf: list[str] = []

    def flush() -> None:
        b.para(_ws("".join(buf)))
        buf.clear()

    def walk(el) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag in _SKIP_TAGS:
            if el.tail:
                buf.append(el.tail)
            return
        if tag == "table":
            flush()
            b.table(_html_table(el))
        else:
            block = tag in _BLOCK_TAGS
            if block:
                flush()
            if el.text and tag:
                buf.append(el.text)
            for child in el:
                walk(child)
            if block:
                flush()
        if el.tail:
            buf.append(el.tail)

    walk(body if body is not None else root)
    flush()
    return Document(path, "html", tuple(b.blocks), {"title": _ws(title)})


def _ws(s: str) -> str:
    """Runs of spaces (&nbsp; and full-width spaces included) as one space; line breaks kept."""
    s = s.replace("\r", "")
    s = re.sub(r"[ \t\u00a0\u3000\u2002\u2003\u2009\u200b\ufeff]+", " ", s)
    return re.sub(r" *\n[ \n]*", "\n", s).strip()


def _cell_text(el) -> str:
    """A cell's text: <p>, <div>, <br> and <li> as line breaks (labels split as <p>商业</p><p>企业</p>)."""
    out: list[str] = []

    def walk(e) -> None:
        tag = e.tag if isinstance(e.tag, str) else ""
        if tag in _SKIP_TAGS:
            pass
        else:
            if tag in _BLOCK_TAGS:
                out.append("\n")
            if e.text and tag:
                out.append(e.text)
            for c in e:
                walk(c)
            if tag in _BLOCK_TAGS:
                out.append("\n")
        if e.tail and e is not el:
            out.append(e.tail)

    walk(el)
    return _ws("".join(out))


def _span(el, attr: str) -> int:
    try:
        v = int(re.sub(r"\D", "", el.get(attr, "1")) or 1)
    except ValueError:
        v = 1
    return min(max(v, 1), 1000)


def _html_rows(table) -> list:
    rows = []
    for child in table:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag == "tr":
            rows.append(child)
        elif tag in ("thead", "tbody", "tfoot"):
            rows += [tr for tr in child if isinstance(tr.tag, str) and tr.tag == "tr"]
    return rows


def _html_table(table) -> list[Cell]:
    cells: list[Cell] = []
    taken: set[tuple[int, int]] = set()
    for r, tr in enumerate(_html_rows(table)):
        col = 0
        for td in tr:
            if not isinstance(td.tag, str) or td.tag not in ("td", "th"):
                continue
            while (r, col) in taken:
                col += 1
            rs, cs = _span(td, "rowspan"), _span(td, "colspan")
            cells.append(Cell(_cell_text(td), r, col, rs, cs))
            for i in range(r, r + rs):
                for k in range(col, col + cs):
                    taken.add((i, k))
            col += cs
    return cells


# ------------------------------------------------------------------------------------------------ .pdf

_CJK = r"\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f"
_SPACE_BY_CJK = re.compile(rf"(?<=[{_CJK}]) +| +(?=[{_CJK}])")
_PAGE_NUMBER = re.compile(r"^[\s—–\-－·]*\d{1,4}[\s—–\-－·]*$|^[\s—–\-－]+$")
#: A line starting this much (pt) right of the text's left edge opens a paragraph (first-line indent 2 字).
PDF_INDENT_PT = 12.0


def _pdf_text(s: str) -> str:
    return _SPACE_BY_CJK.sub("", s).strip()


def _pdf(path: Path, data: bytes) -> Document:
    import io

    import pdfplumber

    b = _Builder()
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        items: list[tuple[int, float, object]] = []  # (page, top, lines-or-table)
        for pno, page in enumerate(pdf.pages, start=1):
            tables = page.find_tables()
            boxes = [t.bbox for t in tables]

            def outside(obj, boxes=boxes) -> bool:
                x = (obj["x0"] + obj["x1"]) / 2
                y = (obj["top"] + obj["bottom"]) / 2
                return not any(b0 <= x <= b2 and b1 <= y <= b3 for b0, b1, b2, b3 in boxes)

            rest = page.filter(outside) if boxes else page
            for ln in rest.extract_text_lines(strip=True):
                text = _pdf_text(ln["text"])
                if text and not _PAGE_NUMBER.match(text):
                    items.append((pno, ln["top"], (ln["x0"], ln["x1"], text)))
            for t in tables:
                items.append((pno, t.bbox[1], _pdf_table(t)))
        items.sort(key=lambda it: (it[0], it[1]))
        left = min((it[2][0] for it in items if isinstance(it[2], tuple)), default=0.0)
        para: list[str] = []
        page_of = 0

        def flush() -> None:
            b.para("".join(para), page_of)
            para.clear()

        for pno, _top, it in items:
            if isinstance(it, list):
                flush()
                b.table(it, pno)
                continue
            x0, _x1, text = it
            if para and x0 - left > PDF_INDENT_PT:  # a first-line indent (or a heading, a signature line)
                flush()
            if not para:
                page_of = pno
            para.append(text)
        flush()
    return Document(path, "pdf", tuple(b.blocks))


def _pdf_table(t) -> list[Cell]:
    """pdfplumber's table → cells. Its grid gives None at a position covered by a merged cell; the cells that
    start there are all the recogniser reads (spans are left at 1: pdfplumber does not give them)."""
    return [Cell(_pdf_text(text.replace("\n", "")), r, c)
            for r, row in enumerate(t.extract()) for c, text in enumerate(row) if text is not None]


# ------------------------------------------------------------------------------------------------ .txt / .md

_MD_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_MD_DASHES = re.compile(r"^[\s\-|:]+$")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*")
_MD_AUTOLINK = re.compile(r"<(https?://[^>\s]+)>")


def _decode_text(data: bytes) -> str:
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


def _text(path: Path, data: bytes) -> Document:
    b = _Builder()
    rows: list[list[str]] = []

    def flush_table() -> None:
        if rows:
            b.table([Cell(t.strip(), r, c) for r, row in enumerate(rows) for c, t in enumerate(row)])
            rows.clear()

    for raw in _decode_text(data).replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = unicodedata.normalize("NFC", raw)
        stripped = line.strip()
        if stripped.startswith("|"):
            if _MD_SEPARATOR.match(stripped):
                continue
            parts = stripped.strip("|").split("|")
            rows.append(parts)
            continue
        if "\t" in line.strip("\n") and line.strip(" \t"):
            if _MD_DASHES.match(line.replace("\t", "")):  # a Markdown '---' line under a tab row
                continue
            rows.append(line.split("\t"))
            continue
        flush_table()
        if not stripped or _MD_DASHES.match(stripped) and "-" in stripped:
            continue
        b.para(_MD_AUTOLINK.sub(r"\1", _MD_HEADING.sub("", stripped)))
    flush_table()
    return Document(path, "text", tuple(b.blocks))


_EXTRACTORS = {"docx": _docx, "html": _html, "pdf": _pdf, "text": _text}
