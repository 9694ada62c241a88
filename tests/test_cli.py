"""The command-line shell: output formats and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from pipeline import spec
from pipeline.cli import app

runner = CliRunner()


def test_spec_json_matches_the_spec_module():
    result = runner.invoke(app, ["spec", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["format_version"] == spec.FORMAT_VERSION
    assert [c["name"] for c in data["cells"]] == [c.name for c in spec.CELLS]
    assert {c["table"] for c in data["cells"]} == {"二", "三", "四"}
    assert all(set(c) >= {"table", "row", "column", "sheet", "cell", "name", "computed"} for c in data["cells"])
    assert {r["key"] for r in data["rules"]} == {r.key for r in spec.RULES}


def test_console_script_is_installed():
    exe = Path(sys.executable).with_name("nianbao")
    out = subprocess.run([str(exe), "spec", "--json"], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["format_version"] == "2021"


def test_missing_workspace_is_a_usage_error_in_chinese(tmp_path):
    result = runner.invoke(app, ["validate", str(tmp_path / "nowhere"), "--year", "2024"])
    assert result.exit_code == 2
    assert "找不到工作目录" in result.output


def test_bad_roster_category_names_the_line(tmp_path):
    (tmp_path / "county.toml").write_text('name = "测试县"\n', encoding="utf-8")
    (tmp_path / "agencies.csv").write_text("code,name,category\nA1,甲局,县直部门\nA2,乙镇,镇\n", encoding="utf-8")
    (tmp_path / "2024").mkdir()
    result = runner.invoke(app, ["validate", str(tmp_path), "--year", "2024"])
    assert result.exit_code == 2
    assert "第3行" in result.output and "镇" in result.output


def test_unknown_option_is_exit_2():
    result = runner.invoke(app, ["reports", "--no-such-option"])
    assert result.exit_code == 2
