"""One January run: read → validate → export → aggregate → render → county workbook → (pdf) → manifest.

The library entry points the CLI calls. Every input file gets a verdict in the manifest; every output is
written atomically; one broken workbook never stops the others.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import lock, ooxml, spec
from .model import Number, Report, Rollup
from .workspace import Workspace

MANIFEST = "manifest.json"
PREFILLED_DIR = "预填报表"


@dataclass(frozen=True)
class TemplateResult:
    folder: Path
    paths: list[Path]
    with_carry_over: int
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    out_dir: Path
    manifest: Path
    errors: int = 0
    warnings: int = 0
    missing: tuple[str, ...] = ()
    #: wall seconds of the check stage's steps (read, validate, export, aggregate: each agency's figures), in
    #: whichever process ran them (make bench reports them)
    seconds: Mapping[str, float] = field(default_factory=dict)


def write_blank_template(out_dir: Path, year: int, fmt: spec.Format | None = None) -> Path:
    from . import template

    return template.write_blank(Path(out_dir), year, fmt)


def previous_values(ws: Workspace, year: int) -> tuple[dict[str, Mapping[str, Number]], list[str]]:
    """Last year's figures by agency code, read from ``<workspace>/<year-1>/`` (empty when absent).

    Only workbooks that were read are used; the notes say which agencies had none.
    """
    from . import read

    carried_in = spec.row_node("三", "carried_in").short
    files = ws.files(year - 1)
    if not files:
        return {}, [f"未找到 {year - 1} 年度报表文件夹，“{carried_in}”未预填，请各单位据实填写。"]
    batch = read.read_batch(files, year - 1, ws)
    # a cell that could not be read (text, an error: e.g. 无法识别 in an imported report) is not pre-filled as 0
    v = batch.values
    unread = {(rec, name) for rec, name, val in zip(v["record"].tolist(), v["name"].tolist(), v["value"].tolist())
              if val is None or val != val}
    values = {a.code: {n: x for n, x in a.values.items() if (rec.index, n) not in unread}
              for rec, a in zip(batch.records, batch.agency_data())}
    notes = [
        f"{a.name}（{a.code}）没有可读取的 {year - 1} 年度报表，“{carried_in}”未预填。"
        for a in ws.agencies
        if a.code not in values
    ]
    return values, notes


def write_prefilled_templates(ws: Workspace, year: int, output: Path, fmt: spec.Format | None = None) -> TemplateResult:
    """One pre-filled workbook per roster agency in format ``fmt`` (2021 when None), last year's carry-over in it."""
    from . import template

    folder = open_output(ws, year, output) / PREFILLED_DIR
    with spec.using(fmt), lock.hold(folder.parent, "template"):  # never beside another run writing the same folder
        ooxml.remove_temp_files(folder)  # left by an interrupted run
        previous, notes = previous_values(ws, year)
        paths = template.write_prefilled(ws, year, folder, previous)
    return TemplateResult(folder, paths, sum(1 for a in ws.agencies if a.code in previous), notes)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sha256_or_empty(path: Path) -> str:
    try:
        return sha256(path)
    except OSError:
        return ""


def input_sha256(v) -> str:
    """The SHA-256 of an input entry (a read.FileVerdict) for the manifest; "" for what is not a regular file, a
    link that was not followed, or a file that cannot be read (its verdict says why)."""
    try:
        regular = stat.S_ISREG(os.lstat(v.path).st_mode)
    except OSError:
        return ""
    # links are hashed only when read (inside the workspace), never followed out of it
    return _sha256_or_empty(v.path) if regular or v.status == "read" else ""


def open_output(ws: Workspace, year: int, output: Path) -> Path:
    """``<output>/<year>/``, created; raises OutputError (exit 2) when it is, lies in or holds the workspace's
    folder of ``year`` or of ``year - 1`` (what a run reads, and what the next January's run will read): whatever
    is written there would be read back as agencies' workbooks. The same for the pre-filled workbooks of
    ``template``: written into ``<workspace>/<year>/`` they would be read as ``year``'s returns."""
    out_dir = Path(output) / str(year)
    out = out_dir.resolve()
    for y in (year, year - 1):
        folder = ws.year_dir(y).resolve()
        if out == folder or out.is_relative_to(folder) or folder.is_relative_to(out):
            from . import county_xlsx, export

            raise ooxml.OutputError(
                f"输出目录 {out} 与工作目录的年度文件夹 {folder} 重叠：程序生成的文件（{MANIFEST}、"
                f"{county_xlsx.FILENAME}、{PREFILLED_DIR}、{export.RETURN_DIR} 等）会被当作各单位报送的报表读取。请用 --output 指定工作目录"
                f"年度文件夹以外的输出目录，例如 --output {Path(ws.root) / 'output'}（不指定时为当前目录下的 output）。"
            )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as e:
        raise ooxml.OutputError(f"无法建立输出目录 {out_dir}：路径中有一段是文件，不是文件夹。请用 --output 指定一个文件夹。") from e
    except OSError as e:
        if e.errno in ooxml.OUTPUT_ERRNOS:
            raise ooxml.OutputError(ooxml.output_message(e, out_dir)) from e
        raise
    return out_dir


def write_manifest(out_dir: Path, ws: Workspace, year: int, inputs: list[dict], outputs: list[Path],
                   previous_inputs: list[dict] = (), warnings: tuple[str, ...] = ()) -> Path:
    """manifest.json: every input with its SHA-256 and verdict — the year's workbooks, last year's (read for the
    carry-over and year-on-year checks) and the workspace's county.toml and roster — every output written
    (stable order, no times) and the run's warnings (Chinese: what an output left out, e.g. a chart the county
    summary could not draw).

    ``complete`` is true: the run finished (while a run is under way, the folder's manifest says false).
    """
    data = {
        "tool": "nianbao",
        "format_version": spec.FORMAT_VERSION,
        "county": ws.county.name,
        "year": year,
        "complete": True,
        "inputs": sorted(inputs, key=lambda d: d["file"]),
        "previous_year_inputs": sorted(previous_inputs, key=lambda d: d["file"]),
        "workspace": [{"file": p.name, "sha256": _sha256_or_empty(p)} for p in _workspace_files(ws)],
        "outputs": [
            {"file": p.relative_to(out_dir).as_posix(), "sha256": sha256(p)}
            for p in sorted(set(outputs))
            if p.is_file()
        ],
        "warnings": list(warnings),
    }
    path = out_dir / MANIFEST
    ooxml.atomic_write_bytes(path, (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
    return path


def _workspace_files(ws: Workspace) -> list[Path]:
    from .workspace import COUNTY_FILE, ROSTER_FILE

    return [p for p in (Path(ws.root) / COUNTY_FILE, Path(ws.root) / ROSTER_FILE) if p.is_file()]


def _mark_running(out_dir: Path, ws: Workspace, year: int) -> None:
    """Before a run writes anything: the folder's manifest says the run is not complete, keeping the previous
    run's output list, so that a run interrupted now still leaves that list for the next run to clean up with."""
    path = out_dir / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict):
        data = {"tool": "nianbao", "format_version": spec.FORMAT_VERSION, "county": ws.county.name, "year": year,
                "inputs": [], "outputs": []}
    if data.get("complete") is False:
        return  # the previous run was interrupted: its list is already the one to keep
    data["complete"] = False
    ooxml.atomic_write_bytes(path, (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))


def _old_outputs(out_dir: Path) -> list[Path]:
    """Outputs the previous run over this folder listed in its manifest (to remove what this run no longer writes)."""
    path = out_dir / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        names = [o["file"] for o in data.get("outputs", [])]
    except (OSError, ValueError, TypeError, KeyError):
        return []
    root = out_dir.resolve()
    out = []
    for name in names:
        p = (out_dir / str(name)).resolve()
        if p.is_relative_to(root) and p != root:  # never anything outside the output folder
            out.append(p)
    return out


def _is_validation_output(relative: Path) -> bool:
    """校验结果.xlsx / .json or a workbook of 退回修改/: what a validation-only run writes."""
    from . import export

    return relative.parts[:1] == (export.RETURN_DIR,) or relative.as_posix() in (export.RESULT_XLSX,
                                                                                  export.RESULT_JSON)


def _remove_stale(out_dir: Path, old: list[Path], new: list[Path]) -> list[Path]:
    """Remove the previous run's outputs this run did not write again; return those that could not be removed."""
    keep = {p.resolve() for p in new}
    stuck = []
    for p in old:
        if p not in keep and p.is_file() and not p.is_symlink():
            try:
                p.unlink()
            except OSError:  # open in Word on a shared drive, read-only: say so, never stop the run
                stuck.append(p)
    return stuck


def run(
    ws: Workspace,
    year: int,
    output: Path,
    *,
    render: bool = True,
    pdf: bool = False,
    jobs: int | None = None,
    console=None,
    fmt: spec.Format | None = None,
) -> RunResult:
    """Read every file of ``<workspace>/<year>/``, validate, and (with ``render``) write every report, every
    stage under format ``fmt`` (``spec.load("2021")`` when None).

    Writes under ``<output>/<year>/``; returns the exit code the CLI uses: 0 when every roster agency passed,
    1 when there are findings of severity 错误 or agencies missing.
    """
    from rich.console import Console

    console = console or Console(stderr=True, quiet=True)
    from . import parallel

    jobs = jobs or parallel.default_jobs()
    out_dir = open_output(ws, year, output)
    with spec.using(fmt), lock.hold(out_dir, "reports" if render else "validate"):  # one run at a time per folder
        return _run(ws, year, out_dir, render=render, pdf=pdf, jobs=jobs, console=console)


def _run(ws: Workspace, year: int, out_dir: Path, *, render: bool, pdf: bool, jobs: int, console) -> RunResult:
    old = _old_outputs(out_dir)
    ooxml.remove_temp_files(out_dir, skip=(PREFILLED_DIR,))  # left by an interrupted run
    _mark_running(out_dir, ws, year)

    checked = _check_stage(ws, year, out_dir, jobs=jobs, console=console, render=render)
    report, outputs, verdicts = checked.report, list(checked.outputs), checked.verdicts
    has_previous, seconds, checked_previous = checked.has_previous, checked.seconds, checked.previous_verdicts
    rollup = checked.rollup
    del checked

    written = None
    if render:
        written = _render_stage(rollup, ws, out_dir, pdf=pdf, jobs=jobs)
        outputs += written.files
    else:  # validation only: what the last full run wrote besides the validation outputs stays, listed again
        root = out_dir.resolve()
        outputs += [out_dir / p.relative_to(root) for p in old
                    if p.is_file() and not _is_validation_output(p.relative_to(root))]

    del rollup
    inputs = []
    for v in verdicts:
        entry = v.as_json()
        entry["sha256"] = input_sha256(v)
        entry["verdict"] = report.verdict(v.agency_code) if v.agency_code else None
        inputs.append(entry)
    previous_inputs = [{**v.as_json(), "sha256": input_sha256(v)} for v in checked_previous]
    from . import parallel

    parallel.raise_if_interrupted()  # a stopped run leaves the manifest saying it did not complete
    stuck = _remove_stale(out_dir, old, outputs)
    warnings = written.warnings if written is not None else ()
    manifest = write_manifest(out_dir, ws, year, inputs, outputs, previous_inputs, warnings)

    _summary(console, ws, year, verdicts, report, written, out_dir, has_previous)
    for p in stuck:
        console.print(f"  提示：上次运行生成的 {p.relative_to(out_dir.resolve()).as_posix()} 本次未再生成，但无法删除"
                      "（可能正在被打开），请手工删除。")
    code = 0 if report.ok else 1
    return RunResult(code, out_dir, manifest, report.errors, report.warnings, tuple(report.missing), seconds)


@dataclass
class _Checked:
    """What the check stage (read → validate → export → aggregate) hands to the rest of the run."""

    verdicts: list  # read.FileVerdict of every file of the year folder
    report: Report
    outputs: list[Path]
    rollup: Rollup | None  # None without rendering
    has_previous: bool  # last year's folder had files
    seconds: dict[str, float]
    previous_verdicts: list  # read.FileVerdict of every file of last year's folder


def _check(ws: Workspace, year: int, out_dir: Path, jobs: int, console, render: bool,
           keep: list | None = None) -> _Checked:
    """read(files) → Figures; validate(Figures, last year) → Report; export(Report, Figures) → validation
    outputs; aggregate(Figures, Report, last year) → Rollup (when reports are to be rendered)."""
    import time

    from . import aggregate, export, validate

    seconds: dict[str, float] = {}
    t = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal t
        now = time.perf_counter()
        seconds[stage] = seconds.get(stage, 0.0) + now - t
        t = now

    figures, previous = _read_with_progress(ws.files(year), year, ws, jobs, console, f"读取 {year} 年度报表",
                                            ws.files(year - 1))
    lap("read")
    report = validate.validate(figures, ws, previous, jobs=jobs)
    lap("validate")
    outputs = export.write_validation_outputs(report, figures, out_dir)
    lap("export")
    rollup = aggregate.aggregate(figures, report, previous, ws) if render else None
    lap("aggregate")
    if keep is not None:  # in the check-stage process: left for its exit, not freed object by object
        keep += [figures, previous]
    return _Checked(figures.files, report, list(outputs), rollup, previous is not None, seconds,
                    previous.files if previous is not None else [])


@dataclass(frozen=True)
class Written:
    """What the render stage wrote: agency reports, county summary, 全县汇总.xlsx and (with --pdf) PDFs."""

    agency_reports: tuple[Path, ...]
    county_report: Path | None
    county_workbook: Path
    pdfs: tuple[Path, ...] = ()
    pdf_message: str = ""  # Chinese: how many PDFs, or why none
    warnings: tuple[str, ...] = ()  # Chinese: what the documents left out (a chart that could not be drawn)

    @property
    def files(self) -> list[Path]:
        out = list(self.agency_reports) + [self.county_workbook] + list(self.pdfs)
        return out + ([self.county_report] if self.county_report else [])


def _county_workbook(rollup: Rollup, out_dir: Path) -> Path:
    from . import county_xlsx, parallel

    path = county_xlsx.write(rollup, out_dir)
    parallel.release_memory()  # the workbook's cells (a row per agency) go back before this worker renders reports
    return path


def _render_stage(rollup: Rollup, ws: Workspace, out_dir: Path, *, pdf: bool, jobs: int) -> Written:
    """render(Rollup) → agency reports + county summary, county_workbook(Rollup) → 全县汇总.xlsx (by a report
    worker, first, while this process writes the county summary), then pdf(files)."""
    from . import pdf as pdf_mod
    from . import render

    done = render.render(rollup, ws.county, out_dir, jobs=jobs, alongside=(_county_workbook, rollup, out_dir))
    pdfs: tuple[Path, ...] = ()
    message = ""
    if pdf:
        docs = list(done.agency_reports) + ([done.county_report] if done.county_report else [])
        result = pdf_mod.convert(docs, out_dir)
        pdfs, message = result.pdfs, result.message
    return Written(done.agency_reports, done.county_report, done.alongside, pdfs, message, done.warnings)


def _check_stage(ws: Workspace, year: int, out_dir: Path, *, jobs: int, console, render: bool) -> _Checked:
    """The check stage, in a forked process when there are several cores: the long tables of both years and
    everything validation builds live and die there, and this process receives only the verdicts, the findings
    and the rollup. Rendering then starts from a small process instead of one holding the heap
    the check stage left behind (memory flat in the number of agencies). The result is the same either way."""
    from . import parallel

    if jobs > 1:
        from . import aggregate, read  # noqa: F401  (pandas, numpy: imported once, here, for both processes)

        return parallel.in_child(_check, ws, year, out_dir, jobs, console, render, keep=True, name="nianbao-check")
    return _check(ws, year, out_dir, jobs, console, render)


def _read_with_progress(files: list[Path], year: int, ws: Workspace, jobs: int, console, title: str,
                        previous_files: list[Path] = ()):
    """This year's batch (with a progress bar) and last year's (None without files), read by one set of
    worker processes. The bar is redrawn by the reading itself (no refresh thread runs while workers fork)."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from . import read

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True, auto_refresh=False,
    ) as bar:
        task = bar.add_task(title, total=len(files))
        current = set(files)
        drawn = [0.0]

        def advance(path: Path) -> None:
            if path in current:
                bar.advance(task)
                now = time.monotonic()
                if now - drawn[0] > 0.1:
                    drawn[0] = now
                    bar.refresh()

        groups = [(files, year)] + ([(list(previous_files), year - 1)] if previous_files else [])
        batches = read.read_batches(groups, ws, jobs=jobs, progress=advance)
        return batches[0], (batches[1] if previous_files else None)


def _summary(console, ws: Workspace, year: int, verdicts, report, rendered, out_dir: Path,
             has_previous: bool) -> None:
    if console.quiet:  # nothing is shown: do not build a table of every agency
        return
    from rich.markup import escape
    from rich.table import Table

    from . import export, model

    style = {
        model.VERDICT_PASS: "green", model.VERDICT_WARN: "yellow",
        model.VERDICT_FAIL: "red", model.VERDICT_MISSING: "red",
    }
    t = Table(title=f"{ws.county.name} {year} 年度报表校验结果", title_justify="left")
    for col in ("单位", "文件", "结论", "错误", "提示"):
        t.add_column(col, justify="right" if col in ("错误", "提示") else "left")
    for a in report.agencies:
        t.add_row(a.agency_name, "、".join(a.files) or "—", f"[{style.get(a.verdict, '')}]{a.verdict}[/]",
                  str(a.errors), str(a.warnings))
    console.print(t)
    counts = {s: sum(1 for v in verdicts if v.status == s) for s in ("read", "rejected", "ignored")}
    console.print(
        f"文件 {len(verdicts)} 个：读取 {counts['read']}，拒收 {counts['rejected']}，忽略 {counts['ignored']}；"
        f"名册 {len(ws.agencies)} 个单位：通过 {len(report.passed)}，未报送 {len(report.missing)}；"
        f"错误 {report.errors} 条，提示 {report.warnings} 条。",
        soft_wrap=True,  # one line, never broken inside a figure
    )
    for v in verdicts:
        if v.status == "ignored":
            console.print(f"  已忽略：{v.file}（{v.reason}）")
    if not has_previous:
        console.print(f"  提示：未找到 {year - 1} 年度报表，未做跨年度核对（{spec.row_node('三', 'carried_in').short}、同比）。")
    if rendered is not None:
        console.print(f"已生成 {len(rendered.agency_reports)} 份单位年度报告"
                      + ("和全县汇总报告" if rendered.county_report else "") + f"：{out_dir}")
        if rendered.pdf_message:
            console.print(f"  {rendered.pdf_message}")
        for w in rendered.warnings:  # e.g. a chart left out of the county summary: the run goes on
            console.print(f"  [yellow]提示：[/]{escape(w)}", soft_wrap=True)
    console.print(f"校验结果：{out_dir / export.RESULT_XLSX}")
    if not report.ok:
        console.print("[bold red]有单位未通过校验或未报送：请把“退回修改”文件夹中的报表发回对应单位修改后重新运行。[/]",
                      soft_wrap=True)
