"""Audit published annual reports: import them, then validate every report as a county run validates its agencies'.

    audit(sources, output, year=None) → AuditRun

Every source is imported (``import_sources``) into ``<output>/导入/`` under a roster made for the reports themselves
(``roster_for``: one agency per name a report gives — a report without one, or a second report of the same name
and year, an agency of its own — with codes S001, S002 … in the order of the sources), so that each report is
attributed to its agency and the years of one agency line up. Then, for every report year, the year's reports
are read (read.py), validated (validate.py: R1–R5 and the plausibility rules, text claims against the tables,
雷同 across the year's reports, and — against the same agency's report of the year before, where it is given —
R8, R6, 年年雷同) and their 校验结果.xlsx / 校验结果.json and 退回修改/ written into ``<output>/<year>/``
(export.py), exactly as ``nianbao validate`` writes them.

What only a workbook has is not audited: findings on the 基本信息 sheet (the workbook's cover: 填报人, 联系电话 …,
which a published report need not print; the agency there is the audit's own) and PREVIOUS_MISSING (years are
compared only where several are given). Each source gets a verdict — 通过; 有提示; 有错误, with counts; the
import's when it is not audited (不是年度报告, 2019年旧格式, 无法读取, 未能确定报告年度) — and a partial import says what
it lacks. Cells that could not be read hold 无法识别 and are reported (CELL_TEXT, 错误), never taken as 0.
``<output>/审核结果.json`` lists every source. Exit code: 0 when every source imported completely and no report
has a 错误, else 1.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import export, lock, model, ooxml, parallel, read, spec, validate
from ..workspace import Agency, County, Workspace
from . import ImportRun, import_sources, recognise

IMPORT_DIR = "导入"
RESULT_FILE = "审核结果.json"
#: Findings about what only a workbook has (see the module's docstring).
NOT_AUDITED_CODES = frozenset({"PREVIOUS_MISSING"})
CODE_PREFIX = "S"


@dataclass(frozen=True)
class AuditSource:
    """One source and its audit (the manifest's entry)."""

    file: str
    sha256: str
    kind: str
    import_verdict: str
    verdict: str  # 通过 / 有提示（…） / 有错误（…）, or the import's when it was not audited
    status: str  # passed / warnings / errors / not_audited
    year: int | None = None
    agency: str = ""
    agency_code: str = ""  # the audit's own
    errors: int = 0
    warnings: int = 0
    workbook: str = ""  # relative to the output folder
    results: str = ""  # the year's 校验结果.xlsx, relative to the output folder
    gaps: tuple[str, ...] = ()

    def as_json(self) -> dict:
        d = asdict(self)
        d["gaps"] = list(self.gaps)
        return d


@dataclass
class AuditRun:
    output: Path
    sources: list[AuditSource]
    reports: dict[int, model.Report]  # report year → its validation
    manifest: Path
    imported: ImportRun
    written: list[Path] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        ok = self.sources and all(s.status in ("passed", "warnings") for s in self.sources) and all(
            not s.gaps for s in self.sources)
        return 0 if ok else 1


def roster_for(reports: list[tuple[str, recognise.Recognised | None]]) -> dict[int, Agency]:
    """The audit's roster: source index → its agency. One agency per name (recognise.key) across years; a report
    without a name, or a further report of a name and year already taken, is an agency of its own."""
    codes: dict[str, str] = {}
    taken: set[tuple[str, int]] = set()
    out: dict[int, Agency] = {}
    for i, (display, rec) in enumerate(reports):
        if rec is None or rec.old_format or not rec.is_report():
            continue
        name = rec.agency or f"{Path(display).stem}（原文未写明单位名称）"
        k = recognise.key(rec.agency) if rec.agency else f"#{i}"
        n = 1
        while (k, rec.year or 0) in taken:
            n += 1
            k = f"{recognise.key(rec.agency)}#{n}"
            name = f"{rec.agency}（第{n}份）"
        taken.add((k, rec.year or 0))
        if k not in codes:
            codes[k] = f"{CODE_PREFIX}{len(codes) + 1:03d}"
        out[i] = Agency(codes[k], name, "")
    return out


def audit(sources: list[Path], out: Path, *, year: int | None = None, jobs: int | None = None,
          console=None) -> AuditRun:
    """Import ``sources`` into ``out/导入/``, validate each report year into ``out/<year>/``, write RESULT_FILE."""
    out = Path(out)
    jobs = jobs or parallel.default_jobs()
    roster: dict[int, Agency] = {}

    def assign(reports):
        roster.update(roster_for(reports))
        return roster

    imported = import_sources(sources, out / IMPORT_DIR, year=year, jobs=jobs, assign=assign)
    by_year: dict[int, list[int]] = {}
    for i, s in enumerate(imported.sources):
        if s.workbook and s.roster_code and s.year:
            by_year.setdefault(s.year, []).append(i)
    agency_of = {i: roster[i] for i in roster}
    reports: dict[int, model.Report] = {}
    written: list[Path] = []
    base = out / IMPORT_DIR
    for y in sorted(by_year):
        indices = by_year[y]
        codes = {imported.sources[i].roster_code for i in indices}
        agencies = tuple(dict.fromkeys(agency_of[i] for i in indices))
        ws = Workspace(base, County(""), agencies)
        files = [base / imported.sources[i].workbook for i in indices]
        before = [base / imported.sources[i].workbook for i in by_year.get(y - 1, [])
                  if imported.sources[i].roster_code in codes]
        out_dir = out / str(y)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ooxml.OutputError(ooxml.output_message(e, out_dir)) from e
        with lock.hold(out_dir, "audit"):
            ooxml.remove_temp_files(out_dir)
            figures = read.read_batch(files, y, ws, base=base, jobs=jobs)
            previous = read.read_batch(before, y - 1, ws, base=base, jobs=jobs) if before else None
            report = published_only(validate.validate(figures, ws, previous, jobs=jobs), figures, ws)
            written += export.write_validation_outputs(report, figures, out_dir)
        reports[y] = report
    results = _sources(imported, reports, roster, out)
    manifest = _manifest(out, results, written)
    run = AuditRun(out, results, reports, manifest, imported, written)
    if console is not None:
        _print(console, run)
    return run


def published_only(report: model.Report, figures, ws: Workspace) -> model.Report:
    """The report without the findings about what only a workbook has (the 基本信息 sheet, PREVIOUS_MISSING),
    its verdicts recounted by validate's own rule."""
    kept = [f for f in report.findings if f.sheet != spec.SHEET_INFO and f.code not in NOT_AUDITED_CODES]
    if len(kept) == len(report.findings):
        return report
    with spec.using(report.format):
        return validate._report(figures, ws, kept)  # noqa: SLF001 - the one rule of verdicts, not a copy of it


def _sources(imported: ImportRun, reports: dict[int, model.Report], roster: dict[int, Agency],
             out: Path) -> list[AuditSource]:
    results = []
    for i, s in enumerate(imported.sources):
        rep = reports.get(s.year) if s.workbook and s.roster_code else None
        verdict = next((a for a in rep.agencies if a.agency_code == s.roster_code), None) if rep else None
        workbook = (Path(IMPORT_DIR) / s.workbook).as_posix() if s.workbook else ""
        if verdict is None:
            results.append(AuditSource(s.file, s.sha256, s.kind, s.verdict, s.verdict, "not_audited", s.year,
                                       s.agency, s.roster_code, workbook=workbook, gaps=s.gaps))
            continue
        e, w = verdict.errors, verdict.warnings
        if e:
            text, status = f"{model.VERDICT_FAIL}（错误{e}条" + (f"，提示{w}条）" if w else "）"), "errors"
        elif w:
            text, status = f"{model.VERDICT_WARN}（提示{w}条）", "warnings"
        else:
            text, status = model.VERDICT_PASS, "passed"
        if s.status != "ok":
            text += f"；{s.verdict}"
        results.append(AuditSource(s.file, s.sha256, s.kind, s.verdict, text, status, s.year, s.agency,
                                   s.roster_code, e, w, workbook, f"{s.year}/{export.RESULT_XLSX}", s.gaps))
    return results


def _manifest(out: Path, results: list[AuditSource], written: list[Path]) -> Path:
    from ..run import sha256

    data = {
        "tool": "nianbao",
        "command": "audit",
        "format_version": spec.FORMAT_VERSION,
        "sources": [r.as_json() for r in sorted(results, key=lambda r: r.file)],
        "outputs": [{"file": p.relative_to(out).as_posix(), "sha256": sha256(p)} for p in sorted(set(written))],
    }
    return ooxml.atomic_write_bytes(out / RESULT_FILE,
                                    (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))


def _print(console, run: AuditRun) -> None:
    from rich.markup import escape

    for r in run.sources:
        who = f"（{r.year}年度 {r.agency}）" if r.year and r.agency else f"（{r.year}年度）" if r.year else ""
        console.print(f"  {escape(r.verdict)}  {escape(r.file)}{escape(who)}", soft_wrap=True)
    counts = {k: sum(r.status == k for r in run.sources) for k in ("passed", "warnings", "errors", "not_audited")}
    console.print(f"共{len(run.sources)}份：通过{counts['passed']}份，有提示{counts['warnings']}份，有错误{counts['errors']}份，"
                  f"未校验{counts['not_audited']}份；校验结果见 "
                  + "、".join(f"{run.output / str(y) / export.RESULT_XLSX}" for y in sorted(run.reports))
                  + f"，各份结论见 {run.manifest}", soft_wrap=True)
