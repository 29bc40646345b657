#!/usr/bin/env bash
# Installs what the end-to-end tests need, only where it is missing or stale, and prints how
# long each step took:
#   - Debian packages: chromium (the browser), caddy (forward_auth tests), redis-server
#   - e2e/node_modules from e2e/package-lock.json (npm ci), when missing or the lock changed
#   - .venv-e2e with MLflow pinned in e2e/requirements.txt, when missing or the pins changed
#   - .venv-airflow with Airflow 3 + FAB pinned in e2e/requirements-airflow.txt, likewise (its
#     own venv: Airflow's pins and MLflow's do not agree). A cold install takes about 7 minutes.
#
# Usage: scripts/install-e2e-deps.sh [--no-apt] [--no-npm] [--no-python] [--no-airflow]
# Environment: PYTHON (default python3), E2E_VENV (default .venv-e2e in the repository),
#   E2E_AIRFLOW_VENV (default .venv-airflow in the repository).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${E2E_VENV:-$repo/.venv-e2e}"
airflow_venv="${E2E_AIRFLOW_VENV:-$repo/.venv-airflow}"
python="${PYTHON:-python3}"
do_apt=1 do_npm=1 do_python=1 do_airflow=1
for arg in "$@"; do
  case "$arg" in
    --no-apt) do_apt=0 ;;
    --no-npm) do_npm=0 ;;
    --no-python) do_python=0 ;;
    --no-airflow) do_airflow=0 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "install-e2e-deps: unknown argument $arg" >&2; exit 2 ;;
  esac
done

summary=()
step() { # step NAME SECONDS WHAT
  summary+=("$(printf '%-10s %4ss  %s' "$1" "$2" "$3")")
  printf 'install-e2e-deps: %s: %s (%ss)\n' "$1" "$3" "$2"
}
now() { date +%s; }
sha() { sha256sum "$@" | sha256sum | cut -c1-64; }

# --- Debian packages ---------------------------------------------------------------------------
if [ "$do_apt" = 1 ]; then
  missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v caddy >/dev/null 2>&1 || missing+=(caddy)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  if [ "${#missing[@]}" -gt 0 ]; then
    sudo=()
    if [ "$(id -u)" != 0 ]; then
      command -v sudo >/dev/null 2>&1 || { echo "install-e2e-deps: need root to install ${missing[*]}" >&2; exit 2; }
      sudo=(sudo)
    fi
    t=$(now)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    step apt-update $(( $(now) - t )) "package lists"
    t=$(now)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    step apt $(( $(now) - t )) "installed ${missing[*]}"
  else
    step apt 0 "chromium, caddy, redis-server already present"
  fi
fi

# --- npm: oidc-provider and playwright-core ------------------------------------------------------
if [ "$do_npm" = 1 ]; then
  lock_sum="$(sha "$repo/e2e/package-lock.json" "$repo/e2e/package.json")"
  stamp="$repo/e2e/node_modules/.e2e-lock-sha256"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_sum" ]; then
    step npm 0 "e2e/node_modules up to date"
  else
    t=$(now)
    npm ci --prefix "$repo/e2e" --no-audit --no-fund --loglevel=error >/dev/null
    echo "$lock_sum" > "$stamp"
    step npm $(( $(now) - t )) "npm ci in e2e/"
  fi
fi

# --- Python venv with MLflow -----------------------------------------------------------------------
if [ "$do_python" = 1 ]; then
  req_sum="$(sha "$repo/e2e/requirements.txt")"
  stamp="$venv/.e2e-requirements-sha256"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$req_sum" ] && [ -x "$venv/bin/mlflow" ]; then
    step pip 0 "$venv up to date"
  else
    t=$(now)
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$repo/e2e/requirements.txt"
    echo "$req_sum" > "$stamp"
    step pip $(( $(now) - t )) "$(sed -n '1p' "$repo/e2e/requirements.txt") into $venv"
  fi
fi

# --- Python venv with Airflow ----------------------------------------------------------------------
if [ "$do_airflow" = 1 ]; then
  req_sum="$(sha "$repo/e2e/requirements-airflow.txt")"
  stamp="$airflow_venv/.e2e-requirements-sha256"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$req_sum" ] && [ -x "$airflow_venv/bin/airflow" ]; then
    step airflow 0 "$airflow_venv up to date"
  else
    t=$(now)
    [ -x "$airflow_venv/bin/python" ] || "$python" -m venv "$airflow_venv"
    "$airflow_venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$repo/e2e/requirements-airflow.txt"
    echo "$req_sum" > "$stamp"
    step airflow $(( $(now) - t )) "$(grep -m1 '^apache-airflow==' "$repo/e2e/requirements-airflow.txt") into $airflow_venv"
  fi
fi

echo "install-e2e-deps: done"
for line in "${summary[@]}"; do echo "  $line"; done
