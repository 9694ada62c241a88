"""The reading stage: returned workbooks → Figures, long tables of every value and text, each with its file,
sheet and cell.

Reading is by the workbook-level defined names of the template (spec.CELLS / spec.FIELDS); the labels around
each table (spec.LABELS) are verified, so a workbook whose rows were inserted, deleted or relabelled is
reported and never silently misread. Totals are recomputed from their addends; the number found in a total
cell (typed over, or a cached formula result) is kept beside it for validation to compare. Everything read
from the format is derived once per format (``spec.per_format``): a stage run under another format reads its
cells.

The .xlsx itself is read by xlsx_reader (parts → raw cells, no knowledge of the format); what a cell holds is
parsed by cells (what people type → values with a verdict); this module maps them to the format, identifies
the agency, gives every file of the folder a verdict and puts the workbooks together (``parallel.map_chunks``
reads them in worker processes).

Data problems (a broken file, a moved table, "５件" in a cell) become findings; only programming errors raise.
What a cell holds is read as the agency saw it: Excel's ``_xHHHH_`` escapes decoded (xstring), a formula by its
saved result (one reading another workbook, or never calculated, is reported), a number typed beside its cell
in a merged range that was split taken as that cell's (and reported). File names that are not UTF-8 on disk
are shown decoded (readable_name).
"""

from __future__ import annotations

import difflib
import errno
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from . import findings as F
from . import parallel, spec
from .cells import READ_STATUSES, cell_text, parse_field, parse_number
from .model import AgencyData, unattributed_code, unattributed_name
from .workspace import Workspace
from .xlsx_reader import MAX_CELL_CHARS as MAX_CELL_CHARS  # validate takes the cap of a cell's text from here
from .xlsx_reader import RawCell, RawWorkbook, Reject, col_letters, is_zip, read_raw, split_a1

WORKBOOK_SUFFIXES = {".xlsx"}
#: Spreadsheet files of another format: rejected with a message saying how to convert them.
OTHER_SPREADSHEET_SUFFIXES = {".xls", ".xlsm", ".xlsb", ".xltx", ".et", ".ett", ".ods", ".csv", ".numbers"}

_NEVER_XLSX = {".ods", ".csv", ".numbers", ".xlsb"}  # never an .xlsx under another name

Status = Literal["read", "rejected", "ignored"]


@dataclass(frozen=True)
class FileVerdict:
    """What happened to one file of the year folder (for the run's manifest)."""

    file: str  # name relative to the folder given (posix), as the office sees it
    path: Path
    status: Status  # read / rejected / ignored
    reason: str  # Chinese, one line
    agency_code: str = ""
    agency_name: str = ""
    codes: tuple[str, ...] = ()  # finding codes raised while reading the file

    @property
    def status_label(self) -> str:
        return {"read": "已读取", "rejected": "已拒收", "ignored": "已忽略"}[self.status]

    def as_json(self) -> dict:
        return {
            "file": self.file,
            "status": self.status,
            "reason": self.reason,
            "agency": self.agency_code,
            "agency_name": self.agency_name,
            "codes": list(self.codes),
        }


@dataclass(frozen=True)
class Record:
    """One workbook that was read."""

    index: int  # position in Figures.records; the key of the long tables' ``record`` column
    file: str
    path: Path
    agency_code: str  # the roster's code when matched, else the workbook's own code (or the file's stem)
    agency_name: str
    category: str
    workbook_code: str  # as typed in the workbook
    workbook_name: str
    in_roster: bool | None  # None: read without a workspace
    positions: dict[str, tuple[str, str]] = field(default_factory=dict)  # defined name → (sheet, A1) as found
    #: code and name point at different roster agencies (or the name is clearly not the code's agency):
    #: (the code's roster code, the name's roster code or ""); the record then belongs to no agency
    #: (``agency_code`` is ``unattributed_code(file)``)
    conflict: tuple[str, str] | None = None


@dataclass
class Figures:
    """The reading stage's output: one agency × cell table with provenance, built once, plus texts — every
    workbook of one year's folder, read under one format (``format``); a verdict for every file and the
    findings of reading.

    ``values``: one row per record × spec cell — record, agency, agency_name, file, table, row, column, name,
    sheet, cell, kind, computed, raw (the cell's content as text), status (ok / blank / coerced / converted
    (typed in the other money unit, converted) / text / excel_error / missing), value (int or Decimal; recomputed for totals; None when unreadable), number
    (float of value, NaN when None), found (float: the number shown in a total cell, NaN when none or for
    input cells), formula (bool: the cell holds a formula).
    ``texts``: one row per record × spec field — record, agency, agency_name, file, name, key, label, section,
    sheet, cell, kind, raw, status, value (str / int / Decimal / None), truncated (bool).
    Columns of strings that repeat (labels, addresses, statuses, the workbook's agency and file; ``raw`` of
    values) are pandas categoricals.
    """

    year: int
    files: list[FileVerdict]
    records: list[Record]
    values: pd.DataFrame
    texts: pd.DataFrame
    findings: list[F.Finding]
    format: spec.Format  # the format the workbooks were read under

    def verdicts(self) -> list[dict]:
        return [v.as_json() for v in self.files]

    def agency_data(self) -> list[AgencyData]:
        """One AgencyData per workbook read; every spec cell (totals recomputed), every field parsed.

        Unreadable cells (text, Excel errors) count as 0 here; validation reports them as 错误, and the
        caller renders only agencies that passed.
        """
        out: list[AgencyData] = []
        # one pass over each long table's columns (a groupby and a frame per workbook cost ~10x more)
        by_rec_v: dict[int, dict[str, int | Decimal]] = {}
        v = self.values
        for rec, name, kind, val in zip(*(v[c].tolist() for c in ("record", "name", "kind", "value"))):
            by_rec_v.setdefault(rec, {})[name] = _as_number(val, kind)
        by_rec_t: dict[int, dict[str, object]] = {}
        t = self.texts
        for rec, name, kind, val in zip(*(t[c].tolist() for c in ("record", "name", "kind", "value"))):
            by_rec_t.setdefault(rec, {})[name] = ("" if val is None else val) if kind in ("text", "choice",
                                                                                          "date") else val
        for rec in self.records:
            values = by_rec_v.get(rec.index, {})
            fields = by_rec_t.get(rec.index, {})
            out.append(
                AgencyData(
                    code=rec.agency_code,
                    name=rec.agency_name,
                    category=rec.category,
                    year=self.year,
                    file=rec.file,
                    values=values,
                    fields=fields,
                )
            )
        return out

    def record(self, index: int) -> Record:
        return self.records[index]


def _as_number(v: object, kind: str) -> int | Decimal:
    if v is None:
        return Decimal(0) if kind == "money" else 0
    if kind == "money":
        return v if isinstance(v, Decimal) else Decimal(str(v))
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else int(v.to_integral_value())
    return int(v)


@spec.per_format
def _unread_sheets() -> frozenset[str]:
    """Template sheets that hold no cell, label or field of the spec."""
    return frozenset(spec.SHEETS) - {c.sheet for c in spec.CELLS} - {f.sheet for f in spec.FIELDS} - {
        lab.sheet for lab in spec.LABELS
    }


# =============================================================================================================
# One workbook → rows


@dataclass
class _Read:
    verdict: FileVerdict
    record: Record | None
    values: dict[str, list]  # the columns that vary by workbook, one entry per spec cell (the merge adds the rest)
    texts: dict[str, list]  # likewise, one entry per spec field
    findings: list[F.Finding]


@spec.per_format
def _totals_order() -> tuple[spec.CellSpec, ...]:
    """Computed cells ordered so that every total comes after the totals it sums."""
    pending = [c for c in spec.CELLS if c.computed]
    done: list[spec.CellSpec] = []
    while pending:
        waiting = {c.name for c in pending}
        ready = [c for c in pending if not waiting & set(c.addends)]
        if not ready:
            raise AssertionError("cyclic totals in spec")
        done += ready
        pending = [c for c in pending if c not in ready]
    return tuple(done)


@spec.per_format
def _template_positions() -> frozenset[tuple[str, str]]:
    """Every position the template itself fills: cells, labels, fields, defined names, check cells."""
    return frozenset(
        {(c.sheet, c.ref) for c in spec.CELLS}
        | {(lab.sheet, lab.ref) for lab in spec.LABELS}
        | {(f.sheet, f.ref) for f in spec.FIELDS}
        | set(spec.all_defined_names().values())
        | {(ch.sheet, ref) for ch in spec.CHECKS
           for ref in (ch.label_ref, ch.summary_ref, *(r for _, r in ch.rule_refs))}
    )


_is_old_label = lru_cache(maxsize=8192)(spec.is_old_format_label)  # template strings repeat in every file


@spec.per_format
def _defined_names() -> dict[str, tuple[str, str]]:
    return spec.all_defined_names()


@spec.per_format
def _labels() -> tuple[tuple[spec.LabelSpec, str], ...]:
    """Every label of the template with its normalised text."""
    return tuple((lab, spec.normalise_label(lab.text)) for lab in spec.LABELS)


def _old_format_hit(raw: RawWorkbook) -> tuple[str, tuple[str, ...], str] | None:
    """(sheet, A1s, texts) of the 2019-format labels found, when there are enough of them to take the workbook
    for the 2019 layout (spec.is_old_format: several 2019 headers, never one label variant), else None. The
    sheet is the one with the most of them; the texts are every distinct 2019 label found."""
    markers = {s for s in raw.strings if len(s) < 40 and _is_old_label(s)}
    if not spec.is_old_format(markers):
        return None
    at: dict[str, list[str]] = {}
    for sheet, cells in raw.sheets.items():
        for ref, c in cells.items():
            if c.type == "str" and c.text in markers:
                at.setdefault(sheet, []).append(ref)
    found = {spec.normalise_label(m) for m in markers}
    texts = "、".join(m for m in spec.OLD_FORMAT_MARKERS if spec.normalise_label(m) in found)
    if not at:
        return "", (), texts
    sheet = max(at, key=lambda sh: len(at[sh]))
    return sheet, tuple(sorted(at[sheet], key=lambda r: split_a1(r)[::-1])), texts


# ---- label near-misses ------------------------------------------------------------------------------------

#: A label differing from the template's by at most this many characters (inserted, dropped or replaced,
#: after normalisation: spaces, line breaks and full-width forms never count) …
LABEL_MAX_EDITS = 2
#: … or, in a long label, one character in LABEL_EDITS_PER_CHARS …
LABEL_EDITS_PER_CHARS = 8
#: … and at least this similar to it (difflib's ratio) is a near-miss, when no other label of the format is
#: as close: 规范性文件 for 行政规范性文件, 行政法复议 for 行政复议.
LABEL_MIN_RATIO = 0.75


@spec.per_format
def _label_texts() -> frozenset[str]:
    """Every distinct label text of the format, normalised."""
    return frozenset(spec.normalise_label(lab.text) for lab in spec.LABELS)


def label_near_miss(got: str, want: str) -> str | None:
    """How ``got`` differs from the template's label ``want`` when it is a small edit of it (LABEL_MAX_EDITS,
    LABEL_MIN_RATIO) and not as close to any other label of the format — "缺少“行政”", "多出“法”",
    "“纠”写成“更”" — else None (a label changed, not mistyped)."""
    g, w = spec.normalise_label(got), spec.normalise_label(want)
    if not g or g == w:
        return None
    d = spec.edit_distance(g, w)
    if d > max(LABEL_MAX_EDITS, len(w) // LABEL_EDITS_PER_CHARS):
        return None
    matcher = difflib.SequenceMatcher(None, w, g, autojunk=False)
    if matcher.ratio() < LABEL_MIN_RATIO:
        return None
    if any(spec.edit_distance(g, other) <= d for other in _label_texts() if other != w):
        return None  # as close to another label: which one is meant cannot be told
    parts = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "delete":
            parts.append(f"缺少“{w[i1:i2]}”")
        elif op == "insert":
            parts.append(f"多出“{g[j1:j2]}”")
        elif op == "replace":
            parts.append(f"“{w[i1:i2]}”写成“{g[j1:j2]}”")
    return "，".join(parts)


def _read_one(path: Path, display: str, year: int, ws: Workspace | None) -> _Read:
    def reject(code: str, reason: str, **kw) -> _Read:
        fnd = F.make(code, file=display, **kw)
        return _Read(FileVerdict(display, path, "rejected", reason or fnd.message, codes=(code,)), None, {}, {}, [fnd])

    try:
        raw = read_raw(path, _unread_sheets())
    except Reject as r:
        fnd = F.make(r.code, file=display, detail=r.detail, sheet=r.sheet, cells=r.cells, actual=r.actual)
        return _Read(FileVerdict(display, path, "rejected", fnd.message, codes=(r.code,)), None, {}, {}, [fnd])

    hit = _old_format_hit(raw)
    if hit:
        sheet, refs, texts = hit
        return reject("OLD_FORMAT", "", sheet=sheet, cells=refs, actual=texts)

    ours = {n: raw.names[n] for n in _defined_names() if n in raw.names}
    table_sheets = {c.sheet for c in spec.CELLS}
    if not ours and not (table_sheets & set(raw.sheets)):
        return reject("NOT_TEMPLATE", "", detail="没有年报模板的工作表和单元格名称")

    found: list[F.Finding] = []
    use_names = bool(ours)
    positions: dict[str, tuple[str, str]] = {}
    moved: dict[str, list[tuple[str, str, str]]] = {}  # sheet → [(name, spec ref, actual ref)]
    items = [(c.name, c.sheet, c.ref, c.row + "·" + c.column) for c in spec.CELLS] + [
        (f.name, f.sheet, f.ref, f.label) for f in spec.FIELDS
    ]
    missing_sheets: set[str] = set()
    names_gone: set[str] = set()  # sheets with a defined name of the template missing or pointing elsewhere
    for name, sheet, ref, label in items:
        if use_names:
            pos = ours.get(name)
            if pos is None or pos[0] not in raw.sheets:
                names_gone.add(sheet)
            if pos is None or pos[0] not in raw.sheets:
                if sheet in raw.sheets and name not in raw.names:
                    pos = (sheet, ref)  # a name never defined but the sheet intact: read the template position
                else:
                    found.append(F.make("NAME_MISSING", file=display, sheet=sheet, cells=(ref,), name=name,
                                        label=label, expected=f"{sheet}!{ref}", actual="缺失"))
                    continue
        else:
            if sheet not in raw.sheets:
                missing_sheets.add(sheet)
                continue
            pos = (sheet, ref)
        positions[name] = pos
    # a renamed sheet (Excel moves the names along): every name of the missing sheet on one other sheet, at its
    # own cell. Reported as SHEET_MISSING; its cells are read and its labels verified under the new name.
    alias: dict[str, str] = {}
    for s in spec.SHEETS:
        if s in raw.sheet_names:
            continue
        at = {positions.get(n) for n, sh, _, _ in items if sh == s}
        if at and None not in at and len({p[0] for p in at}) == 1 and all(
            (p[1] == r) for n, sh, r, _ in items if sh == s for p in [positions[n]]
        ):
            alias[s] = next(iter(at))[0]
    for name, sheet, ref, _ in items:
        pos = positions.get(name)
        if pos is not None and pos != (alias.get(sheet, sheet), ref) and sheet in table_sheets:
            moved.setdefault(sheet, []).append((name, ref, pos[1] if pos[0] == sheet else f"{pos[0]}!{pos[1]}"))
    for s in spec.SHEETS:
        if s not in raw.sheet_names:
            missing_sheets.add(s)
    for s in sorted(missing_sheets, key=spec.SHEETS.index):
        found.append(F.make("SHEET_MISSING", file=display, sheet=s, expected=s,
                            actual=alias.get(s) or "、".join(raw.sheet_names)))

    for sheet, lst in moved.items():
        name, sref, aref = lst[0]
        found.append(F.make("STRUCTURE_CHANGED", file=display, sheet=sheet, cells=(aref,) if "!" not in aref else (),
                            detail=f"原 {sref} 单元格现位于 {aref}，共 {len(lst)} 个数据单元格移动",
                            expected=sref, actual=aref))

    # labels: verified on the sheets whose cells did not move (a moved table is reported once, above)
    label_misses = 0
    for lab, want in _labels():
        sheet = alias.get(lab.sheet, lab.sheet)
        if lab.sheet in moved or sheet not in raw.sheets:
            continue
        got = cell_text(raw.sheets[sheet].get(lab.ref))
        if got != lab.text and spec.normalise_label(got) != want:
            # every defined name of the sheet in place and the table where it belongs: a label a small edit
            # away from the template's (and from no other label) is a typo, reported without blocking
            diff = label_near_miss(got, lab.text) if use_names and lab.sheet not in names_gone else None
            if diff is not None:
                found.append(F.make("LABEL_VARIANT", file=display, sheet=sheet, cells=(lab.ref,), cell=lab.ref,
                                    detail=diff, expected=lab.text, actual=got))
                continue
            label_misses += 1
            found.append(F.make("LABEL_CHANGED", file=display, sheet=sheet, cells=(lab.ref,), cell=lab.ref,
                                expected=lab.text, actual=got))
    if not use_names and label_misses > len(spec.LABELS) // 2:
        return reject("NOT_TEMPLATE", "", detail="表格标题与模板不符，且没有单元格名称")

    # content in the merged area of an input cell (the merge split, the number typed beside the named cell):
    # part of that input cell, read with it below
    occupied = {(alias.get(sh, sh), r) for sh, r in _template_positions()} | set(positions.values())
    spilled: dict[str, list[tuple[str, RawCell]]] = {}
    for c in _merged_inputs():
        pos = positions.get(c.name)
        if pos is None:
            continue
        for a1 in _merge_area(c, pos[1]):
            occupied.add((pos[0], a1))
            cell = raw.sheets.get(pos[0], {}).get(a1)
            if cell is not None and (cell.type == "err" or cell.formula or cell_text(cell).strip()):
                spilled.setdefault(c.name, []).append((a1, cell))

    # numbers typed outside the table (an extra row or column): never read, so say so
    for sheet in sorted({alias.get(s, s) for s in table_sheets - set(moved)}):
        stray = [ref for ref, c in raw.sheets.get(sheet, {}).items()
                 if c.type == "num" and c.text and not c.formula and (sheet, ref) not in occupied]
        if stray:
            stray.sort(key=lambda r: split_a1(r)[::-1])
            found.append(F.make("CELL_OUTSIDE", file=display, sheet=sheet, cells=tuple(stray[:20]),
                                actual="、".join(f"{r}={cell_text(raw.sheets[sheet][r])}" for r in stray[:5])
                                + ("…" if len(stray) > 5 else "")))

    # ---- values
    def cell_at(name: str) -> RawCell | None:
        pos = positions.get(name)
        return None if pos is None else raw.sheets.get(pos[0], {}).get(pos[1])

    # the columns of this workbook's values that vary by workbook (the merge adds those the spec fixes row by row)
    v_sheet: list[str] = []
    v_cell: list[str] = []
    v_raw: list[str] = []
    v_status: list[str] = []
    v_found: list[float] = []
    v_formula: list[bool] = []
    parsed: dict[str, Decimal | None] = {}
    for c in spec.CELLS:
        pos = positions.get(c.name)
        cell = cell_at(c.name)
        if pos is None:
            status, val, rawtext = "missing", None, ""
        else:
            status, val, rawtext = parse_number(cell, c.kind, c.unit)
        where = ""
        if c.name in spilled:
            if status == "blank" and not (cell is not None and cell.formula) and len(spilled[c.name]) == 1:
                # the named cell empty, one entry in its merged area: that is what the agency typed
                where, cell = spilled[c.name][0]
                status, val, rawtext = parse_number(cell, c.kind, c.unit)
                status = "coerced" if status == "ok" else status  # reported, with where it was found
            else:  # two entries in one input cell: which one is meant cannot be told
                parts = ([(pos[1], cell)] if status != "blank" else []) + spilled[c.name]
                status, val, rawtext = "text", None, "、".join(f"{a1}={cell_text(x)[:50]}" for a1, x in parts)
        if cell is not None and cell.formula and not c.computed and status != "text":
            if cell.type == "num" and cell.text == "":  # a formula never calculated: its value is unknown
                status, val, rawtext = "text", None, "=" + cell.formula_text
            elif status in READ_STATUSES and _EXTERNAL_RE.search(cell.formula_text):
                status, rawtext = "coerced", "=" + cell.formula_text  # read as last saved; reported
        if where:
            rawtext = f"{rawtext}（填在 {where}）"
        found_num = float("nan")
        if c.computed:
            if status in READ_STATUSES and val is not None:
                found_num = float(val)
            if status == "blank" or status in READ_STATUSES:
                status = "ok"  # a total's own content is compared with the recomputed sum, not used
        parsed[c.name] = val
        v_sheet.append(pos[0] if pos else c.sheet)
        v_cell.append(pos[1] if pos else c.ref)
        v_raw.append(rawtext)
        v_status.append(status)
        v_found.append(found_num)
        v_formula.append(bool(cell is not None and cell.formula))
    # recompute totals from their addends, in dependency order
    for c in _totals_order():
        parts = [parsed[a] for a in c.addends]
        parsed[c.name] = None if any(p is None for p in parts) else sum(parts, Decimal(0))
    v_value: list[int | Decimal | None] = []
    v_number: list[float] = []
    for c in spec.CELLS:
        v = parsed[c.name]
        v_value.append(_py_value(v, c.kind))
        v_number.append(float(v) if v is not None else float("nan"))
    vcols = {"sheet": v_sheet, "cell": v_cell, "raw": v_raw, "status": v_status, "value": v_value,
             "number": v_number, "found": v_found, "formula": v_formula}

    # ---- fields
    tcols: dict[str, list] = {k: [] for k in ("sheet", "cell", "raw", "status", "value", "truncated")}
    tv: dict[str, object] = {}
    for f in spec.FIELDS:
        pos = positions.get(f.name)
        cell = cell_at(f.name)
        if pos is None:
            status, val, rawtext = "missing", None, ""
        else:
            status, val, rawtext = parse_field(f, cell)
        tv[f.name] = val
        tcols["sheet"].append(pos[0] if pos else f.sheet)
        tcols["cell"].append(pos[1] if pos else f.ref)
        tcols["raw"].append(rawtext)
        tcols["status"].append(status)
        tcols["value"].append(val)
        tcols["truncated"].append(bool(cell is not None and cell.truncated))

    # ---- identity (code AND name against the roster: see identify)
    wb_code = str(tv.get("INFO_agency_code") or "").strip()
    wb_name = str(tv.get("INFO_agency_name") or "").strip()
    wb_cat = str(tv.get("INFO_category") or "").strip()
    agency = None
    in_roster: bool | None = None
    conflict: tuple[str, str] | None = None
    if ws is not None:
        ident = identify(ws, wb_code, wb_name)
        agency, conflict = ident.agency, ident.conflict
        in_roster = agency is not None or conflict is not None
    if conflict is not None:  # belongs to no agency until the workbook is corrected
        code, name, category = unattributed_code(display), unattributed_name(wb_name, display), ""
    else:
        code = agency.code if agency else (wb_code or Path(display).stem)
        name = agency.name if agency else (wb_name or Path(display).stem)
        category = agency.category if agency else wb_cat
    record = Record(
        index=-1, file=display, path=path, agency_code=code, agency_name=name, category=category,
        workbook_code=wb_code, workbook_name=wb_name, in_roster=in_roster, positions=positions, conflict=conflict,
    )
    codes = tuple(dict.fromkeys(f.code for f in found))
    groups = {F.REGISTRY[f.code].group for f in found}
    note = "（有结构问题）" if "结构" in groups else "（有单元格问题）" if found else ""
    verdict = FileVerdict(display, path, "read", "已读取" + note, code, name, codes)
    found = [_with_agency(f, code, name) for f in found]
    return _Read(verdict, record, vcols, tcols, found)


# ---- identity --------------------------------------------------------------------------------------------

class Identity(NamedTuple):
    agency: object  # workspace.Agency | None: the roster agency the workbook belongs to
    conflict: tuple[str, str] | None  # (code's agency, name's agency or "") when they disagree
    variant: bool  # the name is not the roster's but a variant of it (AGENCY_NAME_MISMATCH 提示)


_NAME_SUFFIXES = ("人民政府办公室", "人民政府", "政府", "办事处")


def name_core(name: str, county: str = "") -> str:
    """An agency name without what many names share: the county (示例县 / 示例), a leading 县, and a trailing
    人民政府 / 政府 / 办事处 (示例县城关镇人民政府 → 城关镇)."""
    s = spec.normalise_label(name)
    c = spec.normalise_label(county)
    for prefix in (c, c[:-1] if len(c) > 2 and c[-1] in "县区市旗" else ""):
        if prefix and prefix in s:
            s = s[s.index(prefix) + len(prefix):]
            break
    s = s.removeprefix("县")
    for suffix in _NAME_SUFFIXES:
        if s.endswith(suffix) and len(s) > len(suffix):
            s = s[: -len(suffix)]
            break
        if s == suffix:
            return ""
    return s


def is_name_variant(typed: str, roster_name: str, county: str = "") -> bool:
    """``typed`` is a variant of ``roster_name`` (not another agency's name): one contains the other, or their
    cores (name_core) are equal or one contains the other (示例县城关镇人民政府 / 城关镇政府 / 县城关镇)."""
    a, b = spec.normalise_label(typed), spec.normalise_label(roster_name)
    if not a or not b:
        return False
    if a in b or b in a:
        return True
    ca, cb = name_core(a, county), name_core(b, county)
    return ca == cb or bool(ca and cb and (ca in cb or cb in ca))


def _loosely_same(typed: str, roster_name: str, county: str) -> bool:
    """An abbreviation of the roster name rather than another name: at least half the characters of its core
    occur in the roster name's core (人社局 / 人力资源和社会保障局; not 教育局 / 财政局)."""
    ca, cb = name_core(typed, county), name_core(roster_name, county)
    if not ca or not cb:
        return False
    return sum(1 for ch in set(ca) if ch in cb) * 2 >= len(set(ca))


def identify(ws: Workspace, wb_code: str, wb_name: str) -> Identity:
    """The roster agency of a workbook from its code AND its name (README: 单位识别).

    - the code is a roster code: the name empty, equal to its agency's (normalised) or a variant of it →
      that agency (a variant or an empty name: a 提示); the name is another roster agency's (equal, or a
      variant of it and not of the code's) or clearly not the code's agency's → a conflict, no agency;
    - no code, or one not in the roster: the agency whose (normalised) name the workbook carries, else none.
    """
    county = ws.county.name
    norm = spec.normalise_label(wb_name)
    by_name = ws.agency_named(wb_name) if norm else None
    by_code = ws.agency(wb_code) if wb_code else None
    if by_code is None:
        return Identity(by_name, None, False)
    if not norm:
        return Identity(by_code, None, True)
    if by_name is not None:
        if by_name is by_code or by_name.code == by_code.code:
            return Identity(by_code, None, False)
        return Identity(None, (by_code.code, by_name.code), False)
    if is_name_variant(wb_name, by_code.name, county):
        return Identity(by_code, None, True)
    other = next((a for a in ws.agencies if a.code != by_code.code and is_name_variant(wb_name, a.name, county)),
                 None)
    if other is not None:
        return Identity(None, (by_code.code, other.code), False)
    if _loosely_same(wb_name, by_code.name, county):
        return Identity(by_code, None, True)
    return Identity(None, (by_code.code, ""), False)


#: An input cell's formula that reads another workbook: ``[1]Sheet1!A1`` as Excel stores it, or a file name.
_EXTERNAL_RE = re.compile(r"\[\d+\]|\[[^\]]+\.(?:xl\w*|et|ods|csv)\]", re.IGNORECASE)


@spec.per_format
def _merged_inputs() -> tuple[spec.CellSpec, ...]:
    """The input cells whose template cell is a merged range."""
    return tuple(c for c in spec.CELLS if c.merge_to and not c.computed)


def _merge_area(c: spec.CellSpec, anchor: str) -> list[str]:
    """The cells of ``c``'s merged range other than its anchor, the range placed at ``anchor`` (where found)."""
    (c0, r0), (c1, r1), (ca, ra) = split_a1(c.ref), split_a1(c.merge_to), split_a1(anchor)
    return [f"{col_letters(ca + dc)}{ra + dr}" for dr in range(r1 - r0 + 1) for dc in range(c1 - c0 + 1)
            if dr or dc]


def _py_value(v: Decimal | None, kind: str) -> int | Decimal | None:
    if v is None:
        return None
    if kind == "money":
        return v
    return int(v) if v == v.to_integral_value() else v


def _with_agency(f: F.Finding, code: str, name: str) -> F.Finding:
    from dataclasses import replace

    return replace(f, agency_code=code, agency_name=name)


# =============================================================================================================
# The batch


def _hidden_reason(name: str) -> str | None:
    """Why an entry is never looked at by its name alone: Office lock files, hidden, temporary and system files."""
    if name.startswith("~$"):
        return "Excel/WPS 打开文件时生成的临时锁定文件"
    if name.startswith(".") or name.lower().endswith(".tmp"):
        return "隐藏文件或临时文件"
    if name.lower() in ("thumbs.db", "desktop.ini"):
        return "系统文件"
    return None


def ignore_reason(path: Path) -> str | None:
    """Why a file of the year folder is not a workbook to read (None: read it)."""
    hidden = _hidden_reason(path.name)
    if hidden is not None:
        return hidden
    suffix = path.suffix.lower()
    if suffix in WORKBOOK_SUFFIXES or suffix in OTHER_SPREADSHEET_SUFFIXES:
        return None
    return f"不是 Excel 工作簿（扩展名 {path.suffix or '无'}）"


def _display_name(path: Path, base: Path | None) -> str:
    name = path.name
    if base is not None:
        try:
            name = path.relative_to(base).as_posix()
        except ValueError:
            pass
    return readable_name(name)


def readable_name(name: str) -> str:
    """A file name as the office should see it, and valid Unicode for every writer (JSON, XML, file names).

    A name that is not UTF-8 on disk (Python keeps its bytes as lone surrogates) most likely comes from a zip
    made on Chinese Windows and unpacked elsewhere: decoded as GB18030, else with U+FFFD for the bad bytes.
    """
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        pass
    try:
        data = os.fsencode(name)
    except UnicodeEncodeError:
        data = name.encode("utf-8", "surrogatepass")
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            pass
    return data.decode("utf-8", "replace")


def _unique_names(displays: list[str]) -> list[str]:
    """Display names made unique (two files whose names decode alike): "名称（2）.xlsx"."""
    taken = set(displays)
    out: list[str] = []
    used: set[str] = set()
    for d in displays:
        if d in used:
            stem, dot, ext = d.rpartition(".") if "." in d.rsplit("/", 1)[-1] else (d, "", "")
            n = 2
            while (alt := f"{stem}（{n}）{dot}{ext}") in taken or alt in used:
                n += 1
            d = alt
        used.add(d)
        out.append(d)
    return out


VALUE_COLUMNS = [
    "record", "agency", "agency_name", "file", "table", "row", "column", "name", "sheet", "cell", "kind",
    "computed", "raw", "status", "value", "number", "found", "formula",
]
TEXT_COLUMNS = [
    "record", "agency", "agency_name", "file", "name", "key", "label", "section", "sheet", "cell", "kind", "raw",
    "status", "value", "truncated",
]


def _spec_columns(entries, columns: dict[str, Callable]) -> dict[str, pd.Categorical | np.ndarray]:
    """Columns the spec fixes row by row (one row per spec entry, in spec order), for one workbook."""
    out: dict[str, pd.Categorical | np.ndarray] = {}
    for k, get in columns.items():
        vals = [get(e) for e in entries]
        out[k] = np.array(vals, dtype=bool) if isinstance(vals[0], bool) else pd.Categorical(vals)
    return out


#: The columns of the long tables the format fixes row by row: built by the merge, never sent by the workers.
_CELL_COLUMNS: dict[str, Callable] = {
    "name": lambda c: c.name, "table": lambda c: c.table, "row": lambda c: c.row, "column": lambda c: c.column,
    "kind": lambda c: c.kind, "computed": lambda c: c.computed}
_FIELD_COLUMNS: dict[str, Callable] = {
    "name": lambda f: f.name, "key": lambda f: f.key, "label": lambda f: f.label,
    "section": lambda f: f.section or "", "kind": lambda f: f.kind}


@spec.per_format
def _spec_values() -> dict[str, pd.Categorical | np.ndarray]:
    return _spec_columns(spec.CELLS, _CELL_COLUMNS)


@spec.per_format
def _spec_texts() -> dict[str, pd.Categorical | np.ndarray]:
    return _spec_columns(spec.FIELDS, _FIELD_COLUMNS)


def read_batch(
    paths: list[Path],
    year: int,
    workspace: Workspace | None = None,
    *,
    base: Path | None = None,
    progress: Callable[[Path], None] | None = None,
    jobs: int = 1,
    fmt: spec.Format | None = None,
) -> Figures:
    """Read every file; each gets a verdict (read / rejected / ignored); one broken file never stops the others.

    ``base`` is the folder file names are shown relative to (default: the workspace's year folder).
    ``progress`` is called once per file, after it is handled. ``jobs`` > 1 reads in that many processes
    (the result is the same, in the same order). ``fmt``: the format to read (None: the current one).
    """
    with spec.using(fmt):
        return _read_groups([_tasks(paths, year, workspace, base)], workspace, progress=progress, jobs=jobs)[0]


def read_batches(groups: list[tuple[list[Path], int]], workspace: Workspace | None = None, *,
                 progress: Callable[[Path], None] | None = None, jobs: int = 1,
                 fmt: spec.Format | None = None) -> list[Figures]:
    """``read_batch`` of several (files, year) groups — this year's and last year's folders — by one set of
    worker processes: a group is put together while the workers read the next. The same Figures."""
    with spec.using(fmt):
        return _read_groups([_tasks(paths, year, workspace, None) for paths, year in groups], workspace,
                            progress=progress, jobs=jobs)


def _tasks(paths: list[Path], year: int, workspace: Workspace | None,
           base: Path | None) -> tuple[list[tuple[Path, str]], int]:
    if base is None and workspace is not None:
        base = workspace.year_dir(year)
    ordered = sorted(dict.fromkeys(Path(p) for p in paths))
    return list(zip(ordered, _unique_names([_display_name(path, base) for path in ordered]))), year


@dataclass(frozen=True)
class _Job:
    """What the reading workers inherit: the workspace (not sent with every file: O(files × roster)) and the
    format every file is read under."""

    workspace: Workspace | None
    format: spec.Format


def _read_item(job: _Job, item: tuple[Path, str, int]) -> _Read:
    """One file (path, display name, year) → its verdict and rows (in a worker process when jobs > 1)."""
    path, display, year = item
    with spec.using(job.format):
        return _handle(path, display, year, job.workspace)


def _read_groups(groups: list[tuple[list[tuple[Path, str]], int]], workspace: Workspace | None, *,
                 progress: Callable[[Path], None] | None, jobs: int) -> list[Figures]:
    # files go to the workers in small chunks and come back packed (parallel.map_chunks); each group is merged as
    # soon as its last chunk is back
    job = parallel.Chunked(_Job(workspace, spec.current()), work=_read_item, strip=_stripped, pack=_pack)
    items = [[(path, display, year) for path, display in tasks] for tasks, year in groups]
    return parallel.map_chunks(job, items, jobs=jobs,
                               progress=None if progress is None else (lambda item: progress(item[0])),
                               done=lambda g, reads, packs: _merge(*groups[g], reads, packs, workspace))


def _merge(tasks: list[tuple[Path, str]], year: int, reads: list[_Read], packs: list[_Pack],
           workspace: Workspace | None) -> Figures:
    from dataclasses import replace

    files: list[FileVerdict] = []
    records: list[Record] = []
    found: list[F.Finding] = []
    for res in reads:  # in path order, whatever order the workers finished in
        files.append(res.verdict)
        found.extend(res.findings)
        if res.record is not None:
            records.append(replace(res.record, index=len(records)))
    # chunks of consecutive files, in path order: their rows in path order
    vcols = parallel.concat_columns([p.values for p in packs], len(records) * len(spec.CELLS))
    tcols = parallel.concat_columns([p.texts for p in packs], len(records) * len(spec.FIELDS))
    if workspace is not None:
        files = [_attribute(v, workspace) for v in files]
        by_file = {v.file: v for v in files}
        found = [
            _with_agency(f, by_file[f.file].agency_code, by_file[f.file].agency_name)
            if not f.agency_code and f.file in by_file and by_file[f.file].agency_code
            else f
            for f in found
        ]
    # columns that repeat the template's labels and addresses (or one value per workbook) are categorical: a
    # code per row instead of a pointer and an object (the long tables of 1,000 workbooks ~4x smaller). Those the
    # spec fixes row by row, and those of the workbook, are built here (the workers do not send them).
    per_record = {"agency": pd.Categorical([r.agency_code for r in records]),
                  "agency_name": pd.Categorical([r.agency_name for r in records]),
                  "file": pd.Categorical([r.file for r in records])}
    for cols, fixed, per in ((vcols, _spec_values(), len(spec.CELLS)), (tcols, _spec_texts(), len(spec.FIELDS))):
        for k, col in fixed.items():
            cols[k] = (np.tile(col, len(records)) if isinstance(col, np.ndarray)
                       else pd.Categorical.from_codes(np.tile(col.codes, len(records)), dtype=col.dtype))
        for k, cat in per_record.items():
            cols[k] = pd.Categorical.from_codes(np.repeat(cat.codes, per), dtype=cat.dtype)
        cols["record"] = np.repeat(np.arange(len(records), dtype=np.int64), per)
    # ``value`` mixes None, str, int and Decimal and stays object: pandas ≥ 3 would infer its str dtype for a
    # column of only texts and blanks (a workbook whose every number field is blank), turning None into NaN
    for cols in (vcols, tcols):
        if "value" in cols:
            cols["value"] = pd.Series(cols["value"], dtype=object)
    values = pd.DataFrame(vcols, columns=VALUE_COLUMNS)
    texts = pd.DataFrame(tcols, columns=TEXT_COLUMNS)
    del vcols, tcols
    for col in ("value",):
        values[col] = values[col].astype(object)
        texts[col] = texts[col].astype(object)
    values["number"] = values["number"].astype("float64")
    values["found"] = values["found"].astype("float64")
    return Figures(year=year, files=files, records=records, values=values, texts=texts, findings=found,
                   format=spec.current())


@dataclass
class _Pack:
    """The rows of consecutive workbooks (those read, in order), without the columns the merge builds from the
    spec: repeated strings as categoricals, numbers as arrays, each text once."""

    values: dict[str, object]
    texts: dict[str, object]


_PACKED_CATEGORICAL = {"raw", "status", "sheet", "cell"}  # "raw" of texts stays a list: every text is its own
_PACKED_FLOAT = {"number", "found"}
_PACKED_BOOL = {"formula", "truncated"}


def _pack(reads: list[_Read]) -> _Pack:
    read = [res for res in reads if res.record is not None]
    return _Pack(*(
        parallel.pack_columns((getattr(res, attr) for res in read), skip=fixed.keys(), categorical=categorical,
                              floats=_PACKED_FLOAT, bools=_PACKED_BOOL)
        for attr, fixed, categorical in (("values", _CELL_COLUMNS, _PACKED_CATEGORICAL),
                                         ("texts", _FIELD_COLUMNS, _PACKED_CATEGORICAL - {"raw"}))
    ))


def _stripped(res: _Read) -> _Read:
    return _Read(res.verdict, res.record, {}, {}, res.findings)


def _rejected(display: str, path: Path, code: str, **params) -> _Read:
    fnd = F.make(code, file=display, **params)
    return _Read(FileVerdict(display, path, "rejected", fnd.message, codes=(code,)), None, {}, {}, [fnd])


def _unreadable(display: str, path: Path, e: OSError, what: str = "文件") -> _Read:
    from .workspace import os_reason

    return _rejected(display, path, "FILE_UNREADABLE", what=what, detail=os_reason(e))


def _link_problem(path: Path, ws: Workspace | None) -> tuple[str, bool] | None:
    """Why a symbolic link is not followed, and whether it leads to a folder (None: it leads to a regular file
    inside the workspace, read as one).

    Never followed out of the workspace (without one: to any regular file)."""
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return f"循环的符号链接（{target}）", False
        if e.errno == errno.ENOENT:
            return f"指向不存在的文件的符号链接（{target}）", False
        return f"无法跟随的符号链接（{target}）", False
    if stat.S_ISDIR(st.st_mode):
        return f"指向文件夹的符号链接（{target}），其中的文件不会被读取", True
    if not stat.S_ISREG(st.st_mode):
        return f"指向非普通文件的符号链接（{target}）", False
    if ws is not None and not Path(os.path.realpath(path)).is_relative_to(Path(ws.root).resolve()):
        return f"指向工作目录以外的符号链接（{target}）", False
    return None


def _entry(path: Path, display: str, ws: Workspace | None) -> _Read | None:
    """The verdict of a folder entry that is not a regular file to read on (None: read it).

    The folder walk lists every entry but the folders it went into: a folder here could not be opened; a link
    is never followed out of the workspace, to a folder, or when broken or looping; pipes and devices are
    never opened."""
    hidden = _hidden_reason(path.name)
    if hidden is not None:
        return _Read(FileVerdict(display, path, "ignored", hidden), None, {}, {}, [])
    try:
        st = os.lstat(path)
    except OSError as e:  # vanished since the folder was listed
        return _unreadable(display, path, e)
    if stat.S_ISDIR(st.st_mode):
        try:
            with os.scandir(path):
                pass
        except OSError as e:
            return _unreadable(display, path, e, "文件夹")
        return _Read(FileVerdict(display, path, "ignored", "文件夹"), None, {}, {}, [])  # opened after all: empty
    if stat.S_ISLNK(st.st_mode):
        found = _link_problem(path, ws)
        if found is None:
            return None
        problem, to_folder = found
        if to_folder:
            return _rejected(display, path, "FILE_LINK", detail=problem)
        reason = ignore_reason(path)  # a link that would not be read anyway (说明.txt → …): ignored as such
        if reason is not None:
            return _Read(FileVerdict(display, path, "ignored", f"{reason}；{problem}，未跟随"), None, {}, {}, [])
        return _rejected(display, path, "FILE_LINK", detail=problem)
    if not stat.S_ISREG(st.st_mode):
        return _Read(FileVerdict(display, path, "ignored", "不是普通文件（管道、设备或套接字），未打开"), None, {}, {}, [])
    return None


def _handle(path: Path, display: str, year: int, ws: Workspace | None) -> _Read:
    """One entry of the folder → its verdict and rows (runs in a worker process when jobs > 1)."""
    entry = _entry(path, display, ws)
    if entry is not None:
        return entry
    reason = ignore_reason(path)
    if reason is not None:
        return _Read(FileVerdict(display, path, "ignored", reason), None, {}, {}, [])
    try:
        with open(path, "rb"):
            pass
    except OSError as e:  # unreadable (permissions, vanished): said so, not taken for a damaged file
        return _unreadable(display, path, e)
    suffix = path.suffix.lower()
    if suffix in OTHER_SPREADSHEET_SUFFIXES and (not is_zip(path) or suffix in _NEVER_XLSX):
        code = "FILE_XLS" if suffix in (".xls", ".et", ".ett") else "FILE_NOT_XLSX"
        return _rejected(display, path, code, detail=f"扩展名 {path.suffix}")
    try:
        res = _read_one(path, display, year, ws)
    except OSError as e:  # unreadable (permissions, vanished): a data problem of this file only
        return _unreadable(display, path, e)
    if res.record is not None and suffix != ".xlsx":
        res.findings.append(
            _with_agency(F.make("FILE_NOT_XLSX", file=display, detail=f"扩展名 {path.suffix}"),
                         res.record.agency_code, res.record.agency_name)
        )
        from dataclasses import replace

        res.verdict = replace(res.verdict, codes=res.verdict.codes + ("FILE_NOT_XLSX",))
    return res


def _attribute(v: FileVerdict, ws: Workspace) -> FileVerdict:
    """A rejected file belongs to the roster agency whose name its file name contains (longest match)."""
    if v.status != "rejected" or v.agency_code:
        return v
    stem = spec.normalise_label(Path(v.file).name)
    hits = [a for a in ws.agencies if spec.normalise_label(a.name) and spec.normalise_label(a.name) in stem]
    if not hits:
        return v
    a = max(hits, key=lambda a: len(a.name))
    from dataclasses import replace

    return replace(v, agency_code=a.code, agency_name=a.name)
