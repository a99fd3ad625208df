# The README's two commands: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo demo-pretrain test test-fast bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,features,ray,serve]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mmgef demo

# pre-training → fine-tuning LightGCN with uniform and MixGCF negatives, on the built-in data
demo-pretrain: $(STAMP)
	$(BIN)/mmgef demo --pretrain --out runs/demo-pretrain

# pytest exits 5 when it collects nothing: that fails too.
test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

# the fast tier (under 2 minutes): everything but the tests marked slow
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_epoch.py

clean:
	rm -rf $(VENV) runs
