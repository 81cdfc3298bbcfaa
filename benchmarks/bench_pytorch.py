"""Is the emitted PyTorch module as fast as hand-written code?  `python bench_pytorch.py`

Eager CPU inference latency of ResNet-50 three ways, with the same weights:

* ``reference``: a hand-written ResNet-50 in torchvision's layout (torchvision's own
  ``resnet50`` when torchvision is importable), written below the way torchvision
  writes it (``nn.ReLU(inplace=True)``, ``out += identity``);
* ``cnnir``: :func:`cnnir.backends.pytorch.to_module` of the zoo's ``resnet50`` (a
  ``torch.fx`` GraphModule);
* ``cnnir fused``: the same after ``fuse-conv-bn-relu`` (BN folded into the convs).

Batch 1 and 8 at 3x224x224, ``torch.inference_mode()``, eval mode, after warm-up;
median milliseconds of ``--runs`` runs, the three models interleaved in a rotating
order so that load from other processes hits all alike.  Targets: ``cnnir`` at most
1.05x the reference, ``cnnir fused`` faster than it.  The outputs are compared too.
Prints the figures and the machine; asserts nothing (timings are not tests).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from cnnir import load  # noqa: E402
from cnnir.backends.pytorch import to_module, weights_from_module  # noqa: E402
from cnnir.passes.manager import run_pipeline  # noqa: E402


class Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck (stride on the 3x3 conv)."""

    def __init__(self, cin: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet50(nn.Module):
    """torchvision's ``resnet50`` layout, written by hand."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3)), start=1):
            stride = 1 if i == 1 else 2
            down = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, stride, bias=False),
                                 nn.BatchNorm2d(planes * 4))
            layers = [Bottleneck(cin, planes, stride, down)]
            layers += [Bottleneck(planes * 4, planes) for _ in range(blocks - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*layers))
            cin = planes * 4
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def reference() -> tuple[nn.Module, str]:
    try:
        import torchvision  # type: ignore[import-not-found]

        return torchvision.models.resnet50(), "torchvision.models.resnet50"
    except ImportError:
        return ResNet50(), "hand-written (torchvision is not installed)"


def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Copy ``src``'s state into ``dst``: both list the same tensors in the same order
    (conv1, bn1, the blocks' conv/bn pairs, the projection, fc); shapes are checked."""
    a, b = src.state_dict(), dst.state_dict()
    assert len(a) == len(b), (len(a), len(b))
    for (ka, va), (kb, vb) in zip(a.items(), b.items()):
        assert va.shape == vb.shape and ka.rsplit(".", 1)[1] == kb.rsplit(".", 1)[1], (ka, kb)
    dst.load_state_dict(dict(zip(b, a.values())))


def machine() -> str:
    return (f"{platform.platform()}, {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}, torch "
            f"{torch.__version__} ({torch.get_num_threads()} threads)")


def timed(models: dict[str, nn.Module], x: torch.Tensor, runs: int) -> dict[str, float]:
    """Median ms per forward of each model, interleaved in a rotating order."""
    times: dict[str, list[float]] = {k: [] for k in models}
    names = list(models)
    with torch.inference_mode():
        for _ in range(2):
            for m in models.values():
                m(x)
        for r in range(runs):
            for k in names[r % len(names):] + names[:r % len(names)]:
                t0 = time.perf_counter()
                models[k](x)
                times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (default: torch's); on a machine shared "
                         "with other jobs, 1 avoids OpenMP threads waiting on each other")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    g = load("resnet50", input=(3, args.size, args.size))
    ours = to_module(g, mode="random", seed=0).eval()
    ref, ref_name = reference()
    copy_weights(ours, ref)
    ref.eval()
    g.weights = weights_from_module(ours)
    fused = run_pipeline(g, "fuse-conv-bn-relu")
    ours_fused = to_module(fused).eval()
    models = {"reference": ref, "cnnir": ours, "cnnir fused": ours_fused}

    print(machine())
    print(f"reference: {ref_name}")
    print(f"resnet50, 3x{args.size}x{args.size}, eval, inference_mode, median of {args.runs} "
          f"interleaved runs; cnnir fused has {len(fused)} nodes against {len(g)}\n")
    x0 = torch.randn(2, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        y = {k: m(x0) for k, m in models.items()}
    scale = y["reference"].abs().max().item()
    print(f"output vs reference: cnnir max |diff| {(y['cnnir'] - y['reference']).abs().max():.1e}"
          f", cnnir fused {(y['cnnir fused'] - y['reference']).abs().max():.1e} "
          f"(output scale {scale:.1e})\n")
    print(f"{'batch':>5} {'reference ms':>13} {'cnnir ms':>9} {'ratio':>6} "
          f"{'fused ms':>9} {'ratio':>6}")
    for batch in (int(b) for b in args.batches.split(",")):
        x = torch.randn(batch, 3, args.size, args.size,
                        generator=torch.Generator().manual_seed(batch))
        t = timed(models, x, args.runs)
        r = t["reference"]
        print(f"{batch:>5} {r:>13.1f} {t['cnnir']:>9.1f} {t['cnnir'] / r:>5.2f}x "
              f"{t['cnnir fused']:>9.1f} {t['cnnir fused'] / r:>5.2f}x")


if __name__ == "__main__":
    main()
