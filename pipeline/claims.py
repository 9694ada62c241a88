"""Numbers a report's text states about its own tables (R10): found in the wording real reports use, bound to
the cells they claim, checked against the table.

A text is read clause by clause. Each number with a count unit (件, 起, 宗, 条), a percentage or an amount in 万元 is
a *mention*; the words before it (back to the previous mention) say what it counts: a *topic* (依申请公开 requests,
行政复议, 行政诉讼, 规章, 行政规范性文件, 行政许可 …; the last topic named stays until another is named) and a *slot*
within it (收到, 办结, 上年结转, 予以公开, 自然人, 结果维持, 制发, 现行有效 …). The vocabulary and the cells each
(topic, slot) claims are data of the format (``spec.CLAIM_VOCABULARY``); nothing here names a cell.

A mention whose words fit no (topic, slot) is not a claim: a checker that invents claims sends clerks after numbers
that were never wrong (items published, visits, training sessions, documents by 公开属性, request subjects). A
percentage is a claim only after 占/占比/比例 (a share of the count just named) or as 办结率.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from . import spec

# ---- numerals

_CN_DIGIT = {"零": 0, "〇": 0, "一": 1, "壹": 1, "二": 2, "贰": 2, "两": 2, "三": 3, "叁": 3, "四": 4, "肆": 4,
             "五": 5, "伍": 5, "六": 6, "陆": 6, "七": 7, "柒": 7, "八": 8, "捌": 8, "九": 9, "玖": 9}
_CN_UNIT = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_CN_NUMERAL = re.compile(r"(?<!第)([零〇一壹二贰两三叁四肆五伍六陆七柒八捌九玖十拾百佰千仟万]+)(?=件|起|宗|条)")


def chinese_numeral(s: str) -> int | None:
    """七十 → 70, 一百四十一 → 141, 二十三 → 23, 贰拾 → 20, 两 → 2, 一万二千 → 12000; None if not a numeral."""
    total = section = digit = 0
    seen = False
    for ch in s:
        if ch in _CN_DIGIT:
            digit, seen = _CN_DIGIT[ch], True
        elif ch in _CN_UNIT:
            section += (digit if seen else 1) * _CN_UNIT[ch]
            digit, seen = 0, False
        elif ch == "万":
            total += (section + digit) * 10000
            section = digit = 0
            seen = False
        else:
            return None
    return total + section + digit


def normalise(text: str) -> str:
    """NFKC (full-width digits and punctuation), no whitespace (PDF line breaks inside words and numbers),
    Chinese numerals before a count unit as digits."""
    return numerals(re.sub(r"\s+", "", unicodedata.normalize("NFKC", text or "")))


def numerals(s: str) -> str:
    """Chinese numerals before a count unit as digits (``normalise`` without NFKC and whitespace)."""
    return _CN_NUMERAL.sub(lambda m: str(chinese_numeral(m.group(1))) if chinese_numeral(m.group(1)) is not None
                           else m.group(1), s)


# ---- what the text says

@dataclass(frozen=True)
class Claim:
    """One number of a text bound to what it counts.

    ``readings``: the admissible cell sums (defined names), any of which may be meant (收到 N 件: 新收, or 新收 +
    上年结转). A share (``unit`` "%") is ``readings`` / ``of`` × 100, any reading over any base.
    """

    sentence: str
    phrase: str  # the words and the number as written (normalised)
    number: Decimal
    unit: str  # 件 (counts), % or 万元
    kind: str  # the vocabulary's key
    what: str  # what the number is, in the message's words
    readings: tuple[tuple[str, ...], ...]
    of: tuple[tuple[str, ...], ...] = ()

    @property
    def decimals(self) -> int:
        exp = self.number.as_tuple().exponent
        return -exp if isinstance(exp, int) and exp < 0 else 0


#: Count units reports write besides the format's own (件).
_COUNT_UNITS = ("起", "宗", "条")
_SENTENCE_END = "。！？!?"


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    m = None
    for m in pattern.finditer(text):
        pass
    return m


_CLAUSE = re.compile(r"[，,；;：:。！？!?]")
_CONNECTOR = re.compile(r"^[和、及与,，]?$")


def _clause(words: str) -> str:
    """The last clause of ``words`` (after the last ，；：)."""
    parts = _CLAUSE.split(words)
    return parts[-1]


def _after(s: str, i: int, n: int = 24) -> str:
    """The clause after position ``i`` (12起，均为未经复议直接起诉 → 均为未经复议直接起诉)."""
    rest = s[i:i + n + 2].lstrip("，,；;：:")
    return re.split(r"[，,；;。、：:（(]", rest[:n], maxsplit=1)[0]


def _right_after(s: str, i: int, n: int = 12) -> str:
    """The words right after position ``i`` in its own clause (17件已失效、… → 已失效; 8件，申请事项… → '')."""
    return re.split(r"[，,；;。、：:（(！？!?]", s[i:i + n], maxsplit=1)[0]


def _alt(words) -> str:
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))  # longest first


class _Reader:
    """The vocabulary of the current format, compiled once per format."""

    def __init__(self, v: spec.ClaimVocabulary):
        self.v = v
        self.money = next(c.unit for c in spec.CELLS if c.kind == "money")  # the format's money unit (万元)
        units = (self.money, spec.COUNT_UNIT, *_COUNT_UNITS, "%")
        self.mention = re.compile(r"(?<![\d.第])(\d+(?:\.\d+)?)(" + "|".join(map(re.escape, units)) + ")")
        self.topics = {t.key: t for t in v.topics}
        self.topic = re.compile(_alt([w for t in v.topics for w in t.words] + list(v.not_a_topic)))
        self.topic_of = {w: t.key for t in v.topics for w in t.words}
        self.slot = {t.key: re.compile(_alt([w for x in t.slots for w in x.words])) if t.slots else None
                     for t in v.topics}
        self.slot_of = {t.key: {w: x for x in t.slots for w in x.words} for t in v.topics}
        def names(t: spec.ClaimTopic) -> tuple[str, ...]:  # a part may be named by its whole's words too
            return t.words + t.nouns + (names(self.topics[t.within]) if t.within else ())

        self.bare = {t.key: re.compile("(?:" + _alt(names(t)) + ")" + t.bare + "$")
                     for t in v.topics if t.default is not None}
        self.not_a_topic = re.compile(_alt(v.not_a_topic))
        self.modifier = re.compile(_alt(v.modifiers)) if v.modifiers else None  # .match(words, pos): at pos
        # a word that ends every topic, unless part of a topic's own word (未缴纳信息处理费 is a request's fate)
        self.ending = re.compile(_alt([w for t in v.topics for w in t.words] + list(v.not_a_topic)))
        self.ends = frozenset(v.not_a_topic)
        self.published = re.compile(_alt(v.publishing))
        self.delta = re.compile(_alt(v.delta_words))
        self.share = re.compile(_alt(v.share_words))
        self.rate = re.compile(_alt([w for x in v.rates for w in x.words])) if v.rates else None
        self.rate_of = {w: x for x in v.rates for w in x.words}
        self.together = re.compile("^(?:" + _alt(v.together) + ")")
        self.respectively = re.compile(_alt(v.respectively))
        self.summing = re.compile("^(?:" + _alt(v.summing) + ")$")
        self.block_end = "；;" + _SENTENCE_END
        # 未收到(任何)政府信息公开申请: none of the first topic (not 未收到该申请人提交的补正)
        first = v.topics[0]
        self.none = (re.compile("(?:" + _alt(v.none_words) + ")(?:过)?(?:任何)?(?:" + _alt(first.words) + ")(?!人)")
                     if v.none_words and v.none_slot is not None else None)

    # -- topics and slots

    def _topic(self, words: str) -> tuple[bool, str | None]:
        """(a topic word was found, the topic it names — None for a word that ends every topic). Of a topic and
        a part of it named in the same words (直接起诉的行政诉讼), the part."""
        found = list(self.topic.finditer(words))
        if not found:
            return False, None
        key = self.topic_of.get(found[-1].group(0))
        for m in found[:-1]:
            k = self.topic_of.get(m.group(0))
            if key is not None and k is not None and self.topics[k].within == key:
                key = k
        return True, key

    def _slots(self, topic: str, words: str) -> list[tuple[spec.ClaimSlot, int, int]]:
        """The slots named in ``words`` with their positions (not those that only describe a noun: 法人提出的)."""
        pattern = self.slot[topic]
        if pattern is None:
            return []
        out = []
        for m in pattern.finditer(words):
            if self.modifier is not None and self.modifier.match(words, m.end()):
                continue
            out.append((self.slot_of[topic][m.group(0)], m.start(), m.end()))
        return out

    def _best(self, found: list[tuple[spec.ClaimSlot, int, int]], words: str = "") -> spec.ClaimSlot | None:
        """The highest-ranked slot, the last of equals; a part named with its whole (国家秘密 … 不予公开) wins,
        unless named as an example (信访、重复申请等不予处理)."""
        if not found:
            return None
        best, b0, _ = found[-1]
        for x, x0, x1 in reversed(found[:-1]):
            if x.within == best.key:
                if "等" not in words[x1:b0]:
                    best, b0 = x, x0
            elif x.rank > best.rank:
                best, b0 = x, x0
        return best

    def _slot(self, topic: str, words: str, published: bool = False) -> spec.ClaimSlot | None:
        clause = _clause(words)
        slot = self._best(self._slots(topic, clause), clause)
        if slot is not None:
            return slot
        bare = self.bare.get(topic) if published or topic not in self.v.published else None
        if bare is not None and bare.search(clause):  # the topic's own noun right before the number: 申请共计81件
            return self.topics[topic].default
        sentence = re.split("[" + _SENTENCE_END + "]", words)[-1]  # a slot named earlier in the sentence
        return self._best(self._slots(topic, sentence), sentence)

    # -- reading a text

    def claims(self, text: str, normalised: bool = False) -> list[Claim]:
        s = numerals(text) if normalised else normalise(text)
        nones = self._nones(s)
        if not nones and self.mention.search(s) is None:
            return []
        out: list[Claim] = []
        first = self.v.topics[0].key  # a text of this report talks of requests until it says otherwise
        topic: str | None = first
        # from a word that ends every topic (公文, 主动公开, 信息处理费 …) to the end of its sentence or ；, a number
        # is a claim only where its own clause names a topic and a slot (……；回应依申请公开信息3条)
        blocked = [(b.start(), min([j for j in (s.find(c, b.end()) for c in self.block_end) if j >= 0] or [len(s)]))
                   for b in self.ending.finditer(s) if b.group(0) in self.ends]
        start = sentence_start = 0
        counts: list[Claim] = []  # the counts of the sentence so far
        shares: list[Claim] = []  # counts still to get their share (占比分别为 a% 和 b%)
        for m in self.mention.finditer(s):
            while nones and nones[0][0] < m.start():
                out.append(nones.pop(0)[1])
            words = s[start:m.start()]
            cut = max(words.rfind(c) for c in _SENTENCE_END)
            if cut >= 0:
                sentence_start = start + cut + 1
                counts, shares = [], []
                if topic is None:
                    topic = first
            start = m.end()
            number, unit = m.group(1), m.group(2)
            sentence = s[sentence_start:_sentence_end(s, m.end())]
            phrase = _clause(words).lstrip("，,；;。、") + number + unit
            clause = _clause(words)
            named, key = self._topic(words)
            after_topic = False
            if not named and unit != "%":  # 收到70件申请: the topic after the number
                named, key = self._topic(_after(s, m.end()))
                named = after_topic = named and key is not None
            if named:
                topic = key
            block = next((s[b0:b1] for b0, b1 in blocked if b0 <= m.start() < b1), None)
            if block is not None:
                here, own = self._topic(clause)
                if not (here and own is not None and (self._slots(own, clause) or (
                        own in self.v.published and self.published.search(block) and self._slot(own, words, True)))):
                    continue
                topic = own
            elif topic is None:
                topic = first
            if self.delta.search(clause):
                continue
            if unit != "%" and self.not_a_topic.search(_right_after(s, m.end())):  # 对17件已失效的文件
                continue
            if unit == "%":
                got = self._percent(words, topic, Decimal(number), phrase, sentence, counts, shares, s[m.start():])
                out += got
                continue
            if (unit == self.money) != (topic in self.v.money_topics):
                continue
            found = self._count(s, m, words, topic, Decimal(number), sentence, phrase, counts, after_topic,
                                block is not None)
            out += found
            counts += [c for c in found if c.unit != "%"][:1]
        return out + [c for _, c in nones]

    def _nones(self, s: str) -> list[tuple[int, Claim]]:
        """(position, a claim of 0) for each 未收到…申请 of ``s``."""
        if self.none is None:
            return []
        slot = self.v.none_slot
        return [(m.start(), Claim(s[_sentence_start(s, m.start()):_sentence_end(s, m.end())], m.group(0), Decimal(0),
                                  spec.COUNT_UNIT, slot.key, slot.what, slot.readings))
                for m in self.none.finditer(s)]

    def _count(self, s, m, words, topic, number, sentence, phrase, counts, after_topic, published) -> list[Claim]:
        unit = self.money if m.group(2) == self.money else spec.COUNT_UNIT
        clause = _clause(words)
        slots = [x for x, _, _ in self._slots(topic, clause)]
        if len(slots) > 1 and self.together.search(_after(s, m.end()) or "") is None \
                and re.search("(?:" + _alt(self.v.together) + ")$", clause):
            if number != 0:  # 均为3件: each is 3 — no sum to check
                return []
            names = tuple(dict.fromkeys(n for x in slots for n in x.readings[0]))
            return [Claim(sentence, phrase, number, unit, "together", "、".join(x.what for x in slots), (names,))]
        slot = self._slot(topic, words, published)
        if slot is None and len(counts) >= 2 and self.summing.search(clause.strip("，,")):  # 合计71件
            names = tuple(dict.fromkeys(n for c in counts for n in c.readings[0]))
            return [Claim(sentence, phrase, number, unit, "sum", "合计", (names,))]
        if slot is None:
            after = _after(s, m.end())
            pattern = self.slot[topic]
            hit = pattern.search(after) if pattern is not None and not self.share.search(after) else None
            slot = self.slot_of[topic][hit.group(0)] if hit else None  # 一件结转下年度继续办理
            if slot is None and after_topic:  # 有1件涉及…的行政复议
                slot = self.topics[topic].default
        if slot is None:
            return []
        out = [Claim(sentence, phrase, number, unit, slot.key, slot.what, slot.readings)]
        after = _after(s, m.end())
        if self.together.search(after):  # 12起，均为未经复议直接起诉: the same number is all of one part
            named, key = self._topic(after)
            part = None
            if named and key is not None and self.topics[key].within == topic:
                part = self.topics[key].default
            else:
                part = next((x for x, _, _ in self._slots(topic, after) if x.within == slot.key), None)
            if part is not None:
                out.append(Claim(sentence, phrase, number, unit, part.key, part.what, part.readings))
        return out

    def _percent(self, words, topic, number, phrase, sentence, counts, shares, rest) -> list[Claim]:
        clause = _clause(words)
        rate = _last(self.rate, clause) if self.rate is not None else None
        if rate is not None:
            r = self.rate_of[rate.group(0)]
            return [Claim(sentence, phrase, number, "%", r.key, r.what, r.readings, self.v.rate_of)]
        if self.respectively.search(clause):
            n = re.match(r"(?:\d+(?:\.\d+)?%[和、及与,，]?)+", rest).group(0).count("%")  # 分别为55%和20%
            shares[:] = counts[-n:] if n <= len(counts) else []
        elif shares and _CONNECTOR.match(words):
            pass
        elif words in ("（", "("):  # 208件（17.46%）
            shares[:] = counts[-1:]
        elif self.share.search(clause):
            before = clause[:self.share.search(clause).start()]  # 占办结总数的: what follows 占 is the base
            named = self._best(self._slots(topic, before), before)
            if named is not None:
                return [Claim(sentence, phrase, number, "%", "share", f"{named.what}所占比例", named.readings,
                              self.v.share_of)]
            shares[:] = counts[-1:]
        else:
            return []
        if not shares:
            return []
        c = shares.pop(0)
        return [Claim(sentence, phrase, number, "%", "share", f"{c.what}所占比例", c.readings, self.v.share_of)]


def _sentence_start(s: str, i: int) -> int:
    return max(s.rfind(c, 0, i) for c in _SENTENCE_END) + 1


def _sentence_end(s: str, i: int) -> int:
    ends = [j for j in (s.find(c, i) for c in _SENTENCE_END) if j >= 0]
    return min(ends) + 1 if ends else len(s)


@spec.per_format
def _reader() -> _Reader:
    return _Reader(spec.CLAIM_VOCABULARY)


def find(text: str, *, normalised: bool = False) -> list[Claim]:
    """Every claim of ``text`` about the current format's tables, in order. ``normalised``: ``text`` is already
    NFKC with no whitespace (the validator has that form of every text)."""
    return _reader().claims(text, normalised)


# ---- checking a claim against the table

@dataclass(frozen=True)
class Check:
    claim: Claim
    ok: bool
    expected: tuple[Decimal, ...]  # what the table gives for each reading (shares: rounded as written)
    cells: tuple[str, ...]  # the cells of the readings, in order


def check(claim: Claim, value) -> Check | None:
    """``value(name)`` → the cell's number or None (unknown: the claim is not checked)."""

    def total(names: tuple[str, ...]) -> Decimal | None:
        vals = [value(n) for n in names]
        if any(v is None for v in vals):
            return None
        try:
            return sum((Decimal(str(v)) for v in vals), Decimal(0))
        except InvalidOperation:
            return None

    cells = tuple(dict.fromkeys(n for r in claim.readings + claim.of for n in r))
    if claim.unit != "%":
        sums = [total(r) for r in claim.readings]
        if any(x is None for x in sums):
            return None
        q = Decimal(1).scaleb(-claim.decimals)
        ok = any(x == claim.number or (claim.decimals and x.quantize(q) == claim.number) for x in sums)
        return Check(claim, ok, tuple(dict.fromkeys(sums)), cells)
    shares = []
    for r in claim.readings:
        num = total(r)
        for base in claim.of:
            den = total(base)
            if num is None or den is None:
                return None
            if den > 0:
                shares.append(num / den * 100)
    if not shares:
        return None
    tolerance = Decimal(5).scaleb(-claim.decimals - 1) + Decimal("1e-9")
    ok = any(abs(x - claim.number) <= tolerance for x in shares)
    q = Decimal(1).scaleb(-max(claim.decimals, 2))
    return Check(claim, ok, tuple(dict.fromkeys(x.quantize(q).normalize() for x in shares)), cells)
