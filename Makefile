# Two entry points: `make demo` (main job) and `make test` (whole suite). Both create .venv if missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= ../shared/data
DEMO_OUT ?= demo-output

.PHONY: demo test lint install browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/innrsic demo --data $(DATA) --out $(DEMO_OUT)

test: $(STAMP) browser
	$(BIN)/ruff check src tests benchmarks scripts fuzz
	$(BIN)/python -m pytest

# The report test renders HTML in headless Chromium (Debian's package); install it when missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium (needs root and Debian's package registry)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts fuzz

clean:
	rm -rf $(VENV) $(DEMO_OUT) build *.egg-info src/*.egg-info
