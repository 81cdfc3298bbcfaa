"""Independent numpy definitions of the timm ops (space-to-depth, ECA's channel conv,
the radix softmax), shared by the PyTorch and ONNX backend tests."""

from __future__ import annotations

import numpy as np


def ref_space_to_depth(x, b):
    """Output channel (i*b + j)*C + c at (y, x) is input channel c at (y*b + i, x*b + j)."""
    return np.concatenate([x[:, :, i::b, j::b] for i in range(b) for j in range(b)], axis=1)


def ref_channel_conv1d(x, op, w):
    """y[o] = sum_t w[t] * x[o + t - p] over the channels (zero outside), plus the bias."""
    v = np.pad(x[:, :, 0, 0], ((0, 0), (op.padding, op.padding)))
    taps = np.asarray(w["weight"], np.float64).reshape(-1)
    c_out = v.shape[1] - op.kernel + 1
    y = sum(taps[k] * v[:, k:k + c_out] for k in range(op.kernel))
    return (y + (w["bias"][0] if "bias" in w else 0))[:, :, None, None]


def ref_radix_softmax(x, op):
    """Input channel (g*radix + r)*C' + c -> output channel (r*card + g)*C' + c, the
    softmax over r."""
    r_, g_ = op.radix, op.cardinality
    cp = x.shape[1] // (r_ * g_)
    y = np.empty_like(x)
    for g in range(g_):
        for c in range(cp):
            idx = [(g * r_ + r) * cp + c for r in range(r_)]
            e = np.exp(x[:, idx] - x[:, idx].max(axis=1, keepdims=True))
            for r in range(r_):
                y[:, (r * g_ + g) * cp + c] = e[:, r] / e.sum(axis=1)
    return y
