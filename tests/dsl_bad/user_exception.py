# expect: ValueError: depth must be 18 or 34, got 20
from cnnir.dsl import model

DEPTH = 20


def stages(depth):
    if depth not in (18, 34):
        raise ValueError(f"depth must be 18 or 34, got {depth}")  # <-
    return [2, 2, 2, 2] if depth == 18 else [3, 4, 6, 3]


@model(input=(3, 16, 16))
def net(x):
    for n in stages(DEPTH):
        x = x.conv(8, 3, padding=1)
    return x
