# The README's two commands: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo demo-pretrain test test-fast bench bench-serve browser clean device-wheels

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

# Tests run in TEST_WORKERS processes (pytest-xdist; each test's torch uses one thread on 2 cores, so one
# process left a core idle); the tests that start a local Ray instance share one process (xdist_group "ray").
# pytest exits 5 when it collects nothing: that fails too.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadgroup

test: $(STAMP) browser
	$(PYTEST)

# the fast tier (about 2 minutes on 2 cores): everything but the tests marked slow
test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

# Debian's chromium + chromedriver for the page's browser test (tests/serve/test_browser.py); where they
# cannot be installed (no root, no apt) the test skips and says why.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	       && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
	  || echo "make browser: chromium not installed; the browser test will be skipped"

# the service load test (benchmarks/bench_serve.py): Debian's wrk generates the load when it can be
# installed, else the script falls back to its Python client
bench-serve: $(STAMP)
	@command -v wrk >/dev/null \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	       && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } \
	  || echo "make bench-serve: wrk not installed; the Python client generates the load"
	$(BIN)/python benchmarks/bench_serve.py

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_epoch.py

clean:
	rm -rf $(VENV) runs

# wheels for the GPU device machine (Python 3.12, PyTorch already there), for benchmarks/device_check.py: the
# dependencies its image lacks, carried as .whl (see the script's docstring)
device-wheels: $(STAMP)
	rm -rf .whl && $(BIN)/pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
	  pydantic==$$($(BIN)/python -c "import pydantic; print(pydantic.VERSION)") \
	  pydantic-core==$$($(BIN)/python -c "import pydantic_core; print(pydantic_core.__version__)") \
	  annotated-types typing-inspection
