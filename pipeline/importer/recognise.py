"""The document model → the format: tables 二, 三, 四 cell by cell, the report's year and agency, the section texts.

Everything is found by the format's own labels (pipeline/spec.py): section headings, row labels, table 四's column
labels, the text fields of sections 一, 五 and 六. Labels are compared as ``key``: spec.normalise_label (full-width
forms, spaces, line breaks, quotes) with punctuation removed (（二） / (二) / 二、, “1.” / “1、”, “，” / “,”), and
tolerated as real reports print them: a typo of one character in a long label, a label cut short in its cell,
the 2019 wording of a 2021 label (spec.OLD_FORMAT_VARIANTS: 规范性文件), section headings reworded (matched by
their number and similarity to the format's heading).

A table is read as a stream of tokens — grid cells in order (each merged cell once), or, for text renderings of a
page, the runs of text and digits — so the same rules read a Word table, an HTML table, a PDF table and a
crawler's flattened text. After each row label come its numbers: K cells of a grid row (blanks → 0, said so), or
digit runs to split into K numbers when the rendering ran the cells together ('801000081'). A split is taken only
when it is the only one that the format's arithmetic (R1–R3, R5) and the report's own text (claims.py) allow; cells
that stay ambiguous, and every cell of a row or table that is not found, are *unreadable* — never 0.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from .. import claims, spec
from .document import Document, Paragraph, Table

Number = int | Decimal

# --------------------------------------------------------------------------------------------------- records

READ, BLANK, SPLIT, UNREADABLE = "read", "blank", "split", "unreadable"


@dataclass(frozen=True)
class CellResult:
    name: str
    value: Number | None  # None: unreadable
    status: str  # read / blank (→ 0) / split (digits run together, split by the arithmetic) / unreadable
    where: str = ""  # 表格2第5行第4列 / 第12段第340字
    note: str = ""  # Chinese: how it was read, or why not


@dataclass(frozen=True)
class Found:
    """Where a table, a section or a text field was found (Chinese), or why not."""

    where: str
    note: str = ""


@dataclass
class Recognised:
    year: int | None = None
    agency: str = ""
    title: str = ""
    old_format: bool = False
    old_labels: tuple[str, ...] = ()
    cells: dict[str, CellResult] = field(default_factory=dict)
    tables: dict[str, Found | None] = field(default_factory=dict)  # 二/三/四 → where (None: not found)
    sections: dict[str, Found] = field(default_factory=dict)  # 一…六 → where its heading is
    texts: dict[str, str] = field(default_factory=dict)  # TXT_/FEE_/INFO_ field name → value (str)
    text_where: dict[str, Found] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: rows of digits run together that more than one split fits: (cell names, the splits still possible)
    open_rows: list[tuple[tuple[str, ...], list[tuple[Number, ...]]]] = field(default_factory=list)

    @property
    def unreadable(self) -> list[str]:
        return [n for n, c in self.cells.items() if c.status == UNREADABLE]

    def is_report(self) -> bool:
        """Enough of the format to be an annual report: a title with its year, or two sections, or a table."""
        return bool(self.title) or len(self.sections) >= 2 or any(self.tables.values())

    def gaps(self) -> list[str]:
        """What could not be read, in words (the verdict's 缺：…)."""
        out = []
        bad = set(self.unreadable)
        for t in ("二", "三", "四"):
            names = [c.name for c in spec.table_cells(t) if not c.computed or c.name in bad]
            missing = [n for n in names if n in bad]
            if self.tables.get(t) is None:
                out.append(f"表{t}")
            elif missing:
                out.append(f"表{t}{len(missing)}个单元格")
        for s in ("一", "五", "六"):
            if s not in self.sections:
                out.append(f"“{spec.SECTION[s].heading}”文字")
        if self.year is None:
            out.append(spec.FIELD["INFO_report_year"].label)
        if not self.agency:
            out.append(spec.FIELD["INFO_agency_name"].label)
        return out


# --------------------------------------------------------------------------------------------------- labels

_PUNCT = re.compile(r"[\s、，,。．.：:；;（）()“”\"'‘’「」『』【】\[\]<>《》!！?？\-－—_·•/／|…~～]")


def key(text: object) -> str:
    """A label as compared here: spec.normalise_label, then without punctuation."""
    return _key(text) if isinstance(text, str) else _PUNCT.sub("", spec.normalise_label(text))


@functools.lru_cache(maxsize=1 << 16)  # the format's labels and their wordings repeat in every report
def _key(text: str) -> str:
    return _PUNCT.sub("", spec.normalise_label(text))


def _distance(a: str, b: str) -> int:
    """spec.edit_distance, skipped (99) for lengths more than 2 apart."""
    return 99 if abs(len(a) - len(b)) > 2 else spec.edit_distance(a, b)


@dataclass(frozen=True)
class _Label:
    """A row label of the format in its compared forms."""

    full: str  # with its numbering: 一予以公开 / 3其他
    bare: str  # without: 予以公开
    alts: tuple[str, ...]  # the 2019 wordings of it that real 2021 reports print (规范性文件)

    @classmethod
    @functools.lru_cache(maxsize=1024)  # (the format's labels: the same for every report)
    def of(cls, text: str, number: str = "") -> _Label:
        full, bare = key(text), key(text[len(number):])
        alts = tuple(key(v) for v in spec.OLD_FORMAT_VARIANTS if key(text).endswith(key(v)) and key(v) != full)
        return cls(full, bare, alts)

    def _forms(self) -> tuple[str, ...]:
        # a short label (3.其他, （七）总计) only with its number; a long one with or without
        return (self.full,) + ((self.bare,) if len(self.bare) >= 4 or self.bare == self.full else ()) + self.alts

    def ends(self, t: str) -> str | None:
        """How ``t`` (a run of text) ends with this label: '' exactly, a note when tolerated, None if not."""
        for f in self._forms():
            if t.endswith(f):
                return "标签为2019年格式用语" if f in self.alts else ""
        b = self.bare
        if len(b) >= 6 and len(t) >= len(b) - 1:
            for n in (len(b) - 1, len(b), len(b) + 1):
                if _distance(t[-n:], b) <= 1:
                    return f"标签有错字（{t[-n:]}）"
        return None

    def is_cell(self, t: str) -> str | None:
        """How a whole cell ``t`` is this label ('' exactly, a note when tolerated, None if not)."""
        hit = self.ends(t)
        if hit is not None and len(t) <= len(self.full) + 2:
            return hit
        for f in (self.full, self.bare):
            if len(t) >= max(4, len(f) * 2 // 5) and f.startswith(t) and len(t) < len(f):
                return "标签在单元格中显示不全"
        return None


# --------------------------------------------------------------------------------------------------- tokens

@dataclass(frozen=True)
class Tok:
    kind: str  # text / num / blank / row (the end of a grid row)
    text: str  # text: its key; num: the digits as printed (pieces separated by spaces)
    where: str
    atomic: bool = True  # a num token that is exactly one number (a grid cell); else digits to split
    raw: str = ""


_NUM_RUN = re.compile(r"\d+(?:\.\d+)?(?:[ \u00a0\u3000]+\d+(?:\.\d+)?)*")
_NONE_CELL = {"-", "--", "—", "——", "–", "/", "无", "―"}
_CELL_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d+)?|\d{1,3}(?:,\d{3})+(?:\.\d+)?)(?:件|个|项|次|宗|条|万元|元)?$")


@functools.lru_cache(maxsize=1 << 16)
def cell_number(text: str) -> str | None:
    """A grid cell as a number literal ('0' for a dash), or None when it is text."""
    s = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))
    if s in _NONE_CELL:
        return "0"
    if _CELL_NUMBER.match(s):
        return re.sub(r"[^\d.+-]", "", s.replace(",", ""))
    return None


def _para_tokens(text: str, where: Callable[[int], str]) -> list[Tok]:
    """A paragraph (or part of one) as text and digit runs; a run's last digit that is the numbering of the next
    label ('…00000002.其他法律…') goes with the label."""
    s = unicodedata.normalize("NFKC", text)
    out: list[Tok] = []
    pos = 0
    pending = ""
    for m in _NUM_RUN.finditer(s):
        a, b = m.span()
        digits = m.group()
        after = s[b:b + 2]
        if after[:1] in ".、" and after[1:2] and not after[1:2].isdigit():
            digits, moved = digits[:-1].rstrip(), digits[-1]
        else:
            moved = ""
        before = pending + s[pos:a]
        if key(before):
            out.append(Tok("text", key(before), where(pos), atomic=False, raw=before))
        if digits:
            out.append(Tok("num", digits, where(a), atomic=False))
        pending = moved
        pos = b
    rest = pending + s[pos:]
    if key(rest):
        out.append(Tok("text", key(rest), where(pos), atomic=False, raw=rest))
    return out


def _table_tokens(t: Table) -> list[Tok]:
    out: list[Tok] = []
    for r, row in enumerate(t.rows()):
        for c in row:
            where = f"表格{t.index}第{c.row + 1}行第{c.col + 1}列" + (f"（第{t.page}页）" if t.page else "")
            n = cell_number(c.text)
            if not c.text.strip():
                out.append(Tok("blank", "", where))
            elif n is not None:
                out.append(Tok("num", n, where, raw=c.text))
            else:
                out.append(Tok("text", key(c.text), where, raw=c.text))
        out.append(Tok("row", "", f"表格{t.index}第{r + 1}行"))
    return out


# --------------------------------------------------------------------------------------------------- positions

@dataclass(frozen=True, order=True)
class Pos:
    block: int  # index into Document.blocks
    offset: int = 0  # character offset in a paragraph


def _where_para(p: Paragraph, offset: int) -> str:
    page = f"（第{p.page}页）" if p.page else ""
    return f"第{p.index}段" + (f"第{offset + 1}字" if offset else "") + page


def _segments(doc: Document, start: Pos, end: Pos) -> Iterator[tuple[int, object, int, str]]:
    """(block index, block, offset, text-or-None) of what lies between two positions."""
    for i in range(start.block, min(end.block, len(doc.blocks) - 1) + 1):
        b = doc.blocks[i]
        a = start.offset if i == start.block else 0
        if isinstance(b, Paragraph):
            z = end.offset if i == end.block else len(b.text)
            if z > a:
                yield i, b, a, b.text[a:z]
        elif i < end.block or (i == end.block and end.offset > 0):
            if i > start.block or start.offset == 0:
                yield i, b, 0, None


def _tokens(doc: Document, start: Pos, end: Pos) -> list[Tok]:
    out: list[Tok] = []
    for _i, b, a, text in _segments(doc, start, end):
        if text is None:
            out += _table_tokens(b)
        else:
            out += _para_tokens(text, lambda off, b=b, a=a: _where_para(b, a + off))
    return out


# --------------------------------------------------------------------------------------------------- sections

_SECTION_MARK = re.compile(r"(?<![（(\u4e00-\u9fff])([一二三四五六])\s*[、.．]")
SECTION_SIMILARITY = 0.5


def _similar(text: str, title: str) -> float:
    """How much the words right after a section number look like the format's heading (best window)."""
    t = key(title)
    best = 0.0
    for n in range(max(2, len(t) - 6), len(t) + 4):
        w = key(text)[:n]
        if w:
            best = max(best, difflib.SequenceMatcher(None, w, t, autojunk=False).ratio())
    return best


def find_sections(doc: Document) -> dict[str, tuple[Pos, Pos]]:
    """Section number → (where its heading starts, where its body starts), in the format's order."""
    out: dict[str, tuple[Pos, Pos]] = {}
    after = Pos(0, 0)
    for s in spec.SECTIONS:
        for i in range(after.block, len(doc.blocks)):
            b = doc.blocks[i]
            if not isinstance(b, Paragraph):
                continue
            start = after.offset if i == after.block else 0
            hit = None
            for m in _SECTION_MARK.finditer(b.text, start):
                if m.group(1) != s.number:
                    continue
                rest = b.text[m.end():m.end() + len(s.title) + 12]
                if _similar(rest, s.title) >= SECTION_SIMILARITY:
                    hit = m
                    break
            if hit:
                body = _heading_end(b.text, hit.end(), s.title)
                out[s.number] = (Pos(i, hit.start()), Pos(i, body) if body < len(b.text) else Pos(i + 1, 0))
                after = out[s.number][1]
                break
    return out


def _heading_end(text: str, start: int, title: str) -> int:
    """Where the heading's words end: the window most like the title, then a closing mark (。：:) if any."""
    t = key(title)
    best, end = -1.0, start
    for z in range(start + 1, min(len(text), start + len(title) + 12) + 1):
        r = difflib.SequenceMatcher(None, key(text[start:z]), t, autojunk=False).ratio()
        if r > best + 1e-9:
            best, end = r, z
    while end < len(text) and text[end] in "。．.：:；; \u3000":
        end += 1
    # a heading line's note in parentheses (（文字描述）) belongs to it
    m = re.match(r"[（(][^）)]{0,30}[）)]", text[end:])
    return end + (m.end() if m else 0)


# --------------------------------------------------------------------------------------------------- digits

SPLIT_LIMIT = 20000  # candidate splits of one row beyond which the row is too ambiguous to read


def _num(literal: str) -> Number:
    return Decimal(literal) if "." in literal else int(literal)


def splits(pieces: list[tuple[str, bool]], k: int, check: Callable[[tuple], bool] | None = None,
           limit: int = SPLIT_LIMIT) -> list[tuple[Number, ...]] | None:
    """Every way to read ``pieces`` as ``k`` numbers: an atomic piece is one number; a run of digits is split into
    one or more numbers without leading zeros. ``check(prefix)`` prunes. None when there are more than ``limit``."""
    out: list[tuple[Number, ...]] = []
    flat: list[list[str]] = []
    for text, atomic in pieces:
        parts = text.split() if not atomic else [text]
        flat += [[p, atomic and True] for p in parts]

    def rec(i: int, prefix: tuple) -> bool:
        if len(out) > limit:
            return False
        if i == len(flat):
            if len(prefix) == k:
                out.append(prefix)
            return True
        text, atomic = flat[i]
        if atomic or "." in text:
            nxt = prefix + (_num(text),)
            if len(nxt) <= k and (check is None or check(nxt)):
                rec(i + 1, nxt)
            return True
        left = len(flat) - i - 1  # later pieces give at least one number each
        for parts in _split_digits(text, 1, k - len(prefix) - left):
            nxt = prefix
            ok = True
            for p in parts:
                nxt = nxt + (int(p),)
                if check is not None and not check(nxt):
                    ok = False
                    break
            if ok:
                rec(i + 1, nxt)
                if len(out) > limit:
                    return False
        return True

    rec(0, ())
    return None if len(out) > limit else out


def _split_digits(s: str, lo: int, hi: int) -> Iterator[tuple[str, ...]]:
    """``s`` cut into lo..hi numbers without leading zeros."""
    if hi < lo or not s:
        return
    if len(s) >= lo and hi >= 1:
        if lo <= 1 and (s == "0" or not s.startswith("0")):
            yield (s,)
    for i in range(1, len(s)):
        head = s[:i]
        if head != "0" and head.startswith("0"):
            break
        for rest in _split_digits(s[i:], max(lo - 1, 1), hi - 1):
            yield (head,) + rest


# --------------------------------------------------------------------------------------------------- rows


@dataclass
class _Row:
    """One row of the format to find: its label and its cells (defined names) in column order."""

    names: tuple[str, ...]
    label: _Label | None
    money: bool = False
    found: str = ""  # where its label was
    note: str = ""
    pieces: list[tuple[str, bool, str]] = field(default_factory=list)  # (digits, atomic, where)
    blanks: set[int] = field(default_factory=set)  # value positions that were blank cells
    candidates: list[tuple[Number, ...]] | None = None


def _values_after(toks: list[Tok], i: int, k: int) -> tuple[list[Tok], int]:
    """The num/blank tokens after a label at ``i`` (up to the next text token or the end of its grid row)."""
    vals: list[Tok] = []
    j = i + 1
    while j < len(toks) and toks[j].kind in ("num", "blank"):
        vals.append(toks[j])
        j += 1
    return vals, j


def _fit(vals: list[Tok], k: int) -> list[Tok] | None:
    """The row's k value cells among a grid row's cells after its label: extra blank cells (what a merged label
    leaves in a plain-text grid) dropped from the front, then the back; None when the cells do not fit."""
    vals = list(vals)
    while len(vals) > k and vals[0].kind == "blank":
        vals.pop(0)
    while len(vals) > k and vals[-1].kind == "blank":
        vals.pop()
    return vals if len(vals) == k else None


def _read_rows(toks: list[Tok], rows: list[_Row], start: int = 0) -> int:
    """Find each row's label in order and what follows it. Returns the token index after the last row found."""
    i = start
    last = start
    for n, row in enumerate(rows):
        later = [r.label for r in rows[n + 1:n + 4] if r.label]
        j = i
        while j < len(toks):
            t = toks[j]
            if t.kind == "text":
                how = _label_hit(row.label, t)
                if how is not None:
                    vals, z = _values_after(toks, j, len(row.names))
                    if _take(row, vals, t, how):
                        i = last = z
                        break
                elif any(_label_hit(lab, t) is not None and _values_after(toks, j, 1)[0] for lab in later):
                    break  # the next row is here: this one is missing
            j += 1
    return last


def _label_hit(label: _Label, t: Tok) -> str | None:
    return _hit(label, t.atomic, t.text)


@functools.lru_cache(maxsize=1 << 16)  # the same labels against the same cells, report after report
def _hit(label: _Label, atomic: bool, text: str) -> str | None:
    # a grid cell is a whole label (or a cut one); a run of flattened text ends with the label
    if atomic and len(text) <= len(label.full) + 2:
        how = label.is_cell(text)
        if how is not None:
            return how
    return label.ends(text)


def _take(row: _Row, vals: list[Tok], label_tok: Tok, how: str) -> bool:
    nums = [v for v in vals if v.kind == "num"]
    if not nums:
        return False
    k = len(row.names)
    if all(v.atomic for v in vals):
        fitted = _fit(vals, k)
        if fitted is None:
            row.found, row.note = label_tok.where, f"该行有{len(vals)}个数字单元格，格式应为{k}个"
            row.candidates = []
            return True
        row.pieces = [(v.text if v.kind == "num" else "0", True, v.where) for v in fitted]
        row.blanks = {p for p, v in enumerate(fitted) if v.kind == "blank"}
    else:
        row.pieces = [(v.text, v.atomic, v.where) for v in vals if v.kind == "num"]
    row.found, row.note = label_tok.where, how
    return True


# --------------------------------------------------------------------------------------------------- tables


def _leaf_rows(nodes) -> list:
    return [leaf for top in nodes for leaf in top.leaves()]


def _t3_rows() -> list[_Row]:
    d = spec.current().definition
    cols = [c.key for c in _leaf_rows(d.t3_columns)]
    return [_Row(tuple(spec.cell_name("三", r.key, c) for c in cols), _Label.of(r.label, r.number))
            for r in _leaf_rows(d.t3_rows)]


def _t2_rows() -> list[_Row]:
    out = []
    for block in spec.current().definition.t2_blocks:
        for r in block.rows:
            out.append(_Row(tuple(spec.cell_name("二", r.key, c.key) for c in block.columns),
                            _Label.of(r.label, r.number), money=any(c.key in spec.MONEY_COLUMNS for c in block.columns)))
    return out


def _r2_check(n: int) -> Callable[[tuple], bool]:
    """Table 三: a row's total (its last value) is the sum of the others (R2), checked once the row is complete."""
    def check(prefix: tuple) -> bool:
        return len(prefix) < n or sum(prefix[:-1]) == prefix[-1]
    return check


def _r5_check() -> Callable[[tuple], bool]:
    groups = [len(g.children) for g, _ in spec._t4_leaf_groups()]
    ends = list(itertools.accumulate(groups))

    def check(prefix: tuple) -> bool:
        n = len(prefix)
        if n in ends:
            a = ends[ends.index(n) - 1] if ends.index(n) else 0
            return sum(prefix[a:n - 1]) == prefix[n - 1]
        return True
    return check


def _candidates(row: _Row, check: Callable[[tuple], bool] | None) -> None:
    if row.candidates is not None or not row.pieces:
        return
    pieces = [(p, a) for p, a, _ in row.pieces]
    k = len(row.names)
    if all(a for _, a in pieces):
        row.candidates = [tuple(_num(p) for p in [x for x, _ in pieces])] if len(pieces) == k else []
        return
    every = splits(pieces, k)
    if every is None:
        row.candidates, row.note = [], "数字连写，拆分方式过多，无法识别"
        return
    if len(every) > 1 and check is not None:
        kept = [c for c in every if all(check(c[:i + 1]) for i in range(k))]
        every = kept or every
    row.candidates = every


def _claims_for(texts: list[str]) -> list[claims.Claim]:
    out: list[claims.Claim] = []
    for t in texts:
        out += [c for c in claims.find(t) if c.unit != "%"]
    return out


def _score(assign: dict[str, Number], known: dict[str, Number], found: list[claims.Claim]) -> int:
    def value(name: str):
        if name in assign:
            return assign[name]
        if name in known:
            return known[name]
        c = spec.CELL[name]
        if c.computed:
            parts = [value(a) for a in c.addends]
            return None if any(p is None for p in parts) else sum(parts)
        return None

    n = 0
    for cl in found:
        if not any(set(r) & set(assign) for r in cl.readings):
            continue
        chk = claims.check(cl, value)
        if chk is not None and chk.ok:
            n += 1
    return n


def _solve(rows: list[_Row], constraints: list[tuple[tuple[str, ...], tuple[str, ...]]],
           found: list[claims.Claim], sink: list | None = None) -> dict[str, CellResult]:
    """Choose each row's split: a single candidate is taken; among several, the combinations that satisfy the
    arithmetic (``constraints``: Σ lhs = Σ rhs over cell names) and then agree with most of the text's claims.
    A cell all remaining combinations agree on is read; the others are unreadable (and their rows go to ``sink``)."""
    out: dict[str, CellResult] = {}
    fixed: dict[str, Number] = {}
    open_rows: list[_Row] = []
    for row in rows:
        if row.candidates and len(row.candidates) == 1:
            fixed.update(zip(row.names, row.candidates[0]))
        elif row.candidates:
            open_rows.append(row)
    solutions: list[dict[str, Number]] = [{}]
    if open_rows:
        size = 1
        for r in open_rows:
            size *= len(r.candidates)
        if size <= 200000:
            solutions = []
            for combo in itertools.product(*(r.candidates for r in open_rows)):
                assign = {n: v for r, c in zip(open_rows, combo) for n, v in zip(r.names, c)}
                vals = {**fixed, **assign}
                if all(_holds(lhs, rhs, vals) for lhs, rhs in constraints):
                    solutions.append(assign)
                    if len(solutions) > 500:
                        break
            if not solutions:  # the published table breaks its own arithmetic: no split can be trusted
                solutions = [{}]
        else:
            solutions = [{}]
        if len(solutions) > 1 and found:
            scores = [_score(s, fixed, found) for s in solutions]
            best = max(scores)
            if best > 0:
                solutions = [s for s, sc in zip(solutions, scores) if sc == best]
    open_rows_of(sink, rows, solutions)
    for row in rows:
        split = any(not a for _, a, _ in row.pieces)
        for p, name in enumerate(row.names):
            where = row.pieces[p][2] if row.pieces and p < len(row.pieces) and all(a for _, a, _ in row.pieces) \
                else row.found
            if name in fixed:
                status = BLANK if p in row.blanks else SPLIT if split else READ
                note = "原文空白，按0计" if status == BLANK else "数字连写，按格式拆分" if split else row.note
                out[name] = CellResult(name, fixed[name], status, where, note)
                continue
            values = {s.get(name) for s in solutions}
            if row.candidates and len(values) == 1 and None not in values:
                out[name] = CellResult(name, values.pop(), SPLIT, where, "数字连写，按勾稽关系和正文拆分")
            elif row.candidates:
                options = sorted({str(c[p]) for c in row.candidates})
                out[name] = CellResult(name, None, UNREADABLE, where,
                                       "数字连写，无法唯一拆分（可能为" + "、".join(options[:6]) + "）")
            else:
                why = row.note or ("未找到该行" if not row.found else "无法识别")
                out[name] = CellResult(name, None, UNREADABLE, row.found, why)
    return out


def open_rows_of(sink: list | None, rows: list[_Row], solutions: list[dict[str, Number]]) -> None:
    """Record (in ``sink``) each row still open after solving: its names and the splits the solutions leave."""
    if sink is None:
        return
    for row in rows:
        if row.candidates and len(row.candidates) > 1:
            left = sorted({tuple(s.get(n) for n in row.names) for s in solutions if all(n in s for n in row.names)},
                          key=str) or row.candidates
            if len(left) > 1:
                sink.append((row.names, left))


def refine_with_previous(r: Recognised, previous: Recognised) -> list[str]:
    """Table 二's documents rows left open by a digit run, settled by the same agency's report of the year before:
    what is in force at the end of the year was in force at the end of the last one or was issued in it, and only
    such documents can be repealed (本年废止 ≤ 上年现行有效 + 本年制发, 现行有效 ≤ 上年现行有效 + 本年制发).
    Returns the names settled."""
    d = spec.current().definition
    block = d.t2_blocks[0]
    keys = [c.key for c in block.columns]
    done: list[str] = []
    for names, cands in list(r.open_rows):
        row_key = next((rk.key for rk in block.rows if names[0] == spec.cell_name("二", rk.key, keys[0])), None)
        if row_key is None:
            continue
        last = previous.cells.get(spec.cell_name("二", row_key, "in_force"))
        if last is None or last.value is None:
            continue
        pos = {k: keys.index(k) for k in ("issued", "repealed", "in_force")}
        fit = [c for c in cands if c[pos["repealed"]] <= last.value + c[pos["issued"]]
               and c[pos["in_force"]] <= last.value + c[pos["issued"]]]
        if len({tuple(c) for c in fit}) != 1:
            continue
        for n, v in zip(names, fit[0]):
            cell = r.cells[n]
            r.cells[n] = CellResult(n, v, SPLIT, cell.where,
                                    f"数字连写，按上年报告（{previous.year}年{spec.column_node('二', 'in_force').short}"
                                    f"{last.value}件）的上限拆分")
            done.append(n)
        r.open_rows.remove((names, cands))
    return done


def _holds(lhs: tuple[str, ...], rhs: tuple[str, ...], vals: dict[str, Number]) -> bool:
    if any(n not in vals for n in lhs + rhs):
        return True  # not decidable with what is known: not a reason to reject
    return sum(vals[n] for n in lhs) == sum(vals[n] for n in rhs)


def _t3_constraints() -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """R1 and R3 of table 三 over its cells as printed (totals are cells here: what the report shows)."""
    out = []
    for r in spec.RULES:
        if r.table == "三" and r.id in ("R1", "R3") and r.scope == "agency":
            out.append((r.lhs, r.rhs))
    return out


# --------------------------------------------------------------------------------------------------- table 四

def _t4_labels() -> list[str]:
    d = spec.current().definition
    labels = set()
    for n in d.t4_groups:
        for x in [n, *n.children, *(c for ch in n.children for c in ch.children)]:
            labels.add(key(x.label))
    return sorted(labels, key=len, reverse=True)


def _is_t4_header(t: str) -> bool:
    """A run of text made of table 四's labels (行政复议 行政诉讼 结果维持 … 总计, in any order)."""
    rest = t
    for lab in _t4_labels():
        rest = rest.replace(lab, "")
    return len(rest) <= max(2, len(t) // 5)


def _read_t4(toks: list[Tok], found: list[claims.Claim]) -> tuple[dict[str, CellResult], str]:
    names = [spec.cell_name("四", g.key, r.key) for g, _ in spec._t4_leaf_groups() for r in g.children]
    group0 = key(spec.current().definition.t4_groups[0].label)
    start = next((i for i, t in enumerate(toks) if t.kind == "text" and group0 in t.text and _is_t4_header(
        t.text[t.text.index(group0):])), None)
    if start is None:
        start = next((i for i, t in enumerate(toks) if t.kind == "text" and t.text == group0), None)
    if start is None:
        d = spec.current().definition
        why = f"未找到表四（没有“{d.t4_groups[0].label}”“{d.t4_results[0].label}”等表头）"
        return {n: CellResult(n, None, UNREADABLE, "", why) for n in names}, ""
    pieces: list[tuple[str, bool, str]] = []
    blanks: set[int] = set()
    j = start + 1
    while j < len(toks):
        t = toks[j]
        if t.kind == "text":
            if not _is_t4_header(t.text):
                break
        elif t.kind == "num":
            pieces.append((t.text, t.atomic, t.where))
        elif t.kind == "blank" and pieces:
            pieces.append(("0", True, t.where))
            blanks.add(len(pieces) - 1)
        j += 1
    row = _Row(tuple(names), None, found=toks[start].where, pieces=pieces, blanks=blanks)
    if not pieces:
        row.candidates, row.note = [], "表四表头之后没有数字"
    _candidates(row, _r5_check())
    return _solve([row], [], found), toks[start].where


# --------------------------------------------------------------------------------------------------- texts

_TITLE = re.compile(r"(?P<year>(?:19|20)\d{2})年度?" + "(?P<rest>政府信息公开(?:工作)?年度报告)")
_PERIOD = re.compile(r"((?:19|20)\d{2})年1月1日")
_SUBITEM = "（{}）"
_SIGN_DATE = re.compile(r"^((?:19|20)\d{2})年(\d{1,2})月(\d{1,2})日$")


#: Paragraphs searched for the title: a web page's header, navigation and breadcrumb come first.
TITLE_SEARCH_BLOCKS = 40
_NAME_SEPARATORS = re.compile(r"[:：>＞»|｜]")  # 当前位置：首页 > 政务公开 > … before the title
_NAME_MAX = 40


def _title_in(text: str) -> tuple[str, str, int] | None:
    for line in text.split("\n"):
        m = _TITLE.search(line)
        if m:
            name = _NAME_SEPARATORS.split(line[:m.start()])[-1].strip("《》“”\"'# ")
            name = name if len(name) <= _NAME_MAX else ""
            return line[m.start() - len(name):m.end()] if name else line[:m.end()], name, int(m.group("year"))
    return None


def find_title(doc: Document) -> tuple[str, str, int | None]:
    """(title, agency name, year): the first paragraph that ends a title, joined with the one or two before it
    when the agency's name is printed above the year (the fewest that give a name); else the page's <title>;
    else the year of the reporting period."""
    paras = [b for b in doc.blocks[:TITLE_SEARCH_BLOCKS] if isinstance(b, Paragraph)]
    flat = [re.sub(r"\s+", "", unicodedata.normalize("NFKC", p.text)) for p in paras]
    for j in range(len(flat)):
        found = _title_in(flat[j])
        if found is None:
            continue
        for size in (2, 3):
            if found[1] or j + 1 < size:
                break
            joined = _title_in("".join(flat[j + 1 - size:j + 1]))
            if joined is not None and joined[1]:
                found = joined
        return found
    if doc.meta.get("title"):
        found = _title_in(re.sub(r"\s+", "", unicodedata.normalize("NFKC", doc.meta["title"])))
        if found is not None:
            return found
    for p in paras:
        m = _PERIOD.search(re.sub(r"\s+", "", p.text))
        if m:
            return "", "", int(m.group(1))
    return "", "", None


def _lcs(a: str, b: str) -> int:
    m = difflib.SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    return m.size


def _subitems(text: str, labels: list[tuple[str, str]]) -> tuple[str, dict[str, str], list[str]]:
    """Split a section's text at its sub-items （一）（二）… in order: (text before them, field name → text,
    headings not matched to a field). A sub-item goes to the field whose label it most resembles, in the
    format's order."""
    marks = []
    pos = 0
    for n in range(1, 11):
        mark = _SUBITEM.format("一二三四五六七八九十"[n - 1])
        i = _find_mark(text, mark, pos)
        if i < 0:
            break
        marks.append((i, i + len(mark)))
        pos = i + len(mark)
    if not marks:
        return text.strip(), {}, []
    head = text[:marks[0][0]].strip()
    out: dict[str, str] = {}
    unmatched: list[str] = []
    next_field = 0
    for k, (a, b) in enumerate(marks):
        body = text[b:marks[k + 1][0] if k + 1 < len(marks) else len(text)].strip()
        lead, rest = _lead(body)
        keys = [(key(lab), name) for name, lab in labels]
        best, best_i = 0, -1
        for i in range(next_field, len(keys)):
            words = keys[i][0].removesuffix(key("情况"))
            score = _lcs(key(lead or body[:20]), words)
            if score > best:
                best, best_i = score, i
        if best >= 2:
            name = keys[best_i][1]
            out[name] = (out.get(name, "") + "\n" + rest).strip() if name in out else rest
            next_field = best_i + 1
        else:
            unmatched.append(lead or body[:20])
            if out:  # a sub-item of its own: kept with the one before
                last = list(out)[-1]
                out[last] += "\n" + body
            else:
                head = (head + "\n" + body).strip()
    return head, out, unmatched


def _find_mark(text: str, mark: str, pos: int) -> int:
    for m in re.finditer(re.escape(mark) + "|" + re.escape(spec.normalise_label(mark)), text[pos:]):
        i = pos + m.start()
        if i == 0 or text[i - 1] in "\n。：:；; \u3000" or not text[i - 1].isalnum():
            return i
    return -1


def _lead(body: str) -> tuple[str, str]:
    """A sub-item's heading words and its text: '主动公开情况。全年…' → ('主动公开情况', '全年…')."""
    first, _, more = body.partition("\n")
    m = re.match(r"([^。：:，,\n]{1,30}?)[。：:]", first)
    if m:
        rest = first[m.end():].strip()
        return m.group(1), (rest + ("\n" + more if more else "")).strip()
    m = re.match(r"([^。：:，,\n]{1,20}?(?:方面|情况))", first)
    if m and len(first) > m.end():
        return m.group(1), (first[m.end():].strip() + ("\n" + more if more else "")).strip()
    return "", body.strip()


def _section_text(doc: Document, start: Pos, end: Pos) -> tuple[str, str]:
    """A section's paragraphs (tables left out) joined by line breaks, and where they start."""
    parts: list[str] = []
    where = ""
    for _i, b, a, text in _segments(doc, start, end):
        if text is None:
            continue
        if text.strip():
            parts.append(text.strip())
            where = where or _where_para(b, a)
    return "\n".join(parts), where


# --------------------------------------------------------------------------------------------------- whole

def recognise(doc: Document) -> Recognised:
    r = Recognised()
    r.title, r.agency, r.year = find_title(doc)
    r.old_labels = _old_labels(doc)
    r.old_format = spec.is_old_format(r.old_labels)
    sections = find_sections(doc)
    for s, (head, _body) in sections.items():
        b = doc.blocks[head.block]
        r.sections[s] = Found(_where_para(b, head.offset))
    end = Pos(len(doc.blocks), 0)
    order = [s.number for s in spec.SECTIONS]

    def span(number: str) -> tuple[Pos, Pos] | None:
        if number not in sections:
            return None
        later = [sections[n][0] for n in order[order.index(number) + 1:] if n in sections]
        return sections[number][1], (later[0] if later else end)

    # texts of 一 first: their claims settle digit runs the arithmetic leaves open
    texts: dict[str, str] = {}
    for s in ("一", "五", "六"):
        sp = span(s)
        if sp:
            texts[s], where = _section_text(doc, *sp)
            r.text_where[s] = Found(where or r.sections[s].where)
    found_claims = _claims_for([texts.get("一", "")])

    # the tables: each in its section's body (else from the section before to the one after)
    def region(number: str) -> tuple[Pos, Pos]:
        sp = span(number)
        if sp:
            return sp
        i = order.index(number)
        before = [sections[n][1] for n in order[:i] if n in sections]
        after = [sections[n][0] for n in order[i + 1:] if n in sections]
        return (before[-1] if before else Pos(0, 0)), (after[0] if after else end)

    t2_rows = _t2_rows()
    toks2 = _tokens(doc, *region("二"))
    _read_rows(toks2, t2_rows)
    for row in t2_rows:
        _candidates(row, None)
    r.cells.update(_solve(t2_rows, [], found_claims, r.open_rows))
    r.tables["二"] = _table_found(t2_rows)

    t3_rows = _t3_rows()
    a3, z3 = region("三")
    toks3 = _tokens(doc, a3, z3)
    stop = _read_rows(toks3, t3_rows)
    ncols = len(t3_rows[0].names)
    for row in t3_rows:
        _candidates(row, _r2_check(ncols))
    r.cells.update(_solve(t3_rows, _t3_constraints(), found_claims))
    r.tables["三"] = _table_found(t3_rows)

    a4, z4 = region("四")
    toks4 = _tokens(doc, a4, z4) if "四" in sections else toks3[stop:]
    t4, where4 = _read_t4(toks4, found_claims)
    r.cells.update(t4)
    r.tables["四"] = Found(where4) if where4 else None

    _texts(r, texts, doc, sections)
    return r


def _table_found(rows: list[_Row]) -> Found | None:
    hits = [row.found for row in rows if row.found]
    if len(hits) * 2 < len(rows):
        return None
    return Found(hits[0], f"找到{len(hits)}/{len(rows)}行")


def _old_labels(doc: Document) -> tuple[str, ...]:
    """Labels of the 2019 format the document shows: whole grid cells (a label broken over lines in the page
    joined again), and 2019-only headers inside text."""
    out: list[str] = []
    for b in doc.blocks:
        if isinstance(b, Table):
            out += ["".join(c.text.split()) for c in b.cells if spec.old_format_evidence(c.text)]
    text = "".join(spec.normalise_label(p.text) for p in doc.paragraphs())
    out += [h for h in spec.OLD_FORMAT_HEADERS if spec.normalise_label(h) in text]
    return tuple(dict.fromkeys(out))


def _texts(r: Recognised, texts: dict[str, str], doc: Document, sections) -> None:
    general = [(n, spec.FIELD[n].label) for n in ("TXT_proactive", "TXT_on_request", "TXT_management",
                                                   "TXT_platform", "TXT_oversight")]
    if "一" in texts:
        head, items, unmatched = _subitems(texts["一"], general)
        r.texts["TXT_overview"] = head
        r.texts.update(items)
        if unmatched:
            r.notes.append(f"“{spec.SECTION['一'].heading}”中未能对应到格式栏目的小标题（并入上一栏目）："
                           + "、".join(unmatched))
        if not items:
            r.notes.append(f"“{spec.SECTION['一'].heading}”没有（一）（二）…小标题，全文计入"
                           f"“{spec.FIELD['TXT_overview'].label}”")
    if "五" in texts:
        improvement = [(n, spec.FIELD[n].label) for n in ("TXT_problems", "TXT_improvements")]
        head, items, _ = _subitems(texts["五"], improvement)
        if items:
            if head:
                first = next(iter(items))
                items[first] = (head + "\n" + items[first]).strip()
            r.texts.update(items)
        else:
            r.texts["TXT_problems"] = head
            r.notes.append(f"“{spec.SECTION['五'].heading}”没有（一）（二）小标题，全文计入"
                           f"“{spec.FIELD['TXT_problems'].label}”")
    if "六" in texts:
        _section_six(r, texts["六"])
    _opening(r, doc)


_FEE_WORDS = ("信息处理费", "收费通知")
_NO_FEE = re.compile(r"(未|无|没有|不)(?:[^。，,；;]{0,8})?(收取|收费|发生收取)")
_FEE_SENTENCE = re.compile(r"^本年度((?:发出收费通知\d+件)?(?:，?通知金额[\d.]+元)?(?:，?实际收取信息处理费[\d.]+元)?)。$")


#: Paragraphs after the signature's date that may still be the page's (its footer), not the report's.
SIGNATURE_FOOTER_PARAS = 6


def _section_six(r: Recognised, text: str) -> None:
    paras = [p.strip() for p in text.split("\n") if p.strip()]
    # the signature block at the end: the agency's name (perhaps over lines) and a date; on a web page the site's
    # footer (分享, 打印本页, 主办单位…) may follow it, and is not the report's
    for at in range(len(paras) - 1, max(-1, len(paras) - 1 - SIGNATURE_FOOTER_PARAS), -1):
        m = _SIGN_DATE.match(re.sub(r"\s+", "", paras[at]))
        if not m:
            continue
        date = f"{m.group(1)}-{int(m.group(2)):02d}-{int(m.group(3)):02d}"
        body, after = paras[:at], paras[at + 1:]
        for k in range(1, min(4, len(body)) + 1):
            tail = "".join(body[-k:])
            if r.agency and key(tail) == key(r.agency) or len(tail) <= 30 and not re.search(r"[。，；]", tail) and (
                    not r.agency or key(r.agency) in key(tail) or key(tail) in key(r.agency)):
                paras = body[:-k]
                r.texts["INFO_fill_date"] = date
                if after:
                    r.notes.append(f"落款（{date}）之后的{len(after)}段（网页页脚等）不属于年报，未计入")
                break
        break
    fee = [p for p in paras if any(w in p for w in _FEE_WORDS)]
    other = [p for p in paras if p not in fee]
    note = []
    charged = ""
    for p in fee:
        m = _FEE_SENTENCE.match(p)
        if m and m.group(1):
            charged = spec.YES
            for label, name, rx in (("发出收费通知", "FEE_fee_notices", r"发出收费通知(\d+)件"),
                                    ("通知金额", "FEE_fee_notice_amount", r"通知金额([\d.]+)元"),
                                    ("实际收取", "FEE_fee_collected", r"实际收取信息处理费([\d.]+)元")):
                mm = re.search(rx, p)
                if mm:
                    r.texts[name] = mm.group(1)
            continue
        note.append(p)
        if not charged:
            charged = spec.NO if _NO_FEE.search(p) else spec.YES
    if charged:
        r.texts["FEE_fee_charged"] = charged
        if charged == spec.NO:
            r.texts.setdefault("FEE_fee_collected", "0")
    if note == ["本年度未收取信息处理费。"] and charged == spec.NO:
        note = []  # the sentence a report prints for 否 without a note of its own
    r.texts["TXT_fee_note"] = "\n".join(note)
    r.texts["TXT_other_matters"] = "\n".join(other)


def _opening(r: Recognised, doc: Document) -> None:
    """The cover fields the usual opening paragraph states (编制科室, 地址, 邮编, 电话, 发布栏目和网址)."""
    first = next((s for s in ("一",) if s in r.sections), None)
    limit = len(doc.blocks)
    if first:
        limit = int(re.search(r"第(\d+)段", r.sections[first].where).group(1))
    text = "\n".join(p.text for p in doc.paragraphs() if p.index < limit)
    s = unicodedata.normalize("NFKC", text)
    f = spec.FIELD
    pats = {
        "INFO_contact_office": r"本报告由(.{2,40}?)(?:负责|牵头)?(?:完成)?编制",
        "INFO_address": "(?:" + re.escape(f["INFO_address"].label) + r"|通讯地址|地址)[:：]\s*([^，,；;）)\n]{4,60})",
        "INFO_postcode": r"(?:邮编|邮政编码)[:：]?\s*(\d{6})",
        "INFO_phone": "(?:" + re.escape(f["INFO_phone"].label) + r"|电话)[:：]?\s*([0-9][0-9\-－—]{5,20})",
        "INFO_publish_url": r"(https?://[^\s）)>，,]+)",
    }
    for name, rx in pats.items():
        m = re.search(rx, s)
        if m:
            r.texts[name] = m.group(1).strip()
    m = re.search(r"可在(.{2,80}?)[(（]?(?:https?://[^)）]*)?[)）]?查阅", s)
    if m:
        r.texts["INFO_publish_channel"] = m.group(1).strip()


def cell_text_value(value: Number) -> str:
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def parse_decimal(s: str) -> Decimal | None:
    try:
        return Decimal(s)
    except InvalidOperation:
        return None
