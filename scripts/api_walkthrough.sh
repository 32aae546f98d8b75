#!/usr/bin/env bash
# The docs/api.md walkthrough, command for command: a new user signs up, makes an API key,
# creates a CSV data source, uploads a file, creates and starts a job, tails its log stream
# until the job ends, and reads the job's counters. Only HTTP (curl) against a running API.
#
#   DASHIN_API_URL  the API (default http://127.0.0.1:8000); a worker must serve the `csv` queue
#   CSV             the file to import (default tests/connectors/data/leads_sample.csv)
#   EMAIL, DOMAIN, PASSWORD   the new account (default: a fresh domain on every run)
#   JQ              the jq to read JSON with (default: jq on PATH; empty: python3 -c instead)
#
# Exit status: 0 once the job completed, 1 otherwise (or when any request fails).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
API="${DASHIN_API_URL:-http://127.0.0.1:8000}/api/v1"
CSV="${CSV:-$ROOT/tests/connectors/data/leads_sample.csv}"
DOMAIN="${DOMAIN:-walkthrough-$(date +%s)-$$.example.com}"
EMAIL="${EMAIL:-ada@$DOMAIN}"
PASSWORD="${PASSWORD:-correct horse battery staple}"
JQ="${JQ-$(command -v jq || true)}"
PYTHON="${PYTHON:-python3}"

# json FIELD: print FIELD (a dotted path, e.g. counters.inserted) of the JSON document on stdin
json() {
  if [ -n "$JQ" ]; then
    "$JQ" -c -r ".$1"
  else
    "$PYTHON" -c '
import json, sys
value = json.load(sys.stdin)
for part in sys.argv[1].split("."):
    value = value[part]
print(value if isinstance(value, str) else json.dumps(value, separators=(",", ":")))
' "$1"
  fi
}

echo "== 1. sign up (a new domain makes you its manager), then log in"
curl -sS --fail-with-body -X POST "$API/auth/signup" \
  -H 'Content-Type: application/json' \
  -d "{\"email\": \"$EMAIL\", \"password\": \"$PASSWORD\", \"domain_name\": \"$DOMAIN\"}"
echo
TOKEN=$(curl -sS --fail-with-body -X POST "$API/auth/login" \
  -H 'Content-Type: application/json' \
  -d "{\"email\": \"$EMAIL\", \"password\": \"$PASSWORD\"}" | json access_token)

echo "== 2. an API key for scripts (shown once)"
KEY=$(curl -sS --fail-with-body -X POST "$API/api-keys" \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"name": "walkthrough"}' | json key)
echo "key ${KEY:0:12}…"

echo "== 3. a CSV data source"
SOURCE=$(curl -sS --fail-with-body -X POST "$API/data-sources" \
  -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d '{"type": "csv", "name": "Trade show leads"}' | json id)
echo "source $SOURCE"

echo "== 4. upload the file"
FILE=$(curl -sS --fail-with-body -X POST "$API/data-sources/$SOURCE/files" \
  -H "Authorization: Bearer $KEY" \
  -F "file=@$CSV;type=text/csv" | json id)
echo "file $FILE"

echo "== 5. create the job, then start it"
JOB=$(curl -sS --fail-with-body -X POST "$API/jobs" \
  -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d "{\"data_source_id\": \"$SOURCE\", \"params\": {\"file_id\": \"$FILE\", \"page_size\": 50}}" \
  | json id)
echo "job $JOB"
curl -sS --fail-with-body -X POST "$API/jobs/$JOB/start" \
  -H "Authorization: Bearer $KEY" | json status

echo "== 6. tail the job's log stream (SSE) until it ends"
curl -sS -N --fail-with-body --max-time 600 "$API/jobs/$JOB/logs/stream" \
  -H "Authorization: Bearer $KEY" -H 'Accept: text/event-stream'

echo "== 7. the job's status and counters"
RESULT=$(curl -sS --fail-with-body "$API/jobs/$JOB" -H "Authorization: Bearer $KEY")
STATUS=$(echo "$RESULT" | json status)
echo "status: $STATUS"
echo "counters: $(echo "$RESULT" | json counters)"
[ "$STATUS" = completed ]
