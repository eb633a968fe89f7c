# Two commands on a fresh machine with Python 3.11:
#   make demo   set up .venv, ingest the sample dumps, dry-run today's issue into outbox/
#   make test   set up .venv with the test extras and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test check clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	@test -f subscribers.yaml || { cp subscribers.example.yaml subscribers.yaml; echo "Created subscribers.yaml from subscribers.example.yaml"; }
	$(BIN)/newsletter ingest samples/dumps/*.txt
	$(BIN)/newsletter send --dry-run

test: $(VENV)/.installed
	$(BIN)/ruff check newsletter tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# One table: parse, rank, render, build, the dry run and SMTP sending, each next to the
# ceiling measured in the same run. Smaller: make bench BENCH_ARGS="--subscribers 10000"
bench: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_issue.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) outbox newsletter.db newsletter.db-wal newsletter.db-shm
