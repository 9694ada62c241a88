# nianbao — the county office's January run. `make reports` and `make test` do all the set-up.
PYTHON   ?= python3
VENV     ?= .venv
BIN      := $(VENV)/bin
WORKSPACE ?= examples/sample_county
YEAR     ?= 2024
OUTPUT   ?= output
ARGS     ?=
# WORKSPACE and OUTPUT may hold spaces and Chinese characters (make reports WORKSPACE="/data/县 政务 公开办/工作目录"): they
# are quoted below; ARGS is split into words on purpose (ARGS="--pdf --jobs 2").

.PHONY: reports templates validate test bench golden lint samples clean venv

$(BIN)/nianbao: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

venv: $(BIN)/nianbao

reports: venv          ## validate + aggregate + render the workspace's year into $(OUTPUT)/$(YEAR)/
	$(BIN)/nianbao reports "$(WORKSPACE)" --year "$(YEAR)" --output "$(OUTPUT)" $(ARGS)

templates: venv        ## the blank workbook (input_templates/) and one pre-filled workbook per agency
	$(BIN)/nianbao template --year "$(YEAR)"
	$(BIN)/nianbao template "$(WORKSPACE)" --year "$(YEAR)" --output "$(OUTPUT)"

validate: venv         ## validation only
	$(BIN)/nianbao validate "$(WORKSPACE)" --year "$(YEAR)" --output "$(OUTPUT)" $(ARGS)

test: venv             ## the whole test suite
	$(BIN)/python -m pytest -q $(ARGS)

bench: venv            ## speed and memory, as ratios to a floor measured in the same run
	$(BIN)/python -m tests.bench $(ARGS)

golden: venv           ## rewrite the golden files (then review `git diff tests/golden`)
	NIANBAO_GOLDEN_UPDATE=1 $(BIN)/python -m pytest -q tests $(ARGS)

samples: venv          ## regenerate the sample county's workbooks (seeded, deterministic)
	$(BIN)/python examples/make_sample.py

lint: venv
	$(BIN)/ruff check pipeline tests examples

clean:
	rm -rf "$(OUTPUT)" .pytest_cache
