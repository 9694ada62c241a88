"""Word reports: one per agency that passed, and the county summary (docxtpl).

Contexts are built by pure functions (``agency_context``, ``county_context``) and tested as data; docxtpl only
fills ``pipeline/templates/agency.docx`` / ``county.docx`` (built from the spec by ``templates/build.py``).
Agency text is sanitised here (control characters, lone surrogates, non-characters) and escaped by docxtpl
(``autoescape=True``); every "\\n"-separated paragraph of a text field becomes its own Word paragraph.
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from decimal import Decimal
from pathlib import Path

from . import fastdocx, ooxml, parallel, spec
from .model import AgencyData, FeeTotals, Number, Rollup
from .ooxml import MAX_FILE_NAME_BYTES, sanitise
from .workspace import SIGNATURE_DEFAULT, Agency, County

TEMPLATES = Path(__file__).resolve().parent / "templates"
AGENCY_TEMPLATE = TEMPLATES / "agency.docx"  # the shipped templates of the 2021 format (templates/build.py)
COUNTY_TEMPLATE = TEMPLATES / "county.docx"


@spec.per_format
def templates() -> tuple[Path, Path]:
    """The (agency, county) Word templates of the current format: the shipped ones for 2021, which an office may
    restyle; for any other format, built from its definition by templates/build.py once per format and machine
    (a folder under the system's temporary folder named by the format's version and content)."""
    if spec.current() is spec.FORMAT_2021:
        return AGENCY_TEMPLATE, COUNTY_TEMPLATE
    import hashlib
    import json
    import tempfile

    from pipeline.templates import build

    fmt = spec.current()
    digest = hashlib.sha256(json.dumps(fmt.as_json(), ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / f"nianbao-templates-{os.getuid() if hasattr(os, 'getuid') else 0}"
    folder = folder / f"{safe_filename(fmt.FORMAT_VERSION)}-{digest}"
    agency, county = folder / AGENCY_TEMPLATE.name, folder / COUNTY_TEMPLATE.name
    if not (agency.is_file() and county.is_file()):
        folder.mkdir(parents=True, exist_ok=True)
        build.build(folder)  # written atomically: a concurrent run sees the old file or the new one
    return agency, county
L = spec.SUMMARY_LABELS

CN_NUMERALS = "一二三四五六七八九十"
LAW = "《中华人民共和国政府信息公开条例》"
#: Section 一's sub-items (（一）…（五）) and section 五's, by text field, in order.
GENERAL_FIELDS = ("TXT_proactive", "TXT_on_request", "TXT_management", "TXT_platform", "TXT_oversight")
IMPROVEMENT_FIELDS = ("TXT_problems", "TXT_improvements")

# ------------------------------------------------------------------------------------------------- text

def paragraphs(text: object) -> tuple[str, ...]:
    """Sanitised, non-empty, stripped paragraphs of a text field ("\\n" separates paragraphs)."""
    return tuple(p.strip() for p in sanitise(text).split("\n") if p.strip())


def fmt(value: Number | None) -> str:
    """A table figure as printed: integers plainly, 万元 exactly (Decimal, no exponent, no trailing zeros:
    1.7860 is printed 1.786, 2.0000 is 2)."""
    if value is None:
        return "0"
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            value = value.to_integral_value()
        elif value.as_tuple().exponent < 0:
            value = value.normalize()
        s = format(value, "f")
        return "0" if s in ("-0", "") else s
    return str(int(value))


def yuan(value: Number | None) -> str:
    """An amount in 元 as money is written: whole yuan plainly, else to the fen (200.5 → 200.50), never cut."""
    s = fmt(value)
    whole, _, frac = s.partition(".")
    return s if not frac or len(frac) >= 2 else f"{whole}.{frac}0"


def cn_number(i: int) -> str:
    """1 → 一 … 10 → 十 (enough for sub-item numbering)."""
    return CN_NUMERALS[i - 1] if 1 <= i <= len(CN_NUMERALS) else str(i)


def percent(rate: Decimal | None) -> str:
    """A rate of change as printed: signed, one decimal; no change is 0.0% (never +0.0% or -0.0%)."""
    if rate is None:
        return "—"
    s = f"{rate * 100:+.1f}%"
    return "0.0%" if s in ("+0.0%", "-0.0%") else s


def signed(value: Number) -> str:
    s = fmt(value)
    return s if s.startswith("-") or s == "0" else "+" + s


# ------------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class LeadParagraph:
    lead: str  # '（一）主动公开情况。' on the first paragraph of a sub-item, '' on the others
    text: str


@dataclass(frozen=True)
class SubSection:
    heading: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class ReportContext:
    """What the agency template needs (the county template adds the fields of CountyContext)."""

    title_lines: tuple[str, ...]  # the title as printed, line by line (title_lines): the lines join to ``title``
    opening: tuple[str, ...]
    overview: tuple[str, ...]
    general_items: tuple[LeadParagraph, ...]
    improvement_items: tuple[SubSection, ...]
    other_matters: tuple[str, ...]
    v: Mapping[str, str]  # every spec cell name → printed figure
    signature: tuple[str, ...] = ()  # the lines of the signature block (name, date), or none

    @property
    def title(self) -> str:
        return "".join(self.title_lines)

    def as_dict(self) -> dict:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


@dataclass(frozen=True)
class Chart:
    """A chart of the county summary: its caption without number (the document numbers the charts it draws:
    图1, 图2 …), how it is drawn, its labels and (legend, values) series.

    kind: ``barh`` one horizontal bar per label; ``bar`` one vertical bar per label; ``grouped`` horizontal
    bars, one per series for each label, on one panel per (title, number of labels) of ``panels`` (each with
    its own scale: measures of different magnitude are never drawn on one axis)."""

    key: str
    caption: str
    kind: str  # barh / bar / grouped
    labels: tuple[str, ...]
    series: tuple[tuple[str, tuple[float, ...]], ...]  # (legend, values)
    panels: tuple[tuple[str, int], ...] = ()  # grouped: (panel title, how many of ``labels``), in order


@dataclass(frozen=True)
class CountyContext(ReportContext):
    draft: bool = False
    draft_label: str = ""
    draft_notes: tuple[str, ...] = ()
    breakdown: tuple[dict, ...] = ()
    key_total: Mapping[str, str] = field(default_factory=dict)
    categories: tuple[dict, ...] = ()
    category_total_count: str = "0"
    yoy: tuple[dict, ...] = ()
    yoy_missing: str = ""
    yoy_scope: str = ""  # 同比口径：两年均有报表的N个单位 (with those left out), under the year-on-year table
    completeness_summary: tuple[str, ...] = ()
    completeness: tuple[dict, ...] = ()
    charts: tuple[Chart, ...] = ()

    def as_dict(self) -> dict:  # the county summary has no signature block (the agency reports' option)
        return {f: getattr(self, f) for f in self.__dataclass_fields__ if f != "signature"}


# ------------------------------------------------------------------------------------------------- agency


def report_title(name: str, year: int) -> str:
    return f"{sanitise(name).strip()}{year}{spec.REPORT_TITLE_SUFFIX}"


def _county_mark() -> str:
    return f"（{L['county_summary']}）"


def county_title(county: str, year: int) -> str:
    """The county summary's title: the format's title followed by （全县汇总）, so that it never reads as the report
    of the county government itself (示例县人民政府2024年…年度报告, one of the agencies summed)."""
    return report_title(county, year) + _county_mark()


def county_title_lines(county: str, year: int) -> tuple[str, ...]:
    """The county title as printed: the format's title (title_lines), then （全县汇总） on a line of its own."""
    return title_lines(county, year) + (_county_mark(),)


#: The title's line (方正小标宋 二号 on the 156 mm text width holds 20 characters): lines of at most this many
#: full-width characters are preferred, a Latin letter or digit counting half; up to TITLE_LINE_MAX where a name
#: has no word break that fits, and only a name with no break at all within a line is cut inside a word.
TITLE_LINE_CHARS = 18
TITLE_LINE_MAX = 20
#: The words after which a long name may break (the end of an administrative area or of a body's name) …
_NAME_WORD_ENDS = (
    "人民政府", "委员会", "办公室", "办事处", "联合会", "政府", "街道", "社区", "中心", "公司", "集团", "协会",
    "会议", "省", "市", "县", "区", "旗", "州", "盟", "镇", "乡", "村", "局", "委", "办", "厅", "院", "站", "所",
    "队", "处", "部", "馆", "校", "会",
)
#: … unless the two characters around the break make one word (市场, 乡镇, 办公, 委员, 部门, 会议 …) or join a body
#: to its own office or committee (…委员会|办公室, …人民政府|办公室, …县|委员会).
_NOT_A_BREAK = frozenset((
    "市场", "市民", "县域", "县级", "区域", "区级", "市级", "乡村", "乡镇", "乡建", "镇村", "村镇", "村民", "办公", "委员",
    "部门", "会议", "会计", "会展", "所属", "处理", "院校", "站点", "队伍", "局部", "馆藏", "校园", "州府", "省级",
    "办理", "政府", "中心", "会办", "府办", "局办", "县委", "市委", "区委", "省委", "镇委", "乡委", "州委",
))


def _width(text: str) -> float:
    return sum(0.5 if ord(ch) < 0x2E80 else 1.0 for ch in text)


def name_breaks(name: str) -> tuple[int, ...]:
    """The positions inside ``name`` where a line may break: after one of its words (_NAME_WORD_ENDS)."""
    out = []
    for i in range(1, len(name)):
        if name[i - 1:i + 1] in _NOT_A_BREAK:
            continue
        if any(name[:i].endswith(w) for w in _NAME_WORD_ENDS):
            out.append(i)
    return tuple(out)


def _set_name(name: str, limit: float) -> tuple[int, int, float, tuple[int, ...]]:
    """(cuts inside a word, lines, widest line, break positions) of the best way to set ``name`` in lines of at
    most ``limit``: fewest cuts inside a word, then fewest lines, then the most even."""
    cuts = name_breaks(name)

    @cache
    def best(start: int) -> tuple[int, int, float, tuple[int, ...]]:
        if _width(name[start:]) <= limit:
            return 0, 1, _width(name[start:]), ()
        options = []
        for c in cuts:
            if c > start and _width(name[start:c]) <= limit:
                hard, n, w, more = best(c)
                options.append((hard, n + 1, max(w, _width(name[start:c])), (c,) + more))
        if not options:  # no word break within a line: cut where the line is full
            c = start + 1
            while c < len(name) and _width(name[start:c + 1]) <= limit:
                c += 1
            hard, n, w, more = best(c)
            options.append((hard + 1, n + 1, max(w, _width(name[start:c])), (c,) + more))
        return min(options)

    return best(0)


def title_lines(name: str, year: int) -> tuple[str, ...]:
    """The title's lines: one line when the whole title fits; else the name, then the year and
    "年政府信息公开工作年度报告" — a name longer than a line broken after its words (name_breaks), in as few and
    as even lines as possible."""
    name = sanitise(name).strip()
    rest = f"{year}{spec.REPORT_TITLE_SUFFIX}"
    if not name or _width(name + rest) <= TITLE_LINE_CHARS:
        return (name + rest,)
    setting = _set_name(name, TITLE_LINE_CHARS)
    if setting[0]:
        setting = min(setting, _set_name(name, TITLE_LINE_MAX))
    bounds = (0,) + setting[3] + (len(name),)
    return tuple(name[a:b] for a, b in zip(bounds, bounds[1:])) + (rest,)


#: A signature line: 三号 on the text width less the date's 右空四字 holds 23 characters.
SIGNATURE_LINE_CHARS = 22


def signature_lines(name: str, date: str) -> tuple[str, ...]:
    """The signature block: the agency's name (a long one broken after a word, as the title) and its 填报日期
    written out (2025-01-15 → 2025年1月15日; any other text as typed; no date line when blank)."""
    m = re.fullmatch(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?", date.strip())
    if m:
        date = f"{int(m[1])}年{int(m[2])}月{int(m[3])}日"
    name = name.strip()
    bounds = (0,) + _set_name(name, SIGNATURE_LINE_CHARS)[3] + (len(name),) if name else (0, 0)
    return tuple(x for x in [name[i:j] for i, j in zip(bounds, bounds[1:])] + [date.strip()] if x)


def _six_parts() -> str:
    return f"{'、'.join(s.title for s in spec.SECTIONS)}等{spec.SECTIONS[-1].number}部分"


def opening_paragraph(title: str, year: int, *, office: str, channel: str, url: str, address: str,
                      postcode: str, phone: str, compiled: str = "完成编制", scope: str = "") -> str:
    """The opening paragraph as in published reports: legal basis, parts, period, where published, contact."""
    s = f"根据{LAW}要求，现发布《{title}》，"
    if office:
        s += f"本报告由{office}{compiled}，"
    s += scope
    s += f"由{_six_parts()}组成。报告中所列数据统计期限为{year}年1月1日到12月31日。"
    where = f"{channel}（{url}）" if channel and url else (channel or url)
    contact = "，".join(
        f"{k}：{v}" for k, v in ((spec.FIELD["INFO_address"].label, address), ("邮编", postcode),
                                 (spec.FIELD["INFO_phone"].label, phone)) if v
    )
    if where:
        s += f"本年度报告可在{where}查阅或下载"
        s += "，" if (office or contact) else "。"
    if office or contact:
        s += "如有疑问请" + (f"与{office}联系" if office else "联系") + (f"（{contact}）" if contact else "") + "。"
    return s


def _field(a: AgencyData, roster: Agency | None, key: str) -> str:
    v = sanitise(a.text(f"INFO_{key}")).strip()
    if not v and roster is not None:
        v = sanitise(getattr(roster, key, "")).strip()
    return v.replace("\n", " ")


def _lead_items(texts: Sequence[tuple[str, Sequence[str]]]) -> tuple[LeadParagraph, ...]:
    """(label, paragraphs) → '（一）label。' + first paragraph, further paragraphs without lead; items without
    text are left out and the rest numbered consecutively."""
    out: list[LeadParagraph] = []
    n = 0
    for label, paras in texts:
        if not paras:
            continue
        n += 1
        out.append(LeadParagraph(f"（{cn_number(n)}）{label}。", paras[0]))
        out += [LeadParagraph("", p) for p in paras[1:]]
    return tuple(out)


def fee_paragraphs(a: AgencyData) -> tuple[str, ...]:
    """Section 六's report of the 信息处理费 (国办函〔2020〕109号): figures when charged, the agency's note.

    Only what the agency answered is stated: 否 → 未收取 (unless its note says it); a blank (or invalid) answer
    → its note alone, or nothing."""
    answer = sanitise(a.text("FEE_fee_charged")).strip()
    note = paragraphs(a.fields.get("TXT_fee_note"))
    if answer == spec.NO:
        return note or ("本年度未收取信息处理费。",)
    if answer != spec.YES:
        return note
    parts = []
    notices, amount, collected = (a.fields.get(f"FEE_{k}") for k in ("fee_notices", "fee_notice_amount",
                                                                        "fee_collected"))
    if notices is not None:
        parts.append(f"发出收费通知{fmt(notices)}件")
    if amount is not None:
        parts.append(f"通知金额{yuan(amount)}元")
    if collected is not None:
        parts.append(f"实际收取信息处理费{yuan(collected)}元")
    first = ("本年度" + "，".join(parts) + "。") if parts else "本年度收取了信息处理费。"
    return (first,) + note


def values_context(values: Mapping[str, Number]) -> dict[str, str]:
    return {c.name: fmt(values.get(c.name)) for c in spec.CELLS}


def agency_context(a: AgencyData, roster: Agency | None = None, *,
                   signature: bool = SIGNATURE_DEFAULT) -> ReportContext:
    """The context of one agency's report (pure); ``signature``: end with the name and 填报日期 (county.toml)."""
    name = _field(a, roster, "agency_name") or sanitise(a.name)
    title = report_title(name, a.year)
    opening = opening_paragraph(
        title,
        a.year,
        office=_field(a, roster, "contact_office"),
        channel=_field(a, roster, "publish_channel"),
        url=_field(a, roster, "publish_url"),
        address=_field(a, roster, "address"),
        postcode=_field(a, roster, "postcode"),
        phone=_field(a, roster, "phone"),
    )
    general = _lead_items([(spec.FIELD[f].label, paragraphs(a.fields.get(f))) for f in GENERAL_FIELDS])
    improvements = tuple(
        SubSection(f"（{cn_number(i)}）{spec.FIELD[f].label}。", paragraphs(a.fields.get(f)) or ("无。",))
        for i, f in enumerate(IMPROVEMENT_FIELDS, start=1)
    )
    other = fee_paragraphs(a) + (paragraphs(a.fields.get("TXT_other_matters")) or ("无。",))
    return ReportContext(
        title_lines=title_lines(name, a.year),
        opening=(opening,),
        overview=paragraphs(a.fields.get("TXT_overview")),
        general_items=general,
        improvement_items=improvements,
        other_matters=other,
        v=values_context(a.values),
        signature=signature_lines(name, _field(a, roster, "fill_date")) if signature else (),
    )


# ------------------------------------------------------------------------------------------------- county


def _change_phrase(cur: Number, prev: Number, unit: str = "件") -> str:
    d = cur - prev
    if d == 0:
        return "与上年持平"
    word = "增加" if d > 0 else "减少"
    s = f"同比{word}{fmt(abs(d))}{unit}"
    if prev:
        s += f"（{'增长' if d > 0 else '下降'}{abs(Decimal(d) / Decimal(prev) * 100):.1f}%）"
    return s


def _category_scope(r: Rollup) -> str:
    parts = [f"{c.category}{c.agencies}个" for c in r.by_category if c.agencies]
    return "、".join(parts)


def county_data_paragraphs(r: Rollup) -> dict[str, tuple[str, ...]]:
    """Paragraphs generated from the county figures, by where they go: overview, proactive, on_request, appeals,
    fees."""
    t, k = r.totals, r.key
    n = len(r.agencies)
    scope = _category_scope(r)
    # the labels the paragraphs name, from the format's nodes
    row, col = spec.row_node, spec.column_node
    recon, litigation = row("四", "reconsideration"), row("四", "litigation")
    direct, after = litigation.children
    corrected, t4_total = col("四", "corrected"), col("四", "total")
    carried_in, carried_over = row("三", "carried_in"), row("三", "carried_over")
    t3_total = next(leaf for top in spec.current().definition.t3_columns for leaf in top.leaves() if leaf.total_of)
    overview = (
        f"{r.year}年，全县共有{n}个单位报送政府信息公开工作年度报告并通过审核"
        + (f"（{scope}）" if scope else "")
        + f"，本报告汇总了上述单位的主动公开、依申请公开和{recon.label}、{litigation.label}数据。",
    )
    g = spec.CELL
    c2 = spec.cell_name
    docs, fees = g[c2("二", "normative_documents", "issued")], g[c2("二", "fees", "amount")]
    issued, in_force = col("二", "issued"), col("二", "in_force")
    proactive = ((
        f"全县共主动公开{docs.row}：{issued.short}{fmt(t[docs.name])}件、"
        f"废止{fmt(t[c2('二', 'normative_documents', 'repealed')])}件，"
        f"{in_force.short}{fmt(t[c2('二', 'normative_documents', 'in_force')])}件；"
        f"作出{g['T2_licensing_decisions'].row}决定{fmt(t['T2_licensing_decisions'])}件、"
        f"{g['T2_penalties_decisions'].row}决定{fmt(t['T2_penalties_decisions'])}件、"
        f"{g['T2_enforcement_decisions'].row}决定{fmt(t['T2_enforcement_decisions'])}件；"
        f"{fees.row}{fmt(t[fees.name])}{fees.unit}。"
    ),)
    new = k["new"]
    s = f"全县共收到政府信息公开申请{fmt(new)}件"
    if r.previous_key is not None and r.yoy_key is not None:
        if r.yoy_without:  # not every agency summed has last year's figures: the change is over those that do
            s += f"；按两年均有报表的{len(r.yoy_agencies)}个单位计，{_change_phrase(r.yoy_key['new'], r.previous_key['new'])}"
        else:
            s += f"，{_change_phrase(new, r.previous_key['new'])}"
    s += f"；{carried_in.short}{fmt(t[c2('三', carried_in.key, t3_total.key)])}件。"
    labels = {kf.key: kf.label for kf in spec.KEY_FIGURES}
    outcome = "、".join(f"{labels[o]}{fmt(k[o])}件" for o in spec.OUTCOME_KEYS)
    s2 = f"办理结果：{outcome}，{carried_over.bare}{fmt(k['carried_over'])}件。"
    on_request = (s, s2)
    rec, lit = k["reconsideration"], k["litigation"]
    appeals = ((
        f"全县因政府信息公开被申请{recon.label}{fmt(rec)}件，其中{corrected.label}{fmt(k['reconsideration_corrected'])}件；"
        f"被提起{litigation.label}{fmt(lit)}件（{direct.label}{fmt(t[c2('四', direct.key, t4_total.key)])}件、"
        f"{after.label}{fmt(t[c2('四', after.key, t4_total.key)])}件），"
        f"其中{corrected.label}{fmt(k['litigation_corrected'])}件。"
    ),)
    return {"overview": overview, "proactive": proactive, "on_request": on_request, "appeals": appeals}


def county_fee_paragraph(fees: FeeTotals) -> str:
    """What the agencies answered: an agency that left 本年是否收取信息处理费 blank is named, never counted as 否."""
    unknown = ""
    if fees.unanswered:
        unknown = f"{'、'.join(sanitise(n) for n in fees.unanswered)}未报告是否收取信息处理费"
    if not fees.charged:
        if unknown:
            return f"本年度{unknown}，其余单位均未收取信息处理费。"
        return "本年度全县各单位均未收取信息处理费。"
    names = "、".join(sanitise(n) for n in fees.charged)
    return (f"本年度全县共有{len(fees.charged)}个单位（{names}）收取信息处理费，发出收费通知{fees.notices}件，"
            f"通知金额{yuan(fees.notice_amount)}元，实际收取{yuan(fees.collected)}元" + (f"；{unknown}。" if unknown
                                                                                   else "。"))


def _entry_names(entries) -> str:
    return "、".join(sanitise(e.name) for e in entries)


def county_context(r: Rollup, county: County) -> CountyContext:
    """The context of the county summary (pure)."""
    name = sanitise(county.name).strip()
    title = county_title(name, r.year)
    office = sanitise(county.office).strip()
    scope = f"汇总了全县{len(r.agencies)}个单位的年度报告数据，"
    opening = opening_paragraph(
        title, r.year, office=office, channel=sanitise(county.publish_channel).strip(),
        url=sanitise(county.publish_url).strip(), address=sanitise(county.address).strip(),
        postcode=sanitise(county.postcode).strip(), phone=sanitise(county.phone).strip(),
        compiled="汇总编制", scope=scope,
    )
    data = county_data_paragraphs(r)
    own = r.county_agency

    def own_paras(name: str) -> tuple[str, ...]:
        """The 本级 agency's own text, said to be its own (never passed off as the county's)."""
        paras = paragraphs(own.fields.get(name)) if own is not None else ()
        if not paras:
            return ()
        return (f"据{sanitise(own.name)}年度报告：{paras[0]}",) + paras[1:]

    # Where the county has figures (the overview, 主动公开, 依申请公开) it says the county's figures only: an agency's
    # own paragraph there (its 本年制发3件 after the county's 19) would read as the county's. Elsewhere the 本级
    # agency's text is quoted as its own.
    general_texts = []
    for f in GENERAL_FIELDS:
        if f == "TXT_proactive":
            paras = data["proactive"]
        elif f == "TXT_on_request":
            paras = data["on_request"] + data["appeals"]
        else:
            paras = own_paras(f)
        general_texts.append((spec.FIELD[f].label, paras))
    improvements = tuple(
        SubSection(f"（{cn_number(i)}）{spec.FIELD[f].label}。", own_paras(f) or ("无。",))
        for i, f in enumerate(IMPROVEMENT_FIELDS, start=1)
    )
    other = (county_fee_paragraph(r.fees),) + (own_paras("TXT_other_matters") or ("无。",))

    c = r.completeness
    draft = not c.complete
    notes: list[str] = []
    if draft:
        notes.append(
            f"本汇总报告为草稿：名册共{c.roster}个单位，已报送{c.submitted}个，校验通过{c.passed}个；"
            "汇总数据只包含校验通过的单位，全部单位通过后方可定稿发布。"
        )
        if c.missing:
            notes.append(f"{L['missing']}（{len(c.missing)}个）：{_entry_names(c.missing)}。")
        if c.failed:
            notes.append(f"{L['failed']}（{len(c.failed)}个）：{_entry_names(c.failed)}。")
    for label in (L["not_in_roster"], L["unattributed"]):
        extra = [e for e in c.not_in_roster if e.status == label]
        if extra:
            notes.append(f"{label}、未计入汇总（{len(extra)}个）：{_entry_names(extra)}。")

    def key_strs(values: Mapping[str, Number]) -> dict[str, str]:
        return {kf.key: fmt(values[kf.key]) for kf in spec.KEY_FIGURES}

    breakdown = tuple({"name": sanitise(a.name), "code": sanitise(a.code), "k": key_strs(a.key)} for a in r.agencies)
    categories = tuple({"category": ct.category, "count": str(ct.agencies), "k": key_strs(ct.key)}
                       for ct in r.by_category)
    yoy = tuple(
        {"label": y.label, "unit": yoy_unit(y.key), "current": fmt(y.current), "previous": fmt(y.previous),
         "change": signed(y.change), "rate": percent(y.rate)}
        for y in r.yoy
    )
    completeness_rows = tuple(
        {"name": sanitise(e.name), "code": sanitise(e.code), "category": sanitise(e.category), "status": e.status}
        for e in c.entries
    )
    summary = (
        f"名册共{c.roster}个单位，{L['submitted']}{c.submitted}个（报送率{c.submission_rate * 100:.1f}%），"
        f"{L['passed']}{c.passed}个（通过率{c.pass_rate * 100:.1f}%）"
        + (f"，{L['missing']}{len(c.missing)}个" if c.missing else "")
        + (f"，{L['failed']}{len(c.failed)}个" if c.failed else "")
        + "。",
    )
    return CountyContext(
        title_lines=county_title_lines(name, r.year),
        opening=(opening,),
        overview=data["overview"],
        general_items=_lead_items(general_texts),
        improvement_items=improvements,
        other_matters=other,
        v=values_context(r.totals),
        draft=draft,
        draft_label=L["draft"],
        draft_notes=tuple(notes),
        breakdown=breakdown,
        key_total=key_strs(r.key),
        categories=categories,
        category_total_count=str(len(r.agencies)),
        yoy=yoy,
        yoy_missing="" if yoy else f"未找到{r.year - 1}年度数据，未作同比。",
        yoy_scope=sanitise(r.yoy_scope()),
        completeness_summary=summary,
        completeness=completeness_rows,
        charts=county_charts(r),
    )


def key_figure_unit(key: str) -> str:
    """The unit of a key figure (件), from its cells."""
    kf = next(k for k in spec.KEY_FIGURES if k.key == key)
    return spec.CELL[kf.cells[0]].unit


def yoy_unit(key: str) -> str:
    """The unit of a year-on-year row (aggregate.year_on_year): its table 二 cell's (件, 万元) or key figure's."""
    return spec.CELL[key].unit if key in spec.CELL else key_figure_unit(key)


#: The bar chart of applications per agency shows at most this many agencies (the most applications first),
#: fewer when their names need more lines than a page holds (``shown_agencies``).
CHART_MAX_AGENCIES = 30


def shown_agencies(r: Rollup) -> tuple[list, bool]:
    """(agencies, cut) of the applications chart: every agency when all fit on the page at the charts' type size
    (CHART_MAX_AGENCIES at most), else those with the most applications that fit (ties: roster order)."""
    agencies = list(r.agencies)
    if len(agencies) <= CHART_MAX_AGENCIES and _barh_height_in(sanitise(a.name) for a in agencies) <= CHART_MAX_H_IN:
        return agencies, False
    ranked = sorted(agencies, key=lambda a: -a.key["new"])[:CHART_MAX_AGENCIES]
    n = len(ranked)
    while n > 1 and _barh_height_in(sanitise(a.name) for a in ranked[:n]) > CHART_MAX_H_IN:
        n -= 1
    return ranked[:n], True


def county_charts(r: Rollup) -> tuple[Chart, ...]:
    labels = {kf.key: kf.label for kf in spec.KEY_FIGURES}
    shown, cut = shown_agencies(r)
    caption = L["chart_applications"]
    if cut:
        caption += f"（{labels['new']}最多的{len(shown)}个单位）"
    charts = [
        Chart("applications", caption, "barh",
              tuple(sanitise(a.name) for a in shown),
              ((labels["new"], tuple(float(a.key["new"]) for a in shown)),)),
    ] if shown else []  # no agency passed: no bar to draw
    charts.append(Chart("outcomes", L["chart_outcomes"], "bar",
                        tuple(labels[o] for o in spec.OUTCOME_KEYS),
                        ((str(r.year), tuple(float(r.key[o]) for o in spec.OUTCOME_KEYS)),)))
    if r.previous_key is not None and r.yoy_key is not None:
        # one panel per table the figures come from (三: applications, in tens or hundreds; 四: appeals, a few),
        # each with its own scale
        panels: list[tuple[str, list[str]]] = []
        for kf in spec.KEY_FIGURES:
            title = spec.SECTION[spec.CELL[kf.cells[0]].table].title
            if not panels or panels[-1][0] != title:
                panels.append((title, []))
            panels[-1][1].append(kf.key)
        keys = [k for _, ks in panels for k in ks]
        caption = L["chart_yoy"] + (f"（两年均有报表的{len(r.yoy_agencies)}个单位）" if r.yoy_without else "")
        charts.append(
            Chart("yoy", caption, "grouped", tuple(labels[k] for k in keys),
                  ((f"{r.year - 1}年", tuple(float(r.previous_key[k]) for k in keys)),
                   (f"{r.year}年", tuple(float(r.yoy_key[k]) for k in keys))),
                  tuple((title, len(ks)) for title, ks in panels)))
    return tuple(charts)


# ------------------------------------------------------------------------------------------------- charts


#: The font the charts are drawn with wherever nianbao is installed: Noto Sans SC Regular (Noto Sans CJK 2.004,
#: Simplified Chinese subset, SIL Open Font License 1.1) from the ``pylopdf-fonts-zh-cn`` package, a dependency in
#: pyproject.toml (the README says why this one). It is preferred to any font on the machine, so a chart is the
#: same bytes on every machine; on one with fonts-noto-cjk they are also the bytes its SC face gives.
SHIPPED_CHART_FONT = ("pylopdf_fonts_zh_cn", "sans_path")
#: Without it (installed without dependencies), a font of the machine, by family name, best first: Simplified
#: Chinese faces, then other CJK faces. A .ttc collection holds several faces (NotoSansCJK-Regular.ttc: face 0 is
#: JP, face 2 SC): the face itself is chosen.
CHART_FONT_FAMILIES = (
    "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN", "Noto Serif CJK SC",
    "Noto Serif SC", "Source Han Serif SC", "Source Han Serif CN", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
    "SimHei", "Microsoft YaHei", "Droid Sans Fallback", "Noto Sans CJK TC", "Noto Sans CJK HK", "Noto Sans CJK JP",
    "Noto Sans CJK KR", "Noto Serif CJK TC", "Noto Serif CJK JP", "Noto Serif CJK KR",
)
_REGULAR_STYLES = ("regular", "book", "normal", "roman")
#: Font files worth opening to look at their faces (opening every system font would take seconds).
_CJK_FILE = re.compile(r"cjk|sourcehan|wqy|wenquanyi|droidsansfallback|simhei|yahei|msyh|notosanssc|notoserifsc"
                       r"|notosans-?sc|notoserif-?sc|[-_]sc[-_.]", re.IGNORECASE)
#: The chosen face is registered with matplotlib under this family name followed by a digest of its file and face
#: index (``chart_font_family``), and used for every text of a chart.
CHART_FONT_NAME = "nianbao chart font"


class ChartFontError(ooxml.OutputError):
    """A chart would be drawn with boxes for Chinese characters (no CJK font, or one lacking a character): it is
    not drawn. The county summary is written without it (and its caption); the message (Chinese, saying what to
    do) becomes a warning of the run (console and manifest), never a stop."""


def _faces(path: str) -> list[tuple[int, str, str, bool]]:
    """(face index, family, style, has 中) of each face of a font file."""
    from matplotlib import ft2font

    try:
        first = ft2font.FT2Font(path)
    except (OSError, RuntimeError, ValueError):
        return []
    out = []
    for i in range(first.num_faces):
        try:
            face = first if i == 0 else ft2font.FT2Font(path, face_index=i)
        except (OSError, RuntimeError, ValueError, TypeError):
            continue
        out.append((i, face.family_name or "", face.style_name or "", face.get_char_index(ord("中")) != 0))
    return out


def shipped_chart_font() -> tuple[str, int] | None:
    """(file, face index) of the chart font installed with nianbao's dependencies (``SHIPPED_CHART_FONT``), or
    None when that package is missing or its file holds no CJK face."""
    import importlib

    module, function = SHIPPED_CHART_FONT
    try:
        path = str(getattr(importlib.import_module(module), function)())
    except (ImportError, AttributeError, OSError):
        return None
    faces = [i for i, _, _, has_cjk in _faces(path) if has_cjk] if os.path.isfile(path) else []
    return (path, faces[0]) if faces else None


def system_chart_font() -> tuple[str, int] | None:
    """(file, face index) of the best CJK face among the font files on this machine, or None.

    Chosen from the files, sorted, by ``CHART_FONT_FAMILIES`` (then regular style, then path and face): the same
    face on every run, whatever matplotlib's font cache (built before the fonts were installed, or listing them in
    another order) holds.
    """
    from matplotlib import font_manager

    rank = {name.casefold(): i for i, name in enumerate(CHART_FONT_FAMILIES)}
    best: tuple | None = None
    for path in sorted(set(font_manager.findSystemFonts())):
        if not _CJK_FILE.search(os.path.basename(path)):
            continue
        for index, family, style, has_cjk in _faces(path):
            if not has_cjk:
                continue
            key = (rank.get(family.casefold(), len(rank)), style.casefold() not in _REGULAR_STYLES, path, index)
            if best is None or key < best:
                best = key
    return None if best is None else (best[2], best[3])


@cache
def chart_font() -> tuple[str, int] | None:
    """(file, face index) of the CJK face the charts are drawn with: the shipped font (``shipped_chart_font``),
    else the machine's best (``system_chart_font``), else None (then no chart is drawn: ``ChartFontError``)."""
    return shipped_chart_font() or system_chart_font()


def cjk_font_path() -> str | None:
    """The file of the charts' CJK font (``chart_font``), or None."""
    font = chart_font()
    return None if font is None else font[0]


def chart_font_family() -> str:
    """The family name the charts are drawn with: the chart font (``chart_font``) registered with matplotlib as
    the only face of that name; without a CJK font, matplotlib's own DejaVu Sans (not a system copy of it).

    matplotlib's public API only: a ``FontEntry`` in ``fontManager.ttflist`` and the name in rcParams. The name
    carries a digest of the face's file and index, so a name always means one face and ``findfont``'s cache can
    never answer for it with another (no cache to clear). ``addfont`` would register the face under its own
    family, which another file on the machine may share (then the cache's order would choose), and
    ``FontProperties(fname=…)`` reaches only the texts it is given (tick labels are made again when drawn).
    """
    import hashlib

    import matplotlib
    from matplotlib import font_manager

    path, index = chart_font() or (os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf"), 0)
    name = f"{CHART_FONT_NAME} {hashlib.sha256(f'{path}|{index}'.encode()).hexdigest()[:16]}"
    fm = font_manager.fontManager
    if not any(f.name == name for f in fm.ttflist):
        entry = font_manager.FontEntry(fname=path, index=index, name=name, style="normal", variant="normal",
                                       weight=400, stretch="normal", size="scalable")
        fm.ttflist = [f for f in fm.ttflist if not f.name.startswith(CHART_FONT_NAME)] + [entry]
    return name


def chart_text(chart: Chart) -> str:
    """Every character a chart's picture may hold: labels, legends, panel titles, axis titles, values and tick
    numbers."""
    values = "".join(f"{v:g}" for _, vs in chart.series for v in vs)
    return "".join(chart.labels) + "".join(s for s, _ in chart.series) + "".join(t for t, _ in chart.panels) \
        + L["unit_pieces"] + "（）" + values + "0123456789.-+e"


def missing_glyphs(text: str, font: tuple[str, int] | None = None) -> str:
    """The characters of ``text`` (once each, in order; spaces aside) that the font (default: ``chart_font``)
    has no glyph for: all of them when there is no CJK font."""
    from matplotlib import ft2font

    font = font or chart_font()
    chars = dict.fromkeys(c for c in text if not c.isspace())
    if font is None:
        return "".join(c for c in chars if ord(c) > 0x7F)
    face = ft2font.FT2Font(font[0], face_index=font[1])
    return "".join(c for c in chars if face.get_char_index(ord(c)) == 0)


def chart_png(chart: Chart) -> bytes:
    """Draw a chart with a CJK font (PNG, no timestamp metadata); ``ChartFontError`` rather than a chart with
    boxes for characters."""
    missing = missing_glyphs(chart_text(chart))
    if missing:
        font = chart_font()
        where = "未找到中文字体" if font is None else f"图表字体 {os.path.basename(font[0])} 缺少“{missing}”等字"
        todo = ("请重新安装 nianbao 及其依赖（make venv，或 pip install -e .，会安装图表字体包 pylopdf-fonts-zh-cn），"
                "或安装 fonts-noto-cjk 后重新运行。") if font is None else "如需此图，请核对图中文字（如单位名称中的生僻字）后重新运行。"
        raise ChartFontError(
            f"统计图“{chart.caption}”未绘制：{where}，图中文字会显示为方框。该图及其图题已从全县汇总报告中略去，报告其余内容"
            f"不受影响。{todo}")
    log = logging.getLogger("matplotlib.font_manager")  # "findfont: …" lines are noise on the office's console
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        return _draw(chart)
    finally:
        log.setLevel(level)


#: Charts are drawn at the size they are printed (the text is true to its point size on paper): the width of
#: the portrait annex page's text (156 mm, less a margin) and at most this height (its 225 mm, less the annex
#: heading and the caption that stays on the picture's page).
CHART_WIDTH_MM = 150
CHART_MAX_HEIGHT_MM = 185
CHART_MAX_H_IN = CHART_MAX_HEIGHT_MM / 25.4
CHART_DPI = 200
CHART_PT = 9  # labels, ticks, legend, panel titles
CHART_VALUE_PT = 8  # the value printed at the end of each bar
#: A bar's label (an agency's name) is set in lines of at most this many full-width characters, broken after its
#: words (as the titles: name_breaks).
CHART_LABEL_CHARS = 14
_LINE_IN = CHART_PT * 1.25 / 72  # the height of a label's line


def chart_label_lines(label: str) -> tuple[str, ...]:
    """A bar label in lines of at most CHART_LABEL_CHARS (a long name broken after a word where it can be)."""
    if _width(label) <= CHART_LABEL_CHARS:
        return (label,)
    bounds = (0,) + _set_name(label, CHART_LABEL_CHARS)[3] + (len(label),)
    return tuple(label[a:b] for a, b in zip(bounds, bounds[1:]))


_ROW_PAD_IN = 0.09  # between two rows' labels
_AXIS_IN = 0.7  # the value axis, its title and the margins


def _row_heights_in(labels) -> list[float]:
    return [_ROW_PAD_IN + _LINE_IN * len(chart_label_lines(x)) for x in labels]


def _barh_height_in(labels) -> float:
    """The height (inches) of a one-bar-per-label horizontal chart: each row as tall as its label's lines."""
    return _AXIS_IN + sum(_row_heights_in(labels))


def _figsize_in(chart: Chart) -> tuple[float, float]:
    w = CHART_WIDTH_MM / 25.4
    if chart.kind == "barh":
        return w, max(1.6, _barh_height_in(chart.labels))
    if chart.kind == "grouped":
        rows = sum(n for _, n in chart.panels) or len(chart.labels)
        return w, 0.5 + 0.55 * max(1, len(chart.panels)) + rows * (0.12 + 2 * _LINE_IN)
    return w, 3.0


def chart_size_mm(chart: Chart) -> tuple[float, float]:
    """(width, height) in mm of the chart's picture in the document: its drawn size, made smaller (both ways
    alike) only when taller than CHART_MAX_HEIGHT_MM."""
    w, h = (x * 25.4 for x in _figsize_in(chart))
    k = min(1.0, CHART_MAX_HEIGHT_MM / h)
    return round(w * k, 1), round(h * k, 1)


def figure(chart: Chart):
    """The chart as a matplotlib Figure (drawn with the chart font: call within ``_chart_rc``); no label is rotated,
    every bar has its value printed at its end."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig = plt.figure(figsize=_figsize_in(chart), dpi=CHART_DPI, layout="constrained")
    blue, grey = "#2f5597", "#a5a5a5"

    def values_at_ends(ax, bars, values) -> None:
        ax.bar_label(bars, labels=[f"{v:g}" for v in values], padding=2, fontsize=CHART_VALUE_PT)

    def room(ax, values, horizontal: bool) -> None:
        """The value axis from 0 to a little over the largest value (room for the printed values); integers."""
        top = max(values, default=0) or 1
        (ax.set_xlim if horizontal else ax.set_ylim)(0, top * 1.15)
        (ax.xaxis if horizontal else ax.yaxis).set_major_locator(MaxNLocator(integer=True))

    unit = f"（{L['unit_pieces']}）"
    if chart.kind == "barh":
        ax = fig.add_subplot()
        values = chart.series[0][1]
        heights = _row_heights_in(chart.labels)  # the y axis in inches: a row as tall as its label
        ys = [sum(heights[:i]) + h / 2 for i, h in enumerate(heights)]
        bars = ax.barh(ys, values, height=0.16, color=blue)
        ax.set_yticks(ys, ["\n".join(chart_label_lines(x)) for x in chart.labels])
        for t in ax.get_yticklabels():
            t.set_multialignment("right")  # a name's lines end at the axis, as one-line names do
        ax.set_ylim(sum(heights), 0)  # the first label on top
        values_at_ends(ax, bars, values)
        room(ax, values, True)
        ax.set_xlabel(chart.series[0][0] + unit)
        axes = [ax]
    elif chart.kind == "grouped":
        panels = chart.panels or (("", len(chart.labels)),)
        axes = fig.subplots(len(panels), 1, squeeze=False, height_ratios=[n for _, n in panels])[:, 0]
        colors = (grey, blue)
        k = len(chart.series)
        h = 0.8 / k
        start = 0
        for ax, (title, n) in zip(axes, panels):
            labels = chart.labels[start:start + n]
            panel_values = []
            for j, (legend, values) in enumerate(chart.series):
                vs = values[start:start + n]
                panel_values += vs
                ys = [i - 0.4 + h * (j + 0.5) for i in range(n)]
                bars = ax.barh(ys, vs, height=h * 0.9, color=colors[(j + (k == 1)) % len(colors)], label=legend)
                values_at_ends(ax, bars, vs)
            ax.set_yticks(range(n), labels)
            ax.invert_yaxis()
            room(ax, panel_values, True)
            if title:
                ax.set_title(title, loc="left", fontsize=CHART_PT)
            start += n
        axes[-1].set_xlabel(L["unit_pieces"])
        if k > 1:
            fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper right", ncols=k, frameon=False,
                       fontsize=CHART_PT)
    else:
        ax = fig.add_subplot()
        n = len(chart.labels)
        values = chart.series[0][1]
        bars = ax.bar(range(n), values, width=0.6, color=blue)
        ax.set_xticks(range(n), chart.labels)
        values_at_ends(ax, bars, values)
        room(ax, values, False)
        ax.set_ylabel(L["unit_pieces"], rotation=0, loc="top")  # upright, at the top of the axis
        axes = [ax]
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(labelsize=CHART_PT)
        ax.xaxis.label.set_fontsize(CHART_PT)
        ax.yaxis.label.set_fontsize(CHART_PT)
    return fig


def _chart_rc() -> dict:
    return {"axes.unicode_minus": False, "svg.hashsalt": "nianbao", "font.family": [chart_font_family()],
            "font.weight": "normal", "font.style": "normal", "font.stretch": "normal", "font.variant": "normal"}


def _draw(chart: Chart) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context(_chart_rc()):
        fig = figure(chart)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
        plt.close(fig)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------- files

_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


def safe_filename(name: str) -> str:
    return _UNSAFE.sub("_", sanitise(name)).strip(" .") or "_"


def _fit(title: str, tail: str, ext: str) -> str:
    """``title`` + ``ext`` in at most MAX_FILE_NAME_BYTES; a long name is cut before ``tail`` (the year and
    report kind), which is kept."""
    if len((title + ext).encode("utf-8")) <= MAX_FILE_NAME_BYTES:
        return title + ext
    head = title[: len(title) - len(tail)] if title.endswith(tail) else title
    room = max(0, MAX_FILE_NAME_BYTES - len((tail + ext).encode("utf-8")))
    return head.encode("utf-8")[:room].decode("utf-8", "ignore") + tail + ext


def agency_filename(name: str, year: int) -> str:
    return _fit(safe_filename(report_title(name, year)), f"{year}{spec.REPORT_TITLE_SUFFIX}", ".docx")


def county_filename(county: str, year: int) -> str:
    """The county summary's file name: its title (county_title)."""
    return _fit(safe_filename(county_title(county, year)), f"{year}{spec.REPORT_TITLE_SUFFIX}{_county_mark()}", ".docx")


def _plain(obj):
    """Dataclasses → dicts for Jinja (InlineImage and strings pass through)."""
    if isinstance(obj, (LeadParagraph, SubSection)):
        return asdict(obj)
    if isinstance(obj, tuple):
        return [_plain(x) for x in obj]
    return obj


def figure_caption(number: int, caption: str) -> str:
    """A figure's caption as printed below it: 图1　各单位… (numbered in the order the charts are drawn)."""
    return f"{L['figure']}{number}\u3000{caption}"


@dataclass(frozen=True)
class Filled:
    path: Path
    warnings: tuple[str, ...] = ()  # Chinese: the charts left out (ChartFontError's message), one each


def fill(template: Path, context: Mapping[str, object], path: Path) -> Path:
    """docxtpl fills the template (autoescape on) and the document is saved atomically and reproducibly."""
    return fill_document(template, context, path).path


def fill_document(template: Path, context: Mapping[str, object], path: Path) -> Filled:
    """``fill``, saying which charts were left out: a chart that cannot be drawn (ChartFontError) is omitted with
    its caption, the others numbered 图1, 图2 … as they come; with none drawn the charts' annex goes too."""
    from docxtpl import DocxTemplate

    tpl = DocxTemplate(str(template))
    ctx = dict(context)
    omitted: list[str] = []
    if "charts" in ctx:
        from docx.shared import Mm
        from docxtpl import InlineImage

        drawn = []
        for ch in ctx["charts"]:
            try:
                png = chart_png(ch)
            except ChartFontError as e:
                omitted.append(str(e))
                continue
            w, h = chart_size_mm(ch)
            drawn.append({"caption": figure_caption(len(drawn) + 1, ch.caption),
                          "image": InlineImage(tpl, io.BytesIO(png), width=Mm(w), height=Mm(h))})
        ctx["charts"] = drawn
    ctx = {k: _plain(v) for k, v in ctx.items()}
    tpl.render(ctx, autoescape=True)
    if "charts" in ctx and not ctx["charts"]:
        _drop_last_section(tpl.docx)
    return Filled(ooxml.save_document(tpl, path), tuple(omitted))


def _drop_last_section(doc) -> None:
    """Remove the document's last section when it is empty (the charts' annex without a chart): the section
    before it (the annex tables, landscape) becomes the last, so no blank page ends the document."""
    from docx.oxml.ns import qn

    body = doc.element.body
    last = body.find(qn("w:sectPr"))
    breaks = [p for p in body.iterchildren(qn("w:p")) if p.find(qn("w:pPr") + "/" + qn("w:sectPr")) is not None]
    if last is None or not breaks:
        return
    p = breaks[-1]
    if any(el.tag in (qn("w:p"), qn("w:tbl")) for el in p.itersiblings()):
        return  # the last section has content
    sect = p.find(qn("w:pPr") + "/" + qn("w:sectPr"))
    body.replace(last, sect)
    body.remove(p)


# ---- agency reports, many at a time: fastdocx fills one template loaded once per process (plain docxtpl's bytes)


def agency_report_name(a: AgencyData, roster: Agency | None = None) -> str:
    """The file name of an agency's report: its title (the name in its workbook, else the roster's)."""
    return agency_filename(_field(a, roster, "agency_name") or a.name, a.year)


def render_agency(a: AgencyData, out_dir: Path, roster: Agency | None = None,
                  template: Path | None = None, *, filename: str | None = None,
                  signature: bool = SIGNATURE_DEFAULT) -> Path:
    """An agency's report; ``template`` defaults to the current format's (``templates()``); ``signature`` as
    county.toml's (County.signature)."""
    template = template or templates()[0]
    ctx = agency_context(a, roster, signature=signature)
    data = fastdocx.fill(template, {k: _plain(v) for k, v in ctx.as_dict().items()})
    return ooxml.atomic_write_bytes(Path(out_dir) / (filename or agency_report_name(a, roster)), data)


def render_county(r: Rollup, county: County, out_dir: Path, template: Path | None = None) -> Path:
    """The county summary; ``template`` defaults to the current format's (``templates()``)."""
    return render_county_document(r, county, out_dir, template).path


def render_county_document(r: Rollup, county: County, out_dir: Path, template: Path | None = None) -> Filled:
    """``render_county``, with the warnings of the charts it left out."""
    template = template or templates()[1]
    ctx = county_context(r, county)
    return fill_document(template, ctx.as_dict(), Path(out_dir) / county_filename(county.name, r.year))


def _render_chunk(tasks: list[tuple[AgencyData, Agency | None, str]], out_dir: Path, template: Path,
                  signature: bool = SIGNATURE_DEFAULT) -> list[Path]:
    return [render_agency(a, out_dir, roster, template, filename=name, signature=signature)
            for a, roster, name in tasks]


@dataclass(frozen=True)
class _ReportsJob:
    """What the report workers inherit: every report to write, and the one more job started before them."""

    tasks: list[tuple[AgencyData, Agency | None, str]]
    out_dir: Path
    template: Path
    alongside: tuple | None = None  # (function, *args)
    signature: bool = SIGNATURE_DEFAULT  # County.signature


def _reports_range(job: _ReportsJob, a: int, b: int) -> list[Path]:
    return _render_chunk(job.tasks[a:b], job.out_dir, job.template, job.signature)


def _alongside_job(job: _ReportsJob):
    fn, *args = job.alongside
    return fn(*args)


def _tasks(reports: Sequence[tuple[AgencyData, Agency | None]]) -> list[tuple[AgencyData, Agency | None, str]]:
    """(figures, roster entry, file name) of each report. Two agencies whose titles give the same file name (names
    differing only in characters a file name cannot hold) never overwrite each other: the second gets its code."""
    taken: set[str] = set()
    tasks = []
    for a, roster in reports:
        name = agency_report_name(a, roster)
        if name.casefold() in taken:
            name = safe_filename(f"{name[:-len('.docx')]}（{a.code}）") + ".docx"
        taken.add(name.casefold())
        tasks.append((a, roster, name))
    return tasks


class _AgencyReports:
    """Agency reports being written, by worker processes when ``jobs`` > 1 (the caller can meanwhile do
    something else, such as the county summary); ``result()`` waits for them.

    ``alongside`` — (function, *args) — is one more job for the workers, started before the reports (the longest
    first keeps both cores busy to the end); ``alongside_result()`` gives its result.
    """

    def __init__(self, reports: Sequence[tuple[AgencyData, Agency | None]], out_dir: Path, template: Path,
                 jobs: int, alongside: tuple | None = None, signature: bool = SIGNATURE_DEFAULT):
        tasks = _tasks(reports)
        job = _ReportsJob(tasks, Path(out_dir), template, alongside, signature)
        self._job = job
        self._pool = self._done = self._alongside_done = None
        if jobs > 1 and len(tasks) + (alongside is not None) > 1:
            fastdocx.prepare(template)  # loaded and compiled before the workers fork: they inherit it
            n = min(len(tasks), jobs * 16)  # small chunks: the workers finish together
            size = -(-len(tasks) // n) if tasks else 1
            ranges = [(i, min(i + size, len(tasks))) for i in range(0, len(tasks), size)]
            workers = max(1, min(jobs, len(ranges) + (alongside is not None)))
            self._pool = parallel.Pool(workers, job)
            try:
                if alongside is not None:
                    self._alongside_done = self._pool.submit(_alongside_job)
                self._done = [self._pool.submit(_reports_range, a, b) for a, b in ranges]
            except BaseException as e:
                self._pool.__exit__(type(e), e, e.__traceback__)
                raise

    def result(self) -> tuple[Path, ...]:
        if self._pool is None:
            return tuple(_render_chunk(self._job.tasks, self._job.out_dir, self._job.template, self._job.signature))
        try:
            return tuple(p for task in self._done for p in task.result())  # chunk order = the order given
        finally:
            self._pool.close()  # waits for the job alongside too (its result stays with its task)

    def alongside_result(self):
        if self._job.alongside is None:
            return None
        if self._alongside_done is None:
            return _alongside_job(self._job)
        return self._alongside_done.result()

    def __enter__(self) -> _AgencyReports:
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:  # on an error: cancel what has not started, wait for the rest
            self._pool.__exit__(*exc)


def render_agencies(reports: Sequence[tuple[AgencyData, Agency | None]], out_dir: Path, *, jobs: int | None = None,
                    template: Path | None = None, signature: bool = SIGNATURE_DEFAULT) -> tuple[Path, ...]:
    """One report for each (figures, roster entry) of ``reports`` (Rollup.reports), in ``jobs`` processes
    (default: every core). The files and their bytes do not depend on ``jobs``."""
    return _AgencyReports(reports, out_dir, template or templates()[0], jobs or parallel.default_jobs(),
                          signature=signature).result()


@dataclass(frozen=True)
class Rendered:
    """What the render stage wrote, and the result of the job run alongside it (None without one)."""

    agency_reports: tuple[Path, ...]
    county_report: Path | None
    alongside: object = None
    warnings: tuple[str, ...] = ()  # Chinese: what the county summary left out (a chart it could not draw)


def render(rollup: Rollup, county: County, out_dir: Path, *, jobs: int | None = None,
           alongside: tuple | None = None, county_report: bool = True) -> Rendered:
    """The render stage: one report per passing agency (``rollup.reports``, in that order; ``jobs`` processes)
    and the county summary (written here meanwhile).

    ``alongside`` — (function, *args) — is one more job the report workers run first (run.py gives them
    全县汇总.xlsx); its result comes back in ``Rendered.alongside``. The output does not depend on ``jobs``.
    """
    with spec.using(rollup.format), _AgencyReports(rollup.reports, out_dir, templates()[0],
                                                  jobs or parallel.default_jobs(), alongside,
                                                  county.signature) as job:
        summary = render_county_document(rollup, county, out_dir) if county_report else None
        return Rendered(job.result(), summary.path if summary else None, job.alongside_result(),
                        summary.warnings if summary else ())
