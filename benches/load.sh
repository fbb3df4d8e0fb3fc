#!/usr/bin/env bash
# Load benchmark: a release build of Portcullis on loopback with SQLite, measured with `wrk` at
# 64 concurrent keep-alive connections, 10 s per endpoint (BENCH_DURATION to change it).
#
#   benches/load.sh                  # builds release, runs everything, prints a table
#   BENCH_SKIP_BUILD=1 benches/load.sh
#
# Needs: wrk (apt-get install -y wrk), python3 (seeding only), curl. Nothing here talks to
# anything but 127.0.0.1. Numbers depend on what else the machine is doing: the load average is
# printed with the table.
set -euo pipefail
cd "$(dirname "$0")/.."

LOAD_BEFORE="$(cut -d" " -f1-3 /proc/loadavg)"
DURATION="${BENCH_DURATION:-10s}"
CONNECTIONS=64
THREADS="${BENCH_THREADS:-2}"
PORT="${BENCH_PORT:-18080}"
BIN=target/release/portcullis

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 2; }
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
export PORTCULLIS_DATABASE_URL="sqlite://$WORK/bench.db"
export PORTCULLIS_KEYS_DIR="$WORK/keys"
export PORTCULLIS_LOG_LEVEL="warn"
# Fast password hashing: the benchmark signs in once per seeded token and does not measure it.
export PORTCULLIS_ARGON2__MEMORY_KIB=8192
export PORTCULLIS_ARGON2__ITERATIONS=1

start_server() {
  "$BIN" serve >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server did not start:" >&2; cat "$WORK/server.log" >&2; exit 1
}
stop_server() {
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
}
peak_rss_mb() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status"; }

# --- seed: one client for everything, one user, a pool of refresh tokens -----------------------
"$BIN" migrate >/dev/null
CLIENT_JSON="$("$BIN" client create --name bench --json \
  --grant-type client_credentials --grant-type authorization_code --grant-type refresh_token \
  --redirect-uri "http://127.0.0.1:9/cb" --scope openid --scope email --scope offline_access \
  --access-token-ttl 3600)"
CLIENT_ID="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_id"])' "$CLIENT_JSON")"
CLIENT_SECRET="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_secret"])' "$CLIENT_JSON")"
"$BIN" user create --email bench@example.com --password "bench password 123" --verified >/dev/null
BASIC="$(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)"

start_server

# Sign in once through the real pages, then run the code flow for each pooled refresh token.
POOL=$((CONNECTIONS * 4))
python3 - "$PORT" "$CLIENT_ID" "$CLIENT_SECRET" "$POOL" >"$WORK/refresh_tokens" <<'PY'
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
[ "$(wc -l <"$WORK/refresh_tokens")" -eq "$POOL" ] || { echo "seeding refresh tokens failed" >&2; exit 1; }

ACCESS_TOKEN="$(curl -fs -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials \
  "http://127.0.0.1:$PORT/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"

# --- wrk scripts --------------------------------------------------------------------------------
post_script() { # $1 = file, $2 = form body
  cat >"$1" <<LUA
wrk.method = "POST"
wrk.body = "$2"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $BASIC"
LUA
}
post_script "$WORK/cc.lua" "grant_type=client_credentials"
post_script "$WORK/introspect.lua" "token=$ACCESS_TOKEN"

# Refresh: every request spends one pooled token and the response returns its successor, which
# goes back into the pool, so each request is a real rotation (never a reuse).
cat >"$WORK/refresh.lua" <<LUA
local all = {}
for line in io.lines("$WORK/refresh_tokens") do all[#all + 1] = line end
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
    ["Authorization"] = "Basic $BASIC" }, "grant_type=refresh_token&refresh_token=" .. t)
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

# --- runs -----------------------------------------------------------------------------------------
RESULTS="$WORK/results"
: >"$RESULTS"
run() { # $1 = label, then wrk args
  local label="$1"; shift
  local out
  out="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" 2>&1)"
  echo "$out" >"$WORK/wrk-$label.txt"
  local rps p50 p99 non2xx
  rps="$(awk '/Requests\/sec/ { print $2 }' <<<"$out")"
  p50="$(awk '$1 == "50%" { print $2 }' <<<"$out")"
  p99="$(awk '$1 == "99%" { print $2 }' <<<"$out")"
  non2xx="$(awk '/Non-2xx/ { print $NF }' <<<"$out")"
  printf '%-28s %12s %10s %10s %10s %8s\n' "$label" "$rps" "$p50" "$p99" "$(peak_rss_mb)" "${non2xx:-0}" >>"$RESULTS"
  grep -i "failures" <<<"$out" >&2 || true
}
BASE="http://127.0.0.1:$PORT"
run discovery "$BASE/.well-known/openid-configuration"
run jwks "$BASE/jwks.json"
run "client_credentials ES256" -s "$WORK/cc.lua" "$BASE/token"
run introspection -s "$WORK/introspect.lua" "$BASE/introspect"
run "refresh (rotation)" -s "$WORK/refresh.lua" "$BASE/token"
stop_server

# RS256 access tokens: the same client, the server switched with tokens.access_token_alg.
PORTCULLIS_TOKENS__ACCESS_TOKEN_ALG=RS256 start_server
run "client_credentials RS256" -s "$WORK/cc.lua" "$BASE/token"
stop_server

# Reference for the RS256 target: what OpenSSL signs with RSA-2048 on all cores right now.
RSA_RATE="n/a"
if command -v openssl >/dev/null; then
  RSA_RATE="$(openssl speed -seconds 3 -multi "$(nproc)" rsa2048 2>/dev/null | awk '/^rsa 2048/ { print $(NF-1) }' | tail -1)"
fi

echo
echo "Portcullis load benchmark: $CONNECTIONS connections, $THREADS wrk threads, $DURATION per endpoint, SQLite"
echo "machine: $(nproc) cores; load average before/after: ${LOAD_BEFORE:-n/a} / $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-28s %12s %10s %10s %10s %8s\n' endpoint "req/s" p50 p99 "RSS MB" non-2xx
cat "$RESULTS"
echo "(RSS MB: the server's peak resident set, VmHWM, since its start; non-2xx must be 0)"
echo "RSA-2048 signatures/s on all cores (openssl speed, no HTTP, no load generator): $RSA_RATE"
