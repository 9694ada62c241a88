"""Optional PDF copies of the reports: LibreOffice (``soffice``), all files in one batch call.

LibreOffice draws Chinese as boxes unless a CJK font is installed and the template's fonts (仿宋_GB2312,
方正小标宋简体, 黑体, 楷体_GB2312, 宋体) are aliased to it: see ``ci/fontconfig-cjk.conf``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

TIMEOUT_BASE_S = 120
TIMEOUT_PER_FILE_S = 20


@dataclass(frozen=True)
class PdfResult:
    pdfs: tuple[Path, ...] = ()
    skipped: bool = False
    message: str = ""  # Chinese, for people: why skipped, or what failed
    missing: tuple[Path, ...] = field(default_factory=tuple)  # inputs whose PDF was not produced

    @property
    def ok(self) -> bool:
        return not self.skipped and not self.missing


def find_soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def convert(docx_files: Sequence[Path], out_dir: Path | None = None, *, soffice: str | None = None) -> PdfResult:
    """Convert ``docx_files`` to PDF in ONE ``soffice --headless --convert-to pdf`` call, with a private user
    profile (so a running LibreOffice of the user neither blocks nor is disturbed). PDFs go to ``out_dir``
    (default: next to the first file). Never raises for a missing or failing LibreOffice: the result says why."""
    files = [Path(f) for f in docx_files]
    if not files:
        return PdfResult(message="没有需要转换的报告。")
    exe = soffice or find_soffice()
    if not exe:
        return PdfResult(
            skipped=True,
            message="未生成 PDF：本机未找到 LibreOffice（soffice 不在 PATH 中）。"
            "如需 PDF，请安装 LibreOffice 和中文字体（如 fonts-noto-cjk）后重新运行，或在 Word/WPS 中另存为 PDF。",
        )
    target = Path(out_dir) if out_dir else files[0].parent
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nianbao-lo-") as profile, \
            tempfile.TemporaryDirectory(prefix="nianbao-pdf-", dir=target) as staging:
        cmd = [
            exe,
            f"-env:UserInstallation={Path(profile).as_uri()}",
            "--headless",
            "--norestore",
            "--nolockcheck",
            "--convert-to",
            "pdf:writer_pdf_Export",
            "--outdir",
            staging,
            *[str(f) for f in files],
        ]
        try:
            proc = subprocess.run(
                cmd,
                capture_output=True,
                timeout=TIMEOUT_BASE_S + TIMEOUT_PER_FILE_S * len(files),
                check=False,
            )
        except subprocess.TimeoutExpired:
            return PdfResult(message="PDF 转换超时：LibreOffice 未在规定时间内完成，请稍后重试或在 Word/WPS 中另存为 PDF。",
                             missing=tuple(files))
        except OSError as e:
            return PdfResult(skipped=True, message=f"未生成 PDF：无法启动 LibreOffice（{e}）。")
        done: list[Path] = []
        missing: list[Path] = []
        for f in files:
            staged = Path(staging) / (f.stem + ".pdf")
            if staged.is_file() and staged.stat().st_size > 0:
                final = target / staged.name
                staged.replace(final)  # same folder tree: an atomic rename
                done.append(final)
            else:
                missing.append(f)
    message = f"已生成 {len(done)} 份 PDF。"
    if missing:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        message = (f"{len(missing)} 份报告未能转换为 PDF：{'、'.join(p.name for p in missing)}"
                   + (f"（LibreOffice：{err[-1]}）" if err else "") + "。")
    return PdfResult(pdfs=tuple(done), message=message, missing=tuple(missing))
