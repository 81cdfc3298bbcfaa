#!/usr/bin/env bash
# Installs cnnir and everything it needs on a fresh machine:
#   - the system Graphviz `dot` (apt-get, where missing),
#   - PyTorch's CPU build (torch==2.13.0) before the project, so pip keeps it,
#   - cnnir itself (editable), with the test tools when called with --dev.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v dot >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        $SUDO apt-get update -qq && $SUDO apt-get install -y -qq graphviz >/dev/null
    else
        echo "setup.sh: install Graphviz (the 'dot' program) with your package manager" >&2
    fi
fi

PIP="python3 -m pip"
if ! python3 -c "import torch" >/dev/null 2>&1; then
    $PIP install -q torch==2.13.0 || echo "setup.sh: torch==2.13.0 not found; pip will pick a torch build" >&2
fi
if [ "${1:-}" = "--dev" ]; then
    $PIP install -q -e ".[dev]"
else
    $PIP install -q -e .
fi
