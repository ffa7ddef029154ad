# The two commands README starts with: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONF   ?= config/default.conf

.PHONY: run test lint format system-deps bench nginx-tests clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# the modules setup.py compiles (where Cython and a C compiler are at hand) and their .pxd:
# editing one rebuilds it (until then webserv runs its .py, see webserv/_pure.py)
COMPILED := $(shell sed -n 's/^    "\(webserv\/.*\.py\)",$$/\1/p' setup.py) \
            $(wildcard webserv/*.pxd webserv/*/*.pxd)

$(VENV)/.installed: pyproject.toml setup.py $(COMPILED) | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml setup.py $(COMPILED) | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	@$(BIN)/python -m webserv.tls_demo var/tls >/dev/null  # the demo's HTTPS certificate, once
	$(BIN)/python -m webserv $(CONF)

# Debian packages the tests use (php-cgi, chromium, tcpdump, ...); skipped where not root
system-deps:
	@bash scripts/system-deps.sh

lint: $(VENV)/.installed-test
	$(BIN)/ruff check webserv tests benchmarks tools
	$(BIN)/ruff format --check webserv tests benchmarks tools

format: $(VENV)/.installed-test
	$(BIN)/ruff format webserv tests benchmarks tools
	$(BIN)/ruff check --fix webserv tests benchmarks tools

# the suite twice: the compiled build, then the same tree as pure Python (WEBSERV_PURE=1)
test: $(VENV)/.installed-test system-deps lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	WEBSERV_PURE=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/run.py

# nginx's own test suite against webserv and nginx (not part of `make test`: CI has no clone)
# make nginx-tests NGINX_TESTS=../nginx-tests [NGINX_TESTS_FILES="http_uri.t index.t"]
nginx-tests: $(VENV)/.installed
	@test -n "$(NGINX_TESTS)" || { echo "NGINX_TESTS=DIR: a clone of https://github.com/nginx/nginx-tests"; exit 2; }
	$(BIN)/python tools/nginx-tests/run.py --suite $(NGINX_TESTS) $(NGINX_TESTS_FILES)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache test-artifacts
	find webserv -name '*.so' -delete -o -name '*.c' -delete
