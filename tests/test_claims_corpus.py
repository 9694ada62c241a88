"""R10 on real wording: every claim of the sentence corpus (tests/fixtures/text_claims) is recognised, none is
invented, and a wrong number planted into a claim is caught."""

from __future__ import annotations

import json
import unicodedata
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline import claims

CORPUS = Path(__file__).resolve().parent / "fixtures" / "text_claims" / "corpus.jsonl"
ENTRIES = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def _number(s: str) -> Decimal:
    s = unicodedata.normalize("NFKC", s)
    n = claims.chinese_numeral(s)
    return Decimal(n) if n is not None else Decimal(s)


def _cells(expr: str) -> frozenset[str]:
    return frozenset(expr.split("+"))


def _matches(found: claims.Claim, want: dict) -> bool:
    if found.number != _number(want["number"]) or (found.unit == "%") != (want["unit"] == "%"):
        return False
    admissible = {_cells(want["cells"])} | {_cells(c) for c in want.get("alt_cells", ())}
    if not any(frozenset(r) in admissible for r in found.readings):
        return False
    if want["unit"] == "%":
        return any(frozenset(b) == _cells(want["of"]) for b in found.of)
    return True


def _pairs(entry: dict) -> tuple[list[dict], list[claims.Claim]]:
    """(expected claims not found, found claims not expected)."""
    found = claims.find(entry["sentence"])
    missed = []
    left = list(found)
    for want in entry["claims"]:
        hit = next((f for f in left if _matches(f, want)), None)
        if hit is None:
            missed.append(want)
        else:
            left.remove(hit)
    return missed, left


def test_the_corpus_is_real_and_large_enough():
    verbatim = [e for e in ENTRIES if "(verbatim)" in e["source"]]
    assert len(ENTRIES) >= 150 and len(verbatim) >= 60
    assert sum(len(e["claims"]) for e in ENTRIES) >= 200


@pytest.mark.parametrize("entry", ENTRIES, ids=[f"{i + 1}" for i in range(len(ENTRIES))])
def test_every_claim_recognised_none_invented(entry):
    missed, invented = _pairs(entry)
    assert not missed and not invented, (
        f"\n{entry['sentence']}\n  missed: {[(m['number'], m['kind'], m['cells']) for m in missed]}"
        f"\n  invented: {[(f.number, f.kind, f.readings) for f in invented]}")


def _table(want: dict, number: Decimal):
    """A table where the claimed cells hold ``number`` (in the first of them) and every other cell 0."""
    first = want["cells"].split("+")[0]
    return lambda name: number if name == first else Decimal(0)


COUNTS = [(e, w) for e in ENTRIES for w in e["claims"] if w["unit"] != "%"]


@pytest.mark.parametrize("entry,want", COUNTS, ids=[f"{i + 1}" for i in range(len(COUNTS))])
def test_a_planted_wrong_number_is_caught(entry, want):
    claim = next(f for f in claims.find(entry["sentence"]) if _matches(f, want))
    said = _number(want["number"])
    right = claims.check(claim, _table(want, said))
    assert right is not None and right.ok
    wrong = claims.check(claim, _table(want, said + 7))
    assert wrong is not None and not wrong.ok and said + 7 in wrong.expected


def test_shares_are_checked_against_the_counts_they_are_a_share_of():
    s = "2024年共收到政府信息公开申请27件，予以公开及部分公开14件，占51.85%。"
    got = [c for c in claims.find(s) if c.unit == "%"]
    assert len(got) == 1
    table = {"T3_new_total": 27, "T3_carried_in_total": 0, "T3_total_total": 27, "T3_granted_total": 10,
             "T3_partial_total": 4}
    assert claims.check(got[0], table.get).ok  # 14 / 27 = 51.85 %
    table["T3_partial_total"] = 5  # 15 / 27 = 55.56 %
    bad = claims.check(got[0], table.get)
    assert not bad.ok and Decimal("55.56") in bad.expected


def test_chinese_numerals():
    assert [claims.chinese_numeral(s) for s in ("七十", "一百四十一", "二十三", "贰拾", "两", "十五", "一万二千")] == [
        70, 141, 23, 20, 2, 15, 12000]
    assert [c.number for c in claims.find("本年度全区共收到七十件申请，办结六十九件。")] == [70, 69]
