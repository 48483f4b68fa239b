#!/usr/bin/env bash
# schemathesis against the live server: every operation of /api/schema/ fuzzed over HTTP, with a
# bearer token, checking that nothing answers 5xx and that every status, content type, header and
# body is the one the schema documents. gunicorn (DEBUG off) on a throw-away SQLite database and
# the sandbox STS/OSS, all on loopback; everything is stopped and removed on the way out.
#
#   bash tests/perf/schemathesis.sh [extra schemathesis options, e.g. --max-examples 100]
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
work=$(mktemp -d)
pids=()

cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() {  # url, pid
  for _ in $(seq 1 150); do
    if "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$1" 2>/dev/null; then
      return 0
    fi
    kill -0 "$2" 2>/dev/null || { echo "process $2 died while starting; log:" >&2; cat "$work"/*.log >&2; return 1; }
    sleep 0.2
  done
  echo "$1 did not answer" >&2
  return 1
}

web_port=$(free_port)
sts_port=$(free_port)
oss_port=$(free_port)
# Production settings (DEBUG off), fresh random keys, nothing inherited from a developer's .env.
export DJANGO_DEBUG=0
DJANGO_SECRET_KEY=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(50))')
DJANGO_JWT_SIGNING_KEY=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(50))')
export DJANGO_SECRET_KEY DJANGO_JWT_SIGNING_KEY
export DJANGO_ALLOWED_HOSTS=127.0.0.1 DJANGO_SECURE_SSL_REDIRECT=0 DJANGO_LOG_LEVEL=ERROR
export DATABASE_URL="sqlite:///$work/db.sqlite3"
unset REDIS_URL
export ALIYUN_ACCESS_KEY_ID=schemathesis-ram-user ALIYUN_ACCESS_KEY_SECRET=schemathesis-ram-secret
export ALIYUN_STS_ROLE_ARN=acs:ram::1000000000000000:role/schemathesis-uploader
export ALIYUN_STS_ENDPOINT="127.0.0.1:$sts_port" ALIYUN_OSS_ENDPOINT="http://127.0.0.1:$oss_port"
export ALIYUN_OSS_BUCKET=schemathesis-bucket ALIYUN_OSS_REGION=cn-hangzhou SANDBOX_DATA_DIR="$work/oss"
export THROTTLE_STS_TOKEN=100000/min THROTTLE_LOGIN=100000/min THROTTLE_AVATAR=100000/min THROTTLE_POST_POLICY=100000/min  # fuzz the endpoints, not the throttles
export GUNICORN_BIND="127.0.0.1:$web_port" GUNICORN_WORKERS=2 GUNICORN_ACCESS_LOG= GUNICORN_LOG_LEVEL=warning

"$PY" manage.py migrate --noinput >/dev/null
"$PY" manage.py shell -c '
from django.contrib.auth import get_user_model
get_user_model().objects.create_user("schemathesis", password="schemathesis-password")
'
# The sandbox is a development tool: production settings (DEBUG off) do not install it.
DJANGO_SETTINGS_MODULE=config.settings.development "$PY" manage.py sandbox >"$work/sandbox.log" 2>&1 &
pids+=($!)
"$VENV/bin/gunicorn" --config config/gunicorn.conf.py >"$work/gunicorn.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$sts_port/__sandbox__/stats" "${pids[0]}"
wait_for "http://127.0.0.1:$web_port/healthz" "${pids[1]}"

token=$("$PY" - "$web_port" <<'EOF'
import json, sys, urllib.request
request = urllib.request.Request(
    f"http://127.0.0.1:{sys.argv[1]}/api/auth/token/",
    data=json.dumps({"username": "schemathesis", "password": "schemathesis-password"}).encode(),
    headers={"Content-Type": "application/json"},
)
print(json.load(urllib.request.urlopen(request, timeout=10))["access"])
EOF
)

# A real credential URL for its (unauthenticated) GET, so the credentials answer is checked too, not
# only refusals of made-up secrets. Its value reaches schemathesis through the environment.
CREDENTIAL_URL_SECRET=$("$PY" - "$web_port" "$token" <<'EOF'
import json, sys, urllib.request
request = urllib.request.Request(
    f"http://127.0.0.1:{sys.argv[1]}/api/uploads/sts-server-url/", method="POST",
    headers={"Authorization": f"Bearer {sys.argv[2]}"},
)
print(json.load(urllib.request.urlopen(request, timeout=10))["url"].rstrip("/").rsplit("/", 1)[1])
EOF
)
export CREDENTIAL_URL_SECRET
cat >"$work/schemathesis.toml" <<'EOF'
[[operations]]
include-operation-id = "uploads_sts_server_credential_url_retrieve"
parameters = { "path.secret" = "${CREDENTIAL_URL_SECRET}" }
EOF

# positive_data_acceptance is left out: a well-formed but made-up password or refresh token is
# rightly refused with a documented 401, which that check would count as a failure.
status=0
"$VENV/bin/schemathesis" --config-file "$work/schemathesis.toml" run "http://127.0.0.1:$web_port/api/schema/" \
  --checks all --exclude-checks positive_data_acceptance \
  --header "Authorization: Bearer $token" \
  --max-examples 100 --seed 20261128 --request-timeout 15 --workers 2 \
  --no-color "$@" || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- gunicorn log ---" >&2
  tail -n 40 "$work/gunicorn.log" >&2
fi
exit "$status"
