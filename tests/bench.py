"""make bench: speed and memory of the whole January run over N synthetic agencies, against a floor.

    python -m tests.bench [--n 100 1000 …] [--jobs J] [--cache DIR] [--regenerate]

For every N (default 100 and 1,000; ``--n 5000`` or ``--n 100 1000 5000`` for more) a synthetic county is
generated once and cached (``$NIANBAO_BENCH_CACHE``, default ``<tmp>/nianbao-bench``; the key covers the
generator, the spec and the template, so a format change regenerates): a roster of N agencies (one 本级,
县直部门 and 乡镇（街道） alternating), and for 2023 and 2024 one workbook per agency written through
``pipeline.template`` with figures from the sample county's generator (``examples/make_sample.py``: every
rule R1–R11 holds, 上年结转 = last year's 结转下年度, the 现行有效 chain) and texts composed per agency
from its sentence pools (nothing 雷同, every number quoted matches its table; the fee note is one short
sentence). Generation is not measured, and runs on all cores (~0.1 s a workbook per core).

Each N is then measured in a fresh process (so peak memory is its own): ``run.run`` over the workspace with
rendering, timed per stage — read (both years), validate, export (校验结果 and 退回修改), aggregate
(aggregate.aggregate: each agency's figures and the rollup), render (the rest of run's render stage: its
workers write the agency reports and 全县汇总.xlsx while the parent writes the county summary), county (the
county summary .docx), other (manifest, hashing; handing the check stage's results over) — read, validate,
export and aggregate run in the run's check-stage process and are timed by the run itself
(RunResult.seconds) — with the CPU time
of all processes, and, in the same process, the floor: reading the
same workbooks' sheet XML without parsing it (unzip + read the bytes of every worksheet, workbook.xml, shared
strings) plus writing as many .docx files as there are agency reports, each every part of a rendered report
(precomputed XML, deflated, plain writes), both with the same number of processes; measured before and after
the run (the machine may be shared), the mean is the floor. floor_ratio = total / floor.

Peak memory is of the whole process tree (the run and its worker processes): the sum of the processes' PSS
sampled every 50 ms from /proc (Linux), and never less than the run's own maximum RSS.

Targets (2 cores): 1,000 agencies end to end < 30 s, validation of 1,000 agencies < 2 s, peak memory
< 1 GB and flat in N (here: the largest N's peak within 1.5× the smallest's), total ≤ 4 × floor from 1,000
agencies up (at 100 the floor is a third of a second and fixed start-up costs dominate: shown, not judged).
The exit code is 1 when a target is missed. The last line is machine-readable (for the largest N):

    bench: agencies=N total_s=… validate_s=… render_s=… floor_ratio=… peak_mb=… import_docx_s=… import_html_s=…

Importing published reports (``nianbao import``) is measured for every N as well, in a fresh process of its own:
the N agency reports of the synthetic county's 2024 as .docx — the reports the measured run renders, kept in the
cache (``import-<key>-n<N>``; rendered once by an unmeasured run when the cache has none) — and the same reports as
.html, each .docx's paragraphs and tables (spans kept) written as a government CMS page (a header, navigation,
scripts and styles, the article in ``<p>``/``<span>`` runs, ``&nbsp;``, every other page in GB2312): importer
.import_sources over each folder, wall and CPU time, and every report must import 导入成功 under its agency's own
name. Targets (2 cores):
1,000 .docx imports < 60 s, 1,000 .html imports < 60 s.

Speed targets live here only, never in timed tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import os
import platform
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "examples"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from pipeline import spec  # noqa: E402
from pipeline.workspace import Agency, County  # noqa: E402

YEAR = 2024
PREVIOUS = YEAR - 1
DEFAULT_N = (100, 1000)
GENERATOR_VERSION = "3"

TARGET_TOTAL_S_1000 = 30.0  # 1,000 agencies end to end
TARGET_VALIDATE_S_1000 = 2.0
TARGET_PEAK_MB = 1024.0
TARGET_FLOOR_RATIO = 4.0
FLAT_MEMORY_FACTOR = 1.5  # "flat in N": the largest N's peak within 1.5× the smallest N's
FLOOR_TARGET_MIN_N = 1000  # the floor ratio is a target at scale (below, fixed start-up costs dominate)
TARGET_IMPORT_S_1000 = 60.0  # 1,000 published reports imported, each kind (.docx, .html)
IMPORT_KINDS = ("docx", "html")

COUNTY = County(
    name="基准县",
    government="基准县人民政府",
    office="基准县人民政府办公室",
    address="基准省基准县城关镇人民路1号",
    postcode="556700",
    phone="0855-3000001",
    publish_channel="基准县人民政府网-政府信息公开-政府信息公开年报",
    publish_url="https://www.jizhunxian.gov.cn/zwgk/xxgknb/",
)

# =============================================================================================================
# The synthetic county

_DIGITS_CN = "零一二三四五六七八九"


def cn_number(n: int) -> str:
    """1 → 一, 12 → 一十二, 305 → 三百零五 (names without Arabic digits: no figure or year in a name)."""
    if n == 0:
        return _DIGITS_CN[0]
    units = ["", "十", "百", "千", "万"]
    digits = [int(d) for d in str(n)]
    out, zero = "", False
    for i, d in enumerate(digits):
        pos = len(digits) - 1 - i
        if d == 0:
            zero = bool(out)
            continue
        if zero:
            out += _DIGITS_CN[0]
            zero = False
        out += _DIGITS_CN[d] + units[pos]
    return out


_TOPICS = (
    "财政预决算", "政府采购", "惠企惠民资金", "政府债务", "不动产登记", "土地征收", "国土空间规划", "矿产资源管理",
    "食品药品安全", "企业信用信息", "价格监督检查", "义务教育招生入学", "学生资助", "教育收费", "校园安全", "就业创业",
    "社会保险待遇", "根治欠薪", "职业技能培训", "老旧小区改造", "低保特困救助", "城镇人居环境整治", "征地拆迁补偿",
    "惠农补贴发放", "乡村振兴项目", "农村危房改造", "耕地保护", "高标准农田建设", "防汛抗旱", "特色种养殖产业",
    "农村低保", "移风易俗", "森林防火", "茶叶特色产业", "村级财务", "临时救助", "农村饮水安全", "社区治理",
    "居家养老服务", "网格化管理", "重大行政决策", "重点项目建设", "民生实事", "生态环境保护", "安全生产",
    "交通运输管理", "水利工程建设", "医疗卫生服务", "公共文化服务", "住房保障", "城市管理执法", "应急管理",
    "统计调查", "审计监督", "退役军人服务", "民族宗教事务", "林业资源保护", "文物保护", "旅游市场监管",
)

_DEPT_PROFILES = ("SLX-101", "SLX-102", "SLX-103", "SLX-104", "SLX-105")
_TOWN_PROFILES = ("SLX-201", "SLX-202", "SLX-203", "SLX-204", "SLX-205", "SLX-206")


def synthetic_agency(i: int) -> tuple[Agency, str, str]:
    """Agency ``i`` of every synthetic county (the same whatever N): (roster row, base profile, short name)."""
    if i == 0:
        return (Agency("JZX-00000", "基准县人民政府", "本级", "基准县人民政府办公室", COUNTY.address,
                       COUNTY.postcode, COUNTY.phone, COUNTY.publish_channel, COUNTY.publish_url + "bj/"),
                "SLX-000", "县政府")
    num = cn_number(i)
    if i % 2:
        name, short, category, base = f"基准县第{num}局", f"第{num}局", "县直部门", _DEPT_PROFILES[i // 2 % 5]
        office = f"{name}办公室"
        channel = f"基准县人民政府网-部门信息公开-{name}-政府信息公开年报"
    else:
        name, short, category, base = f"基准县第{num}镇人民政府", f"第{num}镇", "乡镇（街道）", _TOWN_PROFILES[i // 2 % 6]
        office = f"{name}党政综合办公室"
        channel = f"基准县人民政府网-乡镇（街道）信息公开-{name}-政府信息公开年报"
    rng = random.Random(f"bench-contact-{i}")
    return (Agency(f"JZX-{i:05d}", name, category, office, f"基准省基准县{short}建设路{rng.randint(1, 99)}号",
                   "556700", f"0855-{rng.randint(3000000, 3999999)}", channel,
                   f"https://www.jizhunxian.gov.cn/zwgk/xxgknb/a{i:05d}/"),
            base, short)


def _register(i: int):
    """Make the sample generator know agency ``i``: a profile of its kind with its own name and topics."""
    import make_sample as ms

    agency, base, short = synthetic_agency(i)
    if agency.code not in ms.PROFILES:
        rng = random.Random(f"bench-profile-{i}")
        p = ms.PROFILES[base]
        ms.PROFILES[agency.code] = dataclasses.replace(
            p, short=short, focus=tuple(rng.sample(_TOPICS, 4)), media=f"“{short}发布”微信公众号",
            hall=f"{short}便民服务中心",
        )
        ms.CATEGORY_KEY[agency.code] = ms.CATEGORY_KEY[base]
    return ms, agency


_CLAUSE_SPLIT = re.compile(r"[，；。]")


def _clauses(ms, ctx) -> list[str]:
    """Every clause of the sample generator's sentence pools, filled for this agency-year."""
    pools = (ms._OVERVIEW + ms._PROACTIVE_LEAD + ms._PROACTIVE_TAIL + ms._MANAGEMENT + ms._PLATFORM
             + ms._PLATFORM_TOWN + ms._OVERSIGHT + [p for pair in ms._PROBLEMS for p in pair] + ms._IMPROVE_EXTRA
             + ms._OTHER_MATTERS)
    ctx.extra.update(info=ctx.rng.randint(100, 900), info_a=ctx.rng.randint(10, 90), info_b=ctx.rng.randint(10, 90))
    out = []
    for template in pools:
        for clause in _CLAUSE_SPLIT.split(ms._fmt(template, ctx)):
            clause = clause.strip()
            if len(clause) >= 6 and clause not in out:
                out.append(clause)
    return out


def agency_texts(ms, agency: Agency, year: int, v) -> dict[str, str]:
    """Every TXT_ field but the fee note: sentences of random clauses (no two agencies or years alike); 依申请公开
    opens with the applications received, as in the table."""
    rng = random.Random(f"bench-texts-{agency.code}-{year}")
    ctx = ms._Ctx(agency, ms.PROFILES[agency.code], year, v, rng)
    pool = _clauses(ms, ctx)
    q = ms._quoted(v)

    def sentences(k: int) -> str:
        picks = rng.sample(pool, k)
        out, i = [], 0
        while i < len(picks):
            n = rng.randint(2, 3)
            out.append("，".join(picks[i:i + n]) + "。")
            i += n
        return "".join(out)

    fields = ("overview", "proactive", "on_request", "management", "platform", "oversight", "problems",
              "improvements", "other_matters")
    # each part names the agency, as reports do ("本局", "我镇" and the name throughout)
    out = {f"TXT_{f}": ctx.profile.short + sentences(rng.randint(4, 6)) for f in fields}
    out["TXT_on_request"] = f"本年度，{ctx.profile.short}共收到政府信息公开申请{q['new']}件。" + out["TXT_on_request"]
    out["TXT_improvements"] = "\n".join(s + "。" for s in out["TXT_improvements"].split("。") if s)
    overview = [f.name for f in spec.fields(section="一")]
    while sum(len(out[n]) for n in overview) > spec.OVERVIEW_MAX_CHARS - 50:  # 总体情况 within its limit
        longest = max((n for n in overview if n != "TXT_on_request"), key=lambda n: len(out[n]))
        out[longest] = out[longest].rsplit("。", 2)[0] + "。"
    return out


def write_agency(i: int, folder: Path) -> None:
    """Agency ``i``'s two workbooks (2023, 2024) into ``folder/<year>/<code>.xlsx``."""
    from pipeline import template
    from pipeline.ooxml import save_workbook

    ms, agency = _register(i)
    carried_in = frozenset(ms.c3(ms.T3_CARRIED_IN, col) for col in ms.T3_COLS)
    previous = None
    for year in (PREVIOUS, YEAR):
        v = ms.figures(agency, year, previous)
        fees = {**ms.fees(agency, year, v), "TXT_fee_note": "本年度未收取信息处理费。"}  # short: never 雷同
        values = {**ms.cover(agency, year), **v, **fees, **agency_texts(ms, agency, year, v)}
        wb = template.build_workbook(year, agency, previous)
        template.fill(wb, ms.input_values(values, skip=carried_in if previous else frozenset()))
        save_workbook(wb, folder / str(year) / f"{agency.code}.xlsx")
        previous = {c.name: v[c.name] for c in spec.CELLS}


def _write_agencies(indices: list[int], folder: str) -> int:
    for i in indices:
        write_agency(i, Path(folder))
    return len(indices)


def cache_root(arg: str | None = None) -> Path:
    return Path(arg or os.environ.get("NIANBAO_BENCH_CACHE") or Path(tempfile.gettempdir()) / "nianbao-bench")


def cache_key() -> str:
    """Spec, template and sample generator (and GENERATOR_VERSION, bumped when the code above changes): a change
    to any of them regenerates the workbooks."""
    h = hashlib.sha256(GENERATOR_VERSION.encode())
    for rel in ("pipeline/spec.py", "pipeline/template.py", "examples/make_sample.py"):
        h.update((ROOT / rel).read_bytes())
    return h.hexdigest()[:12]


def ensure_workspace(n: int, jobs: int, cache: Path, regenerate: bool = False,
                     log: Callable[[str], None] = print) -> Path:
    """The cached workspace of ``n`` agencies (generated on first use; workbooks shared between every N)."""
    key = cache_key()
    pool = cache / f"pool-{key}"
    ws = cache / f"ws-{key}-n{n}"
    if regenerate:
        shutil.rmtree(ws, ignore_errors=True)
        shutil.rmtree(pool, ignore_errors=True)
    if (ws / ".complete").is_file():
        return ws
    for old in cache.glob("*-*") if cache.is_dir() else ():
        if key not in old.name:  # an older format: never used again
            shutil.rmtree(old, ignore_errors=True)
    todo = [i for i in range(n) if not all((pool / str(y) / f"{synthetic_agency(i)[0].code}.xlsx").is_file()
                                           for y in (PREVIOUS, YEAR))]
    if todo:
        log(f"生成 {len(todo)} 个合成单位的 {PREVIOUS}、{YEAR} 年度报表（仅首次，缓存于 {pool}）…")
        t = time.perf_counter()
        chunks = [todo[k::jobs * 8] for k in range(min(len(todo), jobs * 8))]
        with ProcessPoolExecutor(max_workers=jobs) as ex:
            list(ex.map(_write_agencies, chunks, [str(pool)] * len(chunks)))
        log(f"  用时 {time.perf_counter() - t:.1f} s")
    shutil.rmtree(ws, ignore_errors=True)
    agencies = [synthetic_agency(i)[0] for i in range(n)]
    import make_sample as ms

    for year in (PREVIOUS, YEAR):
        (ws / str(year)).mkdir(parents=True)
        for a in agencies:
            src, dst = pool / str(year) / f"{a.code}.xlsx", ws / str(year) / f"{a.name}{year}年报.xlsx"
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
    (ws / "county.toml").write_text(ms.county_toml(COUNTY), encoding="utf-8")
    (ws / "agencies.csv").write_text(ms.agencies_csv(tuple(agencies)), encoding="utf-8")
    (ws / ".complete").write_text("ok\n")
    return ws


# =============================================================================================================
# Measuring


class TreeMemory:
    """Peak memory of this process and its descendants: Σ PSS (RSS where PSS is unreadable), sampled."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @staticmethod
    def _tree(root: int) -> list[int]:
        children: dict[int, list[int]] = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat", "rb") as fh:
                    stat = fh.read()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(d))
        out, todo = [], [root]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo += children.get(pid, [])
        return out

    @staticmethod
    def _kb(pid: int) -> int:
        for name, key in (("smaps_rollup", b"Pss:"), ("status", b"VmRSS:")):
            try:
                with open(f"/proc/{pid}/{name}", "rb") as fh:
                    for line in fh:
                        if line.startswith(key):
                            return int(line.split()[1])
            except OSError:
                continue
        return 0

    def sample(self) -> int:
        kb = sum(self._kb(p) for p in self._tree(os.getpid()))
        self.peak_kb = max(self.peak_kb, kb)
        return kb

    def _run(self):
        if not os.path.isdir("/proc"):
            return
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)


class Stages:
    """Wall time per stage, by wrapping the pipeline's functions (module attributes) for one run. A stage's time
    is exclusive: a timed call inside another counts for its own stage only."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._undo: list[tuple[object, str, object]] = []
        self._inner: list[float] = []  # per open timed call: time spent in timed calls nested in it

    def wrap(self, owner, attr: str, stage: str) -> None:
        fn = getattr(owner, attr)

        def timed(*args, **kw):
            self._inner.append(0.0)
            t = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                elapsed = time.perf_counter() - t
                inner = self._inner.pop()
                if self._inner:
                    self._inner[-1] += elapsed
                self.seconds[stage] = self.seconds.get(stage, 0.0) + elapsed - inner

        self._undo.append((owner, attr, fn))
        setattr(owner, attr, timed)

    def restore(self) -> None:
        for owner, attr, fn in reversed(self._undo):
            setattr(owner, attr, fn)
        self._undo.clear()


def _floor_read(paths: list[str]) -> int:
    """Unzip and read the sheet XML (and the parts naming them) of each workbook; no parsing."""
    n = 0
    for p in paths:
        with zipfile.ZipFile(p) as z:
            for name in z.namelist():
                if name.startswith("xl/worksheets/") or name in ("xl/workbook.xml", "xl/sharedStrings.xml",
                                                                 "xl/_rels/workbook.xml.rels"):
                    n += len(z.read(name))
    return n


def _floor_write(parts: list[tuple[str, bytes]], paths: list[str]) -> int:
    """Write a .docx of the given (precomputed) parts to each path."""
    for p in paths:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in parts:
                z.writestr(zipfile.ZipInfo(name, date_time=(2021, 9, 26, 0, 0, 0)), data,
                           compress_type=zipfile.ZIP_DEFLATED)
        with open(p, "wb") as fh:
            fh.write(buf.getvalue())
    return len(paths)


def _chunks(items: list, jobs: int) -> list[list]:
    k = max(1, min(len(items), jobs * 4))
    return [items[i::k] for i in range(k)]


def floor(workbooks: list[Path], docx_parts: list[tuple[str, bytes]], n_docs: int, out: Path,
          jobs: int) -> dict[str, float]:
    t = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs) as ex:
        list(ex.map(_floor_read, _chunks([str(p) for p in workbooks], jobs)))
    t_read = time.perf_counter() - t
    out.mkdir(parents=True, exist_ok=True)
    targets = [str(out / f"{i:05d}.docx") for i in range(n_docs)]
    t = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs) as ex:
        list(ex.map(_floor_write, [docx_parts] * len(_chunks(targets, jobs)), _chunks(targets, jobs)))
    t_write = time.perf_counter() - t
    shutil.rmtree(out, ignore_errors=True)
    return {"floor_read": t_read, "floor_write": t_write, "floor": t_read + t_write}


def _cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _sample_report_parts(ws_root: Path, out: Path) -> list[tuple[str, bytes]]:
    """The parts of one rendered agency report (the floor writes these, precomputed)."""
    from pipeline import read, render, workspace

    ws = workspace.load(ws_root)
    files = ws.files(YEAR)[:1]
    a = read.read_batch(files, YEAR, ws).agency_data()[0]
    path = render.render_agency(a, out, ws.agency(a.code))
    with zipfile.ZipFile(path) as z:
        parts = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    path.unlink()
    return parts


def measure(n: int, jobs: int, cache: Path) -> dict:
    """One N, in this (fresh) process: the floor, then the whole run with per-stage times and peak memory."""
    from pipeline import render, run, workspace

    ws_root = ensure_workspace(n, jobs, cache)
    tmp = Path(tempfile.mkdtemp(prefix=f"nianbao-bench-{n}-"))
    try:
        workbooks = sorted((ws_root / str(PREVIOUS)).glob("*.xlsx")) + sorted((ws_root / str(YEAR)).glob("*.xlsx"))
        for p in workbooks:  # the page cache warm for the floor and the run alike
            p.read_bytes()
        parts = _sample_report_parts(ws_root, tmp / "sample")
        fl = floor(workbooks, parts, n, tmp / "floor", jobs)  # again after the run: the mean of the two is used

        ws = workspace.load(ws_root)
        stages = Stages()
        # read, validate, export and aggregate run in the run's check-stage process: timed by the run itself
        # (RunResult.seconds); the rest is timed here
        stages.wrap(run, "_render_stage", "render")  # less the county summary inside it
        stages.wrap(render, "render_county_document", "county")  # the county summary .docx (in this process)
        load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        cpu0 = _cpu_seconds()
        with TreeMemory() as mem:
            t = time.perf_counter()
            result = run.run(ws, YEAR, tmp / "output", render=True, jobs=jobs)
            total = time.perf_counter() - t
            mem.sample()
        cpu = _cpu_seconds() - cpu0
        stages.restore()
        fl2 = floor(workbooks, parts, n, tmp / "floor", jobs)
        fl = {k: (fl[k] + fl2[k]) / 2 for k in fl}
        reports = len(list((tmp / "output" / str(YEAR)).glob("*.docx")))
        keep_rendered(n, tmp / "output" / str(YEAR), cache)  # the import bench's .docx
        self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        sec = dict(stages.seconds)
        for stage, seconds in result.seconds.items():
            sec[stage] = sec.get(stage, 0.0) + seconds
        sec["other"] = total - sum(sec.values())
        sec["total"] = total
        return {
            "n": n, "jobs": jobs, "exit_code": result.exit_code, "errors": result.errors,
            "warnings": result.warnings, "reports": reports, "seconds": sec, **fl,
            "floor_ratio": total / fl["floor"], "cpu_s": cpu, "load_before": load_before,
            "peak_mb": max(mem.peak_kb, self_kb) / 1024,
            "self_maxrss_mb": self_kb / 1024, "child_maxrss_mb": child_kb / 1024,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# =============================================================================================================
# Importing published reports


def import_key() -> str:
    """cache_key, then what the published reports also depend on: the renderer, the agency template, the page
    writer below (ensure_workspace removes what lacks the cache_key; keep_rendered what lacks the rest)."""
    import inspect

    h = hashlib.sha256(inspect.getsource(cms_page).encode())
    for rel in ("pipeline/render.py", "pipeline/templates/agency.docx"):
        h.update((ROOT / rel).read_bytes())
    return f"{cache_key()}-{h.hexdigest()[:8]}"


def _import_root(n: int, cache: Path) -> Path:
    return cache / f"import-{import_key()}-n{n}"


def _agency_reports(folder: Path, n: int) -> list[Path]:
    """The N agency reports a run rendered into ``folder`` (not the county summary)."""
    from pipeline import render

    return [folder / render.agency_filename(synthetic_agency(i)[0].name, YEAR) for i in range(n)]


def keep_rendered(n: int, folder: Path, cache: Path) -> None:
    """Keep the agency reports a measured run rendered (``folder``) as the import bench's .docx, when not kept yet."""
    root = _import_root(n, cache)
    if (root / "docx" / ".complete").is_file():
        return
    reports = _agency_reports(folder, n)
    if not all(p.is_file() for p in reports):
        return
    for old in cache.glob("import-*") if cache.is_dir() else ():
        if import_key() not in old.name:  # reports of an older renderer or page writer
            shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(root / "docx", ignore_errors=True)
    (root / "docx").mkdir(parents=True)
    for p in reports:
        shutil.copyfile(p, root / "docx" / p.name)
    (root / "docx" / ".complete").write_text("ok\n")


def _cms_escape(text: str) -> str:
    import html

    return html.escape(text, quote=False).replace("\n", "<br/>")


def cms_page(doc, i: int) -> bytes:
    """A report (importer.document model of its .docx) as a county government site's CMS publishes it: the title
    as <h1>, paragraphs as indented <p>, tables with their rowspan/colspan, cells as <p><span> runs (&nbsp; where
    blank), amid the site's header, navigation, scripts and footer; every other page in GB2312."""
    from pipeline.importer.document import Paragraph

    gb = i % 2 == 1
    charset = "gb2312" if gb else "utf-8"
    paras = [b for b in doc.blocks if isinstance(b, Paragraph)]
    title = paras[0].text if paras else ""
    h = [f'<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/'
         f'xhtml1-transitional.dtd"><html><head><meta http-equiv="Content-Type" content="text/html; charset={charset}"/>'
         f"<title>{_cms_escape(' '.join(title.split()))}_{COUNTY.name}人民政府网</title>"
         '<style type="text/css">body{font-family:"宋体";} .TRS_Editor p{line-height:2;} td{border:1px solid #000;}'
         "</style><script type=\"text/javascript\">var _hmt = _hmt || []; var col = '政府信息公开年报';"
         "document.write('<div>一、总体情况</div>');</script></head><body>"
         '<div class="top"><a href="/">首页</a> | <a href="/zwgk/">政务公开</a> | <a href="/hdjl/">互动交流</a>'
         '</div><div class="nav"><ul><li>政府信息公开指南</li><li>政府信息公开制度</li><li>法定主动公开内容</li>'
         '<li>政府信息公开年报</li></ul></div><div class="position">当前位置：<a href="/">首页</a> &gt; '
         '<a href="/zwgk/">政务公开</a> &gt; 政府信息公开年报</div><div class="article">'
         f'<h1 class="title">{_cms_escape(title)}</h1><div class="info">发布时间：{YEAR + 1}-01-20&nbsp;&nbsp;'
         f"来源：{COUNTY.name}人民政府办公室&nbsp;&nbsp;浏览次数：<span id=\"hits\">{100 + i}</span></div>"
         '<div class="TRS_Editor"><div class="Custom_UnionStyle">']
    for block in doc.blocks:
        if isinstance(block, Paragraph):
            if block is not (paras[0] if paras else None):
                h.append(f'<p style="text-indent:2em;"><span style="font-family:仿宋_GB2312;font-size:16pt">'
                         f"{_cms_escape(block.text)}</span></p>")
            continue
        h.append('<table border="1" cellspacing="0" cellpadding="0" width="100%" style="border-collapse:collapse">'
                 "<tbody>")
        for row in block.rows():
            h.append("<tr>")
            for c in row:
                span = (f' rowspan="{c.rowspan}"' if c.rowspan > 1 else "") + (
                    f' colspan="{c.colspan}"' if c.colspan > 1 else "")
                text = _cms_escape(c.text) if c.text.strip() else "&nbsp;"
                h.append(f'<td{span} valign="center"><p style="text-align:center"><span style="font-size:10.5pt">'
                         f"{text}</span></p></td>")
            h.append("</tr>")
        h.append("</tbody></table>")
    h.append('</div></div><div class="share">分享到：微信 微博</div></div><div class="footer">主办：'
             f"{COUNTY.office}&nbsp;&nbsp;地址：{COUNTY.address}&nbsp;&nbsp;电话：{COUNTY.phone}</div>"
             "<script>document.getElementById('hits').innerHTML = '1';</script></body></html>")
    return "".join(h).encode("gb18030" if gb else "utf-8")


def _write_pages(items: list[tuple[int, str]], folder: str) -> int:
    from pipeline.importer import document

    for i, src in items:
        doc = document.extract(Path(src))
        (Path(folder) / Path(src).with_suffix(".html").name).write_bytes(cms_page(doc, i))
    return len(items)


def import_inputs(n: int, jobs: int, cache: Path, log: Callable[[str], None] = print) -> Path:
    """The cached published reports of the synthetic county's N agencies: ``docx/`` (rendered by an unmeasured
    run when no measured run left them) and ``html/`` (CMS pages of the same reports)."""
    root = _import_root(n, cache)
    if not (root / "docx" / ".complete").is_file():
        from pipeline import run, workspace

        ws_root = ensure_workspace(n, jobs, cache, log=log)
        log(f"生成 {n} 份合成单位的 {YEAR} 年度报告（.docx，仅首次，缓存于 {root}）…")
        tmp = Path(tempfile.mkdtemp(prefix=f"nianbao-bench-import-{n}-"))
        try:
            run.run(workspace.load(ws_root), YEAR, tmp, render=True, jobs=jobs)
            keep_rendered(n, tmp / str(YEAR), cache)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if not (root / "html" / ".complete").is_file():
        log(f"生成 {n} 个年报网页（.html，仅首次）…")
        shutil.rmtree(root / "html", ignore_errors=True)
        (root / "html").mkdir(parents=True)
        items = [(i, str(p)) for i, p in enumerate(_agency_reports(root / "docx", n))]
        with ProcessPoolExecutor(max_workers=jobs) as ex:
            list(ex.map(_write_pages, _chunks(items, jobs), [str(root / "html")] * len(_chunks(items, jobs))))
        (root / "html" / ".complete").write_text("ok\n")
    return root


def measure_import(n: int, jobs: int, cache: Path) -> dict:
    """Import the N .docx, then the N .html reports, in this (fresh) process: wall and CPU time, verdicts."""
    from pipeline import importer, render

    root = import_inputs(n, jobs, cache)
    names = {Path(render.agency_filename(synthetic_agency(i)[0].name, YEAR)).stem: synthetic_agency(i)[0].name
             for i in range(n)}
    out: dict = {"n": n, "jobs": jobs}
    tmp = Path(tempfile.mkdtemp(prefix=f"nianbao-bench-import-{n}-"))
    try:
        for kind in IMPORT_KINDS:
            sources = sorted((root / kind).glob(f"*.{kind}"))
            for p in sources:  # the page cache warm
                p.read_bytes()
            load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            cpu0 = _cpu_seconds()
            t = time.perf_counter()
            result = importer.import_sources([root / kind], tmp / kind, jobs=jobs)
            seconds = time.perf_counter() - t
            cpu = _cpu_seconds() - cpu0
            out[kind] = {"sources": len(sources), "imported": len(result.sources), "seconds": seconds, "cpu_s": cpu,
                         # 导入成功, under the agency's own name
                         "ok": sum(s.status == "ok" and s.agency == names.get(Path(s.file).stem) for s in result.sources),
                         "load_before": load_before}
            shutil.rmtree(tmp / kind, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def print_import(r: dict) -> None:
    n = r["n"]
    print(f"\n== 导入 {n} 份已发布年报（jobs={r['jobs']}）")
    for kind in IMPORT_KINDS:
        k = r[kind]
        print(f"  .{kind:<5} {k['seconds']:8.2f} s   {k['seconds'] / n * 1000:8.2f} ms/份   CPU {k['cpu_s']:.1f} s"
              f"   导入成功（单位名称无误）{k['ok']}/{k['sources']}   (load average before {k['load_before']:.2f})")


def import_targets(results: list[dict]) -> list[tuple[str, bool | None, str]]:
    out: list[tuple[str, bool | None, str]] = []
    for r in results:
        for kind in IMPORT_KINDS:
            k = r[kind]
            if r["n"] == 1000:
                out.append((f"1000 .{kind} imports < {TARGET_IMPORT_S_1000:.0f} s",
                            k["seconds"] < TARGET_IMPORT_S_1000, f"{k['seconds']:.2f} s"))
            else:
                out.append((f".{kind} imports (N={r['n']}; the {TARGET_IMPORT_S_1000:.0f} s target is for N = 1000)",
                            None, f"{k['seconds']:.2f} s, {k['seconds'] / r['n'] * 1000:.1f} ms a report"))
            out.append((f"every .{kind} report imports 导入成功 under its agency's name (N={r['n']})",
                        k["ok"] == k["sources"] == r["n"] == k["imported"], f"{k['ok']} of {k['sources']}"))
    return out


# =============================================================================================================
# Report

STAGES = (("read", "读取"), ("validate", "校验"), ("export", "校验结果导出"), ("aggregate", "汇总"),
          ("render", "单位报告"), ("county", "全县汇总"), ("other", "其他"), ("total", "合计"))


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    from pipeline.parallel import default_jobs

    cpus = default_jobs()
    return f"{cpus} cores ({model or platform.processor()}), {mem}, Python {platform.python_version()}"


def print_result(r: dict) -> None:
    n = r["n"]
    print(f"\n== {n} 个单位（jobs={r['jobs']}）：报告 {r['reports']} 份，错误 {r['errors']} 条，提示 {r['warnings']} 条，"
          f"退出码 {r['exit_code']}")
    for key, label in STAGES:
        s = r["seconds"].get(key, 0.0)
        print(f"  {label:<8}{key:<10}{s:8.2f} s   {s / n * 1000:8.2f} ms/单位")
    print(f"  CPU {r['cpu_s']:.1f} s over all processes (load average before the run {r['load_before']:.2f})")
    print(f"  floor: read {r['floor_read']:.2f} s + write {r['floor_write']:.2f} s = {r['floor']:.2f} s"
          f" (mean of before and after the run); floor_ratio {r['floor_ratio']:.2f}")
    print(f"  peak memory {r['peak_mb']:.0f} MB (process tree; own max RSS {r['self_maxrss_mb']:.0f} MB,"
          f" largest worker {r['child_maxrss_mb']:.0f} MB)")


def targets(results: list[dict]) -> list[tuple[str, bool, str]]:
    out = []
    big = max(results, key=lambda r: r["n"])
    for r in results:
        if r["n"] == 1000:
            s = r["seconds"]
            out.append(("1000 agencies end to end < 30 s", s["total"] < TARGET_TOTAL_S_1000, f"{s['total']:.2f} s"))
            out.append(("validation of 1000 agencies < 2 s", s["validate"] < TARGET_VALIDATE_S_1000,
                        f"{s['validate']:.2f} s"))
    for r in results:
        out.append((f"peak memory < 1 GB (N={r['n']})", r["peak_mb"] < TARGET_PEAK_MB, f"{r['peak_mb']:.0f} MB"))
        if r["n"] >= FLOOR_TARGET_MIN_N:
            out.append((f"end to end within 4x floor (N={r['n']})", r["floor_ratio"] <= TARGET_FLOOR_RATIO,
                        f"{r['floor_ratio']:.2f}x"))
        else:  # seconds of fixed start-up cost (pandera schema, matplotlib, worker processes) against a tiny floor
            out.append((f"end to end / floor (N={r['n']}; the 4x target is for N >= {FLOOR_TARGET_MIN_N})", None,
                        f"{r['floor_ratio']:.2f}x"))
        out.append((f"every agency valid and rendered (N={r['n']})",
                    r["errors"] == 0 and r["warnings"] == 0 and r["reports"] == r["n"] + 1,
                    f"{r['reports']} reports, {r['errors']} errors, {r['warnings']} warnings"))
    if len(results) > 1:
        small = min(results, key=lambda r: r["n"])
        ratio = big["peak_mb"] / small["peak_mb"]
        slope = (big["peak_mb"] - small["peak_mb"]) / (big["n"] - small["n"]) * 1000
        out.append((f"peak memory flat in N (N={big['n']} vs {small['n']}: ≤ {FLAT_MEMORY_FACTOR}x)",
                    ratio <= FLAT_MEMORY_FACTOR, f"{ratio:.2f}x, +{slope:.0f} MB per 1000 agencies"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="nianbao 性能基准：合成 N 个单位，测全流程各阶段用时、峰值内存和下限比")
    ap.add_argument("--n", type=int, nargs="+", default=list(DEFAULT_N), help="单位数（可多个，默认 100 1000）")
    ap.add_argument("--jobs", type=int, default=None, help="进程数（默认全部 CPU 核）")
    ap.add_argument("--cache", default=None, help="合成工作目录的缓存位置（默认 $NIANBAO_BENCH_CACHE 或临时目录）")
    ap.add_argument("--regenerate", action="store_true", help="重新生成合成工作簿")
    ap.add_argument("--measure", type=int, help=argparse.SUPPRESS)  # internal: one N in this process, JSON out
    ap.add_argument("--measure-import", type=int, help=argparse.SUPPRESS)  # internal: likewise, importing
    args = ap.parse_args(argv)
    from pipeline.parallel import default_jobs

    jobs = args.jobs or default_jobs()
    cache = cache_root(args.cache)
    if args.measure:
        print("BENCH-JSON " + json.dumps(measure(args.measure, jobs, cache)))
        return 0
    if args.measure_import:
        print("BENCH-JSON " + json.dumps(measure_import(args.measure_import, jobs, cache)))
        return 0

    print(f"nianbao bench — {machine()}; jobs={jobs}")
    ns = sorted(set(args.n))
    for i, n in enumerate(ns):
        ensure_workspace(n, jobs, cache, regenerate=args.regenerate and i == 0)
    results, imports = [], []
    for n in ns:
        for what, into, show in (("--measure", results, print_result), ("--measure-import", imports, print_import)):
            cmd = [sys.executable, "-m", "tests.bench", what, str(n), "--jobs", str(jobs), "--cache", str(cache)]
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("BENCH-JSON ")), None)
            if proc.returncode or line is None:
                sys.stderr.write(proc.stdout + proc.stderr)
                print(f"bench: N={n} {what[2:]} failed (exit {proc.returncode})")
                return 1
            r = json.loads(line[len("BENCH-JSON "):])
            into.append(r)
            show(r)
    print()
    checks = targets(results) + import_targets(imports)
    for label, ok, got in checks:
        print(f"  {'info' if ok is None else 'PASS' if ok else 'FAIL'}  {label}: {got}")
    big = max(results, key=lambda r: r["n"])
    big_import = max(imports, key=lambda r: r["n"])
    s = big["seconds"]
    print(f"bench: agencies={big['n']} total_s={s['total']:.2f} validate_s={s['validate']:.2f} "
          f"render_s={s.get('render', 0.0):.2f} floor_ratio={big['floor_ratio']:.2f} peak_mb={big['peak_mb']:.0f} "
          f"import_docx_s={big_import['docx']['seconds']:.2f} import_html_s={big_import['html']['seconds']:.2f}")
    return 0 if all(ok is not False for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
