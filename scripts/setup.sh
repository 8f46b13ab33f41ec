#!/usr/bin/env bash
# Installs everything archc needs into .venv (and Graphviz from Debian), idempotently: a second run with
# nothing changed takes a second. Used by the README's two commands and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Graphviz renders diagrams; Chromium and its driver run the HTML report's browser test.
missing=""
command -v dot >/dev/null 2>&1 || missing="$missing graphviz"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v chromedriver >/dev/null 2>&1 || missing="$missing chromium-driver"
if [ -n "$missing" ]; then
    echo "installing:$missing" >&2
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq >/dev/null
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi

# Reinstall only when the declared dependencies change.
stamp=.venv/.archc-setup-stamp
want=$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "installing Python packages into .venv" >&2
    # torch and torchvision are pinned to the builds this machine's pip takes from local disk
    # (a plain `torch` from PyPI would pull a multi-gigabyte CUDA build).
    .venv/bin/pip install -q --disable-pip-version-check "torch==2.14.1" "torchvision==0.29.1"
    .venv/bin/pip install -q --disable-pip-version-check -e ".[test,bench]"
    echo "$want" > "$stamp"
fi
