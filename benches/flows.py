#!/usr/bin/env python3
"""Drive complete OpenID Connect sign-ins against a running Portcullis, as browsers would.

Each flow is a fresh browser (its own cookie jar): GET /authorize (redirected to the sign-in
page), GET the sign-in page, POST the password form, follow back to /authorize for the code,
and exchange the code at /token with PKCE. Flows run on CONCURRENCY threads until FLOWS have
completed. Prints one JSON line: flows, failures, seconds.

    flows.py BASE CLIENT_ID CLIENT_SECRET REDIRECT_URI PASSWORD FLOWS CONCURRENCY EMAIL...

Only the standard library; only talks to BASE (127.0.0.1 in the benchmark).
"""
import base64
import hashlib
import http.cookiejar
import json
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

base, cid, secret, redirect_uri, password = sys.argv[1:6]
total, concurrency = int(sys.argv[6]), int(sys.argv[7])
emails = sys.argv[8:]
basic = base64.b64encode(f"{cid}:{secret}".encode()).decode()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def go(opener, url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        r = opener.open(req, timeout=60)
        return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def flow(n):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    verifier = base64.urlsafe_b64encode(hashlib.sha256(str(n).encode()).digest()).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    auth = base + "/authorize?" + urllib.parse.urlencode({
        "response_type": "code", "client_id": cid, "redirect_uri": redirect_uri,
        "scope": "openid email", "code_challenge": challenge,
        "code_challenge_method": "S256", "state": f"s{n}", "nonce": f"n{n}"})
    status, h, _ = go(opener, auth)
    if status != 303 and status != 302:
        return False
    _, _, page = go(opener, urllib.parse.urljoin(base, h["Location"]))
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    rid = re.search(r'name="rid" value="([^"]*)"', page)
    if not csrf or not rid:
        return False
    form = urllib.parse.urlencode({"email": emails[n % len(emails)], "password": password,
                                   "csrf": csrf.group(1), "rid": rid.group(1)}).encode()
    status, h, _ = go(opener, base + "/login", form,
                      {"Content-Type": "application/x-www-form-urlencoded"})
    loc = h.get("Location") if h else None
    # The sign-in answers with a redirect back to /authorize, which redirects with the code.
    for _ in range(3):
        if not loc:
            return False
        if loc.startswith(redirect_uri):
            break
        status, h, _ = go(opener, urllib.parse.urljoin(base, loc))
        loc = h.get("Location") if h else None
    query = urllib.parse.parse_qs(urllib.parse.urlparse(loc).query)
    if "code" not in query:
        return False
    form = urllib.parse.urlencode({"grant_type": "authorization_code", "code": query["code"][0],
                                   "redirect_uri": redirect_uri, "code_verifier": verifier}).encode()
    status, _, body = go(opener, base + "/token", form,
                         {"Authorization": "Basic " + basic,
                          "Content-Type": "application/x-www-form-urlencoded"})
    return status == 200 and "id_token" in json.loads(body)


lock = threading.Lock()
state = {"next": 0, "ok": 0, "failed": 0}


def worker():
    while True:
        with lock:
            n = state["next"]
            if n >= total:
                return
            state["next"] = n + 1
        try:
            ok = flow(n)
        except Exception:  # a broken connection counts as a failed flow, the run goes on
            ok = False
        with lock:
            state["ok" if ok else "failed"] += 1


start = time.monotonic()
threads = [threading.Thread(target=worker) for _ in range(concurrency)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"flows": state["ok"], "failures": state["failed"],
                  "seconds": round(time.monotonic() - start, 3)}))
