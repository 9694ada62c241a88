"""Cell parsing: what people type in a cell → a value with a verdict.

``parse_number`` reads a number cell as the agency meant it and says how: ok (a number), blank, coerced
(unambiguous text: full-width digits "５", a count unit "5件", a none-word "无" → 0, thousands separators),
converted (an amount typed in the other money unit, converted exactly), text (not a number: reported, never
guessed), excel_error (#REF! and the like). ``parse_field`` does the same for the cover, text and fee fields
(years, dates as Excel serials, choices, texts). Numbers are Decimal: exact, Excel's float noise removed.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation, localcontext
from functools import lru_cache
from typing import Literal

from . import spec
from .xlsx_reader import RawCell

_NONE_WORDS = {"无", "没有", "-", "--", "—", "——", "–", "―", "/", "\\", "不涉及", "0件"}
_COUNT_UNITS = ("件", "个", "项", "次", "宗", "条", "份", "起", "人次")
#: How a unit may be typed after an amount → the unit of spec.MONEY_UNITS it means (longest first).
_MONEY_UNITS = (("万元", "万元"), ("万", "万元"), ("元", "元"))
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_THOUSANDS_RE = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_WS_RE = re.compile(r"\s+")
CellStatus = Literal["ok", "blank", "coerced", "converted", "text", "excel_error", "missing"]
#: Statuses of a cell whose value was read (used as is, or reported and used).
READ_STATUSES = ("ok", "coerced", "converted")


def _decimal(text: str) -> Decimal | None:
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


@lru_cache(maxsize=1 << 14)  # Decimals are immutable; the same few numbers fill most cells
def _num_literal(text: str) -> Decimal | None:
    """A number as stored in the XML → Decimal, shortest form (Excel's float noise 1.1000000000000001 → 1.1)."""
    try:
        f = float(text)
    except ValueError:
        return None
    if not math.isfinite(f):
        return None
    d = Decimal(repr(f))
    if d == d.to_integral_value() and abs(d) < Decimal(10) ** 15:
        return d.quantize(Decimal(1))
    return d


def _convert(d: Decimal, typed: str, unit: str, digits: int) -> Decimal:
    """``d`` ``typed`` (e.g. 0.5 万元) in ``unit`` (5000 元), exactly; integral results without a fraction part."""
    with localcontext() as ctx:
        ctx.prec = digits + 12  # never rounded: 万元 ↔ 元 shifts the decimal point by 4 places
        r = d * spec.MONEY_UNITS[typed] / spec.MONEY_UNITS[unit]
        return r.quantize(Decimal(1)) if r == r.to_integral_value() else r.normalize()


def parse_number(cell: RawCell | None, kind: str, unit: str | None = None) -> tuple[CellStatus, Decimal | None, str]:
    """(status, value, raw text) of a number cell. Unambiguous text is coerced ("５" → 5, "5件" → 5, "无" → 0).

    ``unit`` is the unit the cell is in (spec: 万元 for table 二's amount, 元 for the fee fields; default 万元 for
    money, 件 for counts). An amount typed with the other unit ("0.5万元" in a 元 field, "5000元" in a 万元 cell)
    is converted exactly: status "converted", the value in ``unit``.
    """
    if cell is None:
        return "blank", Decimal(0), ""
    if cell.type == "num":
        if cell.text == "":
            return "blank", Decimal(0), ""
        d = _num_literal(cell.text)
        return ("ok", d, cell.text) if d is not None else ("text", None, cell.text)
    if cell.type == "err":
        return "excel_error", None, cell.text
    if cell.type in ("bool", "date"):
        return "text", None, cell.text
    raw = cell.text
    s = _WS_RE.sub("", unicodedata.normalize("NFKC", raw))
    if s == "":
        return "blank", Decimal(0), raw
    if s in _NONE_WORDS or raw.strip() in _NONE_WORDS:
        return "coerced", Decimal(0), raw
    if s.startswith("#") and s.endswith(("!", "?", "A")) and s.upper() in _EXCEL_ERRORS:
        return "excel_error", None, raw
    typed = unit = unit or ("万元" if kind == "money" else spec.COUNT_UNIT)
    units = _MONEY_UNITS if kind == "money" else ((u, unit) for u in _COUNT_UNITS)
    for spelling, meant in units:
        if s.endswith(spelling) and len(s) > len(spelling):
            s, typed = s[: -len(spelling)], meant
            break
    if _THOUSANDS_RE.match(s):
        s = s.replace(",", "")
    if _NUMBER_RE.match(s):
        d = _decimal(s)
        if d is not None:
            if typed != unit:
                return "converted", _convert(d, typed, unit, len(s)), raw
            return "coerced", d, raw
    return "text", None, raw


_EXCEL_ERRORS = {"#REF!", "#VALUE!", "#DIV/0!", "#N/A", "#NAME?", "#NULL!", "#NUM!", "#SPILL!", "#CALC!", "#GETTING_DATA"}


def cell_text(cell: RawCell | None) -> str:
    if cell is None:
        return ""
    if cell.type == "num":
        d = _num_literal(cell.text) if cell.text else None
        return "" if d is None else format(d, "f")
    return cell.text


_EXCEL_EPOCH = date(1899, 12, 30)


def parse_field(f: spec.FieldSpec, cell: RawCell | None) -> tuple[str, object, str]:
    """(status, value, raw) of a cover/text/fee field."""
    raw = cell_text(cell)
    if f.kind in ("count", "money"):
        if cell is None or raw.strip() == "":
            return "blank", None, raw
        status, d, raw = parse_number(cell, f.kind, f.unit)
        if d is None:
            return status, None, raw
        if f.kind == "count":
            return status, (int(d) if d == d.to_integral_value() else d), raw
        return status, d, raw
    if f.kind == "year":
        s = _WS_RE.sub("", unicodedata.normalize("NFKC", raw)).removesuffix("年度").removesuffix("年")
        if s.isdigit() and len(s) == 4:
            return "ok", int(s), raw
        return ("blank", None, raw) if not s else ("text", None, raw)
    if f.kind == "date" and cell is not None and cell.type == "num" and raw:
        try:
            serial = float(cell.text)
            if 1 < serial < 2958466:
                return "ok", (_EXCEL_EPOCH + timedelta(days=int(serial))).isoformat(), raw
        except ValueError:
            pass
    if f.kind == "date" and cell is not None and cell.type == "date":
        return "ok", raw[:10], raw
    text = raw.strip() if f.kind in ("choice", "year", "date") else raw.rstrip()
    return ("ok" if text else "blank"), text, raw

