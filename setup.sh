#!/usr/bin/env bash
# Installs cnnir and everything its commands use on a fresh machine:
#   - the system Graphviz `dot` (apt-get, where missing; diagrams as SVG/PDF/PNG),
#   - PyTorch's CPU build (torch==2.13.0) first, where no torch is installed, so that
#     the `torch` extra (no upper bound) installs nothing more,
#   - one onnxruntime, never both builds (they install the same `onnxruntime` module):
#     the one already installed; else CNNIR_ONNXRUNTIME=run|gpu; else `gpu`
#     (onnxruntime-gpu, which carries the CPU provider too) where `nvidia-smi` sees a
#     GPU, `run` (onnxruntime, CPU) elsewhere,
#   - cnnir itself, editable, with the extras torch and run|gpu, and the test tools
#     when called with --dev.
# The core alone (no torch, no onnxruntime) is `pip install .` -- see the README.
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

PY=python3
PIP="$PY -m pip"

# PEP 668: a Debian/Ubuntu system Python refuses pip installs outside a virtualenv;
# say so in one line instead of pip's wall of text
if [ -z "${PIP_BREAK_SYSTEM_PACKAGES:-}" ] && $PY -c 'import os, sys, sysconfig
sys.exit(0 if sys.prefix == sys.base_prefix and os.path.exists(os.path.join(
    sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)' 2>/dev/null; then
    echo "setup.sh: this Python is externally managed (PEP 668); make a virtualenv first: python3 -m venv .venv && . .venv/bin/activate && ./setup.sh" >&2
    exit 2
fi
installed() { $PY -c "import importlib.metadata as m, sys; m.version(sys.argv[1])" "$1" >/dev/null 2>&1; }

if ! $PY -c "import torch" >/dev/null 2>&1; then
    $PIP install -q torch==2.13.0 || echo "setup.sh: torch==2.13.0 not found; pip will pick a torch build" >&2
fi

if installed onnxruntime-gpu; then
    ORT=gpu
elif installed onnxruntime; then
    ORT=run
elif [ -n "${CNNIR_ONNXRUNTIME:-}" ]; then
    case "$CNNIR_ONNXRUNTIME" in
        run|gpu) ORT=$CNNIR_ONNXRUNTIME ;;
        *) echo "setup.sh: CNNIR_ONNXRUNTIME must be run or gpu, not '$CNNIR_ONNXRUNTIME'" >&2; exit 2 ;;
    esac
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    ORT=gpu
else
    ORT=run
fi

EXTRAS="torch,$ORT"
[ "${1:-}" = "--dev" ] && EXTRAS="$EXTRAS,dev"
$PIP install -q -e ".[$EXTRAS]"
