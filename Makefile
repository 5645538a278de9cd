# Two commands a newcomer needs: `make test` and `make demo`. Both create the virtual
# environment on first use and update it when pyproject.toml changes.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell $(PYTHON) -c "import hashlib,sys;print(hashlib.sha1(open('pyproject.toml','rb').read()).hexdigest()[:12])" 2>/dev/null)

.PHONY: test test-live integration-full chaos deploy-full demo docs bench bench-scaling bench-scaling-reduced \
	bench-airflow emulator dist clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,docs,parquet,pubsub,bench]'
	rm -f $(VENV)/.installed-*
	touch $@

# Two passes. Most tests wait on loopback I/O, so pytest-xdist spreads them over the cores
# (TEST_WORKERS, at most 4). The integration tests start whole Airflow deployments and measure
# takeover and failover times: they run alone afterwards, so no other test competes for the CPU.
# Exit code 5 ("no tests collected") of a pass is fine: PYTEST_ARGS may select one kind only.
TEST_WORKERS ?= auto
test: $(STAMP)
	@status=0; \
	$(BIN)/python -m pytest -p no:cacheprovider -n $(TEST_WORKERS) --maxprocesses=4 -m "not integration" $(PYTEST_ARGS) \
		|| { rc=$$?; [ $$rc -eq 5 ] || status=$$rc; }; \
	$(BIN)/python -m pytest -p no:cacheprovider -m integration $(PYTEST_ARGS) \
		|| { rc=$$?; [ $$rc -eq 5 ] || status=$$rc; }; \
	exit $$status

# The contract tests (docs/contract-tests.md) against a real org or sandbox: SF_LIVE_CONN_ID names a
# salesforce_suite Airflow connection (e.g. given as AIRFLOW_CONN_<ID>); without it every test is
# skipped with the reason. `make test` runs the same tests against the emulator.
test-live: $(STAMP)
	SF_CONTRACT_TARGET=live $(BIN)/python -m pytest -p no:cacheprovider -m contract -rsxX tests/contract $(PYTEST_ARGS)

# The full chaos suite (docs/reliability.md): 100,000-row Bulk and 10,000-record REST loads under
# faults, one try killed; the report goes to .chaos/. `make test` runs it at reduced sizes.
chaos: $(STAMP)
	SF_CHAOS_SIZE=full SF_CHAOS_REPORT=.chaos $(BIN)/python -m pytest -p no:cacheprovider tests/chaos -m chaos_full --timeout=7200 $(PYTEST_ARGS)

# The deployment scenarios (docs/deployment.md) at full size: 2,000 Salesforce changes through
# PostgreSQL + Celery + two triggerers. `make test` runs them with 150.
deploy-full: export SF_DEPLOY_WAITS = 200
deploy-full: $(STAMP)
	SF_DEPLOY_EVENTS=2000 $(BIN)/python -m pytest -p no:cacheprovider -s \
		tests/integration/test_deployment.py $(PYTEST_ARGS)

# Integration scenarios `make test` leaves out because a deployment test covers them (the SQLite
# CometD triggerer kill: see tests/integration/conftest.py), with the rest of the integration tests.
integration-full: $(STAMP)
	SF_INTEGRATION_FULL=1 $(BIN)/python -m pytest -p no:cacheprovider -m integration tests/integration $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

# Every group at 5 rounds (about 40 minutes on 2 shared cores: one round of every group took 7.7 min
# at load 5.5); the JSON holds every round, and
# bench-results/tables.md the tables docs/benchmarks.md shows (python -m bench.tables).
bench: $(STAMP)
	$(BIN)/python -m bench.official_provider  # the official provider, apart from $(VENV)
	mkdir -p bench-results
	$(BIN)/python -m bench --json bench-results/results.json $(BENCH_ARGS)
	$(BIN)/python -m bench.tables bench-results/results.json > bench-results/tables.md

# Scaling curves (docs/benchmarks.md, "Scaling curves"): the floor and our operators at 10k/100k/1M/5M
# Bulk rows (ingest, extract) and 1k/10k/100k REST records, PNG plots into docs/img/bench/. The full
# curve takes about an hour on 2 cores (3 rounds, an estimate from the reduced curve);
# bench-scaling-reduced (10k/100k/300k, 1k/10k/30k) takes minutes.
# Sizes: SF_BENCH_SCALING_BULK_SIZES, SF_BENCH_SCALING_REST_SIZES (comma-separated); rounds:
# SF_BENCH_SCALING_ROUNDS (3).
bench-scaling: $(STAMP)
	$(BIN)/python -m bench.bench_scaling $(BENCH_SCALING_ARGS)

bench-scaling-reduced: $(STAMP)
	$(BIN)/python -m bench.bench_scaling --reduced $(BENCH_SCALING_ARGS)

# The headline cases as real Airflow tasks (docs/benchmarks.md, "End to end through Airflow"):
# dag.test(), then a SQLite + LocalExecutor deployment with a triggerer (deferrable=True). Not part
# of `make bench`: about 10 minutes on 2 cores.
bench-airflow: $(STAMP)
	$(BIN)/python -m bench.bench_airflow $(BENCH_AIRFLOW_ARGS)

# Event-to-run latency and sustained events/s through SQLite + LocalExecutor and PostgreSQL +
# Celery side by side (docs/deployment.md); not part of `make bench`: 12 to 14 minutes on 2 cores.
.PHONY: bench-deploy
bench-deploy: $(STAMP)
	$(BIN)/python -m bench.bench_deployment $(BENCH_DEPLOY_ARGS)

emulator: $(STAMP)
	$(BIN)/salesforce-suite-emulator

# The release artifacts (docs/getting-started.md): sdist and wheel into dist/, built out of the tree
# (hatchling: no build/ or *.egg-info here), `twine check`, LICENSE and py.typed in them; then a fresh
# venv gets the wheel and its dependencies from the package index, imports every module and runs
# one example DAG against `salesforce-suite-emulator` from that venv (scripts/check_dist.py).
# `make test` runs the same checks with the dependencies linked instead of downloaded.
dist: $(STAMP)
	$(BIN)/python scripts/check_dist.py --outdir dist

clean:
	rm -rf $(VENV) site .demo dist build *.egg-info
