#!/usr/bin/env bash
# The package as a user gets it, apart from the development install:
#   1. `python -m build` makes the sdist, then the wheel *from the sdist* (so a file the
#      sdist forgets fails here too);
#   2. the wheel is installed (not editable) into a fresh virtualenv with the core
#      dependencies only: no torch, no onnxruntime;
#   3. from outside the source tree, the console script runs the core commands (zoo,
#      report, check, draw, compile --to onnx|json on three zoo models and a DSL file,
#      ONNX import), and the commands that need an extra say which one, exit 2.
# Needs `build` (in the dev extra) and pip's registry for the core dependencies.
# Usage: .ci/check_install.sh   (about 40 s on two cores)
set -euo pipefail
unset PYTHONPATH  # the installed package, never the checkout, must be what runs
cd "$(dirname "$0")/.."
SRC=$PWD
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
start=$SECONDS
say() { echo "check_install: $* ($((SECONDS - start)) s)"; }
fail() { echo "check_install: FAILED: $*" >&2; exit 1; }

# 1. sdist and wheel
python3 -m build --outdir "$TMP/dist" . >"$TMP/build.log" 2>&1 || { cat "$TMP/build.log"; fail "python -m build"; }
sdist=$(ls "$TMP"/dist/cnnir-*.tar.gz) wheel=$(ls "$TMP"/dist/cnnir-*-py3-none-any.whl)
tar tzf "$sdist" >"$TMP/sdist.txt"
for f in README.md CHANGELOG.md pyproject.toml cnnir/py.typed examples/googlenet.py; do
    grep -q "^cnnir-[^/]*/$f\$" "$TMP/sdist.txt" || fail "the sdist lacks $f"
done
say "built $(basename "$sdist") and $(basename "$wheel")"

# 2. a fresh virtualenv, the core only
python3 -m venv "$TMP/venv"
VPY="$TMP/venv/bin/python" CNNIR="$TMP/venv/bin/cnnir"
"$VPY" -m pip install -q "$wheel" >"$TMP/pip.log" 2>&1 || { cat "$TMP/pip.log"; fail "pip install the wheel"; }
[ -x "$CNNIR" ] || fail "no cnnir console script in the virtualenv"
say "installed the wheel (core only) into a fresh virtualenv"

# 3. from an empty folder, so ./cnnir of the checkout cannot be what runs
mkdir "$TMP/work" && cd "$TMP/work"
"$VPY" - "$SRC" <<'EOF' || fail "installed package contents"
import importlib.util, pathlib, sys
src = pathlib.Path(sys.argv[1])
for mod in ("torch", "onnxruntime"):
    assert importlib.util.find_spec(mod) is None, f"{mod} is importable in the core install"
import cnnir, cnnir.zoo
pkg = pathlib.Path(cnnir.__file__).parent
assert src not in pkg.parents, f"cnnir imported from the checkout: {pkg}"
assert "site-packages" in pkg.parts, pkg
assert (pkg / "py.typed").is_file(), "py.typed missing"
want = sorted(p.name for p in (src / "cnnir" / "zoo").glob("*.py"))
have = sorted(p.name for p in (pkg / "zoo").glob("*.py"))
assert want == have, f"zoo files differ: missing {set(want) - set(have)}"
for name in cnnir.zoo.names():  # every zoo model builds and analyses from the wheel
    cnnir.load(name).analyze()
print(f"  cnnir {cnnir.__version__} from {pkg}; {len(cnnir.zoo.names())} zoo models build")
EOF

run() { "$CNNIR" "$@" >"$TMP/out" 2>"$TMP/err" || { cat "$TMP/err" >&2; fail "cnnir $*"; }; }
run zoo
grep -q "^resnet50 " "$TMP/out" || fail "cnnir zoo does not list resnet50"
run report lenet5
run report resnet50 --format json
"$VPY" -c "import json,sys; d=json.load(open(sys.argv[1])); t=d['totals']; \
assert (t['params'], t['macs']) == (25557032, 4089184256), t" "$TMP/out" || fail "resnet50 figures"
run check resnet50
run compile "$SRC/examples/googlenet.py" --to onnx -o googlenet.onnx
run report googlenet.onnx            # ONNX import, core only
for m in lenet5 resnet18 mobilenet_v2; do
    run compile "$m" --to onnx -o "$m.onnx"
    "$VPY" -c "import onnx,sys; onnx.checker.check_model(sys.argv[1], full_check=True)" "$m.onnx" \
        || fail "$m.onnx does not pass onnx's checker"
    run compile "$m" --to json -o "$m.json"
    run draw "$m" -o "$m.dot"
done
if command -v dot >/dev/null 2>&1; then run draw resnet50 --level block -o r50.svg; fi
say "core commands ran"

# the extras the core lacks: one line naming the extra, exit 2, nothing written
expect_extra() {  # expect_extra EXTRA ARGS...
    local extra=$1; shift
    set +e; "$CNNIR" "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?; set -e
    [ "$rc" -eq 2 ] || { cat "$TMP/err" >&2; fail "cnnir $* exited $rc, not 2"; }
    [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q "pip install 'cnnir\[$extra\]'" "$TMP/err" \
        || { cat "$TMP/err" >&2; fail "cnnir $*: not one line naming cnnir[$extra]"; }
}
expect_extra torch compile lenet5 --to torch -o lenet5_torch.py
[ ! -e lenet5_torch.py ] || fail "compile --to torch wrote a file without torch"
expect_extra run run lenet5.onnx
say "the missing extras are named"
say "ok"
