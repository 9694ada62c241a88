"""The test-only format variant: 2021 with one more applicant column in table 三 (基金会, under 法人或其他组织).
Shared by the tests that run a second format beside 2021 in one process."""

from __future__ import annotations

import dataclasses

from pipeline import spec


def with_foundation_column(d: spec.Definition, version: str) -> spec.Definition:
    def add(node: spec.Node) -> spec.Node:
        if node.key == "organisations":
            children = node.children[:-1] + (spec.Node("foundation", "基金会"),) + node.children[-1:]
            return dataclasses.replace(node, children=children)
        return dataclasses.replace(node, children=tuple(add(c) for c in node.children))

    return dataclasses.replace(d, version=version, t3_columns=tuple(add(n) for n in d.t3_columns))
