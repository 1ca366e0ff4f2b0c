# Two set-up commands: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
RUN ?= demo_run

.PHONY: demo test install bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/genocnn train --pos data/ctcf_gm12878_top500.fa --out $(RUN) --seed 0 --force
	$(BIN)/genocnn predict $(RUN) data/ctcf_gm12878_top500.fa --out $(RUN)/predictions.tsv
	$(BIN)/genocnn motifs $(RUN) data/ctcf_gm12878_top500.fa --out $(RUN)/motifs
	@echo "results: $(RUN)/ (model.pt, metrics.json, predictions.tsv, motifs/)"
	@echo "to run genocnn yourself: source $(VENV)/bin/activate (then: genocnn --help)"

test: $(VENV)/.installed
	$(BIN)/python -m pytest

bench: $(VENV)/.installed
	$(BIN)/python bench/encode.py
	$(BIN)/python bench/oracle.py
	$(BIN)/python bench/throughput.py

clean:
	rm -rf $(VENV) $(RUN) .pytest_cache
