#!/usr/bin/env bash
# Builds fuzz/corpus/<target>/ from the committed hand-picked seeds (fuzz/seeds/<target>/) and
# from the test vectors in oidc-core/tests/data: Wycheproof and RFC 7520 cookbook tokens and keys,
# and the oauth2-proxy and mod_auth_openidc open-redirect lists. Idempotent; the corpus folder is
# git-ignored and grows as the fuzzers run.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
data="$here/../oidc-core/tests/data"
corpus="$here/corpus"

for seeds in "$here"/seeds/*/; do
  target="$(basename "$seeds")"
  mkdir -p "$corpus/$target"
  cp -f "$seeds"* "$corpus/$target/"
done

if ! command -v python3 >/dev/null 2>&1; then
  echo "seed.sh: python3 not found; corpora hold the committed seeds only" >&2
  exit 0
fi

python3 - "$data" "$corpus" <<'PY'
import glob, hashlib, json, os, sys

data, corpus = sys.argv[1], sys.argv[2]

def put(target, content):
    if isinstance(content, str):
        content = content.encode()
    folder = os.path.join(corpus, target)
    os.makedirs(folder, exist_ok=True)
    name = "vec-" + hashlib.sha1(content).hexdigest()[:16]
    with open(os.path.join(folder, name), "wb") as f:
        f.write(content)

PRIVATE = {"d", "p", "q", "dp", "dq", "qi", "oth"}
def public(jwk):
    return {k: v for k, v in jwk.items() if k not in PRIVATE}

# Wycheproof: compact tokens to the token targets, the groups' keys to the key-set target.
for path in sorted(glob.glob(os.path.join(data, "wycheproof", "json_web_*_test.json"))):
    doc = json.load(open(path))
    for group in doc.get("testGroups", []):
        for member in ("private", "public"):
            if isinstance(group.get(member), dict):
                put("jwks_parse", json.dumps({"keys": [public(group[member])]}))
        for test in group.get("tests", []):
            jws = test.get("jws")
            if isinstance(jws, str) and jws.count(".") == 2:
                put("jws_validate", jws)
                put("logout_token", "logout_token=" + jws)

# RFC 7520 cookbook: compact signatures and keys.
for path in sorted(glob.glob(os.path.join(data, "jose-cookbook", "**", "*.json"), recursive=True)):
    doc = json.load(open(path))
    if not isinstance(doc, dict):
        continue
    compact = (doc.get("output") or {}).get("compact")
    if isinstance(compact, str):
        put("jws_validate", compact)
    if "kty" in doc:
        put("jwks_parse", json.dumps({"keys": [public(doc)]}))
        put("jwks_parse", json.dumps({"keys": [doc]}))

# Open-redirect payload lists, one target per line.
for path in (os.path.join(data, "oauth2-proxy-openredirects", "openredirects.txt"),
             os.path.join(data, "mod_auth_openidc-openredirects", "open-redirect-payload-list.txt")):
    with open(path, "rb") as f:
        for line in f.read().split(b"\n"):
            line = line.rstrip(b"\r")
            if line:
                put("return_to", line)
                put("request_head", b"GET " + line + b" HTTP/1.1\nHost: app.example\n")
PY

for folder in "$corpus"/*/; do
  printf '%-24s %5d inputs\n' "$(basename "$folder")" "$(find "$folder" -type f | wc -l)"
done
