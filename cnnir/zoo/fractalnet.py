"""FractalNet (Larsson et al., 2016) for CIFAR: ultra-deep nets without residuals.

The expansion rule ``f_1(z) = conv(z)``, ``f_{C+1}(z) = join(f_C(f_C(z)), conv(z))``
gives a block of ``C`` columns; column ``j`` (0 the shortest) holds ``2^j`` convs,
the deepest ``2^(C-1)``.  Drawn as the paper's Figure 1, the joins of one depth
coincide: after row ``i`` (of ``2^(C-1)``) every column whose conv ends there is
joined, one join taking the mean of all of them (``mean``, not a sum or a concat),
and each of those columns continues from the join.  A join reads each input through
local drop-path (15%, the paper's rate: the identity at inference, kept as an op).

The paper's CIFAR network: ``B = 5`` blocks of 64, 128, 256, 512, 512 filters, each
conv 3x3 (padding 1) then BatchNorm and ReLU (and, for the paper's "+ dropout" runs,
dropout of 0%, 10%, 20%, 30%, 40% by block), a 2x2 max pool after every block
(32 -> 1), then a 10-way linear layer and softmax.  ``C = 3`` is the 20-layer net,
``C = 4`` the 40-layer one (the deepest path: ``B * 2^(C-1)`` convs).

Parameters by first principles: block ``b`` has ``2^C - 1`` convs, of which ``C``
(the first of each column) read the block's input; the rest read ``c_b`` maps.
"""

from ..dsl import block, mean, model
from ..errors import DslError

WIDTHS = (64, 128, 256, 512, 512)
DROPOUT = (0.0, 0.1, 0.2, 0.3, 0.4)
DROP_PATH = 0.15


@block
def fractal(x, channels, columns, dropout=0.0, drop_path=DROP_PATH):
    """One fractal block of ``columns`` columns (see the module docstring)."""
    rows = 2 ** (columns - 1)
    outs = [x] * columns  # each column's latest output
    for i in range(rows):
        ended = []
        for j in range(columns):
            if (i + 1) % 2 ** (columns - 1 - j):
                continue  # column j has no conv at this row
            at = f"col{j + 1}_row{i + 1}"
            y = outs[j].conv(channels, 3, padding=1, bias=False, name=f"{at}_conv")
            y = y.bn(name=f"{at}_bn").relu(name=f"{at}_relu")
            if dropout:
                y = y.dropout(dropout, name=f"{at}_dropout")
            ended.append(j)
            outs[j] = y
        if len(ended) > 1:
            paths = [outs[j].drop_path(drop_path, name=f"join{i + 1}_drop_path{j + 1}")
                     for j in ended]
            joined = mean(*paths, name=f"join{i + 1}")
            for j in ended:
                outs[j] = joined
    return outs[columns - 1]


def fractalnet(x, columns, num_classes=10, dropout=True):
    if not isinstance(columns, int) or columns < 1:
        raise DslError(f"a FractalNet block has 1 or more columns, got {columns!r}")
    for b, (width, p) in enumerate(zip(WIDTHS, DROPOUT), start=1):
        x = fractal(x, width, columns, p if dropout else 0.0, name=str(b))
        x = x.maxpool(2, name=f"pool{b}")
    return x.flatten().linear(num_classes, name="fc").softmax()


@model(input=(3, 32, 32))
def fractalnet20_cifar(x, num_classes=10):
    """FractalNet-20 for CIFAR (Larsson et al. 2016): 5 blocks of 3 columns, mean joins; 3x32x32.

    Drop-path and dropout are kept as inference identities."""
    return fractalnet(x, 3, num_classes)


@model(input=(3, 32, 32))
def fractalnet40_cifar(x, num_classes=10):
    """FractalNet-40 for CIFAR (Larsson et al. 2016): 5 blocks of 4 columns, mean joins; 3x32x32.

    Drop-path and dropout are kept as inference identities."""
    return fractalnet(x, 4, num_classes)


@model(input=(3, 32, 32))
def fractalnet_cifar(x, columns=3, num_classes=10, dropout=True):
    """FractalNet for CIFAR (Larsson et al. 2016) with any number of columns."""
    return fractalnet(x, columns, num_classes, dropout)
