"""Regenerate the figures of docs/figures with ``cnnir draw`` (``python docs/figures/make.py``).

Each figure is written as SVG (for the web and editing) and PNG (for the README);
the commands are the ones listed in docs/figures/README.md.
"""

from __future__ import annotations

import os
import sys

FIGURES = {
    "googlenet_block": ["googlenet", "--level", "block"],
    "googlenet_stage": ["googlenet", "--level", "stage"],
    "resnet50_stage": ["resnet50", "--level", "stage"],
    "resnet50_block": ["resnet50", "--level", "block"],
    "unet_layer": ["unet"],
    "lenet5_full": ["lenet5", "--detail", "full"],
}


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.dirname(os.path.dirname(here)))
    from cnnir.cli import main as cnnir

    for name, argv in FIGURES.items():
        for ext in ("svg", "png"):
            rc = cnnir(["draw", *argv, "-o", os.path.join(here, f"{name}.{ext}")])
            if rc:
                return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
