"""Typed records passed between the stages (read → validate → aggregate → render)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import findings as F

Number = int | Decimal


#: The agency key of a workbook whose code and name point at two different agencies (read.identify): it belongs
#: to no agency. ``未归属:<file>`` is never a roster code (it holds the file's name); shown as ``未归属（<name>）``.
UNATTRIBUTED = "未归属"


def unattributed_code(file: str) -> str:
    return f"{UNATTRIBUTED}:{file}"


def unattributed_name(wb_name: str, file: str) -> str:
    from pathlib import PurePosixPath

    return f"{UNATTRIBUTED}（{wb_name or PurePosixPath(file).stem}）"


def is_unattributed(code: str) -> bool:
    return code.startswith(UNATTRIBUTED + ":")


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


# ---- validation's result (built by validate.py) -------------------------------------------------------------

VERDICT_PASS, VERDICT_WARN, VERDICT_FAIL, VERDICT_MISSING = "通过", "有提示", "有错误", "未报送"


@dataclass(frozen=True)
class AgencyVerdict:
    agency_code: str
    agency_name: str
    files: tuple[str, ...]
    verdict: str  # 通过 / 有提示 / 有错误 / 未报送
    errors: int
    warnings: int


@dataclass
class ValidationReport:
    year: int
    findings: list[F.Finding]
    agencies: list[AgencyVerdict]
    passed: list[str]  # agency codes without any 错误 (their reports can be rendered)
    missing: list[str] = field(default_factory=list)  # roster codes without a workbook
    _verdicts: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)
    _verdicts_of: int = field(default=-1, init=False, repr=False, compare=False)

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == "warning")

    @property
    def ok(self) -> bool:
        return self.errors == 0 and not self.missing

    def verdict(self, agency_code: str) -> str | None:
        if self._verdicts_of != len(self.agencies):  # built once (asked once per file: O(files × agencies))
            self._verdicts.clear()
            for a in reversed(self.agencies):  # the first agency of a code, as a scan would find
                self._verdicts[a.agency_code] = a.verdict
            self._verdicts_of = len(self.agencies)
        return self._verdicts.get(agency_code)

    def by_code(self) -> dict[str, list[F.Finding]]:
        out: dict[str, list[F.Finding]] = defaultdict(list)
        for f in self.findings:
            out[f.code].append(f)
        return dict(out)

    def for_agency(self, agency_code: str) -> list[F.Finding]:
        return [f for f in self.findings if f.agency_code == agency_code]
