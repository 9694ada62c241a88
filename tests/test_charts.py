"""Chart fonts: the same CJK face on every run, whatever matplotlib's font cache holds, and no "findfont" noise.

The machine's fonts are simulated with small generated fonts (fontTools, a matplotlib dependency) laid out as
fonts-noto-cjk installs them: NotoSansCJK-Regular.ttc / -Bold.ttc, five faces each, JP first and SC third.
"""

from __future__ import annotations

import logging
import random
import shutil
from pathlib import Path

import pytest
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib.ttCollection import TTCollection
from matplotlib import font_manager

from pipeline import render, run, workspace

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

    def state(self, seed: int, cache: str) -> None:
        files = list(self.files)  # only these: the machine's own fonts must not decide the outcome
        random.Random(seed).shuffle(files)
        ttflist = list(self.stale if cache == "stale" else self.fresh)
        random.Random(seed).shuffle(ttflist)
        self.monkeypatch.setattr(font_manager, "findSystemFonts", lambda *a, **k: list(files))
        self.monkeypatch.setattr(font_manager.fontManager, "ttflist", ttflist)
        font_manager.fontManager._findfont_cached.cache_clear()
        render.chart_font.cache_clear()  # a new run: a new process


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


def test_without_a_cjk_font_the_choice_is_none_and_the_chart_still_the_same(machine, monkeypatch):
    files = [f for f in machine.files if "CJK" not in f]
    pngs = set()
    for seed in range(3):
        machine.state(seed, "stale")
        random.Random(seed).shuffle(files)
        monkeypatch.setattr(font_manager, "findSystemFonts", lambda *a, **k: list(files))
        assert render.chart_font() is None
        pngs.add(render.chart_png(CHART))
    assert len(pngs) == 1


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
