"""Build the Word templates of the reports from the spec (python-docx).

    python -m pipeline.templates.build          (writes pipeline/templates/agency.docx and county.docx)

The templates are ordinary Word documents: the office may open them in Word or WPS and change styles, add a
letterhead, etc. — as long as the ``{{ … }}`` / ``{%p … %}`` / ``{%tr … %}`` tags stay. Everything that is
typography lives in the styles (GB/T 9704: 仿宋_GB2312 三号 body, 黑体 / 楷体_GB2312 headings, 方正小标宋简体 二号
title, fixed 28 pt line spacing, A4 with 37/35/28/26 mm margins, "— 1 —" page numbers 4号 宋体 on the right of
odd pages and the left of even pages, each one character in); every label of
tables 二/三/四 and every section heading is taken from ``pipeline.spec``; every number cell holds one
placeholder ``{{ v.<defined name> }}``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from docx import Document
from docx.enum.section import WD_ORIENT, WD_SECTION
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.table import WD_ALIGN_VERTICAL, WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipeline import ooxml, spec

HERE = Path(__file__).resolve().parent
AGENCY_TEMPLATE = HERE / "agency.docx"
COUNTY_TEMPLATE = HERE / "county.docx"

# Fonts (GB/T 9704). East Asian names go to w:eastAsia; Latin digits and letters use Times New Roman.
FANGSONG = "仿宋_GB2312"
XIAOBIAOSONG = "方正小标宋简体"
HEITI = "黑体"
KAITI = "楷体_GB2312"
SONGTI = "宋体"
LATIN = "Times New Roman"

BODY_PT = 16  # 三号
TITLE_PT = 22  # 二号
TABLE_PT = 10.5  # 五号
ANNEX_TABLE_PT = 9  # 小五: the county summary's annex tables (13 columns on a landscape page)
LINE_PT = 28  # fixed line spacing
PAGE_NUMBER_PT = 14  # 四号

# Style names (Word built-in names for the headings, so the navigation pane and TOC work in Word and WPS).
S_BODY = "Normal"
S_TITLE = "Title"
S_H1 = "Heading 1"
S_H2 = "Heading 2"
S_TABLE = "Table Text"
S_TABLE_LEFT = "Table Text Left"
S_ANNEX = "Annex Table Text"  # the annex tables' cells (小五)
S_ANNEX_LEFT = "Annex Table Text Left"
S_ANNEX_HEADER = "Annex Table Header"  # their header rows: bold, repeated on every page
S_ANNEX_TOTAL = "Annex Table Total"  # their 合计 row: bold
S_ANNEX_TOTAL_LEFT = "Annex Table Total Left"
S_LEAD = "Lead"  # character style: the （一） lead-in of a paragraph, 楷体
S_FIGURE = "Figure"
S_CAPTION = "Caption"
S_DRAFT = "Draft Mark"
S_NOTE = "Note"
S_OPENING = "Opening"  # the opening paragraph: left-aligned, so its long URL does not spread the line before it
S_SIGNATURE = "Signature"  # 单位名称 and date at the end of the agency report
S_BODY_KEEP = "Body Keep Next"  # the report's last paragraph: never parted from the signature block

A4_W, A4_H = Mm(210), Mm(297)
MARGIN_TOP, MARGIN_BOTTOM, MARGIN_LEFT, MARGIN_RIGHT = Mm(37), Mm(35), Mm(28), Mm(26)
TEXT_W_MM = 210 - 28 - 26  # 156 mm
LANDSCAPE_TEXT_W_MM = 297 - 28 - 26  # 243 mm
CELL_PADDING_DXA = 57  # 0.1 cm left and right in table cells (a 10 mm number column still holds 4 digits)
SIGNATURE_RIGHT_CHARS = 4  # GB/T 9704 7.3.5.1: the date 右空四字


# ------------------------------------------------------------------------------------------------- styles


def _set_fonts(rpr_owner, east_asia: str, size_pt: float, *, bold: bool = False, color: str | None = None,
               latin: str = LATIN) -> None:
    """Replace the run properties of a style: fonts (w:eastAsia!), size, no theme fonts, no colour."""
    rpr = rpr_owner.get_or_add_rPr()
    for child in list(rpr):
        rpr.remove(child)
    fonts = OxmlElement("w:rFonts")
    fonts.set(qn("w:ascii"), latin)
    fonts.set(qn("w:hAnsi"), latin)
    fonts.set(qn("w:cs"), latin)
    fonts.set(qn("w:eastAsia"), east_asia)
    fonts.set(qn("w:hint"), "eastAsia")
    rpr.append(fonts)
    b = OxmlElement("w:b")
    b.set(qn("w:val"), "1" if bold else "0")
    rpr.append(b)
    i = OxmlElement("w:i")
    i.set(qn("w:val"), "0")
    rpr.append(i)
    col = OxmlElement("w:color")
    col.set(qn("w:val"), color or "000000")
    rpr.append(col)
    for tag in ("w:sz", "w:szCs"):
        sz = OxmlElement(tag)
        sz.set(qn("w:val"), str(round(size_pt * 2)))
        rpr.append(sz)
    lang = OxmlElement("w:lang")
    lang.set(qn("w:val"), "en-US")
    lang.set(qn("w:eastAsia"), "zh-CN")
    rpr.append(lang)


def _set_paragraph(style, *, align: str = "both", first_line_chars: int = 0, line_pt: float | None = LINE_PT,
                   before_pt: float = 0, after_pt: float = 0, outline: int | None = None,
                   keep_next: bool = False) -> None:
    ppr = style.element.get_or_add_pPr()
    for child in list(ppr):
        ppr.remove(child)
    if keep_next:
        ppr.append(OxmlElement("w:keepNext"))
    spacing = OxmlElement("w:spacing")
    spacing.set(qn("w:before"), str(int(before_pt * 20)))
    spacing.set(qn("w:after"), str(int(after_pt * 20)))
    if line_pt is None:
        spacing.set(qn("w:line"), "240")
        spacing.set(qn("w:lineRule"), "auto")
    else:
        spacing.set(qn("w:line"), str(int(line_pt * 20)))
        spacing.set(qn("w:lineRule"), "exact")
    ppr.append(spacing)
    ind = OxmlElement("w:ind")
    if first_line_chars:
        ind.set(qn("w:firstLineChars"), str(first_line_chars * 100))
        ind.set(qn("w:firstLine"), str(first_line_chars * BODY_PT * 20))
    else:
        ind.set(qn("w:firstLine"), "0")
        ind.set(qn("w:firstLineChars"), "0")
    ind.set(qn("w:left"), "0")
    ind.set(qn("w:right"), "0")
    ppr.append(ind)
    jc = OxmlElement("w:jc")
    jc.set(qn("w:val"), align)
    ppr.append(jc)
    if outline is not None:
        ol = OxmlElement("w:outlineLvl")
        ol.set(qn("w:val"), str(outline))
        ppr.append(ol)


def _paragraph_style(doc, name: str, base: str | None = S_BODY):
    styles = doc.styles
    try:
        st = styles[name]
    except KeyError:
        st = styles.add_style(name, WD_STYLE_TYPE.PARAGRAPH)
    if base and name != base:
        st.base_style = styles[base]
    st.quick_style = True
    return st


def _define_styles(doc) -> None:
    styles = doc.styles
    # document defaults: no theme fonts anywhere
    defaults = doc.styles.element.find(qn("w:docDefaults"))
    if defaults is not None:
        rpr = defaults.find(qn("w:rPrDefault") + "/" + qn("w:rPr"))
        if rpr is not None:
            for child in list(rpr):
                rpr.remove(child)
            fonts = OxmlElement("w:rFonts")
            for a in ("w:ascii", "w:hAnsi", "w:cs"):
                fonts.set(qn(a), LATIN)
            fonts.set(qn("w:eastAsia"), FANGSONG)
            rpr.append(fonts)
            lang = OxmlElement("w:lang")
            lang.set(qn("w:val"), "en-US")
            lang.set(qn("w:eastAsia"), "zh-CN")
            rpr.append(lang)

    body = styles[S_BODY]
    _set_fonts(body.element, FANGSONG, BODY_PT)
    _set_paragraph(body, align="both", first_line_chars=2)

    title = _paragraph_style(doc, S_TITLE)
    _set_fonts(title.element, XIAOBIAOSONG, TITLE_PT, latin=XIAOBIAOSONG)  # the year in the title too
    _set_paragraph(title, align="center", line_pt=36, after_pt=LINE_PT)

    h1 = _paragraph_style(doc, S_H1)
    _set_fonts(h1.element, HEITI, BODY_PT)
    _set_paragraph(h1, align="both", first_line_chars=2, outline=0, keep_next=True)

    h2 = _paragraph_style(doc, S_H2)
    _set_fonts(h2.element, KAITI, BODY_PT)
    _set_paragraph(h2, align="both", first_line_chars=2, outline=1, keep_next=True)

    table = _paragraph_style(doc, S_TABLE)
    _set_fonts(table.element, SONGTI, TABLE_PT)
    _set_paragraph(table, align="center", line_pt=None)
    table_left = _paragraph_style(doc, S_TABLE_LEFT, S_TABLE)
    _set_fonts(table_left.element, SONGTI, TABLE_PT)
    _set_paragraph(table_left, align="left", line_pt=None)

    for name, base, align, bold in ((S_ANNEX, S_TABLE, "center", False), (S_ANNEX_LEFT, S_TABLE, "left", False),
                                    (S_ANNEX_HEADER, S_TABLE, "center", True),
                                    (S_ANNEX_TOTAL, S_TABLE, "center", True),
                                    (S_ANNEX_TOTAL_LEFT, S_TABLE, "left", True)):
        st = _paragraph_style(doc, name, base)
        _set_fonts(st.element, SONGTI, ANNEX_TABLE_PT, bold=bold)
        _set_paragraph(st, align=align, line_pt=None)

    # a figure and its caption below it (图1　…, centred) are one unit: the picture keeps with its caption, and
    # the caption's lines stay together
    figure = _paragraph_style(doc, S_FIGURE)
    _set_fonts(figure.element, FANGSONG, BODY_PT)
    _set_paragraph(figure, align="center", line_pt=None, before_pt=6, keep_next=True)
    caption = _paragraph_style(doc, S_CAPTION)
    _set_fonts(caption.element, KAITI, 14)
    _set_paragraph(caption, align="center", line_pt=LINE_PT, after_pt=12)
    caption.paragraph_format.keep_together = True

    draft = _paragraph_style(doc, S_DRAFT)
    _set_fonts(draft.element, HEITI, TITLE_PT, bold=True, color="C00000")
    _set_paragraph(draft, align="center", line_pt=36)
    opening = _paragraph_style(doc, S_OPENING)
    _set_fonts(opening.element, FANGSONG, BODY_PT)
    _set_paragraph(opening, align="left", first_line_chars=2)
    body_keep = _paragraph_style(doc, S_BODY_KEEP)
    _set_paragraph(body_keep, align="both", first_line_chars=2, keep_next=True)
    signature = _paragraph_style(doc, S_SIGNATURE)
    _set_fonts(signature.element, FANGSONG, BODY_PT)
    _set_paragraph(signature, align="right", keep_next=True)
    ind = signature.element.pPr.find(qn("w:ind"))
    ind.set(qn("w:rightChars"), str(SIGNATURE_RIGHT_CHARS * 100))
    ind.set(qn("w:right"), str(SIGNATURE_RIGHT_CHARS * BODY_PT * 20))
    note = _paragraph_style(doc, S_NOTE)
    _set_fonts(note.element, KAITI, BODY_PT, color="C00000")
    _set_paragraph(note, align="both", first_line_chars=2, after_pt=LINE_PT / 2)

    try:
        lead = styles[S_LEAD]
    except KeyError:
        lead = styles.add_style(S_LEAD, WD_STYLE_TYPE.CHARACTER)
    _set_fonts(lead.element, KAITI, BODY_PT)

    grid = styles["Table Grid"]
    _table_borders(grid.element)


def _table_borders(style_el) -> None:
    """Full single borders and narrow cell margins on the table style."""
    tblpr = style_el.find(qn("w:tblPr"))
    if tblpr is None:
        tblpr = OxmlElement("w:tblPr")
        style_el.append(tblpr)
    for child in list(tblpr):
        tblpr.remove(child)
    borders = OxmlElement("w:tblBorders")
    for side in ("top", "left", "bottom", "right", "insideH", "insideV"):
        b = OxmlElement(f"w:{side}")
        b.set(qn("w:val"), "single")
        b.set(qn("w:sz"), "4")
        b.set(qn("w:space"), "0")
        b.set(qn("w:color"), "000000")
        borders.append(b)
    tblpr.append(borders)
    mar = OxmlElement("w:tblCellMar")
    for side, w in (("top", 0), ("left", CELL_PADDING_DXA), ("bottom", 0), ("right", CELL_PADDING_DXA)):
        m = OxmlElement(f"w:{side}")
        m.set(qn("w:w"), str(w))
        m.set(qn("w:type"), "dxa")
        mar.append(m)
    tblpr.append(mar)
    # cells centred vertically by the style (the annex rows repeated per agency carry no cell properties)
    tcpr = style_el.find(qn("w:tcPr"))
    if tcpr is None:
        tcpr = OxmlElement("w:tcPr")
        style_el.append(tcpr)
    valign = OxmlElement("w:vAlign")
    valign.set(qn("w:val"), "center")
    tcpr.append(valign)


# ------------------------------------------------------------------------------------------------- page


def _page(section, landscape: bool = False) -> None:
    if landscape:
        section.orientation = WD_ORIENT.LANDSCAPE
        section.page_width, section.page_height = A4_H, A4_W
    else:
        section.orientation = WD_ORIENT.PORTRAIT
        section.page_width, section.page_height = A4_W, A4_H
    section.top_margin, section.bottom_margin = MARGIN_TOP, MARGIN_BOTTOM
    section.left_margin, section.right_margin = MARGIN_LEFT, MARGIN_RIGHT
    section.header_distance = Mm(15)
    section.footer_distance = Mm(25)


def _page_number_footer(section) -> None:
    """'— 1 —' 宋体 四号 (GB/T 9704 7.5): on the right of odd pages and the left of even pages, one character in
    (the document's settings have evenAndOddHeaders, see ``_new_document``)."""
    for footer, align, side in ((section.footer, WD_ALIGN_PARAGRAPH.RIGHT, "right"),
                                (section.even_page_footer, WD_ALIGN_PARAGRAPH.LEFT, "left")):
        footer.is_linked_to_previous = False
        _page_number(footer.paragraphs[0], align, side)


def _page_number(p, align, side: str) -> None:
    p.style = S_TABLE
    p.alignment = align
    ind = p._p.get_or_add_pPr().get_or_add_ind()
    ind.set(qn(f"w:{side}Chars"), "100")
    ind.set(qn(f"w:{side}"), str(PAGE_NUMBER_PT * 20))

    def run(text: str | None = None):
        r = p.add_run(text or "")
        r.font.size = Pt(PAGE_NUMBER_PT)
        return r

    run("— ")
    r = run()
    for kind, text in (("begin", None), (None, " PAGE "), ("separate", None), (None, "1"), ("end", None)):
        if kind:
            fc = OxmlElement("w:fldChar")
            fc.set(qn("w:fldCharType"), kind)
            r._r.append(fc)
        elif text == " PAGE ":
            it = OxmlElement("w:instrText")
            it.set(qn("xml:space"), "preserve")
            it.text = text
            r._r.append(it)
        else:
            t = OxmlElement("w:t")
            t.text = text
            r._r.append(t)
    run(" —")


# ------------------------------------------------------------------------------------------------- content


def _para(doc_or_cell, text: str = "", style: str = S_BODY):
    return doc_or_cell.add_paragraph(text, style=style)


def _tag(doc, tag: str) -> None:
    """A docxtpl paragraph-level tag ({%p … %}) in a paragraph of its own (docxtpl removes that paragraph)."""
    _para(doc, "{%p " + tag + " %}")


@dataclass(frozen=True)
class _Item:
    r0: int
    c0: int
    r1: int
    c1: int
    text: str
    role: str  # label role (row/column/block/note) or "cell"


def _split(ref: str) -> tuple[int, int]:
    return spec._split_ref(ref)


def spec_grid(table: str) -> tuple[int, int, list[_Item]]:
    """Rows, columns and the merged items of a table of the format, from spec.LABELS and spec.CELLS.

    The Word table has the same cells, merges and labels as the workbook sheet (title row excluded;
    table 二 without the reference column).
    """
    sheet = spec.SECTION[table].sheet
    items: list[_Item] = []
    for lab in spec.LABELS:
        if lab.sheet != sheet or lab.role == "title":
            continue
        c0, r0 = _split(lab.ref)
        c1, r1 = _split(lab.merge_to) if lab.merge_to else (c0, r0)
        items.append(_Item(r0, c0, r1, c1, lab.text, lab.role))
    for cell in spec.table_cells(table):
        c0, r0 = _split(cell.ref)
        c1, r1 = _split(cell.merge_to) if cell.merge_to else (c0, r0)
        items.append(_Item(r0, c0, r1, c1, "{{ v." + cell.name + " }}", "cell"))
    if table == "二":
        items = [i for i in items if i.c0 < spec.T2_REFERENCE_COL]
    top = min(i.r0 for i in items)
    left = min(i.c0 for i in items)
    items = [_Item(i.r0 - top, i.c0 - left, i.r1 - top, i.c1 - left, i.text, i.role) for i in items]
    nrows = max(i.r1 for i in items) + 1
    ncols = max(i.c1 for i in items) + 1
    return nrows, ncols, items


#: Widths (mm) of the label columns of the official tables; the number columns share the rest of the 156 mm text
#: width equally (2021: 二 48 + 3 × 36, 三 10 + 22 + 54 + 7 × 10, 四 15 × 10.4).
LABEL_COLUMNS_MM: dict[str, tuple[float, ...]] = {"二": (48,), "三": (10, 22, 54), "四": ()}


def column_widths_mm(table: str, ncols: int) -> tuple[float, ...]:
    labels = LABEL_COLUMNS_MM[table]
    rest = ncols - len(labels)
    return labels + ((TEXT_W_MM - sum(labels)) / rest,) * rest


def _mark_header_row(row) -> None:
    trpr = row._tr.get_or_add_trPr()
    trpr.append(OxmlElement("w:tblHeader"))


def _no_split(row) -> None:
    trpr = row._tr.get_or_add_trPr()
    trpr.append(OxmlElement("w:cantSplit"))


def _fixed_layout(table, widths_mm: tuple[float, ...]) -> None:
    table.autofit = False
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    tblpr = table._tbl.tblPr  # table.autofit = False has set <w:tblLayout w:type="fixed"/> in schema order
    tblw = tblpr.find(qn("w:tblW"))
    if tblw is None:
        tblw = OxmlElement("w:tblW")
        tblpr.append(tblw)
    tblw.set(qn("w:type"), "dxa")
    tblw.set(qn("w:w"), str(int(sum(widths_mm) / 25.4 * 1440)))
    grid = table._tbl.tblGrid
    for gc, w in zip(grid.findall(qn("w:gridCol")), widths_mm):
        gc.set(qn("w:w"), str(int(w / 25.4 * 1440)))
    for row in table.rows:
        for j, cell in enumerate(row.cells):
            cell.width = Mm(widths_mm[j])


def _official_table(doc, table: str):
    nrows, ncols, items = spec_grid(table)
    t = doc.add_table(rows=nrows, cols=ncols)
    t.style = doc.styles["Table Grid"]
    _fixed_layout(t, column_widths_mm(table, ncols))
    header_rows = {"二": 0, "三": 3, "四": 3}[table]
    for r, row in enumerate(t.rows):
        _no_split(row)
        if r < header_rows:
            _mark_header_row(row)
    for it in items:
        cell = t.cell(it.r0, it.c0)
        if (it.r1, it.c1) != (it.r0, it.c0):
            cell = cell.merge(t.cell(it.r1, it.c1))
        cell.vertical_alignment = WD_ALIGN_VERTICAL.CENTER
        left = it.role == "row" and not (table == "三" and it.r1 > it.r0)
        p = cell.paragraphs[0]
        p.style = doc.styles[S_TABLE_LEFT if left else S_TABLE]
        p.text = it.text
    # every empty paragraph in the table gets the table style too (merged-away cells)
    for row in t.rows:
        for cell in row.cells:
            for p in cell.paragraphs:
                if p.style.name == S_BODY:
                    p.style = doc.styles[S_TABLE]
    return t


def _simple_table(doc, headers: list[str], row_cells: list[str], widths_mm: tuple[float, ...], *,
                  loop: str | None = None, total_cells: list[str] | None = None, first_left: bool = True,
                  keep_together: bool = False):
    """An annex table (小五): a header row (bold, repeated at the top of every page the table runs onto; "\n"
    in a header is a line break: the label, then its unit), a row repeated by ``{%tr for … %}`` (when ``loop``),
    and an optional total row (bold)."""
    n_rows = 1 + (3 if loop else 1) + (1 if total_cells else 0)
    t = doc.add_table(rows=n_rows, cols=len(headers))
    t.style = doc.styles["Table Grid"]
    _fixed_layout(t, widths_mm)
    _mark_header_row(t.rows[0])

    def fill(row, texts: list[str], style: str = S_ANNEX, left: str = S_ANNEX_LEFT):
        _no_split(row)
        for j, (cell, text) in enumerate(zip(row.cells, texts)):
            cell.vertical_alignment = WD_ALIGN_VERTICAL.CENTER
            p = cell.paragraphs[0]
            p.style = doc.styles[left if (j == 0 and first_left) else style]
            p.text = text

    fill(t.rows[0], headers, S_ANNEX_HEADER, S_ANNEX_HEADER)
    r = 1
    if loop:
        t.rows[r].cells[0].paragraphs[0].text = "{%tr " + loop + " %}"
        r += 1
    fill(t.rows[r], row_cells)
    if loop:  # the row repeated per agency: its cells take their widths from the table grid (fixed layout), so
        # that a county of 1,000 agencies renders ~20% less XML (memory of the county summary, make bench)
        for cell in t.rows[r].cells:
            cell._tc.remove(cell._tc.tcPr)
    r += 1
    if loop:
        t.rows[r].cells[0].paragraphs[0].text = "{%tr endfor %}"
        r += 1
    if total_cells:
        fill(t.rows[r], total_cells, S_ANNEX_TOTAL, S_ANNEX_TOTAL_LEFT)
    if keep_together:  # a short table never leaves its last row alone on the next page
        for row in list(t.rows)[:-1]:
            for cell in row.cells:
                for p in cell.paragraphs:
                    p.paragraph_format.keep_with_next = True
    return t


def _body(doc, *, signature: bool = False) -> None:
    """Title, opening paragraph, sections 一–六 with tables 二/三/四 (shared by both templates); with
    ``signature``, the last paragraph keeps with the signature block that follows."""
    _para(doc, '{{ title_lines|join("\\n") }}', S_TITLE)  # "\\n": a line break (render.title_lines)
    _tag(doc, "for p in opening")
    _para(doc, "{{ p }}", S_OPENING)
    _tag(doc, "endfor")
    for section in spec.SECTIONS:
        heading = _para(doc, section.heading, S_H1)
        if section.number == "三":  # table 三 nearly fills a page: it always starts one
            heading.paragraph_format.page_break_before = True
        if section.number == "一":
            _tag(doc, "for p in overview")
            _para(doc, "{{ p }}")
            _tag(doc, "endfor")
            _lead_items(doc, "general_items")
        elif section.number in ("二", "三", "四"):
            # each table on one page with its heading (LibreOffice 7.4, Word and WPS honour keep-with-next in
            # table rows); table 三 also starts a page, unconditionally (pageBreakBefore on its heading): so the
            # table before it has no spacer paragraph, which could be left alone on a page of its own
            _keep_together(_official_table(doc, section.number))
            if section.number != "二":
                _para(doc, "", S_TABLE)  # keeps the next heading off the table's border
        elif section.number == "五":
            _tag(doc, "for sub in improvement_items")
            _para(doc, "{{ sub.heading }}", S_H2)
            _tag(doc, "for p in sub.paragraphs")
            _para(doc, "{{ p }}")
            _tag(doc, "endfor")
            _tag(doc, "endfor")
        elif signature:
            _tag(doc, "for p in other_matters[:-1]")
            _para(doc, "{{ p }}")
            _tag(doc, "endfor")
            _tag(doc, "for p in other_matters[-1:]")
            _para(doc, "{{ p }}", S_BODY_KEEP)
            _tag(doc, "endfor")
        else:
            _tag(doc, "for p in other_matters")
            _para(doc, "{{ p }}")
            _tag(doc, "endfor")


def _keep_together(table) -> None:
    """A table on one page: every paragraph of every row but the last keeps with the next (rows never split)."""
    for row in list(table.rows)[:-1]:
        for cell in row.cells:
            for p in cell.paragraphs:
                p.paragraph_format.keep_with_next = True


def _signature(doc) -> None:
    """The optional signature block (county.toml ``signature``): a blank line, the agency's name, the date."""
    _tag(doc, "if signature")
    _para(doc, "", S_SIGNATURE)
    _tag(doc, "for line in signature")
    _para(doc, "{{ line }}", S_SIGNATURE)
    _tag(doc, "endfor")
    _tag(doc, "endif")


def _lead_items(doc, name: str) -> None:
    """Paragraphs with an optional 楷体 lead-in: '（一）主动公开情况。' + text."""
    _tag(doc, f"for item in {name}")
    p = _para(doc, "")
    lead = p.add_run("{{ item.lead }}")
    lead.style = doc.styles[S_LEAD]
    p.add_run("{{ item.text }}")
    _tag(doc, "endfor")


def _new_document():
    doc = Document()
    _define_styles(doc)
    # python-docx's default document has one empty paragraph: remove it
    body = doc.element.body
    for p in body.findall(qn("w:p")):
        body.remove(p)
    doc.settings.odd_and_even_pages_header_footer = True
    _page(doc.sections[0])
    _page_number_footer(doc.sections[0])
    doc.core_properties.title = spec.REPORT_TITLE_SUFFIX.lstrip("年")
    doc.core_properties.author = "nianbao"
    doc.core_properties.comments = f"{spec.FORMAT_DOCUMENT}；由 pipeline/templates/build.py 生成"
    return doc


def build_agency():
    doc = _new_document()
    _body(doc, signature=True)
    _signature(doc)
    return doc


def build_county():
    L = spec.SUMMARY_LABELS
    doc = _new_document()
    _tag(doc, "if draft")
    _para(doc, "{{ draft_label }}", S_DRAFT)
    _tag(doc, "for p in draft_notes")
    _para(doc, "{{ p }}", S_NOTE)
    _tag(doc, "endfor")
    _tag(doc, "endif")
    _body(doc)

    # annexes 1–4 (tables) on landscape pages; units in the headers, under the labels
    _section_break(doc, landscape=True)
    W = LANDSCAPE_TEXT_W_MM
    keys = [k.key for k in spec.KEY_FIGURES]
    labels = [f"{k.label}\n（{spec.CELL[k.cells[0]].unit}）" for k in spec.KEY_FIGURES]
    figures = _annex_widths([k.label for k in spec.KEY_FIGURES])
    count = f"{L['agency_count']}\n（{L['unit_agencies']}）"

    _para(doc, f"{L['annex']}1：{L['annex_breakdown']}", S_H1)
    _simple_table(
        doc,
        [L["agency"]] + labels,
        ["{{ r.name }}"] + ["{{ r.k." + k + " }}" for k in keys],
        (W - sum(figures),) + figures,
        loop="for r in breakdown",
        total_cells=[L["total_row"]] + ["{{ key_total." + k + " }}" for k in keys],
    )
    _para(doc, "", S_TABLE)

    _para(doc, f"{L['annex']}2：{L['annex_categories']}", S_H1)
    second = _annex_widths([L["agency_count"]])
    _simple_table(
        doc,
        [L["category"], count] + labels,
        ["{{ r.category }}", "{{ r.count }}"] + ["{{ r.k." + k + " }}" for k in keys],
        (W - sum(figures) - sum(second),) + second + figures,
        loop="for r in categories",
        total_cells=[L["total_row"], "{{ category_total_count }}"] + ["{{ key_total." + k + " }}" for k in keys],
        keep_together=True,
    )
    _para(doc, "", S_TABLE)

    _para(doc, f"{L['annex']}3：{L['annex_yoy']}", S_H1)
    _tag(doc, "if yoy")
    first, unit = 83.0, 22.0
    _simple_table(
        doc,
        [L["item"], L["unit"], L["current"], L["previous"], L["change"], L["rate"]],
        ["{{ r.label }}", "{{ r.unit }}", "{{ r.current }}", "{{ r.previous }}", "{{ r.change }}", "{{ r.rate }}"],
        (first, unit) + ((W - first - unit) / 4,) * 4,
        loop="for r in yoy",
    )
    _para(doc, "{{ yoy_scope }}")
    _tag(doc, "else")
    _para(doc, "{{ yoy_missing }}")
    _tag(doc, "endif")
    _para(doc, "", S_TABLE)

    _para(doc, f"{L['annex']}4：{L['annex_completeness']}", S_H1)
    _tag(doc, "for p in completeness_summary")
    _para(doc, "{{ p }}")
    _tag(doc, "endfor")
    _simple_table(
        doc,
        [L["agency"], L["code"], L["category"], L["status"]],
        ["{{ r.name }}", "{{ r.code }}", "{{ r.category }}", "{{ r.status }}"],
        (100.0, 40.0, 50.0, W - 190.0),
        loop="for r in completeness",
    )

    # annex 5 (charts) on portrait pages: each picture with its caption below it on one page (the picture keeps
    # with its caption). Without a chart drawn, render.fill_document removes this section.
    _section_break(doc, landscape=False)
    _tag(doc, "if charts")
    _para(doc, f"{L['annex']}5：{L['annex_charts']}", S_H1)
    _tag(doc, "for ch in charts")
    _para(doc, "{{ ch.image }}", S_FIGURE)
    _para(doc, "{{ ch.caption }}", S_CAPTION)
    _tag(doc, "endfor")
    _tag(doc, "endif")
    return doc


def _section_break(doc, *, landscape: bool) -> None:
    """A new section on a new page; the paragraph that ends the section before it (python-docx appends an empty
    one holding its w:sectPr) is set small, so it never needs a line of its own at the foot of a full page."""
    sec = doc.add_section(WD_SECTION.NEW_PAGE)
    _page(sec, landscape=landscape)
    doc.paragraphs[-1].style = doc.styles[S_TABLE]


#: The digits a number column of an annex table holds at least (a county's 新收申请 in the thousands).
ANNEX_DIGITS = 5


def _annex_widths(labels: list[str]) -> tuple[float, ...]:
    """Widths (mm) of number columns of an annex table: each as wide as its header label on one line at 小五 (or
    ANNEX_DIGITS digits), plus the cell padding and a little room."""
    char_mm = ANNEX_TABLE_PT * 25.4 / 72
    padding = 2 * CELL_PADDING_DXA / 1440 * 25.4
    return tuple(round(max(len(x), ANNEX_DIGITS / 2) * char_mm + padding + 1.0, 1) for x in labels)


def build(folder: Path = HERE) -> list[Path]:
    folder = Path(folder)
    return [
        ooxml.save_document(build_agency(), folder / AGENCY_TEMPLATE.name),
        ooxml.save_document(build_county(), folder / COUNTY_TEMPLATE.name),
    ]


if __name__ == "__main__":
    for path in build():
        print(path)
