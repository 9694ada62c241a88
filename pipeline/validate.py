"""Figures → Report: every finding for every agency, never stopping at the first.

Per-cell checks (R4, text in number cells, blanks, Excel errors, 万元 precision), the cross-footing rules R1–R5,
the cross-year rules R6/R8, year-on-year jumps and the plausibility rules R9/R11/（六）3.其他 run as one
pandera pass over a wide frame (one row per workbook, columns derived from spec). Each pandera check is a typed
value (``FrameCheck``) registered under its pandera name; a row of pandera's ``failure_cases`` (de-duplicated:
pandera repeats a whole-frame check once per column) becomes the finding of the check its name looks up.
File-level, agency-level and text checks are plain Python over the batch's records and texts. Everything runs
under the format the batch was read under (``spec.using``); tables derived from it are ``spec.per_format``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from dataclasses import dataclass
from operator import itemgetter
from typing import ClassVar

import numpy as np
import pandas as pd
import pandera.pandas as pa

from . import findings as F
from . import claims, parallel, spec

# the report's records live in model.py: a process that only receives a report need not import pandera
from .model import (VERDICT_FAIL, VERDICT_MISSING, VERDICT_PASS, VERDICT_WARN, AgencyVerdict, Report,  # noqa: F401
                    is_unattributed)
from .read import Figures, Record, identify
from .workspace import Workspace
from .xlsx_reader import col_letters, split_a1

# ---- thresholds of the soft (提示) checks; policy, not format (R9, R11, （六）3.其他 and the numbers texts quote
# are the format's: spec.PLAUSIBILITY_CHECKS, spec.CLAIM_VOCABULARY; money decimals: spec.MONEY_MAX_DECIMALS) -------
YOY_FACTOR = 5  # a figure that grew or shrank five-fold …
YOY_MIN_DIFF = 50  # … by at least 50 (counts) …
YOY_MIN_DIFF_MONEY = Decimal(50)  # … or 50 万元
SIMILAR_MIN_CHARS = 40  # texts shorter than this are not compared (“无。”)
SIMILAR_THRESHOLD = 0.9  # 3-gram Jaccard similarity counted as 雷同
YEAR_MIN, YEAR_MAX = 2000, 2099


_STATUS_CODE = {"blank": "CELL_BLANK", "coerced": "CELL_COERCED", "converted": "UNIT_CONVERTED", "text": "CELL_TEXT",
                "excel_error": "CELL_EXCEL_ERROR"}
#: A cell's status in the wide frame is a number (pandera runs ``isna`` over the whole frame for every frame-wide
#: check, and on 200 columns of strings that was most of the pass); any status read may give is numbered.
_STATUSES: list[str] = ["ok", "missing", *_STATUS_CODE]
_STATUS_NUMBER: dict[str, int] = {st: i for i, st in enumerate(_STATUSES)}


def _status_number(status: object) -> float:
    st = str(status)
    if st not in _STATUS_NUMBER:
        _STATUS_NUMBER[st] = len(_STATUSES)
        _STATUSES.append(st)
    return float(_STATUS_NUMBER[st])


# =============================================================================================================


#: With ``jobs`` > 1 and at least this many workbooks, the pandera pass over the wide frame runs in a second
#: process (forked, so it has the batch without copying it) beside the field, agency and text checks. It reads
#: numeric arrays only, so the pages the two processes share stay shared (the text checks touch every text
#: object, which copied ~100 MB for 1,000 agencies when they ran in the second process). Same findings.
PARALLEL_MIN_RECORDS = 200


def _frame_job(job: tuple) -> list[F.Finding]:
    batch, previous, numbers, fmt = job
    with spec.using(fmt):  # a forked process inherits the format too; said here, not left to the fork
        return _check_frame(batch, previous, _Context(batch), numbers)


def validate(batch: Figures, workspace: Workspace | None = None, previous: Figures | None = None, *,
             jobs: int = 1) -> Report:
    """Every finding of the batch, under the format it was read under (``batch.format``; 2021 without one)."""
    with spec.using(getattr(batch, "format", None)) as fmt:
        out: list[F.Finding] = list(batch.findings)
        ctx = _Context(batch)
        numbers = _numbers(batch) if batch.records else None
        text_numbers = numbers if len(batch.values) else None
        second = 1 if jobs > 1 and len(batch.records) >= PARALLEL_MIN_RECORDS else 0
        # the pandera pass first: in the second process while the field, agency and text checks run here
        with parallel.Pool(second, (batch, previous, numbers, fmt)) as pool:
            frame = pool.submit(_frame_job)
            out += _check_fields(batch, ctx)
            out += _check_required(batch, ctx)
            out += _check_agencies(batch, workspace, ctx)
            out += _check_unfilled(batch, ctx)
            out += _check_previous(batch, previous, ctx)
            out += _check_texts(batch, previous, ctx, text_numbers)
            out += frame.result()
        out = F.sort_findings(_dedupe(out))
        return _report(batch, workspace, out)


class _Rows:
    """The rows of a long table (values or texts) by record and name, looked up per record on demand (a dict of
    every row of 1,000 workbooks cost more than all the checks)."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        rec = frame["record"].to_numpy(dtype=np.int64) if len(frame) else np.empty(0, dtype=np.int64)
        self._order = np.argsort(rec, kind="stable")
        self._sorted = rec[self._order]
        self._names = frame["name"].to_numpy(dtype=object) if len(frame) else np.empty(0, dtype=object)
        self._by_rec: dict[int, dict[str, int]] = {}
        self._columns: dict[str, list] = {}

    def of(self, rec: int) -> dict[str, int]:
        """name → row position (the last row wins, as a dict built row by row would)."""
        rows = self._by_rec.get(rec)
        if rows is None:
            lo, hi = np.searchsorted(self._sorted, [rec, rec + 1])
            idx = self._order[lo:hi]
            rows = self._by_rec[rec] = dict(zip(self._names[idx].tolist(), idx.tolist()))
        return rows

    def column(self, name: str) -> list:
        """A column as a list (converted once)."""
        col = self._columns.get(name)
        if col is None:
            col = self._columns[name] = self.frame[name].tolist()
        return col


class _Context:
    """Lookups shared by the checks: records, and where each cell/field was found in each workbook."""

    def __init__(self, batch: Figures):
        self.records = {r.index: r for r in batch.records}
        self.values = _Rows(batch.values)
        self.texts = _Rows(batch.texts)
        self._pos: dict[int, dict[str, tuple[str, str]]] = {}

    def pos(self, rec: int) -> dict[str, tuple[str, str]]:
        """name → (sheet, cell) of every cell and field of a record."""
        p = self._pos.get(rec)
        if p is None:
            p = {}
            for rows in (self.values, self.texts):
                sheets, cells = rows.column("sheet"), rows.column("cell")
                for name, i in rows.of(rec).items():
                    p[name] = (sheets[i], cells[i])
            self._pos[rec] = p
        return p

    def finding(self, code: str, rec: int, names: Iterable[str] = (), /, *, sheet: str | None = None,
                marks: Iterable[str] = (), **kw) -> F.Finding:
        """A finding of record ``rec`` on the cells of ``names`` (those on the first one's sheet); ``marks``: the
        names of the cells among them the returned workbook marks (Finding.marks; default all)."""
        r: Record = self.records[rec]
        pos = self.pos(rec)
        refs: list[str] = []
        sh = sheet
        for n in names:
            p = pos.get(n)
            if p is None:
                continue
            if sh is None:
                sh = p[0]
            if p[0] == sh:
                refs.append(p[1])
        if sh is None:
            sh = ""
        cells = tuple(dict.fromkeys(refs))
        marked = tuple(dict.fromkeys(p[1] for n in marks if (p := pos.get(n)) is not None and p[0] == sh))
        return F.make(code, agency_code=r.agency_code, agency_name=r.agency_name, file=r.file, sheet=sh,
                      cells=cells, marks=tuple(c for c in marked if c in cells), **kw)

    def typed_over(self, rec: int, name: str) -> bool:
        """Whether a total cell was found holding a number without its formula (typed over, or never a formula)."""
        i = self.values.of(rec).get(name)
        return i is not None and not bool(self.values.column("formula")[i])

    def where(self, rec: int, name: str) -> str:
        sheet, cell = self.pos(rec).get(name, ("", ""))
        if name in spec.CELL:
            c = spec.CELL[name]
            return f"工作表“{sheet}”{cell} 单元格（表{c.table}“{spec.clip(c.row)}”·“{c.column}”）"
        f = spec.FIELD.get(name)
        return f"工作表“{sheet}”{cell} 单元格（{f.label if f else name}）"


def _dedupe(items: list[F.Finding]) -> list[F.Finding]:
    seen: set = set()
    out = []
    for f in items:
        key = (f.code, f.agency_code, f.file, f.sheet, f.cells, f.expected, f.actual, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


@spec.per_format
def _format_ids() -> frozenset[str]:
    """What 格式版本 may say: the format's version or its document (normalised)."""
    return frozenset({spec.normalise_label(spec.FORMAT_VERSION), spec.normalise_label(spec.FORMAT_DOCUMENT)})


# ---- fields: report year, format version, choices, fee figures -------------------------------------------


def _check_fields(batch: Figures, ctx: _Context) -> list[F.Finding]:
    out: list[F.Finding] = []
    t = batch.texts
    for rec, name, status, value, raw in zip(*(t[c].tolist() for c in ("record", "name", "status", "value", "raw"))):
        f = spec.FIELD[name]
        if status == "missing":
            continue
        if name == "INFO_report_year":
            if value != batch.year:
                out.append(ctx.finding("REPORT_YEAR", rec, [name], expected=batch.year, actual=raw or "（空）"))
            continue
        if name == "META_format_version":
            if spec.normalise_label(raw) not in _format_ids():
                out.append(ctx.finding("FORMAT_VERSION", rec, [name], expected=spec.FORMAT_VERSION,
                                       actual=raw or "（空）"))
            continue
        if f.kind == "choice" and f.required and status == "blank" and f.section:
            out.append(ctx.finding("FIELD_INVALID", rec, [name], where=ctx.where(rec, name),
                                   expected="“" + "”或“".join(f.choices) + "”", actual="（空）"))
        elif f.kind == "choice" and status == "ok" and f.choices and value not in f.choices:
            out.append(ctx.finding("FIELD_INVALID", rec, [name], where=ctx.where(rec, name),
                                   expected="“" + "”或“".join(f.choices) + "”", actual=raw))
        elif f.kind in ("count", "money") and status in ("text", "excel_error"):
            out.append(ctx.finding("FIELD_INVALID", rec, [name], where=ctx.where(rec, name),
                                   expected=f"数字（{f.unit}）", actual=raw))
        elif f.kind in ("count", "money") and value is not None and (
            value < 0 or (f.kind == "count" and value != int(value))
        ):
            out.append(ctx.finding("FIELD_INVALID", rec, [name], where=ctx.where(rec, name),
                                   expected="非负" + ("整数" if f.kind == "count" else "数"), actual=raw))
        elif f.kind in ("count", "money") and status in ("coerced", "converted") and value is not None:
            # read, but not as typed: say what was used (a unit converted: in the field's own unit)
            expected = _fmt(value, f.kind) + (f" {f.unit}" if status == "converted" else "")
            out.append(ctx.finding(_STATUS_CODE[status], rec, [name], where=ctx.where(rec, name), expected=expected,
                                   actual=raw, unit=f.unit))
    return out


#: Fields whose blank is reported by their own check (REPORT_YEAR, FORMAT_VERSION), not as FIELD_REQUIRED.
_OWN_BLANK_CHECK = frozenset({"INFO_report_year", "META_format_version"})


def _check_required(batch: Figures, ctx: _Context) -> list[F.Finding]:
    """A required field of 基本信息 left empty: FIELD_REQUIRED (提示); the fields the agency is identified by
    (spec: ``identifies``), AGENCY_ID_EMPTY (错误). The fields of the report's parts have TEXT_EMPTY."""
    out: list[F.Finding] = []
    t = batch.texts
    for rec, name, status in zip(*(t[c].tolist() for c in ("record", "name", "status"))):
        f = spec.FIELD[name]
        if status != "blank" or not f.required or f.section or name in _OWN_BLANK_CHECK:
            continue
        code = "AGENCY_ID_EMPTY" if f.identifies else "FIELD_REQUIRED"
        out.append(ctx.finding(code, rec, [name], where=ctx.where(rec, name), label=f.label, expected=f.label,
                               actual="（空）"))
    return out


# ---- a workbook returned as it was sent out ------------------------------------------------------------

@spec.per_format
def _table_inputs() -> frozenset[str]:
    """The table inputs an agency fills: every input cell but those a pre-filled workbook may already hold
    (上年结转, carried in from last year's report)."""
    prefilled = {c.name for c in spec.INPUT_CELLS if c.table == "三" and c.row_key == "carried_in"}
    return frozenset(c.name for c in spec.INPUT_CELLS) - prefilled


@spec.per_format
def _section_fields() -> frozenset[str]:
    """The fields of the report's parts (一, 五, 六 …), not of 基本信息."""
    return frozenset(f.name for f in spec.FIELDS if f.section)


def _check_unfilled(batch: Figures, ctx: _Context) -> list[F.Finding]:
    """REPORT_UNFILLED: every table input still at what the (pre-filled) template holds — 0 or blank, 上年结转
    as carried in — and every field of parts 一, 五, 六 blank: the workbook was returned without being filled."""
    if not batch.records:
        return []
    filled: set[int] = set()
    v = batch.values
    if len(v):
        sel = v["name"].isin(_table_inputs()).to_numpy()
        status = v["status"].astype(str).to_numpy()
        number = v["number"].to_numpy(dtype="float64")
        at_default = np.isin(status, ("ok", "blank")) & (np.isnan(number) | (number == 0))
        filled.update(v["record"].to_numpy()[sel & ~at_default].tolist())
    t = batch.texts
    if len(t):
        sel = t["name"].isin(_section_fields()).to_numpy()
        blank = np.array([_text(x).strip() == "" for x in t["value"].tolist()], dtype=bool)
        blank &= ~np.isin(t["status"].astype(str).to_numpy(), ("text", "excel_error"))
        filled.update(t["record"].to_numpy()[sel & ~blank].tolist())
    present = set(v["record"].tolist()) if len(v) else set()
    out = []
    for r in batch.records:
        if r.index in filled or r.index not in present:
            continue
        out.append(ctx.finding("REPORT_UNFILLED", r.index, ["TXT_overview"], expected="填写后的报表",
                               actual="表格均为预填值、文字均为空白"))
    return out


# ---- agencies: roster, duplicates, missing -------------------------------------------------------------


def _check_agencies(batch: Figures, ws: Workspace | None, ctx: _Context) -> list[F.Finding]:
    out: list[F.Finding] = []
    by_code: dict[str, list[Record]] = defaultdict(list)
    for r in batch.records:
        conflict = r.conflict
        if conflict is None and r.in_roster is None and ws is not None:  # read without the roster
            conflict = identify(ws, r.workbook_code, r.workbook_name).conflict
        if conflict is not None and ws is not None:
            out.append(_conflict_finding(r, conflict, ws, ctx))
            continue  # belongs to no agency: never a duplicate of either
        by_code[r.agency_code].append(r)
        if ws is None:
            continue
        known = r.in_roster if r.in_roster is not None else ws.agency(r.agency_code) is not None
        if not known and not (r.workbook_code or r.workbook_name):
            continue  # neither typed: AGENCY_ID_EMPTY for each (_check_required)
        if not known:
            out.append(ctx.finding("AGENCY_UNKNOWN", r.index, ["INFO_agency_code", "INFO_agency_name"],
                                   code=r.workbook_code or "（空）", name=r.workbook_name or "（空）",
                                   actual=f"{r.workbook_code} {r.workbook_name}".strip()))
        elif r.workbook_name and spec.normalise_label(r.workbook_name) != spec.normalise_label(r.agency_name):
            out.append(ctx.finding("AGENCY_NAME_MISMATCH", r.index, ["INFO_agency_name"],
                                   expected=r.agency_name, actual=r.workbook_name or "（空）"))
    for recs in by_code.values():
        if len(recs) > 1:
            files = "、".join(f"“{r.file}”" for r in recs)
            for r in recs:
                out.append(ctx.finding("AGENCY_DUPLICATE", r.index, ["INFO_agency_code"], name=r.agency_name,
                                       files=files, expected="1个工作簿", actual=files))
    if ws is not None:
        seen = {r.agency_code for r in batch.records} | {v.agency_code for v in batch.files if v.agency_code}
        # a workbook that names an agency by its code or its name, but not by both, is not that agency's
        named: dict[str, list[str]] = defaultdict(list)
        for r in batch.records:
            for code in (r.conflict or ()):
                if code:
                    named[code].append(f"“{r.file}”")
        for a in ws.agencies:
            if a.code not in seen:
                detail = (f"（{'、'.join(named[a.code])}的单位代码与单位名称分属不同单位，未计入本单位）"
                          if a.code in named else "")
                out.append(F.make("AGENCY_MISSING", agency_code=a.code, agency_name=a.name, code=a.code,
                                  name=a.name, year=batch.year, detail=detail, expected="1个工作簿", actual="未报送"))
    return out


def _conflict_finding(r: Record, conflict: tuple[str, str], ws: Workspace, ctx: _Context) -> F.Finding:
    """AGENCY_CONFLICT: both roster entries, and the 基本信息 cells to correct."""
    by_code, by_name = ws.agency(conflict[0]), ws.agency(conflict[1]) if conflict[1] else None
    pos = ctx.pos(r.index)
    code_cell = pos.get("INFO_agency_code", (spec.SHEET_INFO, spec.FIELD["INFO_agency_code"].ref))[1]
    name_cell = pos.get("INFO_agency_name", (spec.SHEET_INFO, spec.FIELD["INFO_agency_name"].ref))[1]
    code_says = f"单位代码“{r.workbook_code}”（{code_cell}）是名册中“{by_code.name}”的代码"
    if by_name is not None:
        name_says = f"单位名称“{r.workbook_name}”（{name_cell}）却是名册中代码为 {by_name.code} 的“{by_name.name}”"
        expected = f"{by_code.code} {by_code.name} 或 {by_name.code} {by_name.name}"
    else:
        name_says = f"单位名称“{r.workbook_name}”（{name_cell}）却不是该单位，也不在名册中"
        expected = f"{by_code.code} {by_code.name}"
    return ctx.finding("AGENCY_CONFLICT", r.index, ["INFO_agency_code", "INFO_agency_name"],
                       sheet=spec.SHEET_INFO, detail=f"{code_says}，{name_says}", code_cell=code_cell,
                       name_cell=name_cell, expected=expected, actual=f"{r.workbook_code} {r.workbook_name}")


# ---- the pandera pass -----------------------------------------------------------------------------------

_PREV = "prev__"
_FOUND = "found__"
_STATUS = "status__"
_DECIMALS = "decimals__"


@spec.per_format
def _yoy_cells() -> tuple[str, ...]:
    """The figures compared with last year's: table 二, 三's new requests, 四's totals."""
    names = [c.name for c in spec.CELLS if c.table == "二"]
    names.append(spec.cell_name("三", "new", "total"))
    names += [c.name for c in spec.CELLS if c.table == "四" and c.computed]
    return tuple(names)


def _numbers(batch: Figures) -> pd.DataFrame:
    """One row per record (batch order), one float column per spec cell (NaN: unreadable or absent)."""
    idx = pd.Index([r.index for r in batch.records], name="record")
    names = [c.name for c in spec.CELLS]
    v = batch.values
    if not len(v):
        return pd.DataFrame(index=idx, columns=names, dtype="float64")
    return v.pivot(index="record", columns="name", values="number").reindex(index=idx, columns=names).astype(
        "float64")


def _by_record(frame: pd.DataFrame, idx: pd.Index, names: list[str], column: str) -> pd.DataFrame:
    """``column`` of the rows of ``frame`` named ``names`` as one row per record (object; NaN where absent)."""
    sub = frame[frame["name"].isin(names)] if len(frame) else frame
    if not len(sub):
        return pd.DataFrame(index=idx, columns=names, dtype=object)
    out = pd.DataFrame({"record": sub["record"].to_numpy(), "name": sub["name"].to_numpy(dtype=object),
                        column: sub[column].to_numpy(dtype=object)})
    return out.pivot(index="record", columns="name", values=column).reindex(index=idx, columns=names)


def _text(val: object) -> str:
    """A field's value as text: '' for blank (None, '') and for no row at all (NaN)."""
    if val is None or (isinstance(val, float) and np.isnan(val)):
        return ""
    return str(val or "")


def _wide(batch: Figures, previous: Figures | None, numbers: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per record: numbers, found totals, statuses, money decimals, previous year's numbers, fee fields.

    Statuses are numbers (_STATUSES) and fee texts object columns: pandera runs ``isna`` over the whole frame
    for every frame-wide check, and on pandas' str columns that is a Python loop per column.
    """
    v = batch.values
    idx = pd.Index([r.index for r in batch.records], name="record")
    names = [c.name for c in spec.CELLS]
    num = _numbers(batch) if numbers is None else numbers
    computed = [c.name for c in spec.CELLS if c.computed]
    if len(v):
        found = v[v["computed"]].pivot(index="record", columns="name", values="found")
        for st in pd.unique(v["status"]):
            _status_number(st)
        coded = pd.DataFrame({"record": v["record"].to_numpy(), "name": v["name"].to_numpy(dtype=object),
                              "status": v["status"].map(lambda st: _STATUS_NUMBER[str(st)]).to_numpy(dtype="float64")})
        status = coded.pivot(index="record", columns="name", values="status").reindex(index=idx, columns=names)
    else:
        found = pd.DataFrame(index=idx, dtype="float64")
        status = pd.DataFrame(index=idx, columns=names, dtype="float64")
    found = found.reindex(index=idx, columns=computed)
    status = status.fillna(float(_STATUS_NUMBER["missing"])).astype("float64")
    parts = [
        num.astype("float64"),
        found.astype("float64").add_prefix(_FOUND),
        status.add_prefix(_STATUS),
    ]
    money = [c.name for c in spec.CELLS if c.kind == "money"]
    dec = _by_record(v, idx, money, "value").map(
        lambda val: float(max(0, -val.normalize().as_tuple().exponent)) if isinstance(val, Decimal) else np.nan
    ).astype("float64")
    parts.append(dec.add_prefix(_DECIMALS))
    prev_names = sorted({n for r in spec.RULES if r.scope == "cross_year" for n in r.last_year} | set(_yoy_cells()))
    prev = pd.DataFrame(index=idx, columns=prev_names, dtype="float64")
    if previous is not None and len(previous.values):
        p_rec: dict[str, int] = {}
        for r in previous.records:
            p_rec.setdefault(r.agency_code, r.index)  # first workbook of a (duplicated) agency
        pnum = previous.values.pivot(index="record", columns="name", values="number")
        rows = [p_rec.get(r.agency_code) for r in batch.records]
        rows = [pi if pi is not None and pi in pnum.index else -1 for pi in rows]
        prev = pnum.reindex(index=rows, columns=prev_names).astype("float64").set_axis(idx, axis=0)
    parts.append(prev.add_prefix(_PREV))
    fields = [f for check in spec.PLAUSIBILITY_CHECKS for f in check.fields]  # the fields the checks read
    src = _by_record(batch.texts, idx, fields, "value")
    parts.append(pd.DataFrame({
        f: (pd.Series([float(val) if isinstance(val, (int, Decimal)) else np.nan for val in src[f]], index=idx,
                      dtype="float64")
            if spec.FIELD[f].kind == "count" else
            pd.Series([_text(val) for val in src[f]], index=idx, dtype=object))
        for f in dict.fromkeys(fields)
    }, index=idx))
    return pd.concat(parts, axis=1)


def _sum(df: pd.DataFrame, names: Iterable[str], prefix: str = "") -> pd.Series:
    cols = [prefix + n for n in names]
    if not cols:
        return pd.Series(0.0, index=df.index)
    return df[cols].sum(axis=1, min_count=len(cols))  # NaN when any part is NaN: the rule is skipped


# ---- the checks of the wide frame, each a typed value ----------------------------------------------------
#
# Every pandera check of the pass is one of the frozen dataclasses below: what it tests (``holds``, vectorised
# over the frame or a column), the spec cells it concerns, the finding code it reports (whose registry entry
# holds the severity) and how a failing row becomes that finding (``finding``). ``_plan`` registers each check
# under a generated key, which is its pandera name; a failure case is decoded by looking its check's name up in
# that registry (the name is never read for meaning).


class _Frame:
    """What a check's ``finding`` reads: the wide frame and the lookups of the cells as found."""

    def __init__(self, df: pd.DataFrame, ctx: _Context):
        self.df = df
        self.ctx = ctx

    def at(self, rec: int, column: str):
        return self.df.at[rec, column]

    def raw(self, rec: int, name: str) -> tuple[str, str]:
        """(raw text, status) of a cell as read ('', '' when absent)."""
        values = self.ctx.values
        i = values.of(rec).get(name)
        return ("", "") if i is None else (values.column("raw")[i], values.column("status")[i])


@dataclass(frozen=True)
class FrameCheck:
    """One check of the pandera pass (see the subclasses). ``column`` is the wide frame's column the check runs
    on, None for a check of the whole frame."""

    code: ClassVar[str] = ""  # the finding code (F.REGISTRY[code] gives the severity); "" for CellStatus

    @property
    def column(self) -> str | None:
        return None

    @property
    def cells(self) -> tuple[str, ...]:
        """The spec cells the check reads and its finding names."""
        raise NotImplementedError

    def holds(self, data: pd.DataFrame | pd.Series) -> pd.Series:
        """True where the check holds or cannot be evaluated (an unreadable cell, no last year)."""
        raise NotImplementedError

    def finding(self, rec: int, case: object, frame: _Frame) -> F.Finding | None:
        """The finding of record ``rec`` failing the check (``case``: pandera's failure case)."""
        raise NotImplementedError


@dataclass(frozen=True)
class CellNegative(FrameCheck):
    """R4: a figure is never negative."""

    cell: str
    kind: str  # the cell's kind (count / money), for the figure shown
    code: ClassVar[str] = "CELL_NEGATIVE"

    @property
    def column(self) -> str:
        return self.cell

    @property
    def cells(self) -> tuple[str, ...]:
        return (self.cell,)

    def holds(self, s: pd.Series) -> pd.Series:
        return s.isna() | (s >= 0)

    def finding(self, rec: int, case: object, frame: _Frame) -> F.Finding:
        return frame.ctx.finding(self.code, rec, [self.cell], where=frame.ctx.where(rec, self.cell), expected="≥ 0",
                                 actual=_fmt(case, self.kind))


@dataclass(frozen=True)
class CellDecimal(FrameCheck):
    """R4: a count is a whole number."""

    cell: str
    code: ClassVar[str] = "CELL_DECIMAL"

    @property
    def column(self) -> str:
        return self.cell

    @property
    def cells(self) -> tuple[str, ...]:
        return (self.cell,)

    def holds(self, s: pd.Series) -> pd.Series:
        return s.isna() | (s % 1 == 0)

    def finding(self, rec: int, case: object, frame: _Frame) -> F.Finding:
        return frame.ctx.finding(self.code, rec, [self.cell], where=frame.ctx.where(rec, self.cell), expected="整数",
                                 actual=_fmt(case, "money"))


@dataclass(frozen=True)
class CellStatus(FrameCheck):
    """A cell read as typed (status ok) or absent; otherwise the status read gives the code (_STATUS_CODE):
    blank, coerced, unit converted, text, Excel error."""

    cell: str
    kind: str
    unit: str

    @property
    def column(self) -> str:
        return _STATUS + self.cell

    @property
    def cells(self) -> tuple[str, ...]:
        return (self.cell,)

    def holds(self, s: pd.Series) -> pd.Series:
        return s.isin([_STATUS_NUMBER["ok"], _STATUS_NUMBER["missing"]])

    def finding(self, rec: int, case: object, frame: _Frame) -> F.Finding | None:
        code = _STATUS_CODE.get(_STATUSES[int(case)])
        if code is None:
            return None
        value = frame.at(rec, self.cell)
        expected = "" if np.isnan(value) else _fmt(value, self.kind)
        if code == "UNIT_CONVERTED" and expected:
            expected = f"{expected} {self.unit}"
        return frame.ctx.finding(code, rec, [self.cell], where=frame.ctx.where(rec, self.cell),
                                 expected=expected or "数字", actual=frame.raw(rec, self.cell)[0], unit=self.unit)


@dataclass(frozen=True)
class MoneyPrecision(FrameCheck):
    """Money with at most spec.MONEY_MAX_DECIMALS decimals."""

    cell: str
    code: ClassVar[str] = "MONEY_PRECISION"

    @property
    def column(self) -> str:
        return _DECIMALS + self.cell

    @property
    def cells(self) -> tuple[str, ...]:
        return (self.cell,)

    def holds(self, s: pd.Series) -> pd.Series:
        return s.isna() | (s <= spec.MONEY_MAX_DECIMALS)

    def finding(self, rec: int, case: object, frame: _Frame) -> F.Finding:
        typed, st = frame.raw(rec, self.cell)
        actual = _fmt(frame.at(rec, self.cell), "money") if st == "converted" else typed  # in 万元, as said
        return frame.ctx.finding(self.code, rec, [self.cell], where=frame.ctx.where(rec, self.cell),
                                 expected=f"≤ {spec.MONEY_MAX_DECIMALS} 位小数", actual=actual)


def _check_previous(batch: Figures, previous: Figures | None, ctx: _Context) -> list[F.Finding]:
    """PREVIOUS_MISSING: an agency without a workbook read from last year's folder while others have one — R8 and
    the year-on-year checks cannot run for it (and it stays out of the county's year-on-year comparison). Without
    any workbook of last year the run says so once (run._summary), not once per agency."""
    if previous is None or not previous.records:
        return []
    last = {r.agency_code for r in previous.records}
    carried_in = [c.name for c in spec.INPUT_CELLS if c.table == "三" and c.row_key == "carried_in"]
    return [ctx.finding("PREVIOUS_MISSING", r.index, carried_in, last_year=batch.year - 1)
            for r in batch.records if r.agency_code not in last and not is_unattributed(r.agency_code)]


def _rule_code(rule: spec.Rule) -> str:
    """The finding code of a rule: its id (R1–R5, R8); the other cross-year rules report R6."""
    return rule.id if rule.scope != "cross_year" or rule.id == "R8" else "R6"


@dataclass(frozen=True)
class RuleHolds(FrameCheck):
    """A cross-footing (R1–R5) or cross-year (R6/R8) rule of the format."""

    rule: spec.Rule
    found: bool  # compare the number shown in the total cell (typed over or cached), not the recomputed one

    @property
    def code(self) -> str:  # type: ignore[override]
        return _rule_code(self.rule)

    @property
    def cells(self) -> tuple[str, ...]:  # the cells it reads, then the input cells behind them it names
        return tuple(dict.fromkeys(self.rule.cells + self.rule.inputs))

    def holds(self, df: pd.DataFrame) -> pd.Series:
        rule = self.rule
        if rule.scope == "cross_year":
            rhs = _sum(df, rule.last_year, _PREV) + _sum(df, rule.rhs) - _sum(df, rule.minus)
            lhs = _sum(df, rule.lhs)
        elif self.found:
            lhs = df[_FOUND + rule.lhs[0]]
            rhs = _sum(df, rule.rhs)
        else:
            lhs, rhs = _sum(df, rule.lhs), _sum(df, rule.rhs)
        return lhs.isna() | rhs.isna() | (lhs == rhs)

    @property
    def over_totals(self) -> bool:
        """A rule of one year whose every cell is a computed total (R1 in the 总计 column): it holds exactly when
        the same rule holds in every column."""
        rule = self.rule
        return rule.scope == "agency" and not self.found and all(spec.CELL[n].computed for n in rule.cells)

    def finding(self, rec: int, case: object, frame: _Frame) -> F.Finding:
        return _rule_finding(self.rule, rec, frame.df, frame.ctx)


@dataclass(frozen=True)
class YearOnYear(FrameCheck):
    """A figure that grew or shrank YOY_FACTOR-fold by at least YOY_MIN_DIFF (YOY_MIN_DIFF_MONEY 万元)."""

    cell: str
    kind: str
    code: ClassVar[str] = "YOY_JUMP"

    @property
    def cells(self) -> tuple[str, ...]:
        return (self.cell,)

    def holds(self, df: pd.DataFrame) -> pd.Series:
        min_diff = float(YOY_MIN_DIFF_MONEY) if self.kind == "money" else YOY_MIN_DIFF
        cur, prev = df[self.cell], df[_PREV + self.cell]
        hi, lo = np.maximum(cur, prev), np.minimum(cur, prev)
        jump = ((hi - lo) >= min_diff) & ((lo <= 0) | (hi >= YOY_FACTOR * lo))
        return cur.isna() | prev.isna() | ~jump

    def finding(self, rec: int, case: object, frame: _Frame) -> F.Finding:
        return frame.ctx.finding(self.code, rec, [self.cell], where=frame.ctx.where(rec, self.cell),
                                 expected=_fmt(frame.at(rec, _PREV + self.cell), self.kind),
                                 actual=_fmt(frame.at(rec, self.cell), self.kind))


@dataclass(frozen=True)
class _Plausibility(FrameCheck):
    """A check of the pandera pass made from one of the format's plausibility records (its code and cells)."""

    check: spec.PlausibilityCheck

    @property
    def code(self) -> str:  # type: ignore[override]
        return self.check.code


@dataclass(frozen=True)
class Regulations(_Plausibility):
    """R11: a county's agencies make no 规章 (every figure of that row 0 or blank)."""

    @property
    def cells(self) -> tuple[str, ...]:
        return self.check.cells

    def holds(self, df: pd.DataFrame) -> pd.Series:
        return df[list(self.cells)].fillna(0).eq(0).all(axis=1)

    def finding(self, rec: int, case: object, frame: _Frame) -> F.Finding:
        return frame.ctx.finding(self.code, rec, self.cells, expected="0",
                                 actual="/".join(_fmt(frame.at(rec, n), "count") for n in self.cells))


@dataclass(frozen=True)
class OtherHigh(_Plausibility):
    """（六）3.其他 at least ``min_count`` and more than ``max_share`` of （七）总计."""

    @property
    def other(self) -> str:
        return self.check.cells[0]

    @property
    def total(self) -> str:
        return self.check.cells[1]

    @property
    def cells(self) -> tuple[str, ...]:
        return (self.other,)

    def holds(self, df: pd.DataFrame) -> pd.Series:
        other, total = df[self.other], df[self.total]
        return ~((other >= self.check.min_count) & (other > self.check.max_share * total))

    def finding(self, rec: int, case: object, frame: _Frame) -> F.Finding:
        other, total = frame.at(rec, self.other), frame.at(rec, self.total)
        share = other / total if total else 1.0
        return frame.ctx.finding(self.code, rec, [self.other], actual=f"{_fmt(other, 'count')}（{share:.0%}）",
                                 total=_fmt(total, "count"), expected=f"≤ {int(self.check.max_share * 100)}%")


@dataclass(frozen=True)
class FeeNotices(_Plausibility):
    """R9: requests ended as 信息处理费未缴 need a fee charged (是) and at least as many fee notices sent."""

    @property
    def unpaid(self) -> str:
        return self.check.cells[0]

    @property
    def cells(self) -> tuple[str, ...]:
        return (self.unpaid,)

    def holds(self, df: pd.DataFrame) -> pd.Series:
        charged, notices = self.check.fields
        n = df[self.unpaid]
        bad = (n > 0) & ((df[charged] != spec.YES) | (df[notices].fillna(0) < n))
        return ~bad.fillna(False)

    def finding(self, rec: int, case: object, frame: _Frame) -> F.Finding:
        charged_field, notices_field = self.check.fields
        charged_label, notices_label = (spec.FIELD[f].label for f in self.check.fields)
        n = frame.at(rec, self.unpaid)
        notices = frame.at(rec, notices_field)
        charged = frame.at(rec, charged_field)
        if charged != spec.YES:
            detail = f"“{charged_label}”填为“{charged or '（空）'}”"
        else:
            detail = (f"“{notices_label}”为 {_fmt(notices, 'count') if not np.isnan(notices) else '（空）'}，"
                      f"少于 {_fmt(n, 'count')}")
        return frame.ctx.finding(self.code, rec, [self.unpaid], count=_fmt(n, "count"), detail=detail,
                                 expected=f"发出收费通知 ≥ {_fmt(n, 'count')} 件", actual=str(charged) or "（空）")


@dataclass(frozen=True)
class Plan:
    """The pandera pass of one format: the schema of the wide frame, and every check of it by its pandera name."""

    schema: pa.DataFrameSchema
    checks: dict[str, FrameCheck]


def _T3(table: str, row_key: str, column_key: str) -> str:
    """spec.cell_name of the current format (spec.cell_name bound at import would be 2021's for ever)."""
    return spec.cell_name(table, row_key, column_key)


def _check_key(check: FrameCheck, n: int) -> str:
    """The pandera name of the ``n``-th check registered: unique, and only ever a key of ``Plan.checks``."""
    return f"{type(check).__name__}#{n}"


@spec.per_format
def _plan() -> Plan:
    """The schema of the wide frame with its checks, built once per format (hundreds of columns and checks)."""
    checks: dict[str, FrameCheck] = {}

    def register(check: FrameCheck) -> pa.Check:
        name = _check_key(check, len(checks))
        checks[name] = check
        return pa.Check(check.holds, name=name)

    cols: dict[str, pa.Column] = {}
    for c in spec.CELLS:
        own = [register(CellNegative(c.name, c.kind))]
        if c.kind == "count":
            own.append(register(CellDecimal(c.name)))
        cols[c.name] = pa.Column(float, checks=own, nullable=True)
        cols[_STATUS + c.name] = pa.Column(float, register(CellStatus(c.name, c.kind, c.unit)))
        if c.computed:
            cols[_FOUND + c.name] = pa.Column(float, nullable=True)
        if c.kind == "money":
            cols[_DECIMALS + c.name] = pa.Column(float, register(MoneyPrecision(c.name)), nullable=True)
    frame = [register(RuleHolds(r, len(r.lhs) == 1 and spec.CELL[r.lhs[0]].computed and r.id in ("R2", "R3", "R5")))
             for r in spec.RULES]
    frame += [register(YearOnYear(n, spec.CELL[n].kind)) for n in _yoy_cells()]
    frame.append(register(Regulations(spec.PLAUSIBILITY["R11"])))
    frame.append(register(OtherHigh(spec.PLAUSIBILITY["OTHER_HIGH"])))
    frame.append(register(FeeNotices(spec.PLAUSIBILITY["R9"])))
    return Plan(pa.DataFrameSchema(cols, checks=frame, strict=False, coerce=False), checks)


def _failures(schema: pa.DataFrameSchema, df: pd.DataFrame) -> pd.DataFrame:
    try:
        schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as e:
        fc = e.failure_cases
        fc = fc[fc["index"].notna()]
        # whole-frame checks are repeated once per column: keep one row per (check, record)
        frame = fc["schema_context"] == "DataFrameSchema"
        one = fc[frame].drop_duplicates(["check", "index"]).assign(column=None)
        return pd.concat([fc[~frame], one], ignore_index=True)
    return pd.DataFrame(columns=["schema_context", "column", "check", "failure_case", "index"])


def _check_frame(batch: Figures, previous: Figures | None, ctx: _Context,
                 numbers: pd.DataFrame | None = None) -> list[F.Finding]:
    if not batch.records:
        return []
    df = _wide(batch, previous, numbers)
    plan = _plan()
    fails = _failures(plan.schema, df)
    frame = _Frame(df, ctx)
    out: list[F.Finding] = []
    blanks: dict[int, list[str]] = defaultdict(list)  # record → its blank cells (one finding per table)
    rows = [(plan.checks.get(name), case, int(rec))
            for name, case, rec in zip(fails["check"], fails["failure_case"], fails["index"])]
    # A balance rule over totals only (R1 in 总计) is the sum of the same rule in each column (the totals are
    # recomputed): where a column breaks it too, that column's finding says it, with its own inputs — the 总计
    # finding would name every input of the table.
    broken_in_a_column = {rec for check, _, rec in rows if isinstance(check, RuleHolds) and not check.over_totals}
    for check, case, rec in rows:
        if check is None:  # not a check of ours (pandera's own, e.g. a column's dtype): nothing to report
            continue
        if isinstance(check, RuleHolds) and check.over_totals and rec in broken_in_a_column:
            continue
        if isinstance(check, CellStatus) and _STATUSES[int(case)] == "blank":
            blanks[rec].append(check.cell)
            continue
        found = check.finding(rec, case, frame)
        if found is not None:
            out.append(found)
    out += _blank_findings(blanks, ctx)
    return out


#: A table's blank cells listed one by one up to this many; beyond, as ranges (at most BLANK_MAX_RANGES).
BLANK_MAX_LISTED = 5
BLANK_MAX_RANGES = 6


def _blank_findings(blanks: dict[int, list[str]], ctx: _Context) -> list[F.Finding]:
    """CELL_BLANK: one finding per record and table, naming every blank cell (the returned workbook marks each);
    blank cells were read as 0 (cells.parse_number)."""
    out: list[F.Finding] = []
    order = _cell_order()
    for rec, names in blanks.items():
        by_table: dict[str, list[str]] = defaultdict(list)
        for n in sorted(set(names), key=order.__getitem__):
            by_table[spec.CELL[n].table].append(n)
        for table, cells in by_table.items():
            pos = ctx.pos(rec)
            refs = [pos[n][1] for n in cells if n in pos]
            if len(cells) <= BLANK_MAX_LISTED:
                detail = "、".join(ctx.where(rec, n) for n in cells)
            else:
                ranges = _ranges(refs)
                sheet = pos[cells[0]][0] if cells[0] in pos else spec.CELL[cells[0]].sheet
                detail = (f"工作表“{sheet}”" + "、".join(ranges[:BLANK_MAX_RANGES])
                          + ("等" if len(ranges) > BLANK_MAX_RANGES else ""))
            out.append(ctx.finding("CELL_BLANK", rec, cells, table=table, count=len(cells), detail=detail,
                                   expected="0", actual="（空）"))
    return out


@spec.per_format
def _cell_order() -> dict[str, int]:
    return {c.name: i for i, c in enumerate(spec.CELLS)}


def _ranges(refs: list[str]) -> list[str]:
    """A1 refs as rectangles (D5:J5 runs of a row, runs of consecutive rows with the same columns merged)."""
    rows: dict[int, list[int]] = defaultdict(list)
    for r in refs:
        col, row = split_a1(r)
        rows[row].append(col)
    runs: list[tuple[int, int, int]] = []  # (row, first col, last col)
    for row in sorted(rows):
        cols = sorted(set(rows[row]))
        start = prev = cols[0]
        for c in cols[1:] + [None]:
            if c is not None and c == prev + 1:
                prev = c
                continue
            runs.append((row, start, prev))
            if c is not None:
                start = prev = c
    rects: list[list[int]] = []  # [first row, last row, first col, last col]
    for row, c0, c1 in runs:
        for rect in rects:
            if rect[1] == row - 1 and rect[2] == c0 and rect[3] == c1:
                rect[1] = row
                break
        else:
            rects.append([row, row, c0, c1])

    def a1(col: int, row: int) -> str:
        return f"{col_letters(col)}{row}"

    return [a1(c0, r0) if (r0, c0) == (r1, c1) else f"{a1(c0, r0)}:{a1(c1, r1)}" for r0, r1, c0, c1 in rects]


def _rule_finding(rule: spec.Rule, rec: int, df: pd.DataFrame, ctx: _Context) -> F.Finding:
    """The finding of a broken rule: both sides and their gap in the message; as its cells the input cells behind
    the rule (a total stands for its addends: the totals are the template's locked formulas), plus a total that
    was typed over (no formula left: the cell to restore). 应为/实为 only where one side is known to be right:
    R8, whose other side is last year's report; on every other rule either side may hold the wrong cell."""
    def val(n: str, prefix: str = "") -> str:
        return _fmt(df.at[rec, prefix + n], spec.CELL[n].kind)

    def gap(a: float, b: float) -> str:
        return _fmt(abs(a - b), "count")

    code = _rule_code(rule)
    cells = rule.inputs
    # marked in the returned workbook: the rule's own terms that are typed (a total is the template's formula)
    terms = tuple(n for n in rule.cells if not spec.CELL[n].computed)
    if rule.scope == "cross_year":
        if code == "R8":
            last, this = df.at[rec, _PREV + rule.last_year[0]], df.at[rec, rule.lhs[0]]
            return ctx.finding(code, rec, cells, title=rule.title, gap=gap(last, this), marks=terms,
                               expected=val(rule.last_year[0], _PREV), actual=val(rule.lhs[0]))
        exp = (df.at[rec, _PREV + rule.last_year[0]] + sum(df.at[rec, n] for n in rule.rhs)
               - sum(df.at[rec, n] for n in rule.minus))
        return ctx.finding(code, rec, cells, title=rule.title, last=val(rule.last_year[0], _PREV), marks=terms,
                           issued=val(rule.rhs[0]), repealed=val(rule.minus[0]), sum=_fmt(exp, "count"),
                           in_force=val(rule.lhs[0]), gap=gap(exp, df.at[rec, rule.lhs[0]]))
    if rule.id in ("R2", "R3", "R5"):
        total = rule.lhs[0]
        exp = sum(df.at[rec, n] for n in rule.rhs)
        marks: tuple[str, ...] = ()  # a formula's total shown wrong (not recalculated): every input behind it
        if ctx.typed_over(rec, total):
            cells, marks = (total, *cells), (total,)  # the total typed over: the formula to restore
        return ctx.finding(code, rec, cells, title=rule.title, sum=_fmt(exp, "count"), shown=val(total, _FOUND),
                           marks=marks,
                           gap=gap(exp, df.at[rec, _FOUND + total]))
    lhs = sum(df.at[rec, n] for n in rule.lhs)
    rhs = sum(df.at[rec, n] for n in rule.rhs)

    def desc(names: tuple[str, ...]) -> str:
        return " + ".join(f"{spec.clip(spec.CELL[n].row)}（{val(n)}）" for n in names)

    return ctx.finding(code, rec, cells, title=rule.title, lhs_desc=desc(rule.lhs), rhs_desc=desc(rule.rhs), marks=terms,
                       lhs=_fmt(lhs, "count"), rhs=_fmt(rhs, "count"), gap=gap(lhs, rhs))


def _fmt(v: object, kind: str) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        v = float(v)  # numpy ≥ 2: repr(np.float64(2.5)) is "np.float64(2.5)"
        if np.isnan(v):
            return ""
        if kind != "money" or v.is_integer():
            return str(int(v)) if v.is_integer() else repr(v)
        return format(Decimal(repr(v)).normalize(), "f")
    if isinstance(v, Decimal):
        return format(v.normalize(), "f") if v != v.to_integral_value() else str(int(v))
    return str(v)


# ---- texts -----------------------------------------------------------------------------------------------

_YEAR_RE = re.compile(r"(?<!\d)((?:19|20)\d{2})(?=年)")
_YEAR_EXEMPT_AFTER = ("年修订", "年修正", "年版", "年第")
_TITLE_RE = re.compile(r"《[^》]*》|〔[^〕]*〕|\[[^\]]*\]")
_WS = re.compile(r"\s+")
_DIGITS = re.compile(r"\d+")


def _norm_text(s: str) -> str:
    return _WS.sub("", unicodedata.normalize("NFKC", s or ""))


def _shingles(s: str) -> frozenset[str]:
    return _shingles_of(_norm_text(s))


def _shingles_of(norm: str) -> frozenset[str]:
    """3-grams of a normalised text (``_norm_text``)."""
    s = _DIGITS.sub("#", norm)  # years and figures change every year; the prose does not
    return frozenset({s[i : i + 3] for i in range(max(0, len(s) - 2))})


def _shingle_ids(norms: list[str], chunk: int = 2000) -> list[frozenset[int]]:
    """``_shingles_of`` of many texts, each 3-gram as one integer (its three code points: the same
    similarities), computed a chunk of texts at a time in one vectorised pass instead of a string per 3-gram."""
    out: list[frozenset[int]] = []
    for k in range(0, len(norms), chunk):
        folded = [_DIGITS.sub("#", s) for s in norms[k : k + chunk]]
        cps = np.frombuffer("".join(folded).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        ids = ((cps[:-2] << np.uint64(42)) | (cps[1:-1] << np.uint64(21)) | cps[2:]).tolist() if len(cps) > 2 else []
        start = 0
        for s in folded:
            out.append(frozenset(ids[start : start + len(s) - 2]) if len(s) > 2 else frozenset())
            start += len(s)
    return out



def _similarity(a: frozenset, b: frozenset) -> float:
    if not a or not b:
        return 0.0
    common = len(a & b)
    return common / (len(a) + len(b) - common)  # = len(a | b), without building it


@spec.per_format
def _text_fields() -> tuple[spec.FieldSpec, ...]:
    return tuple(f for f in spec.FIELDS if f.kind == "text" and f.section)


class _Norm:
    """NFKC and whitespace-free forms of texts, each computed once (normalising was most of the text checks)."""

    def __init__(self):
        self._nfkc: dict[str, str] = {}
        self._norm: dict[str, str] = {}

    #: Fullwidth ASCII (，（）：； and the like) → its NFKC form; a text that is NFKC-normal after this is its own
    #: NFKC form (each replacement is the character's compatibility decomposition), found without normalising.
    _FULLWIDTH = {c: unicodedata.normalize("NFKC", chr(c)) for c in range(0xFF01, 0xFF5F)}

    def nfkc(self, s: str) -> str:
        s = s or ""
        out = self._nfkc.get(s)
        if out is None:
            out = s.translate(self._FULLWIDTH)
            if not unicodedata.is_normalized("NFKC", out):
                out = unicodedata.normalize("NFKC", s)
            self._nfkc[s] = out
        return out

    def norm(self, s: str) -> str:
        s = s or ""
        out = self._norm.get(s)
        if out is None:
            out = self._norm[s] = _WS.sub("", self.nfkc(s))
        return out


def _texts(batch: Figures) -> tuple[dict[int, dict[str, str]], set[tuple[int, str]]]:
    """The text fields of each record (those found) and the (record, field) whose text was cut."""
    t = batch.texts
    tf = {f.name for f in _text_fields()}
    texts: dict[int, dict[str, str]] = defaultdict(dict)
    truncated: set[tuple[int, str]] = set()
    for rec, name, val, status, trunc in zip(*(t[c].tolist() for c in ("record", "name", "value", "status",
                                                                        "truncated"))):
        if name in tf and status != "missing":
            texts[rec][name] = val or ""
        if trunc:
            truncated.add((rec, name))
    return texts, truncated


def _check_texts(batch: Figures, previous: Figures | None, ctx: _Context,
                 numbers: pd.DataFrame | None = None, similar: Iterable[str] | None = None) -> list[F.Finding]:
    """Every text check; 雷同 for the fields ``similar`` (default: every text field)."""
    out: list[F.Finding] = []
    if not len(batch.texts):
        return out
    texts, truncated = _texts(batch)
    if numbers is None and len(batch.values):
        numbers = _numbers(batch)
    if numbers is not None:
        grid = numbers.to_numpy(dtype="float64")
        row_of = {rec: i for i, rec in enumerate(numbers.index.tolist())}
        col_of = {name: j for j, name in enumerate(numbers.columns.tolist())}
    norm = _Norm()
    text_fields = [f.name for f in _text_fields()]
    found: dict[str, list[claims.Claim]] = {}  # claims.find per text (many agencies' texts are alike)
    balance: list[np.ndarray] = []

    def balanced() -> np.ndarray:  # per row of ``grid``: every rule of the table holds (computed on first need)
        if not balance:
            balance.append(_balanced(grid, col_of))
        return balance[0]

    overview = [f.name for f in spec.fields(section="一") if f.kind == "text"]
    for rec, by_name in texts.items():
        for name, text in by_name.items():
            f = spec.FIELD[name]
            if f.required and not norm.norm(text):
                out.append(ctx.finding("TEXT_EMPTY", rec, [name], label=f.label, expected="文字", actual="（空）"))
            if (rec, name) in truncated:
                out.append(ctx.finding("TEXT_TOO_LONG_CELL", rec, [name], label=f.label,
                                       expected=str(_max_chars()), actual=f"{_max_chars()}+"))
            for year in _other_years(text, batch.year, name, norm.nfkc(text)):
                out.append(ctx.finding("TEXT_OTHER_YEAR", rec, [name], label=f.label, expected=batch.year,
                                       actual=f"{year}年"))
        n_chars = sum(len(norm.norm(by_name.get(n, ""))) for n in overview)
        if n_chars > spec.OVERVIEW_MAX_CHARS:
            out.append(ctx.finding("TEXT_TOO_LONG", rec, [n for n in overview if n in by_name],
                                   expected=spec.OVERVIEW_MAX_CHARS, actual=n_chars))
        if numbers is not None and rec in row_of:
            i = row_of[rec]
            for name in text_fields:
                if by_name.get(name):
                    out += _text_claims(rec, name, norm.norm(by_name[name]), grid[i], col_of, found, ctx,
                                        lambda i=i: bool(balanced()[i]))
    out += _similar_texts(batch, previous, texts, ctx, norm, similar)
    return out


#: A sentence quoted in a TEXT_NUMBER_MISMATCH message is cut to about this many characters around its number.
TEXT_QUOTE_CHARS = 60


@spec.per_format
def _rule_matrix() -> tuple[np.ndarray, np.ndarray]:
    """(weights, used): one row per agency rule of severity 错误 (R1–R5), one column per spec cell; a row's
    weighted sum of a workbook's cells is 0 when the rule holds (lhs − rhs + minus)."""
    names = {c.name: j for j, c in enumerate(spec.CELLS)}
    rules = [r for r in spec.RULES if r.scope == "agency" and r.severity == "error"]
    w = np.zeros((len(rules), len(names)))
    for k, r in enumerate(rules):
        for n in r.lhs:
            w[k, names[n]] += 1
        for n in r.rhs:
            w[k, names[n]] -= 1
        for n in r.minus:
            w[k, names[n]] += 1
    return w, w != 0


def _balanced(grid: np.ndarray, col_of: dict[str, int]) -> np.ndarray:
    """Per row of ``grid``: every cross-footing rule of the table holds (a rule over an unreadable cell does not)."""
    w, used = _rule_matrix()
    order = [col_of[c.name] for c in spec.CELLS]
    g = grid[:, order]
    missing = np.isnan(g)
    gap = np.nan_to_num(g) @ w.T
    return ~((np.abs(gap) > 1e-6) | ((missing.astype(np.float64) @ used.T.astype(np.float64)) > 0)).any(axis=1)


def _value(row: np.ndarray, col_of: dict[str, int]):
    def value(name: str) -> int | Decimal | None:
        j = col_of.get(name)
        v = float(row[j]) if j is not None else math.nan
        if math.isnan(v):
            return None
        return int(v) if v.is_integer() else Decimal(repr(v))

    return value


def _quote(sentence: str, phrase: str, chars: int = TEXT_QUOTE_CHARS) -> str:
    """``sentence`` cut to about ``chars`` characters around ``phrase``, with ellipses where cut."""
    if len(sentence) <= chars:
        return sentence
    i = sentence.find(phrase)
    if i < 0:
        return sentence[:chars] + "…"
    lo = max(0, min(i - (chars - len(phrase)) // 2, len(sentence) - chars))
    hi = max(lo + chars, i + len(phrase))
    return ("…" if lo > 0 else "") + sentence[lo:hi] + ("…" if hi < len(sentence) else "")


def _number_text(x: Decimal, unit: str) -> str:
    return _fmt(x, "money") + ("%" if unit == "%" else "")


def _text_claims(rec: int, name: str, text: str, row: np.ndarray, col_of: dict[str, int],
                 found: dict[str, list[claims.Claim]], ctx: _Context, balanced) -> list[F.Finding]:
    """R10: one 提示 per number of the text (NFKC, no whitespace) that matches none of its readings of the table."""
    got = found.get(text)
    if got is None:
        got = found[text] = claims.find(text, normalised=True)
    if not got:
        return []
    out: list[F.Finding] = []
    value = _value(row, col_of)
    for claim in got:
        check = claims.check(claim, value)
        if check is None or check.ok:
            continue
        pos = ctx.pos(rec)
        sheet = pos.get(check.cells[0], ("", ""))[0] if check.cells else ""

        def refs(readings: tuple[tuple[str, ...], ...]) -> list[str]:
            return ["+".join(pos[n][1] for n in r if n in pos) for r in readings]

        where = " 或 ".join(refs(claim.readings))
        if claim.of:
            where = f"（{where}）÷（{' 或 '.join(refs(claim.of))}）"
        f = spec.FIELD[name]
        text_sheet, text_cell = pos.get(name, ("", ""))
        out.append(ctx.finding(
            spec.CLAIM_VOCABULARY.code, rec, check.cells, label=f.label, text_cell=f"工作表“{text_sheet}”{text_cell}",
            sentence=_quote(claim.sentence, claim.phrase), phrase=claim.phrase, what=claim.what,
            table_cells=f"工作表“{sheet}”{where}", hint=F.TEXT_NUMBER_HINTS[bool(balanced())],
            expected=" 或 ".join(_number_text(x, claim.unit) for x in check.expected),
            actual=_number_text(claim.number, claim.unit)))
    return out


def _max_chars() -> int:
    from .read import MAX_CELL_CHARS

    return MAX_CELL_CHARS


def _other_years(text: str, year: int, name: str, nfkc: str | None = None) -> list[int]:
    s = _TITLE_RE.sub("", unicodedata.normalize("NFKC", text or "") if nfkc is None else nfkc)
    s = _WS.sub("", s)
    allowed = {year}
    if name == "TXT_improvements":
        allowed.add(year + 1)  # plans for next year
    found: list[int] = []
    for m in _YEAR_RE.finditer(s):
        y = int(m.group(1))
        if y in allowed or not (YEAR_MIN <= y <= YEAR_MAX):
            continue
        if s.startswith(_YEAR_EXEMPT_AFTER, m.end(1)):
            continue
        if y not in found:
            found.append(y)
    return found


class _Prefixes:
    """Prefix filtering (exact) for 3-gram Jaccard similarity ≥ SIMILAR_THRESHOLD between texts of one field:
    two sets that similar share an overlap of at least ⌈t·max(|a|,|b|)⌉ tokens, so under any one order of the
    tokens the first |a| − ⌈t·|a|⌉ + 1 of a and of b have a token in common. Rarest tokens first keeps the
    candidate lists short; only candidates are compared in full."""

    def __init__(self, sets: list[frozenset[int]]):
        from collections import Counter

        df: Counter[int] = Counter()
        for sh in sets:
            df.update(sh)
        self.tokens = [tok for tok, _ in sorted(df.items(), key=itemgetter(1))]  # any one order is exact
        self.rank = {tok: r for r, tok in enumerate(self.tokens)}

    @staticmethod
    def need(sh: frozenset) -> int:
        """The fewest tokens a set as similar as SIMILAR_THRESHOLD to ``sh`` shares with it."""
        return max(1, math.ceil(SIMILAR_THRESHOLD * len(sh) - 1e-9))

    def of(self, sh: frozenset[int]) -> list[int]:
        """The ranks of the first tokens of a set of ``sets`` (how many depends on the set's size only)."""
        return sorted(map(self.rank.__getitem__, sh))[: len(sh) - self.need(sh) + 1]


def _similar_pairs(items: list[tuple[int, frozenset[int]]], prefixes: list[list[int]]) -> list[tuple[int, int, float]]:
    """(i, j, similarity) for every i < j of ``items`` (sorted by set size) with similarity ≥ SIMILAR_THRESHOLD.

    Pairs the size filter ``len(b) * SIMILAR_THRESHOLD > len(a)`` rules out are left out, as the comparison of
    every pair (which stopped there) did.
    """
    t = SIMILAR_THRESHOLD
    index: dict[int, list[int]] = defaultdict(list)
    found: list[tuple[int, int, float]] = []
    for j, (_, sb) in enumerate(items):
        cands: set[int] = set()
        for tok in prefixes[j]:
            lst = index[tok]
            cands.update(lst)
            lst.append(j)
        for i in sorted(cands):
            sa = items[i][1]
            if len(sb) * t > len(sa):
                continue
            sim = _similarity(sa, sb)
            if sim >= t:
                found.append((i, j, sim))
    found.sort()
    return found


def _similar_texts(batch: Figures, previous: Figures | None, texts: dict[int, dict[str, str]], ctx: _Context,
                   norm: _Norm | None = None, fields: Iterable[str] | None = None):
    """雷同: each text against the agency's last year and against the other agencies' (of ``fields``, default
    every text field). One field at a time: only that field's 3-gram sets are held (memory flat in the number
    of fields; all of them at once took ~180 MB for 1,000 agencies)."""
    out: list[F.Finding] = []
    norm = norm or _Norm()
    names = [f.name for f in _text_fields() if fields is None or f.name in set(fields)]
    prev_rec: dict[str, int] = {}
    prev_text: dict[tuple[int, str], str] = {}
    if previous is not None and len(previous.texts):
        for r in previous.records:
            prev_rec.setdefault(r.agency_code, r.index)
        pt = previous.texts
        wanted = set(names)
        prev_text = {(rec, n): v for rec, n, v in zip(*(pt[c].tolist() for c in ("record", "name", "value")))
                     if n in wanted}
    for n in names:
        recs = [rec for rec, by_name in texts.items() if len(norm.norm(by_name.get(n, ""))) >= SIMILAR_MIN_CHARS]
        sets = _shingle_ids([norm.norm(texts[rec][n]) for rec in recs])
        # the agency's previous year
        if prev_rec:
            pairs = []
            for rec, s in zip(recs, sets):
                pi = prev_rec.get(ctx.records[rec].agency_code)
                old = prev_text.get((pi, n)) if pi is not None else None
                if old and len(norm.norm(old)) >= SIMILAR_MIN_CHARS:
                    pairs.append((rec, s, norm.norm(old)))
            for (rec, s, _), old_sh in zip(pairs, _shingle_ids([p[2] for p in pairs])):
                if min(len(s), len(old_sh)) < SIMILAR_THRESHOLD * max(len(s), len(old_sh)) - 1e-9:
                    continue  # similarity ≤ |smaller| / |larger|
                sim = _similarity(s, old_sh)
                if sim >= SIMILAR_THRESHOLD:
                    out.append(ctx.finding("TEXT_SAME_AS_LAST_YEAR", rec, [n], label=spec.FIELD[n].label,
                                           expected=f"< {SIMILAR_THRESHOLD:.0%}", actual=f"{sim:.0%}"))
            del pairs
        # other agencies this year (pairs within one field)
        items = sorted(zip(recs, sets), key=lambda x: len(x[1]))
        del sets
        pf = _Prefixes([s for _, s in items])
        for i, j, sim in _similar_pairs(items, [pf.of(s) for _, s in items]):
            ra, rb = items[i][0], items[j][0]
            if ctx.records[ra].agency_code == ctx.records[rb].agency_code:
                continue
            for x, y in ((ra, rb), (rb, ra)):
                out.append(ctx.finding("TEXT_SAME_AS_OTHER", x, [n], label=spec.FIELD[n].label,
                                       other=ctx.records[y].agency_name, expected=f"< {SIMILAR_THRESHOLD:.0%}",
                                       actual=f"{sim:.0%}"))
        del items, pf
    return out


# ---- verdicts ----------------------------------------------------------------------------------------------


def _report(batch: Figures, ws: Workspace | None, found: list[F.Finding]) -> Report:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for f in found:
        if f.agency_code:
            counts[f.agency_code][0 if f.severity == "error" else 1] += 1
    files: dict[str, list[str]] = defaultdict(list)
    names: dict[str, str] = {}
    for r in batch.records:
        files[r.agency_code].append(r.file)
        names[r.agency_code] = r.agency_name
    for v in batch.files:
        if v.status == "rejected" and v.agency_code:
            files[v.agency_code].append(v.file)
            names.setdefault(v.agency_code, v.agency_name)
    order: list[str] = [a.code for a in ws.agencies] if ws is not None else []
    order += sorted(c for c in files if c not in order)
    missing: list[str] = []
    agencies: list[AgencyVerdict] = []
    for code in order:
        e, w = counts.get(code, [0, 0])
        fs = tuple(sorted(files.get(code, [])))
        name = names.get(code) or (ws.agency(code).name if ws is not None and ws.agency(code) else code)
        if not fs:
            verdict = VERDICT_MISSING
            missing.append(code)
        else:
            verdict = VERDICT_FAIL if e else VERDICT_WARN if w else VERDICT_PASS
        agencies.append(AgencyVerdict(code, name, fs, verdict, e, w))
    passed = [a.agency_code for a in agencies if a.verdict in (VERDICT_PASS, VERDICT_WARN)]
    return Report(year=batch.year, findings=found, agencies=agencies, passed=passed, missing=missing,
                  format=spec.current())
