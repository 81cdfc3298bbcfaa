"""Do torchvision's own weights load into the zoo?  ``python benchmarks/check_torchvision_names.py``

Needs torchvision beside torch (CI has no torchvision, so this is a script, not a
test).  For every zoo model with torchvision names
(:mod:`cnnir.backends.torchvision_names`): build torchvision's model
(``weights=None``; random BatchNorm statistics and affine terms so they count),
save its ``state_dict`` to a ``.pt`` file, load that file through
``cnnir.compile(model, to="module", weights=path)`` (the ``--weights`` path,
key style detected), and compare the outputs on one random batch of 2 (eval
mode, float64).  Also checks the way back: :func:`torchvision_state_dict` of
cnnir's module loads into torchvision's with ``strict=True``.

Prints one line per model (keys, max |difference|, relative to the output's
scale) and the machine; exits 1 if any model fails.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

MODELS = [
    "alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19",
    "vgg19_bn", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext101_32x8d", "wide_resnet50_2", "wide_resnet101_2",
    "densenet121", "densenet161", "densenet169", "densenet201", "mobilenet_v2",
    "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0",
    "squeezenet1_0", "squeezenet1_1", "inception_v3",
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", default=MODELS)
    args = ap.parse_args()

    import torch
    import torchvision

    import cnnir
    from cnnir.backends.pytorch import torchvision_state_dict

    print(f"# {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, torchvision {torchvision.__version__}")
    torch.manual_seed(0)
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            extra = {"aux_logits": False, "init_weights": False} if name == "inception_v3" else {}
            tv = getattr(torchvision.models, name)(weights=None, **extra).eval()
            with torch.no_grad():
                for m in tv.modules():
                    if isinstance(m, torch.nn.BatchNorm2d):
                        m.running_mean.normal_(0, 0.1)
                        m.running_var.uniform_(0.5, 1.5)
                        m.weight.uniform_(0.5, 1.5)
                        m.bias.normal_(0, 0.1)
            path = os.path.join(tmp, f"{name}.pt")
            state = tv.state_dict()
            torch.save(state, path)
            graph = cnnir.load(name)
            ours = cnnir.compile(graph, to="module", weights=path).eval()
            x = torch.randn(2, *graph.input_shape, dtype=torch.float64)
            with torch.no_grad():
                want = tv.double()(x)
                got = ours.double()(x)
            diff = (want - got).abs().max().item()
            scale = want.abs().max().item()
            back = torchvision_state_dict(graph, ours.state_dict())
            fresh = getattr(torchvision.models, name)(weights=None, **extra).double()
            fresh.load_state_dict(back, strict=True)
            same_keys = list(back) == list(state)
            ok = diff <= 1e-9 * max(scale, 1.0) and same_keys
            print(f"{name:20s} {len(state):4d} keys  max|diff| {diff:.2e} (output "
                  f"scale {scale:.2e})  way back: {'same keys' if same_keys else 'KEYS DIFFER'}"
                  f"  {'ok' if ok else 'FAIL'}", flush=True)
            if not ok:
                failed.append(name)
    print(f"# {len(args.models) - len(failed)}/{len(args.models)} models load torchvision's "
          f"state_dict with equal outputs" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
