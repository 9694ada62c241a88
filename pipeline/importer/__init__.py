"""Import published annual reports (web pages, Word files, PDFs, text) into standard workbooks.

    import_sources(sources, output, year=None, workspace=None) → ImportRun

Each source file (or every report file under a source folder) is extracted into the neutral document model
(document.py), recognised against the format (recognise.py) and, when it is a 2021-format annual report, written as
one standard workbook through the template with a “来源” sheet (output.py). Every source gets a verdict — 导入成功;
部分导入（缺：…）; 不是年度报告; 2019年旧格式; 无法读取（…） — on the console and in ``<output>/导入结果.json``.

With a workspace, each report's agency is matched to the roster by name (normalised; a variant of one roster name
is taken, and said so) and its workbook is also written into ``<workspace>/<year>/`` under the name the template
gives that agency's workbook, so that ``nianbao template`` pre-fills 上年结转 from it and ``nianbao reports`` reads
it as last year's. A workbook an agency returned is never overwritten: an agency that already has one there is
reported and left alone.

Extraction and recognition run in worker processes (parallel.Pool); the results do not depend on how many.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import ooxml, parallel, spec
from ..workspace import Agency, Workspace
from . import document, output, recognise

RESULT_FILE = "导入结果.json"
OK, PARTIAL, NOT_REPORT, OLD, UNREADABLE, NO_YEAR = "导入成功", "部分导入", "不是年度报告", "2019年旧格式", "无法读取", \
    "未能确定报告年度"


class ImportUsageError(Exception):
    """Bad arguments (the message is Chinese and says what to do)."""


@dataclass(frozen=True)
class SourceResult:
    """One source file and what became of it (the manifest's entry)."""

    file: str
    sha256: str
    kind: str
    verdict: str  # the Chinese verdict, e.g. 部分导入（缺：表四）
    status: str  # ok / partial / not_report / old_format / unreadable / no_year
    year: int | None = None
    agency: str = ""  # as the report names itself
    roster_code: str = ""
    roster_name: str = ""
    workbook: str = ""  # written in the output folder ('' when none)
    workspace_file: str = ""  # written into the workspace's year folder ('' when none)
    gaps: tuple[str, ...] = ()
    unreadable_cells: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def as_json(self) -> dict:
        d = asdict(self)
        d["gaps"], d["unreadable_cells"], d["notes"] = list(self.gaps), list(self.unreadable_cells), list(self.notes)
        return d


@dataclass
class ImportRun:
    output: Path
    sources: list[SourceResult]
    manifest: Path
    written: list[Path] = field(default_factory=list)
    workspace_written: list[Path] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 0 if self.sources and all(s.status == "ok" for s in self.sources) and not any(
            "未匹配" in n for s in self.sources for n in s.notes) else 1


def source_files(sources: list[Path]) -> list[tuple[Path, str]]:
    """(path, display name) of every report file: the files given, and those under the folders given (sorted)."""
    out: list[tuple[Path, str]] = []
    for src in sources:
        src = Path(src)
        if src.is_dir():
            for p in sorted(src.rglob("*")):
                if p.is_file() and document.kind_of(p) and not p.name.startswith((".", "~$")):
                    out.append((p, (Path(src.name) / p.relative_to(src)).as_posix()))
        elif src.exists():
            out.append((src, src.name))
        else:
            raise ImportUsageError(f"找不到“{src}”：请给出要导入的年报文件（.html .htm .docx .pdf .txt .md）或文件夹。")
    seen: set[Path] = set()
    unique = []
    for p, d in out:
        if p.resolve() not in seen:
            seen.add(p.resolve())
            unique.append((p, d))
    return unique


@dataclass
class _Seen:
    sha256: str
    kind: str
    rec: recognise.Recognised | None
    error: str = ""


def _recognise(_job, path: Path) -> _Seen:
    kind = document.kind_of(path) or ""
    try:
        data = path.read_bytes()
    except OSError as e:
        return _Seen("", kind, None, f"无法读取文件（{e.strerror or e}）")
    sha = hashlib.sha256(data).hexdigest()
    if not kind:
        return _Seen(sha, kind, None, f"不支持的文件类型“{path.suffix}”")
    try:
        doc = document.extract(path, data)
    except document.ExtractError as e:
        return _Seen(sha, kind, None, str(e))
    return _Seen(sha, kind, recognise.recognise(doc))


def match_agency(ws: Workspace, name: str) -> tuple[Agency | None, str]:
    """The roster agency of a report's name: the same name (normalised), else the one roster agency the name is a
    variant of (read.is_name_variant). (agency, note)."""
    from ..read import is_name_variant

    if not name:
        return None, "原文未写明单位名称，未匹配名册"
    exact = ws.agency_named(name)
    if exact is not None:
        return exact, ""
    hits = [a for a in ws.agencies if is_name_variant(name, a.name, ws.county.name)]
    if len(hits) == 1:
        return hits[0], f"名称与名册“{hits[0].name}”不完全一致，按名册单位导入"
    if hits:
        names = "、".join(a.name for a in hits[:3]) + (f"等{len(hits)}个单位" if len(hits) > 3 else "")
        return None, f"未匹配名册：“{name}”可能是{names}中的任一个"
    return None, f"未匹配名册：名册中没有“{name}”"


def _file_name(agency: Agency | None, name: str, year: int) -> str:
    from .. import template

    if agency is not None:
        return template.prefilled_file_name(agency, year)
    return template.sanitise_file_name(f"{name or '未知单位'}_{year}年度_导入.xlsx")


def is_import(path: Path) -> bool:
    """A workbook this command wrote (it has the 来源 sheet)."""
    try:
        with zipfile.ZipFile(path) as z:
            return f'name="{output.SOURCE_SHEET}"' in z.read("xl/workbook.xml").decode("utf-8", "replace")
    except (OSError, KeyError, zipfile.BadZipFile):
        return False


def _existing(ws: Workspace, year: int) -> dict[str, str]:
    """Roster code → file of the workbooks already in the workspace's year folder that this command did not write."""
    from .. import read

    files = [p for p in ws.files(year) if p.suffix.lower() == ".xlsx" and not is_import(p)]
    if not files:
        return {}
    batch = read.read_batch(files, year, ws)
    return {r.agency_code: r.file for r in batch.records if r.in_roster}


def _build_job(job, item):
    rec, year, path, info, agency, note = item
    return output.write(rec, year, path, agency=agency, match_note=note, **info)


#: (display name, recognised report or None) of every source → the roster agency of each report, by source index
Assign = Callable[[list[tuple[str, "recognise.Recognised | None"]]], dict[int, Agency]]


def import_sources(sources: list[Path], out: Path, *, year: int | None = None, workspace: Workspace | None = None,
                   jobs: int | None = None, console=None, assign: Assign | None = None) -> ImportRun:
    """Import every source into ``out`` (one workbook each, and RESULT_FILE). With ``workspace``: matched to its
    roster and written into its year folders too. ``assign`` (the audit): a roster made for the reports
    themselves, each report's agency given by it; nothing is written into a workspace."""
    files = source_files(sources)
    if not files:
        raise ImportUsageError("没有找到可导入的年报文件（.html .htm .docx .pdf .txt .md）。")
    out = Path(out)
    if workspace is not None:
        root = Path(workspace.root).resolve()
        o = out.resolve()
        if any(o == (root / p.name) or (root / p.name) in o.parents
               for p in root.iterdir() if p.is_dir() and p.name.isdigit()):
            raise ImportUsageError(f"输出目录“{out}”位于工作目录的年度文件夹中：导入结果会被当作各单位报表读取。请另选输出目录"
                                   f"（如 {workspace.root}/output/import）。")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ImportUsageError(ooxml.output_message(e, out)) from e
    jobs = jobs or parallel.default_jobs()
    with parallel.Pool(jobs if len(files) > 1 else 0) as pool:
        seen = [t.result() for t in [pool.submit(_recognise, p) for p, _ in files]]

    _across_years([s.rec for s in seen if s.rec is not None])
    matches: dict[int, tuple[Agency | None, str]] = {}
    if assign is not None:
        matches = {i: (a, "") for i, a in assign([(d, s.rec) for (_, d), s in zip(files, seen)]).items()}
    elif workspace is not None:
        for i, s in enumerate(seen):
            if s.rec is None or s.rec.old_format or not s.rec.is_report() or not (s.rec.year or year):
                continue
            matches[i] = match_agency(workspace, s.rec.agency)
    winner: dict[tuple[str, int], int] = {}  # (roster code, year) → the source written into the workspace
    for i, (agency, note) in sorted(matches.items()):
        if agency is not None:
            k = (agency.code, seen[i].rec.year or year)
            if k not in winner or (matches[winner[k]][1] and not note):  # the roster's own name first
                winner[k] = i
    results: list[SourceResult] = []
    builds: list[tuple] = []
    taken: set[str] = set()
    existing: dict[int, dict[str, str]] = {}
    ws_targets: list[tuple[int, Path, Path]] = []
    for i, ((path, display), s) in enumerate(zip(files, seen)):
        kind_label = document.KIND_LABEL.get(s.kind, s.kind)
        if s.rec is None:
            results.append(SourceResult(display, s.sha256, kind_label, f"{UNREADABLE}（{s.error}）", "unreadable"))
            continue
        rec = s.rec
        if rec.old_format:
            results.append(SourceResult(
                display, s.sha256, kind_label, OLD, "old_format", rec.year, rec.agency,
                notes=(f"使用已废止的2019年试行格式（{spec.OLD_FORMAT_DOCUMENT}）：" + "、".join(rec.old_labels[:6])
                       + "；未导入。",)))
            continue
        if not rec.is_report():
            results.append(SourceResult(display, s.sha256, kind_label, NOT_REPORT, "not_report",
                                        notes=("没有年报标题、年报各部分标题或表格二、三、四",)))
            continue
        y = rec.year or year
        notes = list(rec.notes)
        if rec.year and year and rec.year != year:
            notes.append(f"原文为{rec.year}年度报告（--year {year} 未采用）")
        if y is None:
            results.append(SourceResult(display, s.sha256, kind_label, NO_YEAR, "no_year", None, rec.agency,
                                        notes=("原文未写明报告年度：请用 --year 指定",)))
            continue
        agency, note = matches.get(i, (None, ""))
        if note:
            notes.append(note)
        if agency is not None and winner[(agency.code, y)] != i:
            notes.append(f"“{agency.name}”{y}年度已由“{files[winner[(agency.code, y)]][1]}”导入工作目录，本份未写入")
            agency = None
        gaps = rec.gaps()
        status, verdict = ("partial", f"{PARTIAL}（缺：{'、'.join(gaps)}）") if gaps else ("ok", OK)
        name = _file_name(agency, rec.agency or Path(display).stem, y)
        stem, n = name[:-5], 2
        while name.casefold() in taken:
            name = f"{stem}_{n}.xlsx"
            n += 1
            notes.append("同一单位同一年度有多份报告，另存为" + name)
        taken.add(name.casefold())
        target = out / name
        ws_file = ""
        if workspace is not None and agency is not None:
            if y not in existing:
                existing[y] = _existing(workspace, y)
            if agency.code in existing[y]:
                notes.append(f"工作目录{y}年度文件夹中已有该单位报表“{existing[y][agency.code]}”，未写入工作目录")
            else:
                dest = workspace.year_dir(y) / name
                ws_targets.append((y, target, dest))
                ws_file = (Path(str(y)) / name).as_posix()
                existing[y][agency.code] = name
        info = {"source": display, "sha256": s.sha256, "kind": kind_label, "verdict": verdict}
        builds.append((rec, y, target, info, agency, note))
        results.append(SourceResult(display, s.sha256, kind_label, verdict, status, y, rec.agency,
                                    agency.code if agency else "", agency.name if agency else "", name, ws_file,
                                    tuple(gaps), tuple(rec.unreadable), tuple(notes)))
    with parallel.Pool(jobs if len(builds) > 1 else 0) as pool:
        written = [t.result() for t in [pool.submit(_build_job, b) for b in builds]]
    ws_written = []
    for y, src, dest in ws_targets:
        dest.parent.mkdir(parents=True, exist_ok=True)
        ws_written.append(ooxml.atomic_write_bytes(dest, src.read_bytes()))
    manifest = _manifest(out, results, written, workspace)
    run = ImportRun(out, results, manifest, written, ws_written)
    if console is not None:
        for r in results:
            where = f" → {r.workbook}" if r.workbook else ""
            console.print(f"  {r.verdict}  {r.file}{where}", soft_wrap=True)
            for n in r.notes:
                console.print(f"      {n}", soft_wrap=True)
        console.print(f"共{len(results)}份：导入成功{sum(r.status == 'ok' for r in results)}份，"
                      f"部分导入{sum(r.status == 'partial' for r in results)}份，其余{sum(r.status not in ('ok', 'partial') for r in results)}份；"
                      f"结果见 {manifest}")
    return run


def _across_years(recs: list[recognise.Recognised]) -> None:
    """Settle what one report leaves open with the same agency's report of the year before, when both are given."""
    by = {(recognise.key(r.agency), r.year): r for r in recs if r.agency and r.year}
    for r in recs:
        prev = by.get((recognise.key(r.agency), (r.year or 0) - 1))
        if r.open_rows and prev is not None:
            recognise.refine_with_previous(r, prev)


def _manifest(out: Path, results: list[SourceResult], written: list[Path], workspace: Workspace | None) -> Path:
    from ..run import sha256

    data = {
        "tool": "nianbao",
        "command": "import",
        "format_version": spec.FORMAT_VERSION,
        "workspace": str(workspace.root) if workspace is not None else None,
        "sources": [r.as_json() for r in sorted(results, key=lambda r: r.file)],
        "outputs": [{"file": p.name, "sha256": sha256(p)} for p in sorted(set(written))],
    }
    return ooxml.atomic_write_bytes(out / RESULT_FILE,
                                    (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
