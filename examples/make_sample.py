"""Write the sample county 示例县: county.toml, agencies.csv and filled workbooks for 2023 and 2024.

    python examples/make_sample.py [--out DIR]      (default: examples/sample_county)

Deterministic: every random choice comes from a ``random.Random`` seeded with a string built from SEED, the
agency code and the year, and ``pipeline.ooxml.save_workbook`` fixes all timestamps, so two runs give
byte-identical files.

The figures are generated leaf by leaf and every total is derived from ``spec`` (computed cells are formulas
in the workbook). Guarantees, checked by tests/test_sample.py:

* every agency rule of ``spec.RULES`` (R1–R5) holds for every workbook;
* 2024 上年结转 equals 2023 结转下年度继续办理 for every agency and column (R8);
* 2023 现行有效 + 2024 制发 − 2024 废止 = 2024 现行有效 (R6); the 规章 row is 0/0/0 everywhere (R11);
* every number quoted in section 一 about applications, reconsideration, litigation, 行政规范性文件 and
  行政许可/处罚/强制 equals the table cell (R10);
* no text paragraph is repeated across agencies or years, no year other than the report year appears in a
  report's text, and 总体情况 stays under spec.OVERVIEW_MAX_CHARS.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import random
import re
import sys
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline import spec
from pipeline.workspace import Agency, County

SEED = "nianbao-sample-county"
YEARS = (2023, 2024)
DEFAULT_OUT = ROOT / "examples" / "sample_county"

# --------------------------------------------------------------------------------------------------
# Names taken from the spec (never typed by hand)

CATEGORY = {c.key: c.label for c in spec.CATEGORIES}

T3_COLUMN_LEAVES = [leaf for top in spec.T3_COLUMNS for leaf in top.leaves()]
T3_COLS = [leaf.key for leaf in T3_COLUMN_LEAVES if leaf.total_of is None]  # natural … other
T3_TOTAL_COL = next(leaf.key for leaf in T3_COLUMN_LEAVES if leaf.total_of is not None)  # total
T3_ROW_LEAVES = [leaf for top in spec.T3_ROWS for leaf in top.leaves()]
T3_IN_ROWS = [leaf.key for leaf in T3_ROW_LEAVES if leaf.flow == "in"]  # new, carried_in
T3_NEW, T3_CARRIED_IN = T3_IN_ROWS
T3_TOTAL_ROW = next(leaf.key for leaf in T3_ROW_LEAVES if leaf.total_of is not None)
T3_CARRIED_OVER = next(leaf.key for leaf in T3_ROW_LEAVES if leaf.flow == "out" and leaf.total_of is None)
T3_RESULT_ROWS = [leaf.key for leaf in T3_ROW_LEAVES if leaf.flow is None]


def _result_groups() -> list[tuple[str, str, tuple[str, ...]]]:
    """(key, short label, leaf keys) of the outcome kinds under 三、本年度办理结果, in table order."""
    results = next(n for n in spec.T3_ROWS if n.is_group)
    out = []
    for node in results.children:
        if node.total_of is not None:
            continue
        short = re.sub(r"^（[一二三四五六七八九十]+）", "", node.label)
        short = re.sub(r"（.*）$", "", short)
        out.append((node.key, short, tuple(leaf.key for leaf in node.leaves())))
    return out


RESULT_GROUPS = _result_groups()  # granted/予以公开, partial/部分公开, withheld/不予公开, …

T4_GROUP_KEYS = [g.key for g, _ in spec._t4_leaf_groups()]  # reconsideration, litigation_direct, litigation_after
T4_RESULTS = [n.key for n in spec.T4_RESULTS if n.total_of is None]
T4_TOTAL = next(n.key for n in spec.T4_RESULTS if n.total_of is not None)

T2_DOC_ROWS = [r.key for r in spec.T2_BLOCKS[0].rows]  # regulations, normative_documents
T2_REGULATIONS, T2_NORMATIVE = T2_DOC_ROWS
T2_DOC_COLS = [c.key for c in spec.T2_BLOCKS[0].columns]  # issued, repealed, in_force
T2_ISSUED, T2_REPEALED, T2_IN_FORCE = T2_DOC_COLS
T2_DECISION_ROWS = {r.key: (r, b.columns[0].key) for b in spec.T2_BLOCKS[1:3] for r in b.rows}
T2_FEES_ROW, T2_FEES_COL = spec.T2_BLOCKS[3].rows[0].key, spec.T2_BLOCKS[3].columns[0].key

TEXT_FIELDS = [f for f in spec.FIELDS if f.name.startswith("TXT_")]
OVERVIEW_FIELDS = [f.name for f in spec.fields(section="一")]
FEE_FIELDS = {f.key: f.name for f in spec.fields(section="六") if f.kind != "text" or f.key == "fee_note"}
YES, NO = spec.FIELD[FEE_FIELDS["fee_charged"]].choices


def c3(row: str, col: str) -> str:
    return spec.cell_name("三", row, col)


def c2(row: str, col: str) -> str:
    return spec.cell_name("二", row, col)


def c4(group: str, col: str) -> str:
    return spec.cell_name("四", group, col)


def info(key: str) -> str:
    return f"INFO_{key}"


def txt(key: str) -> str:
    return f"TXT_{key}"


# --------------------------------------------------------------------------------------------------
# The county and its roster

COUNTY = County(
    name="示例县",
    government="示例县人民政府",
    office="示例县人民政府办公室",
    address="示例省示例县城关镇人民路1号",
    postcode="556600",
    phone="0855-3221001",
    publish_channel="示例县人民政府网-政府信息公开-政府信息公开年报",
    publish_url="https://www.shilixian.gov.cn/zwgk/xxgknb/",
)


@dataclass(frozen=True)
class Profile:
    """How big and what kind of agency it is: drives the figures and the wording of its texts."""

    short: str  # how the agency calls itself in prose: 县财政局, 城关镇
    apps: tuple[int, int]  # 本年新收 range
    org_share: float  # share of applications from 法人或其他组织
    docs_in_force: int  # 行政规范性文件 in force at the end of 2022
    docs_issued: tuple[int, int]
    licensing: tuple[int, int]
    penalties: tuple[int, int]
    enforcement: tuple[int, int]
    fees_yuan: tuple[int, int] | None  # 行政事业性收费 in 元 (written as 万元 with 4 decimals)
    focus: tuple[str, str, str, str]
    media: str  # its new-media account
    office: str  # the unit inside the agency that does the work
    hall: str  # where people read documents in person
    info_range: tuple[int, int]  # 主动公开信息条数
    weights: Mapping[str, float] = field(default_factory=dict)  # extra weight on some outcome rows


_PORTAL = "示例县人民政府网站"
_CHANNEL_DEPT = "示例县人民政府网-部门信息公开-{name}-政府信息公开年报"
_CHANNEL_TOWN = "示例县人民政府网-乡镇（街道）信息公开-{name}-政府信息公开年报"

# code, name, category key, contact office, address, postcode, phone, url slug, profile
_ROSTER = [
    ("SLX-000", "示例县人民政府", "county_government", "示例县人民政府办公室", "示例省示例县城关镇人民路1号",
     "556600", "0855-3221001", "bj",
     Profile("县政府", (18, 26), 0.25, 41, (3, 6), (0, 0), (0, 0), (0, 0), None,
             ("重大行政决策", "财政预决算", "重点项目建设", "民生实事"), "“示例发布”微信公众号", "县政府办公室",
             "县政务服务中心政务公开专区", (620, 780), {"withheld_process": 1.3, "unavailable_not_held": 1.5})),
    ("SLX-101", "示例县财政局", "department", "示例县财政局办公室", "示例省示例县城关镇财源路12号",
     "556600", "0855-3222310", "czj",
     Profile("县财政局", (6, 10), 0.4, 9, (1, 3), (0, 0), (2, 5), (0, 0), (38000, 52000),
             ("财政预决算", "政府采购", "惠企惠民资金", "政府债务"), "“示例财政”微信公众号", "局办公室",
             "局机关一楼政务公开查阅点", (150, 210), {"withheld_internal": 2.0})),
    ("SLX-102", "示例县自然资源局", "department", "示例县自然资源局办公室", "示例省示例县城关镇滨河路36号",
     "556600", "0855-3226672", "zrzyj",
     Profile("县自然资源局", (42, 56), 0.3, 14, (2, 4), (260, 340), (30, 48), (3, 7), (760000, 960000),
             ("不动产登记", "土地征收", "国土空间规划", "矿产资源管理"), "“示例自然资源”微信公众号", "局政策法规股",
             "县不动产登记中心大厅", (240, 320),
             {"unavailable_not_held": 2.0, "withheld_inquiry": 3.0, "withheld_third_party": 2.0})),
    ("SLX-103", "示例县市场监督管理局", "department", "示例县市场监督管理局办公室", "示例省示例县城关镇建设路58号",
     "556600", "0855-3229015", "scjgj",
     Profile("县市场监管局", (12, 18), 0.55, 11, (1, 3), (1420, 1760), (130, 175), (16, 28), (95000, 140000),
             ("食品药品安全", "“双随机、一公开”监管", "企业信用信息", "价格监督检查"), "“示例市场监管”微信公众号",
             "局办公室", "县政务服务中心市场监管窗口", (280, 360), {"withheld_enforcement_file": 2.5})),
    ("SLX-104", "示例县教育局", "department", "示例县教育局办公室", "示例省示例县城关镇文昌路8号",
     "556600", "0855-3223347", "jyj",
     Profile("县教育局", (5, 9), 0.15, 8, (1, 3), (35, 60), (0, 3), (0, 0), None,
             ("义务教育招生入学", "学生资助", "教育收费", "校园安全"), "“示例教育”微信公众号", "局办公室",
             "局机关政务公开查阅室", (180, 240), {"unavailable_needs_creation": 2.0})),
    ("SLX-105", "示例县人力资源和社会保障局", "department", "示例县人力资源和社会保障局办公室",
     "示例省示例县城关镇人民路66号", "556600", "0855-3224480", "rsj",
     Profile("县人社局", (8, 12), 0.2, 7, (1, 2), (80, 130), (4, 9), (0, 0), (21000, 33000),
             ("就业创业", "社会保险待遇", "根治欠薪", "职业技能培训"), "“示例人社”微信公众号", "局办公室",
             "县人力资源市场服务大厅", (200, 270), {"withheld_third_party": 2.0, "not_processed_petition": 2.0})),
    ("SLX-201", "示例县城关镇人民政府", "township", "示例县城关镇人民政府党政综合办公室", "示例省示例县城关镇中山路20号",
     "556600", "0855-3225106", "cgz",
     Profile("城关镇", (5, 9), 0.15, 3, (0, 2), (8, 20), (6, 15), (0, 2), None,
             ("老旧小区改造", "低保特困救助", "城镇人居环境整治", "征地拆迁补偿"), "“城关之声”微信公众号",
             "镇党政综合办公室", "镇便民服务中心政务公开专区", (90, 140), {"unavailable_not_held": 2.0})),
    ("SLX-202", "示例县东河镇人民政府", "township", "示例县东河镇人民政府党政综合办公室", "示例省示例县东河镇东河街3号",
     "556603", "0855-3512018", "dhz",
     Profile("东河镇", (2, 4), 0.0, 2, (0, 1), (5, 12), (2, 6), (0, 0), None,
             ("惠农补贴发放", "乡村振兴项目", "农村危房改造", "耕地保护"), "“东河微讯”微信公众号",
             "镇党政综合办公室", "东河镇便民服务中心", (60, 95))),
    ("SLX-203", "示例县青石镇人民政府", "township", "示例县青石镇人民政府党政综合办公室", "示例省示例县青石镇青石路15号",
     "556605", "0855-3536120", "qsz",
     Profile("青石镇", (1, 3), 0.0, 1, (0, 1), (3, 8), (1, 4), (0, 0), None,
             ("高标准农田建设", "防汛抗旱", "农村人居环境整治", "特色种养殖产业"), "“青石发布”微信公众号",
             "镇党政综合办公室", "青石镇便民服务中心", (55, 85))),
    ("SLX-204", "示例县柳塘乡人民政府", "township", "示例县柳塘乡人民政府办公室", "示例省示例县柳塘乡柳塘街9号",
     "556608", "0855-3551009", "ltx",
     Profile("柳塘乡", (0, 2), 0.0, 1, (0, 1), (2, 6), (0, 2), (0, 0), None,
             ("乡村振兴衔接资金", "农村低保", "移风易俗", "森林防火"), "“柳塘乡”微信公众号",
             "乡党政办公室", "柳塘乡便民服务站", (40, 70))),
    ("SLX-205", "示例县白云乡人民政府", "township", "示例县白云乡人民政府办公室", "示例省示例县白云乡白云街2号",
     "556609", "0855-3563016", "byx",
     Profile("白云乡", (0, 1), 0.0, 0, (0, 1), (1, 4), (0, 1), (0, 0), None,
             ("茶叶特色产业", "村级财务", "临时救助", "农村饮水安全"), "“白云乡”政务微信号",
             "乡党政办公室", "白云乡便民服务站", (35, 60))),
    ("SLX-206", "示例县新华街道办事处", "township", "示例县新华街道办事处党政办公室", "示例省示例县新华街道光明路101号",
     "556600", "0855-3227730", "xhjd",
     Profile("新华街道", (3, 6), 0.2, 2, (0, 1), (0, 3), (3, 8), (0, 1), None,
             ("社区治理", "居家养老服务", "网格化管理", "就业帮扶"), "“新华街道”微信公众号",
             "街道党政办公室", "街道党群服务中心", (80, 120), {"not_processed_repeat": 2.0})),
]

AGENCIES: tuple[Agency, ...] = tuple(
    Agency(
        code=code,
        name=name,
        category=CATEGORY[cat],
        contact_office=office,
        address=address,
        postcode=postcode,
        phone=phone,
        publish_channel=(COUNTY.publish_channel if cat == "county_government"
                         else (_CHANNEL_DEPT if cat == "department" else _CHANNEL_TOWN).format(name=name)),
        publish_url=f"https://www.shilixian.gov.cn/zwgk/xxgknb/{slug}/",
    )
    for code, name, cat, office, address, postcode, phone, slug, _ in _ROSTER
)
PROFILES: dict[str, Profile] = {row[0]: row[-1] for row in _ROSTER}
CATEGORY_KEY: dict[str, str] = {row[0]: row[2] for row in _ROSTER}

# Events that are rare enough to be placed by hand: table 四 cases and 信息处理费 (the rest is random).
#   t4: {(group, result): n}; fee_unpaid: 2.申请人逾期未按收费通知要求缴纳费用 (自然人) with the notices sent.
EVENTS: dict[tuple[str, int], dict] = {
    ("SLX-000", 2023): {"t4": {("reconsideration", "other"): 1}},
    ("SLX-102", 2023): {"t4": {("reconsideration", "upheld"): 1, ("litigation_direct", "upheld"): 1}},
    ("SLX-102", 2024): {
        "t4": {("reconsideration", "upheld"): 1, ("reconsideration", "pending"): 1,
               ("litigation_after", "pending"): 1},
        "fee": {"notices": 2, "notice_amount": Decimal(1800), "collected": Decimal(300), "unpaid": 1},
    },
    ("SLX-103", 2024): {"t4": {("reconsideration", "corrected"): 1}},
    ("SLX-201", 2024): {"t4": {("litigation_direct", "other"): 1}},
}

# Base weights of the outcome rows (before a profile's extra weights).
_OUTCOME_WEIGHTS = {
    "granted": 10.0, "partial": 1.6,
    "withheld_secret": 0.05, "withheld_prohibited": 0.1, "withheld_security": 0.05, "withheld_third_party": 0.5,
    "withheld_internal": 0.4, "withheld_process": 0.5, "withheld_enforcement_file": 0.3, "withheld_inquiry": 0.3,
    "unavailable_not_held": 2.2, "unavailable_needs_creation": 0.7, "unavailable_unclear": 0.4,
    "not_processed_petition": 0.5, "not_processed_repeat": 0.4, "not_processed_publication": 0.15,
    "not_processed_mass": 0.05, "not_processed_confirmation": 0.2,
    "other_no_correction": 0.6, "other_fee_unpaid": 0.0, "other_other": 0.15,
}
_ORG_WEIGHTS = {"business": 6.0, "research": 0.3, "nonprofit": 0.5, "legal": 2.0, "other": 1.2}

# --------------------------------------------------------------------------------------------------
# Figures


def _rng(*parts: object) -> random.Random:
    return random.Random(":".join([SEED, *map(str, parts)]))


def _split(rng: random.Random, n: int, weights: Mapping[str, float]) -> dict[str, int]:
    """n items drawn one by one with the given weights (a multinomial sample)."""
    keys = [k for k, w in weights.items() if w > 0]
    out = dict.fromkeys(weights, 0)
    for k in rng.choices(keys, weights=[weights[k] for k in keys], k=n) if n and keys else []:
        out[k] += 1
    return out


def _not_year_like(n: int) -> int:
    """Counts quoted in prose must not look like a year (the text checks look for other years)."""
    return n + 150 if 1900 <= n <= 2100 else n


def _complete(values: dict[str, object]) -> dict[str, object]:
    """Fill every computed cell from its addends (spec.CELL[name].addends)."""
    for c in spec.CELLS:
        if c.computed:
            values[c.name] = sum((values[a] for a in c.addends), 0)
    return values


def figures(agency: Agency, year: int, previous: Mapping[str, object] | None = None) -> dict[str, object]:
    """Every table cell (tables 二, 三, 四, computed ones included) for one agency-year, by defined name.

    ``previous`` is the same agency's figures for the year before: 上年结转 and the 现行有效件数 chain follow it.
    """
    p = PROFILES[agency.code]
    ev = EVENTS.get((agency.code, year), {})
    rng = _rng("figures", agency.code, year)
    v: dict[str, object] = {c.name: 0 for c in spec.CELLS}
    v[c2(T2_FEES_ROW, T2_FEES_COL)] = Decimal(0)

    # -- table 二: 规章 stays 0/0/0 (R11); 行政规范性文件 follows the R6 chain
    issued = rng.randint(*p.docs_issued)
    last_in_force = previous[c2(T2_NORMATIVE, T2_IN_FORCE)] if previous else p.docs_in_force
    repealed = rng.randint(0, min(2, last_in_force)) if last_in_force else 0
    v[c2(T2_NORMATIVE, T2_ISSUED)] = issued
    v[c2(T2_NORMATIVE, T2_REPEALED)] = repealed
    v[c2(T2_NORMATIVE, T2_IN_FORCE)] = last_in_force + issued - repealed
    for row, (node, col) in T2_DECISION_ROWS.items():
        lo, hi = {"licensing": p.licensing, "penalties": p.penalties, "enforcement": p.enforcement}[row]
        v[c2(row, col)] = _not_year_like(rng.randint(lo, hi))
    if p.fees_yuan:
        yuan = rng.randint(*p.fees_yuan)  # whole 元 → 万元 with 4 decimals
        v[c2(T2_FEES_ROW, T2_FEES_COL)] = (Decimal(yuan) / 10000).quantize(Decimal("0.0001"))

    # -- table 三: new applications by applicant, carried in, outcomes, carried over (R1 by construction)
    new_total = rng.randint(*p.apps)
    orgs = sum(1 for _ in range(new_total) if rng.random() < p.org_share)
    new = {"natural": new_total - orgs, **_split(rng, orgs, _ORG_WEIGHTS)}
    fee_unpaid = ev.get("fee", {}).get("unpaid", 0)
    new["natural"] += fee_unpaid  # the unpaid-fee applications are extra natural-person applications
    weights = {k: w * p.weights.get(k, 1.0) for k, w in _OUTCOME_WEIGHTS.items()}
    for col in T3_COLS:
        carried_in = previous[c3(T3_CARRIED_OVER, col)] if previous else (
            rng.choice([0, 0, 0, 1]) if col == "natural" and new_total >= 5 else 0)
        available = new[col] + carried_in
        carried_over = 0
        if available >= 3 and col in ("natural", "business") and rng.random() < 0.55:
            carried_over = rng.randint(1, max(1, min(3, available // 6)))
        handled = available - carried_over
        extra = fee_unpaid if col == "natural" else 0
        outcomes = _split(rng, handled - extra, weights)
        outcomes["other_fee_unpaid"] += extra
        v[c3(T3_NEW, col)] = new[col]
        v[c3(T3_CARRIED_IN, col)] = carried_in
        v[c3(T3_CARRIED_OVER, col)] = carried_over
        for row in T3_RESULT_ROWS:
            v[c3(row, col)] = outcomes[row]

    # -- table 四
    for (group, result), n in ev.get("t4", {}).items():
        v[c4(group, result)] = n
    return _complete(v)


# --------------------------------------------------------------------------------------------------
# Texts


@dataclass
class _Ctx:
    agency: Agency
    profile: Profile
    year: int
    v: Mapping[str, object]
    rng: random.Random
    attempt: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    def __getitem__(self, key: str) -> object:  # for str.format_map
        p, f = self.profile, self.profile.focus
        fixed = {"y": self.year, "s": p.short, "f1": f[0], "f2": f[1], "f3": f[2], "f4": f[3], "m": p.media,
                 "o": p.office, "hall": p.hall, "portal": _PORTAL, **self.extra,
                 "up": "上级政府和县委" if CATEGORY_KEY[self.agency.code] == "county_government" else "县委、县政府"}
        if key in fixed:
            return fixed[key]
        if key.startswith("n"):  # a free number (主动公开 etc.): n5_30 → 5..30
            lo, hi = key[1:].split("_")
            return _not_year_like(self.rng.randint(int(lo), int(hi)))
        raise KeyError(key)


_OVERVIEW = [
    ("{y}年，{s}坚持以习近平新时代中国特色社会主义思想为指导，认真贯彻落实《中华人民共和国政府信息公开条例》，"
    "围绕{f1}、{f2}等中心工作，扎实推进政务公开标准化规范化建设，政府信息公开工作总体平稳有序。"),
    ("本年度，{s}深入贯彻《中华人民共和国政府信息公开条例》和上级关于政务公开工作的部署，把政务公开与{f1}、"
    "{f3}工作同谋划、同部署、同落实，公开质量和实效持续提升。"),
    ("本年度，{s}以群众需求为导向，聚焦{f2}、{f4}等社会关注领域，健全公开制度、规范公开流程、拓展公开渠道，"
    "切实保障人民群众的知情权、参与权、表达权和监督权。"),
    ("{y}年，{s}在{up}的统一部署下，坚持“以公开为常态、不公开为例外”，将政务公开融入{f3}、{f1}等"
    "日常工作，及时回应群众关切，以公开促落实、促规范、促服务。"),
    ("本年度，{s}调整充实政务公开工作领导小组，由主要负责同志牵头、分管负责同志具体抓，{o}负责日常工作，"
    "围绕{f4}和{f2}做好信息发布、政策解读和回应关切。"),
    ("{y}年，{s}对照全县政务公开工作要点逐项分解任务，明确责任股室和完成时限，重点做好{f1}、{f4}等领域"
    "信息公开，工作机制更加健全。"),
]

_PROACTIVE_LEAD = [
    "本年度通过{portal}和{m}主动公开各类政府信息{info}条，其中{f1}类信息{info_a}条、{f2}类信息{info_b}条。",
    "全年在{portal}发布政务信息{info}条，同步在{m}推送{info_a}条，重点公开{f3}、{f1}等方面信息。",
    "坚持应公开尽公开，全年主动公开政府信息{info}条，对{f2}相关政策文件做到发布即公开、公开即解读。",
    "围绕{f4}、{f3}等重点工作，全年累计公开各类信息{info}条，发布政策解读{n3_18}篇。",
]
_PROACTIVE_TAIL = [
    "及时更新机构职能、领导分工和权责清单，确保群众看得到、看得懂、能监督。",
    "对{f1}相关办事指南逐项核对，更新服务事项{n4_25}项。",
    "对{f2}等群众关心的热点问题，通过问答、图解等形式作出回应{n2_12}次。",
    "规范发布{f3}工作进展和结果信息，做到进展一项、公开一项。",
    "在重要政策出台时同步发布解读材料，本年度制作图解、短视频解读{n2_9}件。",
]

_MANAGEMENT = [
    "{s}严格执行公文公开属性源头认定制度，公文在拟制时即明确公开属性，本年度对{n20_160}份公文进行了公开属性审查。",
    "落实信息发布“三审三校”制度，由{o}初审、分管负责同志复审、主要负责同志终审，确保{f1}等信息发布准确规范。",
    "对照{f2}等领域基层政务公开标准目录，动态调整主动公开目录{n6_30}项，做到目录与实际工作同步。",
    "开展历史公开文件清理，对{n3_25}件已失效、废止的文件作出标注，避免{f3}等领域旧政策误导群众。",
    "{s}建立政府信息公开申请登记、审核、办理、答复、归档全流程台账，做到件件有记录、环环可追溯。",
    "规范{f4}相关政策解读，坚持解读材料与政策文件同步组织、同步审签、同步部署。",
    "严格落实保密审查和个人信息保护要求，{o}对涉及{f2}的公开信息逐条审核，未发生泄密和侵犯个人隐私情况。",
]

_PLATFORM = [
    "以{portal}为第一平台，及时更新{s}信息公开专栏中{f1}、{f3}等栏目内容，清理空白栏目和过时栏目{n2_9}个。",
    "持续运营{m}，全年推送信息{n40_260}条，推动{f2}等政策信息直达群众。",
    "在{hall}设置政务公开专区，配备查阅终端和政策汇编，本年度接待现场查阅和咨询{n20_180}人次。",
    "配合完成县政府网站集约化平台栏目调整，对{s}栏目链接逐一检查，确保链接有效、内容准确。",
    "利用公开栏、电子显示屏等线下渠道同步公开{f4}等事项，方便不上网的群众及时了解。",
]
_PLATFORM_TOWN = [
    "指导各村（社区）规范设置公开栏，按季度公开{f2}、{f1}等事项，打通政务公开“最后一公里”。",
    "依托村（社区）微信群转发{s}重要通知和惠民政策，全年转发{n30_150}条。",
]

_OVERSIGHT = [
    "将政务公开纳入{s}年度工作考核，由{o}每季度对信息发布情况开展自查，发现问题{n2_12}处，均已整改到位。",
    "组织政务公开专题培训{n1_4}次，覆盖干部职工{n15_120}人次，提升工作人员公开意识和业务能力。",
    "通过网站留言、意见箱和热线电话收集社会评议意见，对涉及{f3}的意见建议逐条研究回复。",
    "主动接受县政务公开办指导和社会监督，对上级通报指出的{f1}信息更新不及时等问题建立整改清单，逐项销号。",
    "把政务公开工作落实情况纳入{s}督查督办范围，对信息发布不及时、不准确的股室予以提醒。",
]
_OVERSIGHT_GOV = [
    "本年度对全县{n18_30}个单位开展政务公开工作考核，社会评议满意度较高，未发生政务公开工作责任追究情况。",
    ("组织开展政务公开社会评议，邀请人大代表、政协委员和群众代表参与，评议结果纳入年度绩效考核，本年度未发生"
    "责任追究情况。"),
]

# (problem, improvement) pairs; each pair is used once per agency across the two years (no 年年雷同)
_PROBLEMS = [
    ("{f1}领域信息公开的深度和及时性还有差距，部分事项只公开结果、过程信息公开不够",
     "聚焦{f1}领域，推动决策、执行、管理、服务、结果全过程公开，重要事项做到进展一项、公开一项。"),
    ("围绕{f3}的政策解读形式较为单一，图解、短视频等群众喜闻乐见的解读方式运用不多",
     "丰富{f3}政策解读形式，综合运用图解、短视频、问答等方式，提高解读的针对性和可读性。"),
    ("{m}更新频率不够稳定，与群众的互动交流不足",
     "加强{m}日常运营，固定更新频次，开设留言答复板块，增强与群众的互动。"),
    ("依申请公开答复文书的规范性有待提高，个别涉及{f2}的答复说理不够充分",
     "规范依申请公开答复文书，对涉及{f2}的申请加强法律审核，做到答复依据充分、说理清楚。"),
    ("{s}政务公开工作人员多为兼职，业务培训覆盖面不足，对{f4}信息的公开标准把握不准",
     "加强{s}政务公开队伍建设，每半年至少组织一次业务培训，重点学习{f4}等领域公开标准。"),
    ("主动公开目录动态更新不够及时，{f2}等个别栏目内容与实际工作进度不同步",
     "建立{f2}等栏目的信息报送责任清单，明确报送时限，每月对栏目更新情况进行核查。"),
    ("{s}公文公开属性源头认定执行不够严格，个别文件不予公开的理由说明不充分",
     "严格落实{s}公文公开属性源头认定，由{o}对不予公开的文件逐件复核理由，定期评估后及时转为主动公开。"),
    ("{hall}作用发挥不充分，群众现场查阅和咨询服务利用率不高",
     "完善{hall}功能，增加政策汇编和办事指南，安排专人提供查阅和咨询服务。"),
]
_IMPROVE_EXTRA = [
    "健全{s}政务公开工作考核评价机制，将公开质量纳入股室年度考核。",
    "加强与县政务公开办的沟通对接，及时学习借鉴先进地区在{f4}领域公开方面的经验做法。",
    "定期开展政府网站和{m}内容自查，发现错链、断链和过期信息及时处置。",
]

_OTHER_MATTERS = [
    "本年度{s}办理人大代表建议{n1_6}件、政协委员提案{n1_5}件，办理结果已按要求公开。",
    "本年度{s}无其他需要报告的事项。",
    "{s}本年度未发生其他需要报告的事项。",
    "本年度{s}承办的{f1}相关人大代表建议和政协提案均已按期办结，办理结果已在{portal}公开。",
]


def _fmt(template: str, ctx: _Ctx) -> str:
    return template.format_map(ctx)


def _picks(agency: Agency, name: str, n_pool: int, year: int, k: int = 1, attempt: int = 0) -> list[int]:
    """k pool indices for an agency-year; with the same ``attempt`` the two years of one agency never share an
    index (while the pool is large enough)."""
    perm = list(range(n_pool))
    _rng("perm", agency.code, name, *([attempt] if attempt else [])).shuffle(perm)
    start = YEARS.index(year) * k if year in YEARS else 0
    return [perm[(start + i) % n_pool] for i in range(k)]


def _quoted(v: Mapping[str, object]) -> dict[str, int]:
    col = T3_TOTAL_COL
    q = {
        "new": v[c3(T3_NEW, col)], "carried_in": v[c3(T3_CARRIED_IN, col)],
        "natural": v[c3(T3_NEW, "natural")],
        "done": v[c3(T3_TOTAL_ROW, col)], "carried_over": v[c3(T3_CARRIED_OVER, col)],
        "reconsideration": v[c4("reconsideration", T4_TOTAL)],
        "litigation": v[c4("litigation_direct", T4_TOTAL)] + v[c4("litigation_after", T4_TOTAL)],
    }
    q["orgs"] = q["new"] - q["natural"]
    return q


def _on_request(ctx: _Ctx) -> str:
    """依申请公开: every figure quoted equals the table (R10); the wording varies a lot (no 雷同 across agencies)."""
    v, q, rng = ctx.v, _quoted(ctx.v), ctx.rng
    s, focus = ctx.profile.short, list(ctx.profile.focus)
    rng.shuffle(focus)
    parts = []
    if q["new"] == 0 and q["carried_in"] == 0:
        parts.append(rng.choice([
            f"本年度，{s}未收到政府信息公开申请，无上年结转申请。",
            f"全年{s}共收到政府信息公开申请0件，上年结转0件。",
            f"{ctx.year}年，{s}未收到政府信息公开申请，也没有上年结转的申请。",
            f"本年度{s}共收到政府信息公开申请0件，无结转下年度继续办理的申请。",
        ]))
        parts.append(rng.choice([
            f"{s}已在{ctx.profile.hall}和{_PORTAL}公布依申请公开的受理渠道、办理流程和联系电话，确保申请渠道畅通。",
            f"{s}安排{ctx.profile.office}专人负责依申请公开工作，继续保持申请受理渠道畅通。",
            f"对群众来电来访咨询的{focus[0]}等问题，{s}通过政策解读和当面答疑作出说明。",
            f"{s}对照依申请公开工作规范，更新了申请表格式文本和办事指南。",
        ]))
    else:
        if q["orgs"] == 0:
            who = rng.choice(["均为自然人申请", "申请人均为自然人", "全部由自然人提出"])
        else:
            who = rng.choice([f"其中自然人申请{q['natural']}件、法人或其他组织申请{q['orgs']}件",
                              f"其中法人或其他组织申请{q['orgs']}件、自然人申请{q['natural']}件"])
        carried = (f"上年结转{q['carried_in']}件" if q["carried_in"] else "无上年结转申请")
        parts.append(rng.choice([
            f"本年度，{s}共收到政府信息公开申请{q['new']}件，{who}；{carried}。",
            f"全年{s}共收到政府信息公开申请{q['new']}件（{who}），{carried}。",
            f"{ctx.year}年{s}新收政府信息公开申请{q['new']}件，{who}；{carried}。",
        ]))
        if q["new"] >= 3:
            online = rng.randint(q["new"] // 3, q["new"])
            rest = q["new"] - online
            post = rng.randint(0, rest)
            parts.append(rng.choice([
                f"从申请方式看，通过网络提交{online}件、信函提交{post}件、当面提交{rest - post}件。",
                f"按提交方式统计，在线申请{online}件，当面和信函申请合计{rest}件。",
            ]))
        outcome = []
        for _, short, leaves in RESULT_GROUPS:
            n = sum(v[c3(leaf, T3_TOTAL_COL)] for leaf in leaves)
            if n:
                outcome.append(f"{short}{n}件")
        done = rng.choice(["本年度办结", "已办结", "依法办结"])
        tail = (f"结转下年度继续办理{q['carried_over']}件" if q["carried_over"]
                else rng.choice(["无结转下年度继续办理的申请", "结转下年度继续办理0件"]))
        parts.append(f"{done}{q['done']}件，其中" + "、".join(outcome) + f"；{tail}。")
        parts.append(rng.choice([
            f"申请内容主要集中在{focus[0]}、{focus[1]}等方面。",
            f"申请人关注的重点是{focus[0]}和{focus[1]}相关信息。",
            f"所申请信息多涉及{focus[0]}，其次是{focus[1]}。",
            f"从申请内容看，{focus[0]}类申请最多。",
        ]))
        parts.append(rng.choice([
            "所有申请均在法定期限内答复。",
            "对不予公开和无法提供的申请，均在答复书中说明理由并告知救济途径。",
            f"{ctx.profile.office}对每件申请登记建档，答复前经法律顾问审核，均按期答复。",
            "对申请内容不明确的，及时一次性告知申请人补正，未出现超期答复。",
            "答复时一并向申请人提供政策依据和办事指引，申请人对答复普遍认可。",
        ]))
    r, lit = q["reconsideration"], q["litigation"]
    parts.append(rng.choice([
        f"因政府信息公开被申请行政复议{r}件、提起行政诉讼{lit}件。",
        f"发生涉及政府信息公开的行政复议{r}件、行政诉讼{lit}件。",
        f"本年度涉及政府信息公开的行政复议{r}件，行政诉讼{lit}件。",
    ]))
    return "".join(parts)


def _proactive(ctx: _Ctx) -> str:
    v, p = ctx.v, ctx.profile
    i = _picks(ctx.agency, "proactive", len(_PROACTIVE_LEAD), ctx.year, attempt=ctx.attempt)[0]
    info = ctx.rng.randint(*p.info_range)  # free numbers (not in the tables), but the parts fit the whole
    ctx.extra.update(info=info, info_a=ctx.rng.randint(info // 8, info // 3),
                     info_b=ctx.rng.randint(info // 10, info // 4))
    parts = [_fmt(_PROACTIVE_LEAD[i], ctx)]
    iss, rep, inf = (v[c2(T2_NORMATIVE, col)] for col in (T2_ISSUED, T2_REPEALED, T2_IN_FORCE))
    if iss or rep:
        parts.append(f"本年度制发行政规范性文件{iss}件、废止{rep}件，截至年底现行有效{inf}件，均在规范性文件专栏集中公开。")
    elif inf:
        parts.append(f"本年度未制发行政规范性文件，现行有效的{inf}件行政规范性文件已全部集中公开。")
    else:
        parts.append("本年度未制发行政规范性文件。")
    decisions = []
    for row, (node, col) in T2_DECISION_ROWS.items():
        n = v[c2(row, col)]
        if n:
            decisions.append(f"{node.label}决定{n}件")
    if decisions:
        parts.append("依法公开" + "、".join(decisions) + "。")
    j = _picks(ctx.agency, "proactive_tail", len(_PROACTIVE_TAIL), ctx.year, attempt=ctx.attempt)[0]
    parts.append(_fmt(_PROACTIVE_TAIL[j], ctx))
    return "".join(parts)


def _sentences(ctx: _Ctx, name: str, pool: list[str], k: int) -> str:
    return "".join(_fmt(pool[i], ctx) for i in _picks(ctx.agency, name, len(pool), ctx.year, k, ctx.attempt))


def texts(agency: Agency, year: int, v: Mapping[str, object], attempt: int = 0) -> dict[str, str]:
    """Every TXT_ field for one agency-year (paragraphs of one field separated by "\\n")."""
    rng = _rng("texts", agency.code, year, attempt)
    ctx = _Ctx(agency, PROFILES[agency.code], year, v, rng, attempt)
    cat = CATEGORY_KEY[agency.code]
    platform_pool = _PLATFORM + (_PLATFORM_TOWN if cat == "township" else [])
    oversight = _sentences(ctx, "oversight", _OVERSIGHT, 2)
    if cat == "county_government":
        oversight += _fmt(_OVERSIGHT_GOV[YEARS.index(year) % len(_OVERSIGHT_GOV)], ctx)
    problems = [_PROBLEMS[i] for i in _picks(agency, "problems", len(_PROBLEMS), year, 2)]
    extra = _IMPROVE_EXTRA[_picks(agency, "improve_extra", len(_IMPROVE_EXTRA), year)[0]]
    improvements = [imp for _, imp in problems] + [extra]
    ordinals = "一二三四五"
    out = {
        "overview": _fmt(_OVERVIEW[_picks(agency, "overview", len(_OVERVIEW), year, attempt=attempt)[0]], ctx),
        "proactive": _proactive(ctx),
        "on_request": _on_request(ctx),
        "management": _sentences(ctx, "management", _MANAGEMENT, 2),
        "platform": _sentences(ctx, "platform", platform_pool, 2),
        "oversight": oversight,
        "problems": "；".join(f"{ordinals[i]}是{_fmt(p, ctx)}" for i, (p, _) in enumerate(problems)) + "。",
        "improvements": "\n".join(f"{ordinals[i]}是{_fmt(t, ctx)}" for i, t in enumerate(improvements)),
        "other_matters": _sentences(ctx, "other_matters", _OTHER_MATTERS, 1),
    }
    return {txt(k): val for k, val in out.items()}


# --------------------------------------------------------------------------------------------------
# Cover and fee fields

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红文建国志新春梅海燕雪琴林波宁健辉鹏飞"


def _person(rng: random.Random) -> str:
    given = rng.choice(_GIVEN) + (rng.choice(_GIVEN) if rng.random() < 0.7 else "")
    return rng.choice(_SURNAMES) + given


def cover(agency: Agency, year: int) -> dict[str, object]:
    """The 基本信息 fields: the roster's cover values plus 填报人, 审核人, 填报日期 and the report year."""
    rng = _rng("cover", agency.code, year)
    values: dict[str, object] = {f"INFO_{k}": val for k, val in agency.cover().items()}
    values[info("report_year")] = year
    preparer = _person(rng)
    reviewer = _person(rng)
    while reviewer == preparer:
        reviewer = _person(rng)
    values[info("preparer")] = preparer
    values[info("reviewer")] = reviewer
    values[info("fill_date")] = dt.date(year + 1, 1, rng.randint(8, 26))
    return values


def fees(agency: Agency, year: int, v: Mapping[str, object], attempt: int = 0) -> dict[str, object]:
    """Section 六 fee fields, consistent with （六）2 (R9)."""
    ev = EVENTS.get((agency.code, year), {}).get("fee")
    unpaid = v[c3("other_fee_unpaid", T3_TOTAL_COL)]
    if not ev:
        assert unpaid == 0, agency.code
        pool = [
            "本年度{s}未收取信息处理费。",
            "本年度{s}未向申请人发出收费通知，未收取信息处理费。",
            "{s}本年度办理的政府信息公开申请均未达到收费标准，未收取信息处理费。",
            "本年度{s}未发生收取信息处理费的情况。",
        ]
        note = pool[_picks(agency, "fee_note", len(pool), year, attempt=attempt)[0]].format(s=PROFILES[agency.code].short)
        return {FEE_FIELDS["fee_charged"]: NO, FEE_FIELDS["fee_notices"]: 0,
                FEE_FIELDS["fee_notice_amount"]: Decimal(0), FEE_FIELDS["fee_collected"]: Decimal(0),
                FEE_FIELDS["fee_note"]: note}
    assert ev["notices"] >= unpaid == ev["unpaid"]
    # the figures themselves are in the FEE_ fields (the report prints them); the note explains
    note = ("依据《政府信息公开信息处理费管理办法》，对同一申请人一个自然月内申请超过10件的部分按件计收信息处理费；"
            f"{unpaid}名申请人逾期未按收费通知缴纳费用，已依法不再处理其申请。")
    return {FEE_FIELDS["fee_charged"]: YES, FEE_FIELDS["fee_notices"]: ev["notices"],
            FEE_FIELDS["fee_notice_amount"]: ev["notice_amount"], FEE_FIELDS["fee_collected"]: ev["collected"],
            FEE_FIELDS["fee_note"]: note}


# --------------------------------------------------------------------------------------------------
# The whole county

_YEAR_IN_TEXT = re.compile(r"(?<!\d)(19|20)\d{2}(?!\d)")


def text_problems(year: int, t: Mapping[str, str]) -> list[str]:
    """Why a year's texts would be flagged: another year mentioned, 总体情况 too long."""
    out = []
    for name, val in t.items():
        for m in _YEAR_IN_TEXT.finditer(val):
            if int(m.group()) != year:
                out.append(f"{name}: mentions {m.group()}")
    if sum(len(t.get(n, "")) for n in OVERVIEW_FIELDS) >= spec.OVERVIEW_MAX_CHARS:
        out.append("overview too long")
    return out


#: Texts of one field must stay below this 3-gram Jaccard similarity to every text of the same field already
#: generated (other agencies, the agency's other year). The validator flags 雷同 from 0.9.
SIMILARITY_LIMIT = 0.8
SIMILARITY_MIN_CHARS = 20
_WS = re.compile(r"\s+")
_DIGITS = re.compile(r"\d+")


def shingles(text: str) -> frozenset[str]:
    """3-grams of a text without whitespace, digits folded (figures change every year; the prose does not)."""
    s = _DIGITS.sub("#", _WS.sub("", unicodedata.normalize("NFKC", text)))
    return frozenset(s[i : i + 3] for i in range(max(0, len(s) - 2)))


def similarity(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb) if sa and sb else 0.0


def generate() -> dict[tuple[str, int], dict[str, object]]:
    """Every agency-year's values by defined name: table cells (computed included) and fields."""
    out: dict[tuple[str, int], dict[str, object]] = {}
    seen: set[str] = set()
    history: dict[str, list[frozenset[str]]] = {}

    def acceptable(year: int, t: Mapping[str, str]) -> bool:
        paragraphs = [p for val in t.values() for p in val.split("\n")]
        if text_problems(year, t) or set(paragraphs) & seen or len(set(paragraphs)) != len(paragraphs):
            return False
        for name, val in t.items():
            if len(_WS.sub("", val)) < SIMILARITY_MIN_CHARS:
                continue
            sh = shingles(val)
            for old in history.get(name, ()):
                if len(sh & old) / len(sh | old) >= SIMILARITY_LIMIT:
                    return False
        return True

    for agency in AGENCIES:
        previous = None
        for year in YEARS:
            v = figures(agency, year, previous)
            for attempt in range(200):
                fee = fees(agency, year, v, attempt)
                t = {**texts(agency, year, v, attempt), **{k: val for k, val in fee.items() if k.startswith("TXT_")}}
                if acceptable(year, t):
                    break
            else:  # pragma: no cover - the pools are large enough
                raise RuntimeError(f"no distinct texts for {agency.name} {year}")
            seen.update(p for val in t.values() for p in val.split("\n"))
            for name, val in t.items():
                if len(_WS.sub("", val)) >= SIMILARITY_MIN_CHARS:
                    history.setdefault(name, []).append(shingles(val))
            out[(agency.code, year)] = {**cover(agency, year), **v, **fee, **t}
            previous = v
    return out


def input_values(values: Mapping[str, object], skip: frozenset[str] = frozenset()) -> dict[str, object]:
    """What an agency types in: every input cell and field, no computed cell, nothing the template pre-fills."""
    prefilled = {f.name for f in spec.FIELDS if f.prefilled}
    return {k: val for k, val in values.items()
            if k not in skip and k not in prefilled and not (k in spec.CELL and spec.CELL[k].computed)}


def workbook_name(agency: Agency, year: int) -> str:
    return f"{agency.name}{year}年报.xlsx"


def county_toml(county: County) -> str:
    lines = ["# 示例县：nianbao 的样例工作目录（由 examples/make_sample.py 生成，请勿手工修改）"]
    for key in ("name", "government", "office", "address", "postcode", "phone", "publish_channel", "publish_url"):
        lines.append(f"{key} = {json.dumps(getattr(county, key), ensure_ascii=False)}")  # a valid TOML string
    return "\n".join(lines) + "\n"


def agencies_csv(agencies: tuple[Agency, ...]) -> str:
    cols = ["code", "name", "category", "contact_office", "address", "postcode", "phone", "publish_channel",
            "publish_url"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for a in agencies:
        w.writerow([getattr(a, c) for c in cols])
    return buf.getvalue()


def write(out: Path) -> list[Path]:
    """Write the sample county into ``out``; returns the files written."""
    from pipeline import template
    from pipeline.ooxml import atomic_write_bytes, save_workbook

    out = Path(out)
    written = [
        atomic_write_bytes(out / "county.toml", county_toml(COUNTY).encode("utf-8")),
        atomic_write_bytes(out / "agencies.csv", agencies_csv(AGENCIES).encode("utf-8")),
    ]
    data = generate()
    carried_in = frozenset(c3(T3_CARRIED_IN, col) for col in T3_COLS)
    for agency in AGENCIES:
        previous = None
        for year in YEARS:
            values = data[(agency.code, year)]
            wb = template.build_workbook(year, agency, previous)
            template.fill(wb, input_values(values, skip=carried_in if previous else frozenset()))
            written.append(save_workbook(wb, out / str(year) / workbook_name(agency, year)))
            previous = {c.name: values[c.name] for c in spec.CELLS}
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="生成示例县的样例工作目录（两年的填报工作簿）")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="输出目录（默认 examples/sample_county）")
    args = ap.parse_args(argv)
    files = write(args.out)
    print(f"已生成 {len(files)} 个文件：{args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
