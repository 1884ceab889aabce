# Two commands on a fresh machine: `make serve` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
SOURCE ?= simulator
PORT ?= 5006

.PHONY: serve test ingest exchange bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

serve: $(VENV)/.installed  ## serve the app on http://127.0.0.1:$(PORT) (SOURCE=simulator|live|auto|replay:PATH); the simulator starts with 7 days of simulated history
	$(PY) -m analytics serve --source $(SOURCE) --port $(PORT) $(if $(filter simulator,$(SOURCE)),--history 7)

test: $(VENV)/.installed  ## run the test suite
	$(PY) -m pytest

ingest: $(VENV)/.installed  ## capture 30 s of the simulated market into ./data
	$(PY) -m analytics ingest --source $(SOURCE) --duration 30

exchange: $(VENV)/.installed  ## run the local exchange alone
	$(PY) -m analytics exchange --source $(SOURCE)

bench: $(VENV)/.installed  ## run the benchmarks (PostgreSQL for bench/storage.py, chromium for the browser ones)
	$(PY) bench/ingest.py
	$(PY) bench/storage.py
	$(PY) bench/memory.py
	$(PY) bench/sessions.py
	$(PY) bench/latency.py
	$(PY) bench/page_open.py
	$(PY) bench/indicators.py
	$(PY) bench/indicators_live.py
	$(PY) bench/risk.py
	$(PY) bench/leadlag.py
	$(PY) bench/report.py
	$(PY) bench/sentiment.py
	$(PY) bench/sentiment_backlog.py

clean:
	rm -rf $(VENV) data
