"""The README's finding-code table is generated from the registry and must be current."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pipeline import findings

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"(<!-- findings:start -->\n)(.*?)(<!-- findings:end -->)", re.DOTALL)


def test_readme_lists_every_finding_code():
    text = README.read_text(encoding="utf-8")
    m = BLOCK.search(text)
    assert m, "README.md lacks the <!-- findings:start --> … <!-- findings:end --> markers"
    table = findings.registry_markdown().rstrip("\n") + "\n"
    if os.environ.get("NIANBAO_GOLDEN_UPDATE") == "1" and m.group(2) != table:
        README.write_text(text[: m.start(2)] + table + text[m.end(2):], encoding="utf-8")
        return
    assert m.group(2) == table, "README's finding-code table is out of date: run `make golden` and commit README.md"
    for code in findings.REGISTRY:
        assert f"`{code}`" in m.group(2)
