"""A county's folder: county.toml, agencies.csv (the roster) and one folder of returned workbooks per year.

    <workspace>/
      county.toml          county name, the office and its contact details (used by the county summary)
      agencies.csv         the roster: code,name,category[,contact_office,address,postcode,phone,
                           publish_channel,publish_url]
      2023/  *.xlsx        last year's returned workbooks (any file names)
      2024/  *.xlsx        this year's
"""

from __future__ import annotations

import csv
import errno
import os
import tomllib
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path

from . import spec

ROSTER_FILE = "agencies.csv"
COUNTY_FILE = "county.toml"
ROSTER_REQUIRED = ("code", "name", "category")
#: county.toml's ``signature`` when not given: each agency report ends with the agency's name and its 填报日期.
SIGNATURE_DEFAULT = True


class WorkspaceError(Exception):
    """A workspace that cannot be used; the message is Chinese and says how to fix it."""


@dataclass(frozen=True)
class Agency:
    """One row of the roster."""

    code: str
    name: str
    category: str  # one of spec.CATEGORY_LABELS
    contact_office: str = ""
    address: str = ""
    postcode: str = ""
    phone: str = ""
    publish_channel: str = ""
    publish_url: str = ""

    def cover(self) -> dict[str, str]:
        """The roster's values for the workbook's 基本信息 fields, by field key (empty ones left out)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "category"}
        out["agency_code"] = out.pop("code")
        out["agency_name"] = out.pop("name")
        out["category"] = self.category
        return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class County:
    """county.toml."""

    name: str  # 示例县
    government: str = ""  # 示例县人民政府 (the 本级 government)
    office: str = ""  # 示例县人民政府办公室 (the 主管部门 that compiles the summary)
    address: str = ""
    postcode: str = ""
    phone: str = ""
    publish_channel: str = ""
    publish_url: str = ""
    signature: bool = SIGNATURE_DEFAULT  # the agency reports end with 单位名称 + date (填报日期)
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Workspace:
    root: Path
    county: County
    agencies: tuple[Agency, ...]

    def year_dir(self, year: int) -> Path:
        return self.root / str(year)

    def agency(self, code: str) -> Agency | None:
        return self._by_code.get(code)

    def agency_named(self, name: str) -> Agency | None:
        """The roster agency whose name is ``name`` (compared as labels are: spec.normalise_label)."""
        return self._by_name.get(spec.normalise_label(name)) if name else None

    @cached_property
    def _by_code(self) -> dict[str, Agency]:
        return {a.code: a for a in self.agencies}

    @cached_property
    def _by_name(self) -> dict[str, Agency]:
        out: dict[str, Agency] = {}
        for a in self.agencies:
            out.setdefault(spec.normalise_label(a.name), a)
        return out

    def files(self, year: int) -> list[Path]:
        """Every entry of the year's folder that is not a folder to walk into (sorted; sub-folders included), for
        the manifest to account for: files, and also symbolic links of any kind (never followed: a link to a
        folder is one entry, not walked into), other special files, and sub-folders that could not be opened.
        The reader gives each its verdict. Raises WorkspaceError when the year's folder itself cannot be opened."""
        folder = self.year_dir(year)
        if not folder.is_dir():
            return []
        return walk(folder)

    def years(self) -> list[int]:
        try:
            return sorted(int(p.name) for p in self.root.iterdir() if p.is_dir() and p.name.isdigit())
        except OSError as e:
            raise WorkspaceError(f"无法打开工作目录 {self.root}（{os_reason(e)}）：请确认运行本程序的账户有权读取"
                                 "该文件夹后重新运行。") from e


def walk(folder: Path) -> list[Path]:
    """Every entry under ``folder`` except the folders walked into (symbolic links are not followed), sorted.

    A sub-folder that cannot be opened is listed itself (the reader rejects it: its files cannot be accounted
    for); ``folder`` itself unopenable raises WorkspaceError."""
    out: list[Path] = []
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as it:
                entries = list(it)
        except OSError as e:
            if current == folder:
                raise WorkspaceError(f"无法打开文件夹 {folder}（{os_reason(e)}）：请确认运行本程序的账户有权读取该"
                                     "文件夹及其中的文件后重新运行。") from e
            out.append(Path(current))
            continue
        for entry in entries:
            try:
                walk_into = entry.is_dir(follow_symlinks=False)
            except OSError:
                walk_into = False
            (pending if walk_into else out).append(Path(entry.path))
    return sorted(out)


def os_reason(e: OSError) -> str:
    """An OSError's cause in a few Chinese words (strerror is English)."""
    return {
        errno.EACCES: "权限", errno.EPERM: "权限", errno.ENOENT: "已不存在（可能刚被移走或删除）",
        errno.EIO: "读写错误：磁盘或网络共享可能有问题", errno.EBUSY: "被其他程序占用",
        errno.ELOOP: "符号链接循环", errno.ENOTDIR: "路径中有一段不是文件夹",
    }.get(e.errno, f"系统错误 {errno.errorcode.get(e.errno, e.errno)}")


def _read_text(path: Path, encoding: str, what: str) -> str:
    try:
        return path.read_text(encoding=encoding)
    except OSError as e:
        raise WorkspaceError(f"无法读取{what} {path}（{os_reason(e)}）：请确认运行本程序的账户有权读取该文件"
                             "（文件属性→安全/权限，或在 Linux 上 chmod a+r），或把它另存一份后重新运行。") from e


def load(root: str | Path) -> Workspace:
    """Read a county's folder. Raises WorkspaceError with a Chinese message on anything unusable."""
    root = Path(root)
    if not root.is_dir():
        raise WorkspaceError(f"找不到工作目录“{root}”：请指定包含 {COUNTY_FILE} 和 {ROSTER_FILE} 的县级工作目录。")
    return Workspace(root=root, county=_load_county(root / COUNTY_FILE), agencies=_load_roster(root / ROSTER_FILE))


def _load_county(path: Path) -> County:
    if not path.is_file():
        raise WorkspaceError(f"缺少 {path}：请按 README 的格式写明县名和政务公开办联系方式。")
    try:
        data = tomllib.loads(_read_text(path, "utf-8-sig", "县信息文件"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise WorkspaceError(f"{path} 格式有误（{e}）：请用 UTF-8 编码的 TOML 格式保存。") from e
    known = {f.name for f in fields(County)} - {"extra", "signature"}
    if not str(data.get("name", "")).strip():
        raise WorkspaceError(f"{path} 缺少 name（县名，如 name = \"示例县\"）。")
    signature = data.get("signature", SIGNATURE_DEFAULT)
    if not isinstance(signature, bool):
        raise WorkspaceError(f"{path} 中 signature 应为 true 或 false（各单位年报末尾是否署单位名称和填报日期），"
                             f"现为 {signature!r}。")
    return County(
        **{k: str(v).strip() for k, v in data.items() if k in known},
        signature=signature,
        extra={k: v for k, v in data.items() if k not in known | {"signature"}},
    )


def _load_roster(path: Path) -> tuple[Agency, ...]:
    if not path.is_file():
        raise WorkspaceError(f"缺少单位名册 {path}：每行一个单位，列为 code,name,category。")
    try:
        text = _read_text(path, "utf-8-sig", "单位名册")
    except UnicodeDecodeError:
        try:
            text = _read_text(path, "gb18030", "单位名册")
        except UnicodeDecodeError as e:
            raise WorkspaceError(f"单位名册 {path} 无法识别编码：请另存为 UTF-8 编码的 CSV。") from e
    reader = csv.DictReader(text.splitlines())
    header = [(h or "").strip() for h in (reader.fieldnames or [])]
    rows = list(reader)
    missing = [c for c in ROSTER_REQUIRED if c not in header]
    if missing:
        raise WorkspaceError(f"单位名册 {path} 缺少列：{'、'.join(missing)}（第一行应为 code,name,category,…）。")
    known = {f.name for f in fields(Agency)}
    agencies: list[Agency] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(rows, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k}
        if not any(row.values()):
            continue
        for col in ROSTER_REQUIRED:
            if not row.get(col):
                raise WorkspaceError(f"单位名册 {path} 第{i}行缺少 {col}。")
        if row["category"] not in spec.CATEGORY_LABELS:
            raise WorkspaceError(
                f"单位名册 {path} 第{i}行的单位类别“{row['category']}”无效：应为 {' / '.join(spec.CATEGORY_LABELS)}。"
            )
        if row["code"] in seen:
            raise WorkspaceError(f"单位名册 {path} 第{i}行的单位代码“{row['code']}”与第{seen[row['code']]}行重复。")
        seen[row["code"]] = i
        agencies.append(Agency(**{k: v for k, v in row.items() if k in known}))
    if not agencies:
        raise WorkspaceError(f"单位名册 {path} 没有任何单位。")
    names = [a.name for a in agencies]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise WorkspaceError(f"单位名册 {path} 中单位名称重复：{'、'.join(dup)}。")
    return tuple(agencies)
