"""Typed records passed between the stages (read → validate → aggregate → render)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from collections.abc import Mapping

Number = int | Decimal


@dataclass(frozen=True)
class AgencyData:
    """One agency's workbook for one year, as read: every figure and every field, keyed by defined name.

    ``values`` holds every cell of spec.CELLS (tables 二, 三, 四) by name: counts as int, 本年收费金额 as
    Decimal (万元); computed cells (totals) are recomputed from their addends, never the cached value.
    ``fields`` holds every spec.FIELDS entry by name (INFO_*, TXT_*, FEE_*, META_*): texts as str ('' when
    blank), FEE_ counts as int and money as Decimal (None when blank).
    """

    code: str
    name: str
    category: str
    year: int
    file: str
    values: Mapping[str, Number]
    fields: Mapping[str, object] = field(default_factory=dict)

    def text(self, name: str) -> str:
        v = self.fields.get(name)
        return "" if v is None else str(v)
