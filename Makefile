# Two commands do all the set-up: `make run` (the demo on SQLite + the local sandbox) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

# A local .env (see .env.example) may override anything below.
-include .env

# `make serve` keeps the HTTPS redirect (secure cookies, HSTS) unless the environment or .env turns it off.
SERVE_SSL_REDIRECT := $(if $(filter undefined,$(origin DJANGO_SECURE_SSL_REDIRECT)),1,$(DJANGO_SECURE_SSL_REDIRECT))

# The embedded default: the local sandbox stands in for Alibaba Cloud STS and OSS.
export DJANGO_DEBUG ?= 1
export DJANGO_SECURE_SSL_REDIRECT ?= 0
export ALIYUN_ACCESS_KEY_ID ?= sandbox-ram-user
export ALIYUN_ACCESS_KEY_SECRET ?= sandbox-ram-user-secret
export ALIYUN_STS_ROLE_ARN ?= acs:ram::1000000000000000:role/sandbox-uploader
export ALIYUN_STS_ENDPOINT ?= 127.0.0.1:8701
export ALIYUN_OSS_BUCKET ?= demo-avatars
export ALIYUN_OSS_REGION ?= cn-hangzhou
export ALIYUN_OSS_ENDPOINT ?= http://127.0.0.1:8702
HOST ?= 127.0.0.1
PORT ?= 8000
# The sandbox bucket enforces CORS like OSS: until a CORS rule is applied, it lets the demo's origin in.
export SANDBOX_CORS_ALLOWED_ORIGINS ?= http://$(HOST):$(PORT),http://localhost:$(PORT)

.PHONY: install run run-keyless test test-all sandbox lint serve bench loadcheck faultcheck profile check-deploy docs docs-serve aliyun-setup doctor trial

# `make run-keyless`: `make run` with no AccessKey in the web app's environment. The sandbox also serves STS
# over HTTPS (STS_TLS_PORT) and projects an OIDC token, and the app gets its identity by RRSA
# (AssumeRoleWithOIDC with that token, then role chaining), as on ACK: docs/operating/keyless.md.
# The sandbox itself keeps the key pair: it is the account's one RAM user, not the app's.
STS_TLS_PORT ?= 8703
KEYLESS_DATA_DIR := $(or $(SANDBOX_DATA_DIR),$(CURDIR)/var/sandbox)
KEYLESS_ACCOUNT := $(word 3,$(subst :, ,$(ALIYUN_STS_ROLE_ARN)))
run-keyless: SANDBOX_ARGS := --sts-tls-port $(STS_TLS_PORT) --data-dir $(KEYLESS_DATA_DIR)
run-keyless: WEB_ENV := env -u ALIYUN_ACCESS_KEY_ID -u ALIYUN_ACCESS_KEY_SECRET \
  ALIBABA_CLOUD_ROLE_ARN=acs:ram::$(KEYLESS_ACCOUNT):role/sandbox-server \
  ALIBABA_CLOUD_OIDC_PROVIDER_ARN=acs:ram::$(KEYLESS_ACCOUNT):oidc-provider/sandbox-oidc \
  ALIBABA_CLOUD_OIDC_TOKEN_FILE=$(KEYLESS_DATA_DIR)/oidc/token \
  ALIYUN_STS_HTTPS_ENDPOINT=127.0.0.1:$(STS_TLS_PORT) SSL_CERT_FILE=$(KEYLESS_DATA_DIR)/tls/ca.pem
run-keyless: run

# Our translations (locale/<lang>/LC_MESSAGES/*.po, kept up to date by `manage.py translations`), compiled
# by Babel: no GNU gettext needed. The .mo files are build outputs (.gitignore).
LOCALE_MO := $(patsubst %.po,%.mo,$(wildcard locale/*/LC_MESSAGES/*.po))
install: $(VENV)/.installed node_modules/.installed $(LOCALE_MO)

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# The browser SDK (ali-oss) comes from npm, pinned by the lock file and served as a static file.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

locale/%.mo: locale/%.po $(VENV)/.installed
	$(VENV)/bin/pybabel --quiet compile --locale $(word 2,$(subst /, ,$@)) --input-file $< --output-file $@

# The sandbox pushes its OSS events, as MNS does, to the web app's receiver; the app accepts the
# sandbox's signing certificate (served under its OSS origin: ledger.E001 allows it only there).
run: export SANDBOX_EVENT_ENDPOINT ?= http://$(HOST):$(PORT)/api/uploads/oss-events/
run: export OSS_EVENTS_CERT_URL_PREFIXES ?= $(ALIYUN_OSS_ENDPOINT)/__sandbox__/
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py create_demo_users
	@echo "Demo: open http://$(HOST):$(PORT)/ and log in as demo / demo-password (admin: admin / admin-password)"
	@# The sandbox and the web server run together and stop together: if either cannot start
	@# (a port taken) or dies, the other is stopped and make says why. A sandbox that exits 0
	@# (--only-if-local with Alibaba Cloud endpoints) leaves the web server running. Each runs in
	@# a process group of its own (set -m), stopped whole on the way out (runserver's reloader too).
	@set -m; trap 'kill -- -$$sandbox -$$web 2>/dev/null' EXIT; trap 'exit 130' INT TERM; \
	  $(PY) manage.py sandbox --only-if-local $(SANDBOX_ARGS) & sandbox=$$!; \
	  $(WEB_ENV) $(PY) manage.py runserver $(HOST):$(PORT) & web=$$!; \
	  while :; do \
	    wait -n -p stopped $$sandbox $$web; status=$$?; \
	    if [ "$$stopped" = "$$sandbox" ] && [ $$status -eq 0 ]; then continue; fi; \
	    break; \
	  done; \
	  if [ "$$stopped" = "$$sandbox" ]; then \
	    echo "make run: the sandbox stopped (exit $$status), so the web app was stopped too. If a port is taken," \
	      "free it or move the sandbox: ALIYUN_STS_ENDPOINT=127.0.0.1:<port> ALIYUN_OSS_ENDPOINT=http://127.0.0.1:<port> make run" >&2; \
	  else \
	    echo "make run: the web server stopped (exit $$status); if port $(PORT) is taken, try PORT=<port> make run" >&2; \
	  fi; \
	  exit $$status

# SANDBOX_ARGS: the sandbox's options, here and in `make run`, e.g. `make sandbox SANDBOX_ARGS="--latency-ms 20"`.
sandbox: install
	$(PY) manage.py sandbox $(SANDBOX_ARGS)

# The operator commands with the development environment above, against the sandbox of a running
# `make run` (or `make sandbox`): the site's two local origins are the ones the bucket's CORS rule
# allows. Flags go in ARGS: `make aliyun-setup ARGS="--apply --yes"`, `make doctor ARGS=--json`.
# Against a real account, run `.venv/bin/python manage.py aliyun_setup` with the production
# environment instead (docs/operating/aliyun.md).
aliyun-setup doctor: export DJANGO_CSRF_TRUSTED_ORIGINS ?= http://$(HOST):$(PORT),http://localhost:$(PORT)
# The probe's OSS event reaches only a running `make run`: `make doctor OSS_EVENTS_DOCTOR_WAIT_SECONDS=10` checks it.
doctor: export OSS_EVENTS_DOCTOR_WAIT_SECONDS ?= 0
aliyun-setup: install
	$(PY) manage.py aliyun_setup $(ARGS)
doctor: install
	$(PY) manage.py aliyun_doctor $(ARGS)

# Tests read their own environment (tests/settings.py): nothing above leaks into them.
# The default run leaves out the tests marked slow or browser (about a minute on 2 cores); `make test-all`
# runs everything (about 6 minutes), as CI does. TEST_MARKS is a pytest -m expression ("" selects all).
TEST_MARKS ?= not slow and not browser
test: install
	env -u DJANGO_DEBUG -u DJANGO_SECURE_SSL_REDIRECT -u ALIYUN_ACCESS_KEY_ID -u ALIYUN_ACCESS_KEY_SECRET \
	  -u ALIYUN_STS_ROLE_ARN -u ALIYUN_STS_ENDPOINT -u ALIYUN_OSS_BUCKET -u ALIYUN_OSS_REGION -u ALIYUN_OSS_ENDPOINT \
	  -u SANDBOX_CORS_ALLOWED_ORIGINS -u ALIBABA_CLOUD_ROLE_ARN -u ALIBABA_CLOUD_OIDC_PROVIDER_ARN \
	  -u ALIBABA_CLOUD_OIDC_TOKEN_FILE -u ALIBABA_CLOUD_ECS_METADATA -u ALIBABA_CLOUD_CREDENTIALS_URI \
	  $(PY) -m pytest -m "$(TEST_MARKS)" $(PYTEST_ARGS)

test-all: TEST_MARKS :=
test-all: test

# ruff (lint and format), and the dependency contracts of pyproject.toml ([tool.importlinter]): layers,
# and a product that never imports the sandbox. `ruff format .` fixes what the format check reports.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# The documentation site (mkdocs.yml, docs/): the reference pages written from the code first, then a
# strict build into site/ (a broken link or anchor, or a page missing from the navigation, fails it).
DOCS_PORT ?= 8001
export NO_MKDOCS_2_WARNING := 1
docs: install
	$(PY) manage.py docs_reference
	$(VENV)/bin/mkdocs build --strict --quiet

docs-serve: install
	$(VENV)/bin/mkdocs serve --dev-addr $(HOST):$(DOCS_PORT)

# Production serving: DEBUG off, static files collected for whitenoise, gunicorn (config/gunicorn.conf.py).
# Needs the production environment (.env or the shell): DJANGO_SECRET_KEY, DJANGO_JWT_SIGNING_KEY,
# DJANGO_ALLOWED_HOSTS, the ALIYUN_* of a real account (the sandbox's published key pair is refused:
# uploads.E031), DATABASE_URL and REDIS_URL. To try the production path locally: `make trial`.
serve: export DJANGO_DEBUG := 0
serve: export DJANGO_SECURE_SSL_REDIRECT := $(SERVE_SSL_REDIRECT)
serve: export GUNICORN_BIND ?= $(HOST):$(PORT)
serve: install
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py migrate --noinput
	exec $(VENV)/bin/gunicorn --config config/gunicorn.conf.py

# The production checks (settings, keys, endpoints, demo users in the database) with the production
# environment from .env or the shell; DEBUG is off whatever the Makefile's development defaults say.
check-deploy: export DJANGO_DEBUG := 0
check-deploy: export DJANGO_SECURE_SSL_REDIRECT := $(SERVE_SSL_REDIRECT)
check-deploy: install
	$(PY) manage.py check --deploy --database default --fail-level WARNING

# The production path on this machine: gunicorn, DEBUG off, PostgreSQL (database ossup_trial) and Redis
# (db 12) on loopback, against the sandbox, with keys generated for the run; `make check-deploy` runs
# first on its environment and must be clean. Until Ctrl-C. TRIAL_ARGS: --port (8100), --keep-database.
trial: install
	$(PY) tests/perf/trial.py $(TRIAL_ARGS)

# Figures for the README: gunicorn + PostgreSQL + Redis + the sandbox STS, all on loopback (tests/perf/).
bench: install
	$(PY) tests/perf/bench.py $(BENCH_ARGS)

loadcheck: install
	$(PY) tests/perf/loadcheck.py $(LOADCHECK_ARGS)

# Two instances while STS is slow, throttles, fails, Redis is killed (a redis-server of its own) and
# PostgreSQL's backends are terminated; exit 1 on a 500, an answer without its audit row, or an STS
# rate above the budget (tests/perf/faultcheck.py). About four minutes.
faultcheck: install
	$(PY) tests/perf/faultcheck.py $(FAULTCHECK_ARGS)

# Where the workers' CPU goes under the bench's load, by py-spy: `make profile PROFILE_ARGS=reused`
# (or fresh, refresh, me, peer; --flame DIR for flame graphs). Needs ptrace rights (root here).
profile: install
	$(PY) tests/perf/profile.py $(PROFILE_ARGS)
