"""Which torchvision and timm CNNs cnnir imports exactly, through torch.fx and through ONNX.

    /work/venv-tv/bin/python benchmarks/import_coverage.py [--only torchvision|timm]
        [--path fx|onnx] [-k NAME] [--budget SECONDS] [--size small|default] [--max-params M]

Needs a virtualenv with torchvision (and timm, onnx, onnxruntime where present); it is a
benchmark, not a test, and nothing depends on it.  For each model (``weights=None``):

* **fx**: ``cnnir.from_torch(model, input=(3, H, W))``;
* **onnx**: ``torch.onnx.export`` (TorchScript exporter, opset 17, BatchNorm kept as a
  node) to a temporary file, then ``cnnir.load(file)`` (``no-onnx`` where the export
  itself fails);

and for each graph that imports: params equal to ``sum(p.numel())``; MACs compared
across the two paths and, at the weights' own crop size (``--size default``), with
torchvision's ``_ops`` GFLOPS metadata (torchvision counts a MAC as one FLOP, to 3
decimals); the PyTorch module cnnir emits, given the original's weights, computes the
original's outputs on a random batch of 2 (max abs difference relative to the output's
largest value, 1e-4 allowed).

Skipped, and said so: vision transformers (ViT, Swin, MaxViT: attention, not CNNs;
``--transformers`` tries them too, where each must be exact or one clean refusal);
video, optical-flow, detection and quantized models (not 2-D image-to-tensor CNNs of
torchvision's classification and segmentation lists); models over ``--max-params``
(100M) unless raised.  ``--size small`` (the default) runs classification models at
3x128x128 (Inception at 3x160x160) to keep a full run near 15 minutes on 2 cores;
segmentation models always run at their 520x520 default, which is where their
interpolate to a non-multiple size appears.  ``--budget`` stops starting new models
once that many seconds have passed (the rest are listed as not run).

Prints one row per model and path, then a summary: imported / refused per path, the
refusal causes grouped (the first words of cnnir's message), and the machine.
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import re
import sys
import tempfile
import time
import warnings
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import cnnir  # noqa: E402
from cnnir.analysis import analyze  # noqa: E402
from cnnir.backends.pytorch import to_module  # noqa: E402
from cnnir.errors import CnnirError  # noqa: E402

#: ~50 common timm CNN families, one small member each
TIMM = """resnet18 resnet50d resnetv2_50 resnext50_32x4d seresnet50 legacy_seresnet18
ecaresnet26t res2net50_26w_4s resnest14d skresnet18 wide_resnet50_2 resnet10t regnetx_002
regnety_002 efficientnet_b0 tf_efficientnet_b0 efficientnet_lite0 tinynet_a mobilenetv2_100
mobilenetv3_large_100 mobilenetv4_conv_small lcnet_050 mnasnet_100 fbnetc_100 spnasnet_100
hardcorenas_a mixnet_s ghostnet_100 rexnet_100 hrnet_w18_small dla34 dpn68 densenet121
cspresnet50 cspdarknet53 cs3darknet_s darknet53 ese_vovnet19b_dw vovnet39a xception41
inception_v3 inception_v4 inception_resnet_v2 nasnetalarge pnasnet5large dm_nfnet_f0
nf_resnet26 repvgg_a0 mobileone_s0 gernet_s selecsls42b tresnet_m convnext_atto vgg11""".split()

TRANSFORMERS = ("vit_", "swin_", "maxvit_")
#: run at their own size even with --size small (so do the transformers, whose patch
#: embeddings assert it): an adaptive pool to 6x6 / 7x7 would
#: upsample a 128 map's 4x4, which torch.onnx.export cannot write
FULL_SIZE = ("alexnet", "vgg")


def torchvision_models() -> list[tuple[str, str]]:
    import torchvision

    out = []
    for kind, mod in (("cls", torchvision.models), ("seg", torchvision.models.segmentation)):
        out += [(f"tv/{n}", kind) for n in torchvision.models.list_models(module=mod)]
    return out


def build(name: str) -> tuple[torch.nn.Module, tuple[int, int, int], float | None, int]:
    """The model, its default input, torchvision's GFLOPS metadata, its crop size."""
    if name.startswith("tv/"):
        import torchvision

        n = name[3:]
        weights = torchvision.models.get_model_weights(n)
        w = next(iter(weights))
        t = w.transforms()
        crop = getattr(t, "crop_size", None) or getattr(t, "resize_size", None) or [224]
        crop = int(crop[0] if isinstance(crop, (list, tuple)) else crop)
        try:  # segmentation: no pretrained backbone either (nothing is downloaded), and
            # the aux head the weights have (their _ops metadata counts it)
            model = torchvision.models.get_model(n, weights=None, weights_backbone=None,
                                                 aux_loss=True)
        except (TypeError, NotImplementedError, ValueError):
            if n in ("googlenet", "inception_v3"):
                # without weights their auxiliary classifiers (training only: the eval
                # forward never runs them) would be counted in sum(p.numel())
                return (torchvision.models.get_model(n, weights=None, aux_logits=False,
                                                     init_weights=False),
                        (3, crop, crop), w.meta.get("_ops"), crop)
            try:
                model = torchvision.models.get_model(n, weights=None, weights_backbone=None)
            except TypeError:
                model = torchvision.models.get_model(n, weights=None)
        return model, (3, crop, crop), w.meta.get("_ops"), crop
    import timm

    model = timm.create_model(name, pretrained=False)
    size = tuple(model.pretrained_cfg.get("input_size", (3, 224, 224)))
    return model, (int(size[0]), int(size[1]), int(size[2])), None, int(size[1])


def cause(msg: str) -> str:
    """The refusal message without locations and node names: what groups it."""
    msg = msg.splitlines()[0]
    msg = re.sub(r"^\S+?(:\d+)?: error: ", "", msg).removeprefix("error: ")
    msg = re.sub(r"'[^']*'", "'…'", msg)
    msg = re.sub(r"\d+", "#", msg)
    return msg[:110]


def flat_outputs(v: Any) -> list[torch.Tensor]:
    if isinstance(v, torch.Tensor):
        return [v]
    if isinstance(v, dict):
        return [t for x in v.values() for t in flat_outputs(x)]
    if isinstance(v, (list, tuple)):
        return [t for x in v for t in flat_outputs(x)]
    return []


def check(model: torch.nn.Module, graph: cnnir.Graph, shape: tuple[int, ...],
          ref_cache: dict[str, Any]) -> dict[str, Any]:
    """Params vs ``sum(p.numel())``; the emitted module's outputs vs the original's."""
    a = analyze(graph)
    numel = sum(p.numel() for p in model.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        emitted = to_module(graph, weights=graph.weights).eval()
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        if "ref" not in ref_cache:  # the original runs once for both paths
            ref_cache["ref"] = flat_outputs(model(x))
        ref = ref_cache["ref"]
        out = flat_outputs(emitted(x))
    diff = float("inf")
    if len(ref) == len(out) and all(r.shape == o.shape for r, o in zip(ref, out)):
        diff = max(float((r - o).abs().max() / max(1.0, float(r.abs().max())))
                   for r, o in zip(ref, out))
    ok = a.params == numel and diff <= 1e-4
    return {"params": a.params, "numel": numel, "macs": a.macs, "diff": diff, "ok": ok}


class ExportFailed(Exception):
    """torch.onnx.export itself failed: no file for cnnir to read."""


def via_onnx(model: torch.nn.Module, shape: tuple[int, ...], tmp: str) -> cnnir.Graph:
    path = os.path.join(tmp, "model.onnx")
    x = torch.randn(1, *shape)
    try:
        export(model, x, path)
    except Exception as exc:
        raise ExportFailed(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:90]}") \
            from None
    return cnnir.load(path)


def export(model: torch.nn.Module, x: torch.Tensor, path: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # PRESERVE: BatchNorm stays a node (EVAL folds it into the conv: other params)
            torch.onnx.export(model, (x,), path, dynamo=False, opset_version=17,
                              training=torch.onnx.TrainingMode.PRESERVE)
        except TypeError:  # a torch without the dynamo switch
            torch.onnx.export(model, (x,), path, opset_version=17,
                              training=torch.onnx.TrainingMode.PRESERVE)


def run_one(name: str, kind: str, args: argparse.Namespace, tmp: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    try:
        model, shape, gflops, crop = build(name)
    except Exception as exc:  # a model this torchvision/timm cannot build here
        return [{"name": name, "path": "-", "status": "skipped",
                 "why": f"cannot build: {type(exc).__name__}: {str(exc)[:80]}"}]
    model.eval()
    numel = sum(p.numel() for p in model.parameters())
    if numel > args.max_params * 1e6:
        return [{"name": name, "path": "-", "status": "skipped",
                 "why": f"{numel / 1e6:.0f}M params > --max-params {args.max_params:g}M"}]
    if args.size == "small" and kind == "cls" and not name[3:].startswith(FULL_SIZE + TRANSFORMERS):
        side = 160 if "inception" in name else 128
        shape = (shape[0], side, side)
    ref_cache: dict[str, Any] = {}
    for path in args.paths:
        row: dict[str, Any] = {"name": name, "path": path, "shape": shape}
        t0 = time.perf_counter()
        try:
            g = cnnir.from_torch(model, input=shape) if path == "fx" else \
                via_onnx(model, shape, tmp)
            row.update(check(model, g, shape, ref_cache))
            row["status"] = "exact" if row["ok"] else "WRONG"
            if gflops is not None and shape[1] == crop:
                row["ref_gmacs"] = gflops
        except CnnirError as exc:
            row.update(status="refused", why=cause(str(exc)))
        except ExportFailed as exc:
            row.update(status="no-onnx", why=f"torch.onnx.export fails: {exc}")
        except Exception as exc:  # noqa: BLE001 -- a crash is a finding, reported as such
            first = (str(exc).strip().splitlines() or [""])[0][:90]
            row.update(status="crash", why=f"{type(exc).__name__}: {first}")
        row["s"] = time.perf_counter() - t0
        rows.append(row)
    fx_macs = {r["path"]: r.get("macs") for r in rows}
    if fx_macs.get("fx") is not None and fx_macs.get("onnx") is not None:
        for r in rows:
            r["agree"] = fx_macs["fx"] == fx_macs["onnx"]
    return rows


def show(r: dict[str, Any]) -> str:
    if r["status"] in ("exact", "WRONG"):
        differs = "" if r["params"] == r["numel"] else f" != {r['numel']}"
        extra = f"params {r['params']:>11,}{differs}  MACs {r['macs'] / 1e9:8.3f}G"
        if "ref_gmacs" in r:
            off = abs(r["macs"] / 1e9 - r["ref_gmacs"]) >= 6e-4
            extra += f" (tv {r['ref_gmacs']:.3f}G{' DIFFERS' if off else ''})"
        if r.get("agree") is False:
            extra += " fx!=onnx"
        extra += f"  diff {r['diff']:.1e}"
    else:
        extra = r.get("why", "")
    took = f"{r['s']:5.1f}s " if "s" in r else "       "
    return f"{r['name']:<30} {r['path']:<4} {took}{r['status']:<8} {extra}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("torchvision", "timm"))
    ap.add_argument("--path", choices=("fx", "onnx"))
    ap.add_argument("-k", dest="k", help="only models whose name contains this (or one of a,b,...)")
    ap.add_argument("--start", help="skip the models listed before this one (resume a run)")
    ap.add_argument("--budget", type=float, default=900.0, help="seconds (default 900)")
    ap.add_argument("--size", choices=("small", "default"), default="small")
    ap.add_argument("--transformers", action="store_true",
                    help="also try ViT, Swin and MaxViT: each must be exact or refused with "
                         "one message naming the op cnnir lacks")
    ap.add_argument("--max-params", type=float, default=100.0, help="millions (default 100)")
    args = ap.parse_args()
    args.paths = [args.path] if args.path else ["fx", "onnx"]
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

    todo: list[tuple[str, str]] = []
    skipped: list[str] = []
    if args.only in (None, "torchvision"):
        for name, kind in torchvision_models():
            if name[3:].startswith(TRANSFORMERS) and not args.transformers:
                skipped.append(f"{name} (vision transformer)")
            else:
                todo.append((name, kind))
    if args.only in (None, "timm"):
        try:
            import timm
        except ImportError:
            print("timm is not installed: its models are not run")
        else:
            known = set(timm.list_models())
            for n in TIMM:
                (todo.append((n, "cls")) if n in known else skipped.append(f"{n} (not in timm)"))
    if args.start:
        names = [t[0] for t in todo]
        todo = todo[names.index(args.start):] if args.start in names else todo
    if args.k:
        todo = [t for t in todo if any(k in t[0] for k in args.k.split(","))]

    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name, kind in todo:
            if time.perf_counter() - start > args.budget:
                rows.append({"name": name, "path": "-", "status": "not run", "why": "budget"})
                continue
            for r in run_one(name, kind, args, tmp):
                rows.append(r)
                print(show(r), flush=True)

    print("\n== summary ==")
    print(f"skipped by design: {', '.join(skipped) or 'none'}")
    for path in args.paths:
        mine = [r for r in rows if r["path"] == path]
        count = collections.Counter(r["status"] for r in mine)
        print(f"{path}: {count['exact']} of {len(mine)} import exactly "
              f"(params == sum(p.numel()), outputs equal); "
              + ", ".join(f"{v} {k}" for k, v in sorted(count.items()) if k != "exact"))
        causes = collections.Counter(r["why"] for r in mine
                                     if r["status"] in ("refused", "crash", "no-onnx"))
        for why, n in causes.most_common():
            names = [r["name"] for r in mine if r.get("why") == why]
            print(f"  {n:3d}  {why}   [{', '.join(names[:6])}{' ...' if n > 6 else ''}]")
    both = {r["name"] for r in rows if r.get("agree") is not None}
    disagree = sorted({r["name"] for r in rows if r.get("agree") is False})
    print(f"MACs fx == onnx on {len(both) - len(disagree)} of {len(both)} models imported both "
          f"ways{': differ on ' + ', '.join(disagree) if disagree else ''}")
    tv = [r for r in rows if "ref_gmacs" in r]
    off = [r["name"] for r in tv if abs(r["macs"] / 1e9 - r["ref_gmacs"]) >= 6e-4]
    print(f"MACs equal to torchvision's _ops metadata on {len(tv) - len(off)} of {len(tv)} "
          f"checked{': differ on ' + ', '.join(sorted(set(off))) if off else ''}"
          f"{'' if tv else ' (run with --size default to check them)'}")
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, python {platform.python_version()}, "
          f"{time.perf_counter() - start:.0f}s")
    print(f"numpy {np.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
