#!/usr/bin/env bash
# Load benchmark: the release build of Portcullis on loopback, on SQLite and on PostgreSQL in the
# same run, each endpoint driven by `wrk` at 64 keep-alive connections for 10 s
# (BENCH_DURATION), then complete browser sign-ins driven by benches/flows.py.
#
#   benches/load.sh                   # builds release, runs everything, prints the tables
#   BENCH_SKIP_BUILD=1 benches/load.sh
#   BENCH_DATABASES=sqlite benches/load.sh
#
# For each endpoint: requests/s, p50/p99 latency, requests per server CPU-second (the server
# process's user+system CPU from /proc/PID/stat over the run: comparable across runs on a busy
# machine, where requests/s is not), the server's peak resident memory during the run (VmHWM,
# reset before each run) and its resident memory after it. Introspection draws from a pool of
# 5,000 distinct access tokens bound to sessions; refresh rotates real tokens (each response's
# token goes back into the pool), with RS256 and with ES256 ID tokens.
#
# The sign-in phase restarts the server with the default argon2 parameters and runs
# BENCH_FLOWS (2,000) complete code flows on 6 threads, each a fresh browser: authorize, sign-in
# page, password, code exchange. It reports flows per second and per server CPU-second beside
# `portcullis hash-bench` (the raw argon2id rate of this machine, same parameters, same code),
# and resident memory before, at the peak, right after, and after BENCH_IDLE (60) seconds idle.
#
# References measured in the same run: openssl's RSA-2048 and ECDSA P-256 signatures per second
# on all cores, and argon2id hashes per second.
#
# Needs: wrk and openssl (apt-get install -y wrk openssl), python3, curl; psql for PostgreSQL
# (BENCH_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres: the benchmark
# creates and drops the database portcullis_bench there). Nothing here talks to anything but
# 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

LOAD_BEFORE="$(cut -d" " -f1-3 /proc/loadavg)"
DURATION="${BENCH_DURATION:-10s}"
FLOWS="${BENCH_FLOWS:-2000}"
IDLE="${BENCH_IDLE:-60}"
CONNECTIONS=64
THREADS="${BENCH_THREADS:-2}"
PORT="${BENCH_PORT:-18080}"
DATABASES="${BENCH_DATABASES:-sqlite postgres}"
PG_ADMIN_URL="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
BIN=target/release/portcullis
TICKS="$(getconf CLK_TCK)"

for tool in wrk openssl python3 curl; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install -y wrk openssl python3 curl)" >&2; exit 2; }
done
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release --quiet
fi

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

export PORTCULLIS_ISSUER="http://127.0.0.1:$PORT"
export PORTCULLIS_BIND="127.0.0.1:$PORT"
export PORTCULLIS_LOG_LEVEL="warn"
# The benchmark is one client address: lift the per-IP and per-account sign-in limits.
export PORTCULLIS_RATE_LIMIT__IP_PER_MINUTE=100000 PORTCULLIS_RATE_LIMIT__IP_BURST=100000
export PORTCULLIS_RATE_LIMIT__ACCOUNT_PER_HOUR=100000 PORTCULLIS_RATE_LIMIT__ACCOUNT_BURST=100000
BASE="http://127.0.0.1:$PORT"
PASSWORD="bench password 123"

start_server() {
  "$BIN" serve >>"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    curl -fs "$BASE/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server did not start:" >&2; cat "$WORK/server.log" >&2; exit 1
}
stop_server() {
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
}
rss_mb() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status"; }
peak_mb() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status"; }
reset_peak() { echo 5 >"/proc/$SERVER_PID/clear_refs" 2>/dev/null || true; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; }
json_field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# --- references: what this machine's crypto does on all cores, right now -------------------------
openssl_rate() { # $1 = algorithm for openssl speed; prints signatures/s on all cores
  openssl speed -seconds 3 -multi "$(nproc)" "$1" 2>/dev/null | awk -v a="$1" '
    a == "rsa2048" && /^rsa 2048/ { v = $(NF-1) }
    a == "ecdsap256" && /256 bits ecdsa \(nistp256\)/ { v = $(NF-1) }
    END { print v }'
}
RSA_RATE="$(openssl_rate rsa2048)"
EC_RATE="$(openssl_rate ecdsap256)"
HASH_JSON="$(env -u PORTCULLIS_DATABASE_URL "$BIN" hash-bench --seconds 5 --json)"
HASH_RATE="$(json_field "$HASH_JSON" hashes_per_second_all_cores)"

RESULTS="$WORK/results"
FLOW_RESULTS="$WORK/flows"
: >"$RESULTS"; : >"$FLOW_RESULTS"

# One wrk run against the running server: $1 = database, $2 = label, then wrk's arguments.
run() {
  local db="$1" label="$2"; shift 2
  local out before after
  reset_peak
  before="$(cpu_ticks)"
  out="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" 2>&1)"
  after="$(cpu_ticks)"
  echo "$out" >"$WORK/wrk-$db-${label// /_}.txt"
  local requests rps p50 p99 non2xx per_cpu
  requests="$(awk '/requests in/ { print $1 }' <<<"$out")"
  rps="$(awk '/Requests\/sec/ { printf "%.0f", $2 }' <<<"$out")"
  p50="$(awk '$1 == "50%" { print $2 }' <<<"$out")"
  p99="$(awk '$1 == "99%" { print $2 }' <<<"$out")"
  non2xx="$(awk '/Non-2xx/ { print $NF }' <<<"$out")"
  per_cpu="$(awk -v r="$requests" -v t="$((after - before))" -v hz="$TICKS" \
    'BEGIN { if (t > 0) printf "%.0f", r / (t / hz); else print "n/a" }')"
  printf '%-9s %-26s %9s %9s %9s %11s %8s %8s %7s\n' "$db" "$label" "$rps" "$p50" "$p99" \
    "$per_cpu" "$(peak_mb)" "$(rss_mb)" "${non2xx:-0}" >>"$RESULTS"
  grep -i "failures" <<<"$out" >&2 || true
}

# A refresh pool for a client: sign in once through the real pages, then run the code flow once
# per token with that session. $1 = client id, $2 = secret, $3 = how many, $4 = output file.
seed_refresh_tokens() {
  python3 - "$PORT" "$1" "$2" "$3" >"$4" <<'PY'
import base64, hashlib, http.cookiejar, json, re, sys, urllib.parse, urllib.request, urllib.error
port, cid, secret, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
base = f"http://127.0.0.1:{port}"
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k): return None
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
def go(url, data=None, headers={}):
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        r = opener.open(req); return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()
verifier = "v" * 50
challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
auth = base + "/authorize?" + urllib.parse.urlencode({
    "response_type": "code", "client_id": cid, "redirect_uri": "http://127.0.0.1:9/cb",
    "scope": "openid email offline_access", "code_challenge": challenge,
    "code_challenge_method": "S256", "state": "s"})
status, h, _ = go(auth)
loc = h["Location"]
if loc.startswith("/login"):
    _, _, page = go(base + loc)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    rid = re.search(r'name="rid" value="([^"]*)"', page).group(1)
    form = urllib.parse.urlencode({"email": "bench@example.com", "password": "bench password 123",
                                   "csrf": csrf, "rid": rid}).encode()
    go(base + "/login", form)
basic = base64.b64encode(f"{cid}:{secret}".encode()).decode()
for _ in range(n):
    status, h, _ = go(auth)
    code = urllib.parse.parse_qs(urllib.parse.urlparse(h["Location"]).query)["code"][0]
    form = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code,
        "redirect_uri": "http://127.0.0.1:9/cb", "code_verifier": verifier}).encode()
    _, _, body = go(base + "/token", form, {"Authorization": "Basic " + basic,
        "Content-Type": "application/x-www-form-urlencoded"})
    print(json.loads(body)["refresh_token"])
PY
  [ "$(wc -l <"$4")" -eq "$3" ] || { echo "seeding refresh tokens failed" >&2; exit 1; }
}

# N distinct access tokens bound to the session, by rotating one refresh token N times over one
# keep-alive connection. $1 = client id, $2 = secret, $3 = a refresh token, $4 = N, $5 = output.
seed_access_tokens() {
  python3 - "$PORT" "$1" "$2" "$3" "$4" >"$5" <<'PY'
import base64, http.client, json, sys, urllib.parse
port, cid, secret, rt, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
basic = base64.b64encode(f"{cid}:{secret}".encode()).decode()
conn = http.client.HTTPConnection("127.0.0.1", int(port))
for _ in range(n):
    conn.request("POST", "/token", urllib.parse.urlencode(
        {"grant_type": "refresh_token", "refresh_token": rt}),
        {"Authorization": "Basic " + basic, "Content-Type": "application/x-www-form-urlencoded"})
    body = json.loads(conn.getresponse().read())
    rt = body["refresh_token"]
    print(body["access_token"])
PY
  [ "$(wc -l <"$5")" -eq "$4" ] || { echo "seeding access tokens failed" >&2; exit 1; }
}

# wrk scripts -----------------------------------------------------------------------------------
post_script() { # $1 = file, $2 = form body, $3 = Basic credentials
  cat >"$1" <<LUA
wrk.method = "POST"
wrk.body = "$2"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $3"
LUA
}
# Introspection: each request takes the next token of the pool.
introspect_script() { # $1 = file, $2 = token file, $3 = Basic credentials
  cat >"$1" <<LUA
local tokens = {}
for line in io.lines("$2") do tokens[#tokens + 1] = line end
local i = 0
function request()
  i = i % #tokens + 1
  return wrk.format("POST", "/introspect", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = "Basic $3" }, "token=" .. tokens[i])
end
function response(status, headers, body)
  if not body:find('"active":true', 1, true) then failures = (failures or 0) + 1 end
end
LUA
}
# Refresh: every request spends one pooled token and the response returns its successor, which
# goes back into the pool, so each request is a real rotation (never a reuse).
refresh_script() { # $1 = file, $2 = token file, $3 = Basic credentials
  cat >"$1" <<LUA
local all = {}
for line in io.lines("$2") do all[#all + 1] = line end
local threads, next_id = {}, 1
function setup(thread)
  thread:set("id", next_id); next_id = next_id + 1
  table.insert(threads, thread)
end
function init(args)
  pool, failures = {}, 0
  local n = #all / $THREADS
  for i = (id - 1) * n + 1, id * n do pool[#pool + 1] = all[i] end
end
function request()
  local t = table.remove(pool)
  if t == nil then t = "exhausted" end
  return wrk.format("POST", "/token", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = "Basic $3" }, "grant_type=refresh_token&refresh_token=" .. t)
end
function response(status, headers, body)
  local t = body:match('"refresh_token":"([^"]+)"')
  if t then pool[#pool + 1] = t else failures = failures + 1 end
end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    local f = t:get("failures")
    if f and f > 0 then io.stderr:write("refresh failures in a thread: " .. f .. "\n") end
  end
end
LUA
}

new_client() { # prints "id secret basic"; extra arguments go to client create
  local json id secret
  json="$("$BIN" client create --json \
    --grant-type client_credentials --grant-type authorization_code --grant-type refresh_token \
    --redirect-uri "http://127.0.0.1:9/cb" --scope openid --scope email --scope offline_access \
    --access-token-ttl 3600 "$@")"
  id="$(json_field "$json" client_id)"; secret="$(json_field "$json" client_secret)"
  echo "$id $secret $(printf '%s:%s' "$id" "$secret" | base64 -w0)"
}

# --- one database -------------------------------------------------------------------------------
bench_database() { # $1 = sqlite | postgres
  local db="$1"
  if [ "$db" = postgres ]; then
    command -v psql >/dev/null || { echo "skipping PostgreSQL: psql is missing" >&2; return 0; }
    psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS portcullis_bench WITH (FORCE)" >/dev/null
    psql "$PG_ADMIN_URL" -qc "CREATE DATABASE portcullis_bench" >/dev/null
    export PORTCULLIS_DATABASE_URL="${PG_ADMIN_URL%/*}/portcullis_bench"
    # With PostgreSQL the signing keys live in the database, sealed with this key.
    PORTCULLIS_KEYS_ENCRYPTION_KEY="$(openssl rand -base64 32)"
    export PORTCULLIS_KEYS_ENCRYPTION_KEY
  else
    export PORTCULLIS_DATABASE_URL="sqlite://$WORK/bench.db"
  fi
  export PORTCULLIS_KEYS_DIR="$WORK/keys-$db"
  # Fast password hashing while seeding (one sign-in per pool); the sign-in phase uses defaults.
  export PORTCULLIS_ARGON2__MEMORY_KIB=8192 PORTCULLIS_ARGON2__ITERATIONS=1

  "$BIN" migrate >/dev/null
  read -r RS_ID RS_SECRET RS_BASIC <<<"$(new_client --name "bench rs256")"
  read -r ES_ID ES_SECRET ES_BASIC <<<"$(new_client --name "bench es256" --id-token-alg ES256)"
  "$BIN" user create --email bench@example.com --password "$PASSWORD" --verified >/dev/null

  start_server
  local pool=$((CONNECTIONS * 4))
  seed_refresh_tokens "$RS_ID" "$RS_SECRET" "$pool" "$WORK/rt-rs"
  seed_refresh_tokens "$ES_ID" "$ES_SECRET" "$pool" "$WORK/rt-es"
  # Introspection's pool: rotate a spare token of the ES256 client 5,000 times.
  seed_refresh_tokens "$ES_ID" "$ES_SECRET" 1 "$WORK/rt-spare"
  seed_access_tokens "$ES_ID" "$ES_SECRET" "$(cat "$WORK/rt-spare")" 5000 "$WORK/at-pool"

  post_script "$WORK/cc.lua" "grant_type=client_credentials" "$ES_BASIC"
  introspect_script "$WORK/introspect.lua" "$WORK/at-pool" "$ES_BASIC"
  refresh_script "$WORK/refresh-rs.lua" "$WORK/rt-rs" "$RS_BASIC"
  refresh_script "$WORK/refresh-es.lua" "$WORK/rt-es" "$ES_BASIC"

  run "$db" discovery "$BASE/.well-known/openid-configuration"
  run "$db" jwks "$BASE/jwks.json"
  run "$db" "client_credentials ES256" -s "$WORK/cc.lua" "$BASE/token"
  run "$db" "introspection (5k tokens)" -s "$WORK/introspect.lua" "$BASE/introspect"
  run "$db" "refresh, RS256 ID token" -s "$WORK/refresh-rs.lua" "$BASE/token"
  run "$db" "refresh, ES256 ID token" -s "$WORK/refresh-es.lua" "$BASE/token"
  stop_server

  # RS256 access tokens: the same client, the server switched with tokens.access_token_alg.
  PORTCULLIS_TOKENS__ACCESS_TOKEN_ALG=RS256 start_server
  run "$db" "client_credentials RS256" -s "$WORK/cc.lua" "$BASE/token"
  stop_server

  # Sign-in flows with the default argon2 parameters, users hashed with them.
  unset PORTCULLIS_ARGON2__MEMORY_KIB PORTCULLIS_ARGON2__ITERATIONS
  local emails=()
  for i in $(seq 1 10); do
    "$BIN" user create --email "flow$i@example.com" --password "$PASSWORD" --verified >/dev/null
    emails+=("flow$i@example.com")
  done
  start_server
  local idle_before before after result peak right_after
  sleep 1
  idle_before="$(rss_mb)"
  reset_peak
  before="$(cpu_ticks)"
  result="$(python3 benches/flows.py "$BASE" "$RS_ID" "$RS_SECRET" "http://127.0.0.1:9/cb" \
    "$PASSWORD" "$FLOWS" 6 "${emails[@]}")"
  after="$(cpu_ticks)"
  peak="$(peak_mb)"; right_after="$(rss_mb)"
  sleep "$IDLE"
  local flows failures seconds
  flows="$(json_field "$result" flows)"; failures="$(json_field "$result" failures)"
  seconds="$(json_field "$result" seconds)"
  awk -v db="$db" -v f="$flows" -v fail="$failures" -v s="$seconds" -v t="$((after - before))" \
    -v hz="$TICKS" -v idle="$idle_before" -v peak="$peak" -v after="$right_after" \
    -v later="$(rss_mb)" -v wait="$IDLE" 'BEGIN {
      printf "%-9s %6d %8d %8.1f %12.1f %9s %9s %9s %9s (after %ss)\n", db, f, fail, f / s,
        (t > 0 ? f / (t / hz) : 0), idle, peak, after, later, wait }' >>"$FLOW_RESULTS"
  stop_server
  if [ "$db" = postgres ]; then
    psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS portcullis_bench WITH (FORCE)" >/dev/null
  fi
}

for db in $DATABASES; do
  if [ "$db" = postgres ] && ! pg_isready -q -d "$PG_ADMIN_URL" 2>/dev/null; then
    echo "skipping PostgreSQL: nothing answers at $PG_ADMIN_URL" >&2
    continue
  fi
  bench_database "$db"
done

echo
echo "Portcullis load benchmark ($(git rev-parse --short HEAD 2>/dev/null || echo '?')): $CONNECTIONS connections, $THREADS wrk threads, $DURATION per endpoint"
echo "machine: $(nproc) cores; load average before/after: $LOAD_BEFORE / $(cut -d' ' -f1-3 /proc/loadavg)"
echo "references on all cores, same run: RSA-2048 $RSA_RATE signatures/s, ECDSA P-256 $EC_RATE signatures/s (openssl speed), argon2id $HASH_RATE hashes/s (portcullis hash-bench, default parameters)"
echo
printf '%-9s %-26s %9s %9s %9s %11s %8s %8s %7s\n' database endpoint "req/s" p50 p99 "req/CPU-s" "peak MB" "RSS MB" non-2xx
cat "$RESULTS"
echo "(req/CPU-s: requests per second of the server's own CPU time; peak MB: the server's peak"
echo " resident memory during that run; RSS MB: after it; non-2xx must be 0)"
echo
echo "Sign-in flows (authorize, sign-in page, password, code exchange; 6 browsers; default argon2id)"
printf '%-9s %6s %8s %8s %12s %9s %9s %9s %9s\n' database flows failures flows/s "flows/CPU-s" "idle MB" "peak MB" "after MB" "idle MB"
cat "$FLOW_RESULTS"
