"""Chart fonts: the shipped Noto Sans SC on every machine, every character drawn with a real glyph (a test fails,
never skips, when Chinese would be boxes); without it, the same CJK face of the machine on every run, whatever
matplotlib's font cache holds; no "findfont" or "Glyph … missing" noise.

The machine's fonts are simulated with small generated fonts (fontTools, a matplotlib dependency) laid out as
fonts-noto-cjk installs them: NotoSansCJK-Regular.ttc / -Bold.ttc, five faces each, JP first and SC third. The
shipped font (the pylopdf-fonts-zh-cn package, a dependency) is the real one; "not installed" is simulated.
"""

from __future__ import annotations

import logging
import random
import shutil
import warnings
from pathlib import Path

import pytest
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib.ttCollection import TTCollection
from matplotlib import font_manager, ft2font

from pipeline import aggregate, render, run, spec, workspace
from pipeline.ooxml import sanitise
from test_render_data import county_batch
from test_render_data import workspace as rollup_workspace

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample_county"
REGIONS = ("JP", "KR", "SC", "TC", "HK")
CHART = render.Chart("outcomes", "办理结果", "bar", ("予以公开", "部分公开", "不予公开"),
                     (("2024年", (3.0, 1.0, 2.0)),))


def _face(family: str, style: str, width: int):
    """A TrueType face whose every glyph (ASCII, CJK) is a box ``width`` units wide."""
    fb = FontBuilder(1000, isTTF=True)
    fb.setupGlyphOrder([".notdef", "box"])
    chars = list(range(0x20, 0x7F)) + list(range(0x3000, 0x3040)) + list(range(0x4E00, 0xA000)) \
        + list(range(0xFF00, 0xFF60))
    fb.setupCharacterMap({c: "box" for c in chars})
    pen = TTGlyphPen(None)
    pen.moveTo((50, 0))
    pen.lineTo((50, 700))
    pen.lineTo((width, 700))
    pen.lineTo((width, 0))
    pen.closePath()
    fb.setupGlyf({".notdef": TTGlyphPen(None).glyph(), "box": pen.glyph()})
    fb.setupHorizontalMetrics({".notdef": (500, 0), "box": (width + 100, 50)})
    fb.setupHorizontalHeader(ascent=880, descent=-120)
    fb.setupNameTable({"familyName": family, "styleName": style})
    fb.setupOS2(usWeightClass=700 if style == "Bold" else 400, sTypoAscender=880, sTypoDescender=-120,
                usWinAscent=880, usWinDescent=120)
    fb.setupPost()
    return fb.font


def _collection(path: Path, family: str, style: str) -> Path:
    tc = TTCollection()
    tc.fonts = [_face(f"{family} {region}", style, 300 + 100 * i) for i, region in enumerate(REGIONS)]
    tc.save(str(path))
    return path


@pytest.fixture(scope="module")
def font_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("fonts") / "opentype" / "noto"
    d.mkdir(parents=True)
    for family, stem in (("Noto Sans CJK", "NotoSansCJK"), ("Noto Serif CJK", "NotoSerifCJK")):
        for style in ("Regular", "Bold"):
            _collection(d / f"{stem}-{style}.ttc", family, style)
    dejavu = Path(font_manager.findfont("DejaVu Sans"))
    shutil.copy(dejavu, d / "DejaVuSans.ttf")
    return d


class Machine:
    """Fonts on disk as findSystemFonts lists them (in a varying order) and matplotlib's cached list of them."""

    def __init__(self, monkeypatch, font_dir: Path):
        self.monkeypatch = monkeypatch
        self.files = sorted(str(p) for p in font_dir.iterdir())
        self.fresh = list(font_manager.fontManager.ttflist)
        for f in self.files:
            self.fresh += [font_manager.ttfFontProperty(font_manager.ft2font.FT2Font(f))]
        self.stale = [f for f in font_manager.fontManager.ttflist
                      if "CJK" not in f.name and not f.name.startswith(render.CHART_FONT_NAME)]

    def state(self, seed: int, cache: str, *, shipped: bool = False, cjk: bool = True) -> None:
        """A new run on a machine with the simulated fonts (``cjk`` false: none of the CJK ones), the chart font
        package installed or not (``shipped``)."""
        files = [f for f in self.files if cjk or "CJK" not in f]  # only these: the machine's own fonts must not
        random.Random(seed).shuffle(files)  # decide the outcome
        ttflist = list(self.stale if cache == "stale" else self.fresh)
        random.Random(seed).shuffle(ttflist)
        self.monkeypatch.setattr(font_manager, "findSystemFonts", lambda *a, **k: list(files))
        self.monkeypatch.setattr(font_manager.fontManager, "ttflist", ttflist)
        self.monkeypatch.setattr(render, "SHIPPED_CHART_FONT",
                                 SHIPPED if shipped else ("nianbao_test_no_such_package", "sans_path"))
        font_manager.fontManager._findfont_cached.cache_clear()
        render.chart_font.cache_clear()  # a new run: a new process


SHIPPED = render.SHIPPED_CHART_FONT


@pytest.fixture
def machine(monkeypatch, font_dir):
    yield Machine(monkeypatch, font_dir)
    render.chart_font.cache_clear()
    font_manager.fontManager._findfont_cached.cache_clear()


def test_the_simplified_chinese_face_is_chosen_whatever_the_order_and_cache(machine, font_dir):
    chosen = set()
    for seed in range(6):
        machine.state(seed, "stale" if seed % 2 else "fresh")
        chosen.add(render.chart_font())
    assert chosen == {(str(font_dir / "NotoSansCJK-Regular.ttc"), REGIONS.index("SC"))}
    assert render.cjk_font_path() == str(font_dir / "NotoSansCJK-Regular.ttc")


def test_charts_are_drawn_with_that_face_and_are_byte_identical(machine, font_dir):
    pngs = set()
    for seed in range(6):
        machine.state(seed, "stale" if seed % 2 else "fresh")
        pngs.add(render.chart_png(CHART))
        used = font_manager.findfont(font_manager.FontProperties(family=render.chart_font_family()))
        if hasattr(used, "face_index"):  # matplotlib ≥ 3.11 reports the face of a collection
            assert (used.path, used.face_index) == (str(font_dir / "NotoSansCJK-Regular.ttc"), REGIONS.index("SC"))
        else:
            assert used == str(font_dir / "NotoSansCJK-Regular.ttc")
    assert len(pngs) == 1
    # the face matters: without the SC face the chart differs (so the bytes above did come from it)
    machine.monkeypatch.setattr(render, "CHART_FONT_FAMILIES", ("Noto Sans CJK JP",))
    render.chart_font.cache_clear()
    assert render.chart_font()[1] == REGIONS.index("JP")
    assert render.chart_png(CHART) not in pngs


def test_without_any_cjk_font_no_chart_is_drawn_with_boxes(machine):
    """No shipped font, no CJK font on the machine: a clear error (exit code 2), never a chart of boxes."""
    for seed in range(3):
        machine.state(seed, "stale", cjk=False)
        assert render.chart_font() is None
        with pytest.raises(render.ChartFontError, match="未找到中文字体") as e:
            render.chart_png(CHART)
        assert "pylopdf-fonts-zh-cn" in str(e.value) and CHART.caption in str(e.value)


def test_no_findfont_lines_reach_the_console(machine, caplog, capfd):
    """A cache without the fonts, the Bold collection listed first: the old choice (the first NotoSansCJK file
    findSystemFonts gave, family of its face 0) logged "findfont: Failed to find font weight" lines."""
    caplog.set_level(logging.DEBUG, logger="matplotlib.font_manager")
    machine.state(0, "stale")
    bold_first = sorted(machine.files, key=lambda f: "Bold" not in f)
    machine.monkeypatch.setattr(font_manager, "findSystemFonts", lambda *a, **k: list(bold_first))
    render.chart_png(CHART)
    render.chart_png(render.Chart("applications", "新收申请", "barh", ("示例县财政局", "示例县教育局"),
                                  (("新收申请", (4.0, 2.0)),)))
    out, err = capfd.readouterr()
    assert "findfont" not in out + err
    assert not [r for r in caplog.records if "findfont" in r.getMessage()]
    assert logging.getLogger("matplotlib.font_manager").level == logging.DEBUG  # restored after drawing


def test_a_run_prints_no_findfont_and_its_county_report_does_not_depend_on_the_cache(machine, tmp_path, capfd):
    ws = workspace.load(SAMPLE)
    reports = []
    for seed, cache in ((1, "stale"), (2, "fresh")):
        machine.state(seed, cache)
        result = run.run(ws, 2024, tmp_path / f"out{seed}", jobs=1)
        assert result.exit_code == 0
        county = [p for p in result.out_dir.glob("*.docx") if "全县汇总" in p.name]
        assert len(county) == 1
        reports.append(county[0].read_bytes())
    out, err = capfd.readouterr()
    assert "findfont" not in out + err
    assert reports[0] == reports[1]


# ---- the shipped font


def _shipped_file() -> str:
    import pylopdf_fonts_zh_cn

    return str(pylopdf_fonts_zh_cn.sans_path())


def _glyph_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if "Glyph" in str(w.message) and "missing" in str(w.message)]


def test_the_shipped_font_is_a_simplified_chinese_face_covering_gb2312():
    path, index = render.shipped_chart_font()
    assert (path, index) == (_shipped_file(), 0)
    face = ft2font.FT2Font(path, face_index=index)
    assert (face.family_name, face.style_name) == ("Noto Sans SC", "Regular")
    hanzi = set()
    for b1 in range(0xB0, 0xF8):  # GB 2312's 6763 hanzi: every common agency, town and village name
        for b2 in range(0xA1, 0xFF):
            try:
                hanzi.add(bytes((b1, b2)).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    assert len(hanzi) == 6763
    assert render.missing_glyphs("".join(sorted(hanzi)) + "（）、，：0123456789.-+e%", (path, index)) == ""


def test_the_shipped_font_is_used_whatever_the_machine_and_charts_are_byte_identical(machine):
    """With or without CJK fonts on the machine (the simulated .ttc collections would draw boxes of their own
    widths), in any order, any cache: the shipped face, the same PNG bytes."""
    pngs, fonts = set(), set()
    for seed in range(6):
        machine.state(seed, "stale" if seed % 2 else "fresh", shipped=True, cjk=seed % 3 != 0)
        fonts.add(render.chart_font())
        pngs.add(render.chart_png(CHART))
        used = font_manager.findfont(font_manager.FontProperties(family=render.chart_font_family()))
        assert (str(used), getattr(used, "face_index", 0)) == (_shipped_file(), 0)
    assert fonts == {(_shipped_file(), 0)}
    assert len(pngs) == 1
    machine.state(0, "fresh", shipped=False)  # the simulated SC face instead: other bytes (so the face mattered)
    assert render.chart_png(CHART) not in pngs


def test_county_charts_on_a_machine_without_cjk_fonts_have_every_glyph(machine):
    """A fresh machine: no CJK font but the shipped one. Every county chart is drawn with it, matplotlib warns of
    no missing glyph, and the face has a glyph for every character of every label."""
    machine.state(0, "stale", shipped=True, cjk=False)
    assert render.system_chart_font() is None
    assert render.chart_font() == (_shipped_file(), 0)
    batch = county_batch(2024)
    r = aggregate.rollup(batch, {a.code for a in batch}, county_batch(2023, seed=1), rollup_workspace(), year=2024)
    sample = [sanitise(a.name) for a in workspace.load(SAMPLE).agencies]
    charts = render.county_charts(r) + (render.Chart("applications", "新收申请", "barh", tuple(sample),
                                                     (("新收申请", tuple(1.0 for _ in sample)),)),)
    assert {c.key for c in charts} == {"applications", "outcomes", "yoy"}
    face = ft2font.FT2Font(_shipped_file())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for chart in charts:
            assert render.chart_png(chart).startswith(b"\x89PNG")
    assert _glyph_warnings(caught) == []
    text = "".join(render.chart_text(c) for c in charts)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in text)
    assert [ch for ch in text if not ch.isspace() and face.get_char_index(ord(ch)) == 0] == []
    assert all(ch in text for ch in spec.KEY_FIGURES[0].label)


def test_a_character_the_font_lacks_stops_the_chart(machine):
    """A label with a character outside the font (Hangul here) is an error naming it, never a box in the chart."""
    machine.state(0, "stale", shipped=True, cjk=False)
    chart = render.Chart("applications", "新收申请", "barh", ("示例县财政局", "가나다"), (("新收申请", (1.0, 2.0)),))
    assert render.missing_glyphs(render.chart_text(chart)) == "가나다"
    with pytest.raises(render.ChartFontError, match="缺少“가나다”"):
        render.chart_png(chart)


def test_a_run_on_a_machine_without_cjk_fonts_prints_no_glyph_warning(machine, tmp_path, capfd):
    """The sample county as `make reports` runs it, on a fresh machine (the shipped font only): no "Glyph …
    missing" and no "findfont" on the console, and the county report the same bytes as with CJK fonts installed."""
    ws = workspace.load(SAMPLE)
    reports = []
    for seed, cjk in ((1, False), (2, True)):
        machine.state(seed, "stale", shipped=True, cjk=cjk)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = run.run(ws, 2024, tmp_path / f"out{seed}", jobs=1)
        assert _glyph_warnings(caught) == []
        assert result.exit_code == 0
        county = [p for p in result.out_dir.glob("*.docx") if "全县汇总" in p.name]
        assert len(county) == 1
        reports.append(county[0].read_bytes())
    out, err = capfd.readouterr()
    assert "Glyph" not in out + err and "findfont" not in out + err
    assert reports[0] == reports[1]


# ---- what the charts show


@pytest.fixture
def yoy_rollup():
    batch = county_batch(2024)
    return aggregate.rollup(batch, {a.code for a in batch}, county_batch(2023, seed=1), rollup_workspace(), year=2024)


def _figure(chart):
    import matplotlib.pyplot as plt

    with plt.rc_context(render._chart_rc()):
        return render.figure(chart)


def test_no_chart_label_is_rotated_and_every_bar_has_its_value(yoy_rollup):
    import matplotlib.pyplot as plt

    charts = render.county_charts(yoy_rollup)
    assert [c.key for c in charts] == ["applications", "outcomes", "yoy"]
    for chart in charts:
        fig = _figure(chart)
        for ax in fig.axes:
            for label in ax.get_xticklabels() + ax.get_yticklabels() + [ax.xaxis.label, ax.yaxis.label]:
                assert label.get_rotation() == 0 or not label.get_text(), (chart.key, label.get_text())
            bars = [v for c in ax.containers for v in c.datavalues]
            assert bars and [t.get_text() for t in ax.texts] == [f"{v:g}" for v in bars], chart.key
        plt.close(fig)


def test_the_year_on_year_chart_draws_each_table_on_its_own_scale(yoy_rollup):
    """Applications (table 三: tens, hundreds) and appeals (table 四: a few) on separate panels, each axis reaching
    just past its own largest value: a 3 is never a sliver beside a 135. Bars are horizontal, labels on the left."""
    import matplotlib.pyplot as plt

    (chart,) = [c for c in render.county_charts(yoy_rollup) if c.key == "yoy"]
    assert chart.panels == ((spec.SECTION["三"].title, 8), (spec.SECTION["四"].title, 4))
    fig = _figure(chart)
    assert len(fig.axes) == 2
    start = 0
    for ax, (title, n) in zip(fig.axes, chart.panels):
        values = [v for _, vs in chart.series for v in vs[start:start + n]]
        assert ax.get_title(loc="left") == title
        assert [t.get_text() for t in ax.get_yticklabels()] == list(chart.labels[start:start + n])
        assert ax.get_xlim() == pytest.approx((0, (max(values) or 1) * 1.15))
        assert all(abs(p.get_height()) < 1 for c in ax.containers for p in c.patches)  # horizontal bars
        start += n
    assert fig.axes[0].get_xlim()[1] > 10 * fig.axes[1].get_xlim()[1]  # the sample's 100s and few
    plt.close(fig)


def test_long_agency_names_are_set_in_lines_broken_after_a_word(yoy_rollup):
    name = "示例县住房和城乡建设局城市管理综合行政执法大队市容环境卫生管理所"
    lines = render.chart_label_lines(name)
    assert "".join(lines) == name and len(lines) == 3
    assert all(render._width(x) <= render.CHART_LABEL_CHARS for x in lines)
    assert lines[0].endswith("局") and lines[1].endswith("队")
    assert render.chart_label_lines("示例县财政局") == ("示例县财政局",)


RARE = "𪚥"  # U+2A6A5 (CJK Extension B), a character of some place names: not in the shipped chart font


def test_a_chart_the_font_cannot_draw_is_left_out_and_the_run_goes_on(monkeypatch, tmp_path):
    """An agency's name with a character the chart font lacks: the applications chart is left out of the county
    summary with its caption (the others renumbered 图1, 图2), the console and the manifest say so, and the run
    ends as its findings dictate (0 for the sample), never with exit code 2."""
    import dataclasses
    import io
    import json
    import zipfile

    from docx import Document
    from rich.console import Console

    assert render.missing_glyphs(RARE) == RARE
    real = render.county_charts

    def with_a_rare_name(r):
        charts = real(r)
        assert charts[0].key == "applications"
        return (dataclasses.replace(charts[0], labels=(f"示例县{RARE}镇人民政府",) + charts[0].labels[1:]),) + charts[1:]

    monkeypatch.setattr(render, "county_charts", with_a_rare_name)
    console = Console(file=io.StringIO(), width=300, record=True)
    result = run.run(workspace.load(SAMPLE), 2024, tmp_path / "out", jobs=1, console=console)
    assert result.exit_code == 0
    (warning,) = json.loads(result.manifest.read_text(encoding="utf-8"))["warnings"]
    assert RARE in warning and spec.SUMMARY_LABELS["chart_applications"] in warning and "略去" in warning
    assert warning in console.export_text().replace("\n", "")
    (county,) = [p for p in result.out_dir.glob("*.docx") if spec.SUMMARY_LABELS["county_summary"] in p.name]
    with zipfile.ZipFile(county) as z:
        assert len([n for n in z.namelist() if n.startswith("word/media/")]) == 2
    captions = [p.text for p in Document(county).paragraphs if p.style.name == "Caption"]
    assert captions == [render.figure_caption(1, spec.SUMMARY_LABELS["chart_outcomes"]),
                        render.figure_caption(2, spec.SUMMARY_LABELS["chart_yoy"])]
    # without the rare name, the same run has all three charts and no warning
    monkeypatch.setattr(render, "county_charts", real)
    again = run.run(workspace.load(SAMPLE), 2024, tmp_path / "out2", jobs=1)
    assert json.loads(again.manifest.read_text(encoding="utf-8"))["warnings"] == []
