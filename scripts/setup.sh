#!/usr/bin/env bash
# Idempotent setup for a fresh machine: Debian's data packages (photos, photo test data and
# object cut-outs, when apt is usable), a virtualenv with the pinned dependencies, and omnicodec
# installed in editable mode. Re-running it is cheap: it only reinstalls when
# pyproject.toml changed. Without apt, the data commands fall back to --source portable.
set -euo pipefail
cd "$(dirname "$0")/.."

# Photos and object cut-outs (see docs/data.md: the real-photo corpus and the scenes), and a
# headless browser for the tests that look at /docs and the eval report as a browser renders
# them (they skip without one). Each group is optional: a failed install is a warning.
DEBIAN_PACKAGES=(tuxpaint-stamps-default mate-backgrounds plasma-workspace-wallpapers
                 lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 libjxl-testdata)
BROWSER_PACKAGES=(chromium)
apt_updated=0
apt_install() {  # apt_install WHAT-IF-IT-FAILS PACKAGE...: install the missing ones, never fatal
  local fallback=$1 missing=() p sudo=""
  shift
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  [[ $(id -u) == 0 ]] || sudo="sudo -n"
  echo "setup: installing Debian packages: ${missing[*]}"
  if ! { { ((apt_updated)) || $sudo apt-get update -qq; } && apt_updated=1 &&
         DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
    echo "setup: apt failed for ${missing[*]}; $fallback" >&2
  fi
}
if [[ "${OMNICODEC_SKIP_APT:-0}" != 1 ]] && command -v apt-get >/dev/null && command -v dpkg >/dev/null; then
  apt_install "data commands will use --source portable (pip-only photos)" "${DEBIAN_PACKAGES[@]}"
  apt_install "the browser tests (/docs, report.html) will skip" "${BROWSER_PACKAGES[@]}"
fi

PYTHON=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
stamp=.venv/.omnicodec-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  echo "setup: installing omnicodec and its pinned dependencies into .venv (first time: a few minutes)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
  touch "$stamp"
fi
