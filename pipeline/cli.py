"""`nianbao` — a thin shell: parse, call one library function, map the outcome to an exit code.

Exit codes: 0 every agency passed; 1 findings of severity 错误 or agencies missing (reports are still written
for what passed); 2 usage error (bad arguments, unusable workspace, an output folder that cannot be used: inside
the workspace's year folders, busy with another run, disk full, read-only, no permission); 3 internal error (a
bug: the message asks for a --debug run); 128 + the signal's number when stopped (130 Ctrl-C, 143 SIGTERM). A
traceback only with --debug.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console

from . import spec
from .ooxml import OUTPUT_ERRNOS, OutputError, output_message
from .workspace import WorkspaceError

app = typer.Typer(
    help="nianbao（年报）：政府信息公开工作年度报告的填报模板、汇总校验与报告生成工具（2021版格式）。",
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
)
console = Console(stderr=True)
_state = {"debug": False}

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
DEFAULT_TEMPLATES_DIR = Path("input_templates")


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="出错时显示完整的程序调用栈（供开发人员排查）。")) -> None:
    _state["debug"] = debug


def _fail(message: str, code: int = EXIT_USAGE) -> None:
    from rich.markup import escape

    console.print(f"[bold red]错误：[/]{escape(message)}", soft_wrap=True)  # a path stays whole, never markup
    raise typer.Exit(code)


def _guard(fn):
    """Map library exceptions to Chinese messages and exit codes."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except (WorkspaceError, OutputError) as e:
            if _state["debug"]:
                raise
            _fail(str(e))
        except KeyboardInterrupt as e:  # Ctrl-C, or parallel.Interrupted: SIGTERM/SIGHUP too
            from . import parallel

            code = e.exit_code if isinstance(e, parallel.Interrupted) else 130
            what = f"收到 {e.signal_name} 信号" if isinstance(e, parallel.Interrupted) and e.signum != 2 else "已按 Ctrl-C"
            console.print(f"[bold red]已中断[/]（{what}）：本次运行未完成，已停止全部工作进程；未写完的输出文件不会以"
                          "正式文件名留下，manifest.json 标记为未完成。请重新运行。", soft_wrap=True)
            raise typer.Exit(code)
        except Exception as e:  # a program problem: say so plainly, traceback only with --debug
            if _state["debug"]:
                raise
            if isinstance(e, OSError) and e.errno in OUTPUT_ERRNOS:  # disk full, read-only, no permission
                _fail(output_message(e, writing=False))
            _fail(f"程序内部错误（{type(e).__name__}: {e}）。请加 --debug 重新运行并把输出发给技术支持。", 3)

    return wrapper


@app.command("spec")
@_guard
def spec_cmd(
    as_json: bool = typer.Option(False, "--json", help="输出机器可读的格式说明（JSON）。"),
) -> None:
    """显示2021版年报格式：表格、单元格、定义名称和勾稽关系。"""
    if as_json:
        sys.stdout.write(json.dumps(spec.as_json(), ensure_ascii=False, indent=2) + "\n")
        return
    from rich.table import Table

    out = Console()
    out.print(f"《{spec.FORMAT_TITLE}》（{spec.FORMAT_DOCUMENT}），格式版本 {spec.FORMAT_VERSION}")
    for s in spec.SECTIONS:
        out.print(f"  {s.heading}{s.note}")
    t = Table("表", "行", "列", "工作表", "单元格", "定义名称", "计算")
    for c in spec.CELLS:
        t.add_row(c.table, c.row, c.column, c.sheet, c.ref, c.name, spec.YES if c.computed else "")
    out.print(t)
    r = Table("编号", "说明", "范围")
    for rule in spec.RULES:
        r.add_row(rule.key, rule.title, "跨年度" if rule.scope == "cross_year" else "本单位")
    out.print(r)


def _year_option(help_text: str):
    return typer.Option(None, "--year", "-y", help=help_text)


def _load_workspace(path: Path):
    from . import workspace

    return workspace.load(path)


def _resolve_year(ws, year: int | None) -> int:
    if year is not None:
        return year
    years = ws.years()
    if not years:
        _fail(f"工作目录 {ws.root} 下没有年度文件夹（如 2024/）：请用 --year 指定年度，或把收回的报表放入年度文件夹。")
    return years[-1]


@app.command("template")
@_guard
def template_cmd(
    workspace: Path | None = typer.Argument(None, help="县级工作目录；给出时为名册中每个单位生成预填报表。"),
    year: int | None = _year_option("报告年度（默认：工作目录中最新年度的下一年；无工作目录时为上一自然年）。"),
    output: Path = typer.Option(Path("output"), "--output", "-o", help="预填报表的输出目录。"),
    templates_dir: Path = typer.Option(DEFAULT_TEMPLATES_DIR, "--templates-dir", help="空白填报表的输出目录。"),
) -> None:
    """生成标准填报表（空白模板），或为名册中的每个单位生成预填报表。"""
    from . import run

    if workspace is None:
        import datetime

        y = year or datetime.date.today().year - 1
        path = run.write_blank_template(templates_dir, y)
        console.print(f"已生成空白填报表：{path}")
        return
    ws = _load_workspace(workspace)
    if year is None:
        years = ws.years()
        import datetime

        year = (years[-1] + 1) if years else datetime.date.today().year - 1
    from . import parallel

    with parallel.interruptible():
        result = run.write_prefilled_templates(ws, year, output)
    console.print(
        f"已为 {len(result.paths)} 个单位生成 {year} 年度预填报表：{result.folder}"
        + (f"（其中 {result.with_carry_over} 个单位已按上年报告预填“{spec.row_node('三', 'carried_in').short}”）"
           if result.with_carry_over else "")
    )
    for note in result.notes:
        console.print(f"  提示：{note}")


def _run(workspace: Path, year: int | None, output: Path, *, render: bool, pdf: bool, jobs: int | None) -> None:
    ws = _load_workspace(workspace)
    y = _resolve_year(ws, year)
    if not ws.year_dir(y).is_dir():
        _fail(f"找不到 {y} 年度文件夹 {ws.year_dir(y)}：请把各单位报送的填报表放入该文件夹。")
    from . import run

    from . import parallel

    with parallel.interruptible():
        result = run.run(ws, y, output, render=render, pdf=pdf, jobs=jobs, console=console)
    raise typer.Exit(result.exit_code)


@app.command("validate")
@_guard
def validate_cmd(
    workspace: Path = typer.Argument(..., help="县级工作目录（含 county.toml、agencies.csv 和年度文件夹）。"),
    year: int | None = _year_option("报告年度（默认：最新的年度文件夹）。"),
    output: Path = typer.Option(Path("output"), "--output", "-o", help="输出目录，结果写入 <输出目录>/<年度>/。"),
    jobs: int | None = typer.Option(None, "--jobs", "-j", help="并行进程数（默认：全部CPU核）。"),
) -> None:
    """校验各单位报送的填报表，生成校验结果和退回修改件。"""
    _run(workspace, year, output, render=False, pdf=False, jobs=jobs)


@app.command("reports")
@_guard
def reports_cmd(
    workspace: Path = typer.Argument(..., help="县级工作目录（含 county.toml、agencies.csv 和年度文件夹）。"),
    year: int | None = _year_option("报告年度（默认：最新的年度文件夹）。"),
    output: Path = typer.Option(Path("output"), "--output", "-o", help="输出目录，结果写入 <输出目录>/<年度>/。"),
    pdf: bool = typer.Option(False, "--pdf", help="同时用 LibreOffice 转换为 PDF（需已安装 soffice）。"),
    jobs: int | None = typer.Option(None, "--jobs", "-j", help="并行进程数（默认：全部CPU核）。"),
) -> None:
    """校验、汇总并生成各单位年度报告和全县汇总报告。"""
    _run(workspace, year, output, render=True, pdf=pdf, jobs=jobs)


@app.command("import")
@_guard
def import_cmd(
    sources: list[Path] = typer.Argument(..., help="已发布的年报：.html .htm .docx .pdf .txt .md 文件，或包含它们的文件夹。"),
    output: Path = typer.Option(..., "--output", "-o", help="输出目录：每份年报一个标准填报表，以及导入结果.json。"),
    year: int | None = _year_option("报告年度（原文未写明年度时采用）。"),
    workspace: Path | None = typer.Option(None, "--workspace", "-w",
                                          help="县级工作目录：按名册匹配单位，并把填报表写入 <工作目录>/<年度>/ 作为该年度报表。"),
    jobs: int | None = typer.Option(None, "--jobs", "-j", help="并行进程数（默认：全部CPU核）。"),
) -> None:
    """导入已发布的年度报告（网页、Word、PDF、文本），生成标准填报表。"""
    from . import importer, parallel

    ws = _load_workspace(workspace) if workspace is not None else None
    try:
        with parallel.interruptible():
            result = importer.import_sources(sources, output, year=year, workspace=ws, jobs=jobs, console=console)
    except importer.ImportUsageError as e:
        _fail(str(e))
    raise typer.Exit(result.exit_code)


@app.command("audit")
@_guard
def audit_cmd(
    sources: list[Path] = typer.Argument(..., help="已发布的年报：.html .htm .docx .pdf .txt .md 文件，或包含它们的文件夹。"),
    output: Path = typer.Option(Path("output") / "audit", "--output", "-o",
                                help="输出目录：导入/（各份的标准填报表）、<年度>/校验结果.xlsx 等，以及审核结果.json。"),
    year: int | None = _year_option("报告年度（原文未写明年度时采用）。"),
    jobs: int | None = typer.Option(None, "--jobs", "-j", help="并行进程数（默认：全部CPU核）。"),
) -> None:
    """审核已发布的年度报告：导入后逐份校验（勾稽关系、文字与表格、雷同，同一单位多个年度时跨年度核对）。"""
    from . import importer, parallel
    from .importer import audit

    try:
        with parallel.interruptible():
            result = audit.audit(sources, output, year=year, jobs=jobs, console=console)
    except importer.ImportUsageError as e:
        _fail(str(e))
    raise typer.Exit(result.exit_code)


def main() -> None:
    from . import parallel

    try:
        app()
    except SystemExit as e:
        if parallel.received() is not None:  # stopped by a signal: already said so
            parallel.exit_now(e.code if isinstance(e.code, int) else 128 + parallel.received())
        raise


if __name__ == "__main__":
    main()
