"""The Python DSL: ordinary Python whose calls build an IR graph.

::

    from cnnir.dsl import model, block, concat

    @block
    def inception(x, c1, c3r, c3, c5r, c5, proj):
        b1 = x.conv(c1, 1).relu()
        b2 = x.conv(c3r, 1).relu().conv(c3, 3, padding=1).relu()
        b3 = x.conv(c5r, 1).relu().conv(c5, 5, padding=2).relu()
        b4 = x.maxpool(3, stride=1, padding=1).conv(proj, 1).relu()
        return concat(b1, b2, b3, b4)

    @model(input=(3, 224, 224))
    def googlenet(x):
        x = x.conv(64, 7, stride=2, padding=3).relu().maxpool(3, stride=2, ceil_mode=True)
        x = inception(x, 64, 96, 128, 16, 32, 32, name="3a")
        ...

* A :class:`Tensor` is a handle on a node; its methods add layers and return new
  handles.  Nothing is computed.
* ``@block`` opens a scope: ``inception(..., name="3a")`` puts its layers under
  ``inception_3a/``; without ``name`` blocks are numbered (``inception1``...).
  ``scope("layer1")`` opens a plain named scope (a stage).
* ``repeat(fn, n, x, ...)`` chains ``n`` calls of a block and records that they
  are one repeated group ("bottleneck x 36" in reports and diagrams).
* Every call records the caller's ``file:line``; errors, reports and diagrams
  point back at it.
* Layers are named after their kind, numbered per scope (``conv1``, ``relu3``),
  or by ``name=``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .. import ops as O
from ..errors import CnnirError, DslError, ShapeError
from ..ir import BlockInfo, Graph, SourceLoc

_THIS_FILE = os.path.normcase(os.path.abspath(__file__))
_PKG_DIR = os.path.dirname(os.path.dirname(_THIS_FILE))
#: frames that are not the user's call: this module, and contextlib running ``scope()``
_SKIP = {_THIS_FILE, os.path.normcase(os.path.abspath(contextlib.__file__))}


#: code filename -> whether its frames are skipped (asked for every layer: cached)
_SKIPPED: dict[str, bool] = {}


def _skipped(filename: str) -> bool:
    skip = _SKIPPED.get(filename)
    if skip is None:
        skip = _SKIPPED[filename] = os.path.normcase(os.path.abspath(filename)) in _SKIP
    return skip


def _caller_loc() -> SourceLoc:
    """file:line of the first frame outside this module (the user's call).

    Recorded for every layer, so it is cheap: a walk up the frames with the skip
    decision and the displayed path cached per file (the working directory is part
    of the latter's key)."""
    f = sys._getframe(1)
    skipped = _SKIPPED
    while f is not None:
        name = f.f_code.co_filename
        skip = skipped.get(name)
        if skip is None:
            skip = _skipped(name)
        if not skip:
            break
        f = f.f_back  # type: ignore[assignment]
    if f is None:  # pragma: no cover
        return SourceLoc("<unknown>", 0)
    return SourceLoc(_display_path(f.f_code.co_filename), f.f_lineno)


def _display_path(path: str) -> str:
    """A path as the user would write it: relative to the cwd when below it."""
    if path.startswith("<"):
        return path
    return _display_path_from(path, os.getcwd())


@functools.lru_cache(maxsize=512)
def _display_path_from(path: str, cwd: str) -> str:
    """:func:`_display_path` for one working directory (asked once per layer: cached)."""
    absolute = os.path.abspath(os.path.join(cwd, path))
    if absolute.startswith(_PKG_DIR + os.sep):  # the zoo: "cnnir/zoo/vgg.py"
        return os.path.relpath(absolute, os.path.dirname(_PKG_DIR))
    try:
        rel = os.path.relpath(absolute, cwd)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


# --------------------------------------------------------------------------- builder

_BUILDERS: list[_Builder] = []


class _Builder:
    """The graph under construction while a ``@model`` function runs."""

    def __init__(self, name: str) -> None:
        self.graph = Graph(name)
        #: the open scopes, outermost first, and the same as a name prefix
        #: (``"layer1/unit2/"``): both change only in :meth:`push` and :meth:`pop`
        self.scope: tuple[str, ...] = ()
        self.prefix = ""
        self._counters: dict[tuple[tuple[str, ...], str], int] = {}
        self.pending_repeat: tuple[int, int, int] | None = None
        self.next_group = 0
        self.open = True
        self.stage: str | None = None  #: the open ``stage()``, if any
        self.stages: set[str] = set()  #: the stages opened so far
        #: output shapes of the layers so far, inferred on demand (``split``, ``crop_to``)
        self.shapes: dict[str, O.TensorShape] = {}
    def push(self, local: str) -> None:
        self.scope = (*self.scope, local)
        self.prefix = f"{self.prefix}{local}/"

    def pop(self) -> None:
        self.scope = self.scope[:-1]
        self.prefix = "".join(f"{s}/" for s in self.scope)

    def next_index(self, prefix: str) -> int:
        key = (self.scope, prefix)
        count = self._counters.get(key, 0) + 1
        self._counters[key] = count
        return count

    def layer_name(self, prefix: str, name: str | None, loc: SourceLoc) -> str:
        at = self.prefix
        if name is not None:
            _check_name(name, loc)
            local = name
        else:
            local = f"{prefix}{self.next_index(prefix)}"
            while at + local in self.graph:
                local = f"{prefix}{self.next_index(prefix)}"
        full = at + local
        if full in self.graph:
            raise DslError(f"a layer named '{full}' already exists; pick another name=",
                           loc=loc, node=full)
        return full


def _current(what: str, loc: SourceLoc | None = None) -> _Builder:
    if not _BUILDERS:
        raise DslError(
            f"{what} can only be used while a @model function is being built",
            loc=loc or _caller_loc(),
        )
    return _BUILDERS[-1]


def _check_name(name: Any, loc: SourceLoc) -> None:
    if not isinstance(name, str) or not name or "/" in name or name.strip() != name:
        raise DslError(f"name must be a non-empty string without '/' or spaces, got {name!r}",
                       loc=loc)


# --------------------------------------------------------------------------- tensors


class Tensor:
    """A handle on the output of one layer while a model is being built."""

    __slots__ = ("_builder", "name")

    def __init__(self, builder: _Builder, name: str) -> None:
        self._builder = builder
        self.name = name

    def __repr__(self) -> str:
        return f"<cnnir Tensor %{self.name}>"

    def __bool__(self) -> bool:
        raise DslError("a cnnir Tensor has no truth value while a model is built "
                       "(its values are not computed)", loc=_caller_loc())

    # -- plumbing

    def _layer(self, prefix: str, make: Callable[[], O.Op], name: str | None,
               inputs: Sequence[Tensor] | None = None) -> Tensor:
        return _add_layer(prefix, make, name, [self] if inputs is None else list(inputs))

    # -- convolutions

    def conv(self, out_channels: int, kernel: int | tuple[int, int], stride: Any = 1,
             padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
             name: str | None = None) -> Tensor:
        """2-D convolution.  ``padding``: int, ``(ph, pw)``, ``(top, left, bottom, right)``
        or ``"same"`` (stride 1 only, as in PyTorch; the odd pixel goes at the end)."""
        def make() -> O.Op:
            pads = padding
            if isinstance(padding, str):
                if padding == "valid":
                    pads = 0
                elif padding == "same":
                    st = O._pair(stride, "stride")
                    if st != (1, 1):
                        raise CnnirError("padding='same' needs stride 1 (as in PyTorch)")
                    pads = O.same_padding(O._pair(kernel, "kernel"), O._pair(dilation, "dilation"))
                else:
                    raise CnnirError(f"padding must be a number, a tuple, 'same' or 'valid', "
                                     f"got {padding!r}")
            # the op normalises ints to pairs (and validates) in __post_init__
            return O.Conv2d(out_channels, kernel, stride, pads, dilation,  # type: ignore[arg-type]
                            groups, bias)
        return self._layer("conv", make, name)

    def conv_transpose(self, out_channels: int, kernel: Any = 2, stride: Any = 2,
                       padding: Any = 0, output_padding: Any = 0, dilation: Any = 1,
                       groups: int = 1, bias: bool = True, name: str | None = None) -> Tensor:
        """Transposed convolution (U-Net's 2x2 up-convolution by default)."""
        return self._layer("upconv", lambda: O.ConvTranspose2d(
            out_channels, kernel, stride, padding, output_padding, dilation, groups, bias), name)

    upconv = conv_transpose

    # -- normalisation and activations

    def bn(self, eps: float = 1e-5, momentum: float = 0.1, name: str | None = None) -> Tensor:
        """BatchNorm2d."""
        return self._layer("bn", lambda: O.BatchNorm2d(eps, momentum), name)

    def lrn(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0,
            name: str | None = None) -> Tensor:
        """Local response normalisation (AlexNet)."""
        return self._layer("lrn", lambda: O.LocalResponseNorm(size, alpha, beta, k), name)

    def relu(self, name: str | None = None) -> Tensor:
        return self._layer("relu", O.ReLU, name)

    def leaky_relu(self, negative_slope: float = 0.01, name: str | None = None) -> Tensor:
        return self._layer("lrelu", lambda: O.LeakyReLU(negative_slope), name)

    def relu6(self, name: str | None = None) -> Tensor:
        return self._layer("relu6_", O.ReLU6, name)

    def sigmoid(self, name: str | None = None) -> Tensor:
        return self._layer("sigmoid", O.Sigmoid, name)

    def hardsigmoid(self, name: str | None = None) -> Tensor:
        return self._layer("hsigmoid", O.HardSigmoid, name)

    def tanh(self, name: str | None = None) -> Tensor:
        return self._layer("tanh", O.Tanh, name)

    def hardswish(self, name: str | None = None) -> Tensor:
        return self._layer("hswish", O.HardSwish, name)

    def silu(self, name: str | None = None) -> Tensor:
        return self._layer("silu", O.SiLU, name)

    def gelu(self, approximate: str = "none", name: str | None = None) -> Tensor:
        """GELU: exact (erf) or ``approximate="tanh"``, as PyTorch's ``F.gelu``."""
        return self._layer("gelu", lambda: O.GELU(approximate), name)

    def layernorm2d(self, eps: float = 1e-5, name: str | None = None) -> Tensor:
        """LayerNorm over the channels of each pixel (ConvNeXt's LayerNorm2d)."""
        return self._layer("ln", lambda: O.LayerNorm2d(eps), name)

    def softmax(self, name: str | None = None) -> Tensor:
        return self._layer("softmax", O.Softmax, name)

    # -- pooling and resizing

    def maxpool(self, kernel: Any, stride: Any = None, padding: Any = 0,
                ceil_mode: bool = False, name: str | None = None) -> Tensor:
        """Max pooling; ``stride`` defaults to ``kernel`` (PyTorch)."""
        return self._layer("maxpool", lambda: O.MaxPool2d(
            kernel, kernel if stride is None else stride, padding, ceil_mode), name)

    def avgpool(self, kernel: Any, stride: Any = None, padding: Any = 0,
                ceil_mode: bool = False, count_include_pad: bool = True,
                name: str | None = None) -> Tensor:
        """Average pooling; ``stride`` defaults to ``kernel`` (PyTorch)."""
        return self._layer("avgpool", lambda: O.AvgPool2d(
            kernel, kernel if stride is None else stride, padding, ceil_mode,
            count_include_pad), name)

    def adaptive_avgpool(self, output_size: Any = 1, name: str | None = None) -> Tensor:
        return self._layer("adaptpool", lambda: O.AdaptiveAvgPool2d(output_size), name)

    def global_avgpool(self, name: str | None = None) -> Tensor:
        """Average over H and W: ``CxHxW -> Cx1x1``."""
        return self._layer("gap", O.GlobalAvgPool, name)

    def upsample(self, scale: Any = 2, mode: str = "nearest", align_corners: bool = False,
                 name: str | None = None) -> Tensor:
        return self._layer("upsample", lambda: O.Upsample(scale, mode, align_corners), name)

    # -- shape and dense layers

    def dropout(self, p: float = 0.5, name: str | None = None) -> Tensor:
        return self._layer("dropout", lambda: O.Dropout(p), name)

    def identity(self, name: str | None = None) -> Tensor:
        return self._layer("identity", O.Identity, name)

    def drop_path(self, p: float = 0.0, name: str | None = None) -> Tensor:
        """Stochastic depth: drops the whole branch in training; the identity at inference."""
        return self._layer("drop_path", lambda: O.DropPath(p), name)

    def pad(self, padding: Any = 0, channels: Any = (0, 0), value: float = 0.0,
            mode: str = "constant", name: str | None = None) -> Tensor:
        """Padding: ``padding`` on H/W as a conv's, ``channels`` ``(before, after)``, with
        ``value`` (``mode="constant"``) or mirrored (``mode="reflect"``, H and W only)."""
        return self._layer("pad", lambda: O.Pad(padding, tuple(channels), value, mode), name)

    def scale(self, per_channel: bool = True, bias: bool = False,
              name: str | None = None) -> Tensor:
        """``x * weight (+ bias)`` with a learned per-channel (``Cx1x1``) or scalar weight."""
        return self._layer("scale", lambda: O.Scale(per_channel, True, bias), name)

    def flatten(self, name: str | None = None) -> Tensor:
        return self._layer("flatten", O.Flatten, name)

    def linear(self, out_features: int, bias: bool = True, name: str | None = None) -> Tensor:
        """Fully connected layer (input must be flat: call ``.flatten()`` first)."""
        return self._layer("fc", lambda: O.Linear(out_features, bias), name)

    fc = linear

    # -- channel split, crop, shuffle

    def slice(self, c: Any = None, h: Any = None, w: Any = None,
              name: str | None = None) -> Tensor:
        """``x[:, c0:c1, h0:h1, w0:w1]``: each of ``c``, ``h``, ``w`` a ``(start, stop)`` or
        None for the whole axis."""
        return self._layer("slice", lambda: O.Slice(c, h, w), name)

    def split(self, sizes: int | Sequence[int], name: str | None = None) -> tuple[Tensor, ...]:
        """Channel split as ``torch.split(x, sizes, dim=1)``: an int is the size of each
        part (the last may be smaller), a list the size of every part (summing to the
        channels).  One slice per part, named ``<name>_1, <name>_2...`` with ``name``."""
        loc = _caller_loc()
        channels = _shape_of(self, loc)[0]
        if isinstance(sizes, int):
            if isinstance(sizes, bool) or sizes < 1:
                raise DslError(f"split: the part size must be at least 1, got {sizes}", loc=loc)
            parts = [min(sizes, channels - a) for a in range(0, channels, sizes)]
        else:
            parts = list(sizes)
            if any(not isinstance(p, int) or isinstance(p, bool) or p < 1 for p in parts) \
                    or sum(parts) != channels:
                raise DslError(f"split: sizes {parts} must be positive integers summing to "
                               f"the {channels} channels of '{self.name}'", loc=loc,
                               node=self.name)
        out, start = [], 0
        for i, size in enumerate(parts, start=1):
            rng = (start, start + size)
            out.append(self._layer("slice", lambda r=rng: O.Slice(r),  # type: ignore[misc]
                                   None if name is None else f"{name}_{i}"))
            start += size
        return tuple(out)

    def crop_to(self, ref: Tensor, name: str | None = None) -> Tensor:
        """Centre crop to ``ref``'s height and width (U-Net's crop-and-copy): the top and
        left margins are ``(H - h) // 2`` and ``(W - w) // 2``."""
        loc = _caller_loc()
        if not isinstance(ref, Tensor):
            raise DslError(f"crop_to: expected a cnnir Tensor, got {type(ref).__name__}",
                           loc=loc)
        (_, big_h, big_w), (_, h, w) = _shape_of(self, loc), _shape_of(ref, loc)
        if h > big_h or w > big_w:
            raise ShapeError(f"crop_to: '{self.name}' ({big_h}x{big_w}) is smaller than "
                           f"'{ref.name}' ({h}x{w})", loc=loc, node=self.name)
        top, left = (big_h - h) // 2, (big_w - w) // 2
        return self._layer("crop", lambda: O.Slice(None, (top, top + h), (left, left + w)),
                           name)

    def channel_shuffle(self, groups: int, name: str | None = None) -> Tensor:
        """ShuffleNet's channel shuffle over ``groups`` groups."""
        return self._layer("shuffle", lambda: O.ChannelShuffle(groups), name)

    def space_to_depth(self, block: int = 4, name: str | None = None) -> Tensor:
        """Space-to-depth (TResNet's stem): ``b x b`` pixel blocks become ``b*b``
        channel groups (ONNX's and timm's channel order)."""
        return self._layer("s2d", lambda: O.SpaceToDepth(block), name)

    def channel_conv1d(self, kernel: int = 3, padding: int | None = None, bias: bool = False,
                       name: str | None = None) -> Tensor:
        """ECA's 1-D convolution across the channels of a ``Cx1x1`` map (``padding``
        defaults to ``(kernel - 1) // 2``, which keeps ``C``)."""
        pad = (kernel - 1) // 2 if padding is None else padding
        return self._layer("cconv", lambda: O.ChannelConv1d(kernel, pad, bias), name)

    def radix_softmax(self, radix: int = 2, cardinality: int = 1,
                      name: str | None = None) -> Tensor:
        """Split attention's softmax across ``radix`` channel groups (ResNeSt, SKNet)."""
        return self._layer("rsoftmax", lambda: O.RadixSoftmax(radix, cardinality), name)

    # -- merges

    def __add__(self, other: Tensor) -> Tensor:
        return add(self, other)

    def __mul__(self, other: Tensor) -> Tensor:
        return mul(self, other)


#: layer-name prefixes whose DSL method has another name (errors say what the user wrote)
_METHOD_NAMES = {"fc": "linear", "upconv": "conv_transpose", "lrelu": "leaky_relu",
                 "relu6_": "relu6", "hsigmoid": "hardsigmoid", "hswish": "hardswish",
                 "adaptpool": "adaptive_avgpool", "gap": "global_avgpool",
                 "crop": "crop_to", "shuffle": "channel_shuffle", "s2d": "space_to_depth",
                 "cconv": "channel_conv1d", "rsoftmax": "radix_softmax"}


def _shape_of(t: Tensor, loc: SourceLoc) -> O.TensorShape:
    """The output shape of ``t`` while the model is built (inferred once per layer)."""
    b = t._builder
    g = b.graph
    todo = [t.name]
    while todo:
        n = todo[-1]
        if n in b.shapes:
            todo.pop()
            continue
        missing = [i for i in g.inputs(n) if i not in b.shapes]
        if missing:
            todo.extend(missing)
            continue
        todo.pop()
        try:
            b.shapes[n] = g.op(n).infer([b.shapes[i] for i in g.inputs(n)])
        except CnnirError as exc:  # as infer-shapes words it
            raise ShapeError(f"{g.op(n).kind} '{n}': {exc.msg}", loc=g.loc(n) or loc,
                             node=n) from None
    shape = b.shapes[t.name]
    if not shape.is_map:
        raise ShapeError(f"'{t.name}' is a flat tensor of shape {shape}, not a CxHxW map",
                         loc=loc, node=t.name)
    return shape


def _add_layer(prefix: str, make: Callable[[], O.Op], name: str | None,
               inputs: list[Any]) -> Tensor:
    loc = _caller_loc()
    if not _BUILDERS:
        _current(f"layer '{prefix.rstrip('_')}'", loc)  # raises
    b = _BUILDERS[-1]
    for t in inputs:
        if not isinstance(t, Tensor):
            raise DslError(f"{prefix.rstrip('_')}: expected a cnnir Tensor, got "
                           f"{type(t).__name__} {t!r}", loc=loc)
        if t._builder is not b:
            owner = t._builder.graph.name
            raise DslError(
                f"tensor '{t.name}' belongs to model '{owner}', not to the model "
                f"'{b.graph.name}' being built; tensors cannot be shared between models",
                loc=loc, node=t.name)
    full = b.layer_name(prefix, name, loc)
    try:
        op = make()
    except CnnirError as exc:
        kind = _METHOD_NAMES.get(prefix, prefix.rstrip("_"))
        raise DslError(f"{kind} '{full}': {exc.msg}", loc=loc, node=full) from None
    b.graph.add(full, op, [t.name for t in inputs], loc, b.scope)
    return Tensor(b, full)


def concat(*tensors: Tensor, name: str | None = None) -> Tensor:
    """Concatenate along channels (all inputs share H and W)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if len(tensors) < 2:
        raise DslError("concat needs at least two tensors", loc=_caller_loc())
    return _add_layer("concat", O.Concat, name, list(tensors))


def add(a: Tensor, b: Tensor, *more: Tensor, name: str | None = None) -> Tensor:
    """Elementwise sum (a residual connection); shapes must match or broadcast.  Of
    three or more tensors it is one n-input ``sum`` layer (ONNX ``Sum``)."""
    if more:
        return _add_layer("sum", O.Sum, name, [a, b, *more])
    return _add_layer("add", O.Add, name, [a, b])


def mul(a: Tensor, b: Tensor, name: str | None = None) -> Tensor:
    """Elementwise product with broadcasting (squeeze-excitation's scale)."""
    return _add_layer("mul", O.Mul, name, [a, b])


def mean(*tensors: Tensor, name: str | None = None) -> Tensor:
    """Elementwise mean of two or more tensors (FractalNet's join, ONNX ``Mean``)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if len(tensors) < 2:
        raise DslError("mean needs at least two tensors", loc=_caller_loc())
    return _add_layer("mean", O.Mean, name, list(tensors))


# --------------------------------------------------------------------------- scopes


def _open_scope(b: _Builder, local: str, info: BlockInfo) -> tuple[str, ...]:
    path = (*b.scope, local)
    if path in b.graph.blocks:
        raise DslError(f"a block named '{'/'.join(path)}' already exists; pick another name=",
                       loc=info.loc)
    if b.stage is not None and not b.scope:
        info = dataclasses.replace(info, stage=b.stage)
    elif not b.scope and local in b.stages:
        raise DslError(f"'{local}' is the name of a stage already; pick another name=",
                       loc=info.loc)
    b.graph.blocks[path] = info
    b.push(local)
    return path


@contextmanager
def scope(name: str) -> Iterator[None]:
    """A plain named scope (a stage such as ``layer1``) around the layers built inside."""
    loc = _caller_loc()
    b = _current("scope()", loc)
    _check_name(name, loc)
    _open_scope(b, name, BlockInfo("scope", loc))
    try:
        yield
    finally:
        b.pop()


@contextmanager
def stage(name: str) -> Iterator[None]:
    """A named stage around top-level blocks and scopes (GoogLeNet's ``inception4``
    around inception 4a..4e): ``cnnir draw --level stage`` draws it as one box, the
    other levels frame it.  Nothing is renamed: the stage is recorded on the blocks
    opened inside it (``BlockInfo.stage``).  Layers inside a stage must sit in a
    block or ``scope()``; stages do not nest and sit at the model's top level."""
    loc = _caller_loc()
    b = _current("stage()", loc)
    _check_name(name, loc)
    if b.scope or b.stage is not None:
        where = f"stage '{b.stage}'" if b.stage is not None else f"scope '{'/'.join(b.scope)}'"
        raise DslError(f"stage('{name}') inside {where}: stages sit at the model's top level",
                       loc=loc)
    if (name,) in b.graph.blocks or name in b.stages:
        raise DslError(f"a block or stage named '{name}' already exists; pick another name",
                       loc=loc)
    g = b.graph
    loose = sum(1 for n in g.nodes() if not g.scope(n))
    b.stage = name
    b.stages.add(name)
    try:
        yield
    finally:
        b.stage = None
    if sum(1 for n in g.nodes() if not g.scope(n)) != loose:
        raise DslError(f"stage '{name}' holds layers outside any block or scope(); put them "
                       f"in a scope() inside the stage, or move them out of it", loc=loc)


def block(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: every call of ``fn`` builds its layers inside a scope of its own.

    The wrapped function takes an extra keyword ``name``: the scope becomes
    ``f"{fn.__name__}_{name}"``; without it, ``f"{fn.__name__}{k}"`` numbered per
    parent scope.
    """
    def_loc = SourceLoc(_display_path(fn.__code__.co_filename), fn.__code__.co_firstlineno)

    @functools.wraps(fn)
    def wrapper(*args: Any, name: str | None = None, **kwargs: Any) -> Any:
        loc = _caller_loc()
        b = _current(f"block '{fn.__name__}'", loc)
        if name is not None:
            _check_name(str(name), loc)
            local = f"{fn.__name__}_{name}"
        else:
            local = f"{fn.__name__}{b.next_index('block:' + fn.__name__)}"
            while (*b.scope, local) in b.graph.blocks:
                local = f"{fn.__name__}{b.next_index('block:' + fn.__name__)}"
        rep, b.pending_repeat = b.pending_repeat, None
        _open_scope(b, local, BlockInfo(fn.__name__, loc, rep))
        try:
            out = _call_user(fn, args, kwargs, f"block '{fn.__name__}'", loc,
                             extra=("name",))
        finally:
            b.pop()
        _check_result(out, f"block '{fn.__name__}'", def_loc)
        return out

    wrapper.__cnnir_block__ = True  # type: ignore[attr-defined]
    return wrapper


def repeat(fn: Callable[..., Any], n: int, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """``x = fn(x, *args, **kwargs)`` ``n`` times, recorded as one repeated group.

    ``fn`` must be a ``@block``.  With ``name="stage"`` the blocks are named
    ``stage1``...``stageN`` (as ``fn.__name__ + "_" + name + i``).
    """
    loc = _caller_loc()
    b = _current("repeat()", loc)
    if not getattr(fn, "__cnnir_block__", False):
        raise DslError(f"repeat() needs a @block function, got {getattr(fn, '__name__', fn)!r}",
                       loc=loc)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise DslError(f"repeat() count must be a positive integer, got {n!r}", loc=loc)
    base = kwargs.pop("name", None)
    gid = b.next_group
    b.next_group += 1
    for i in range(n):
        b.pending_repeat = (gid, i, n)
        if base is not None:
            kwargs["name"] = f"{base}{i + 1}"
        x = fn(x, *args, **kwargs)
        if not isinstance(x, Tensor):
            raise DslError(f"repeat() needs a block that returns one tensor; "
                           f"'{fn.__name__}' returned {type(x).__name__}", loc=loc)
    return x


def _check_result(out: Any, what: str, loc: SourceLoc) -> None:
    items = out if isinstance(out, (tuple, list)) else [out]
    if out is None or not items:
        raise DslError(f"{what} returns nothing; return its output tensor", loc=loc)
    for t in items:
        if not isinstance(t, Tensor):
            raise DslError(f"{what} must return cnnir tensors, got {type(t).__name__}", loc=loc)


# --------------------------------------------------------------------------- models


class Model:
    """A network declared with ``@model``; :meth:`build` turns it into a :class:`Graph`."""

    def __init__(self, fn: Callable[..., Any], input: Sequence[int], name: str) -> None:
        self.fn = fn
        self.name = name
        self.input = tuple(input)
        self.loc = SourceLoc(_display_path(fn.__code__.co_filename), fn.__code__.co_firstlineno)
        self.__doc__ = fn.__doc__
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<cnnir model {self.name!r} input={'x'.join(map(str, self.input))}>"

    def build(self, input: Sequence[int] | None = None, **kwargs: Any) -> Graph:
        """Run the model function and return its graph (shapes not yet inferred).

        ``input`` overrides the declared ``(C, H, W)``; ``kwargs`` go to the function
        (``width=2`` for a parametrised family).
        """
        shape = tuple(input) if input is not None else self.input
        b = _Builder(self.name)
        try:
            in_op = O.Input(shape)
        except CnnirError as exc:
            raise DslError(f"model '{self.name}': {exc.msg}", loc=self.loc) from None
        b.graph.add("input", in_op, (), self.loc, ())
        _BUILDERS.append(b)
        try:
            out = _call_user(self.fn, (Tensor(b, "input"),), kwargs, f"model '{self.name}'",
                             self.loc, hint="a @model function takes the input tensor, and "
                             "every other argument needs a default or a keyword to build()")
        finally:
            _BUILDERS.pop()
            b.open = False
        _check_result(out, f"model '{self.name}'", self.loc)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        for t in outs:
            if t._builder is not b:
                raise DslError(f"model '{self.name}' returns tensor '{t.name}' of another model",
                               loc=self.loc)
        b.graph.outputs = [t.name for t in outs]
        b.graph.source = self.loc.file
        return b.graph

    __call__ = build


def model(fn: Callable[..., Any] | None = None, *, input: Sequence[int] = (3, 224, 224),
          name: str | None = None) -> Any:
    """Decorator declaring a network: ``@model(input=(3, 224, 224))``."""
    def wrap(f: Callable[..., Any]) -> Model:
        if not isinstance(input, (tuple, list)) or not input:
            raise DslError(f"@model input must be a tuple such as (3, 224, 224), got {input!r}",
                           loc=SourceLoc(_display_path(f.__code__.co_filename),
                                         f.__code__.co_firstlineno))
        return Model(f, input, name or f.__name__)
    return wrap(fn) if fn is not None else wrap


# --------------------------------------------------------------------------- files


def load_file(path: str, name: str | None = None,
              namespace: dict[str, Any] | None = None) -> Model:
    """Execute a DSL file and return its model (``name`` picks one of several).

    Errors in the user's file -- a syntax error, an exception raised at import --
    become a :class:`DslError` located at the user's own line.  ``namespace``, when
    given, receives the file's globals once it has run (the PyTorch frontend looks
    there for an ``nn.Module`` when the file has no such @model).
    """
    import importlib.util

    if not os.path.isfile(path):
        raise DslError(f"no such file: {path}")
    mod_name = f"_cnnir_user_{abs(hash(os.path.abspath(path)))}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise DslError(f"cannot load {path} as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        with user_code(path):
            spec.loader.exec_module(module)
    finally:
        sys.modules.pop(mod_name, None)
    if namespace is not None:
        namespace.update(vars(module))
    found = [m for m in vars(module).values() if isinstance(m, Model)]
    # models imported from elsewhere (``from cnnir.zoo.resnet import resnet50``) count
    # only when the file defines none of its own
    here = os.path.abspath(path)
    own = [m for m in found if os.path.abspath(m.fn.__code__.co_filename) == here]
    models = {m.name: m for m in sorted(own or found, key=lambda m: m.loc.line)}
    shown = _display_path(path)
    if not models:
        raise DslError("the file defines no @model; decorate the network function with "
                       "@model(input=(C, H, W))", loc=SourceLoc(shown, 0))
    if name is not None:
        if name not in models:
            raise DslError(f"the file defines no model named {name!r}; it has: "
                           f"{', '.join(models)}", loc=SourceLoc(shown, 0))
        return models[name]
    if len(models) > 1:
        first, second = list(models.values())[:2]
        raise DslError(
            f"a second @model '{second.name}' (the file has {len(models)}: "
            f"{', '.join(f'{m.name} at line {m.loc.line}' for m in models.values())}); "
            f"pick one with {shown}:NAME, e.g. {shown}:{first.name}", loc=second.loc)
    return next(iter(models.values()))


@contextmanager
def user_code(path: str | None = None) -> Iterator[None]:
    """Turn exceptions raised by a user's DSL code into located :class:`DslError` s.

    An exception whose innermost frame is inside cnnir is a cnnir bug and passes
    through unchanged.
    """
    try:
        yield
    except CnnirError:
        raise
    except SyntaxError as exc:
        at = SourceLoc(_display_path(exc.filename or path or "<unknown>"), exc.lineno or 0)
        raise DslError(f"syntax error: {exc.msg}", loc=at) from None
    except (SystemExit, KeyboardInterrupt) as exc:
        # sys.exit() / raise SystemExit / KeyboardInterrupt in a DSL file would end cnnir
        # quietly (exit 0, nothing written): a located error instead
        user = [f for f in _traceback_frames(exc) if not _in_cnnir(f[0]) and not _in_python(f[0])]
        where = SourceLoc(_display_path(user[-1][0]), user[-1][1]) if user else (
            SourceLoc(_display_path(path), 0) if path else None)
        what = (f"sys.exit({exc.code!r})" if isinstance(exc, SystemExit) and exc.code is not None
                else type(exc).__name__)
        raise DslError(f"the DSL file stopped with {what} while it ran; a DSL file defines a "
                       "@model and returns", loc=where) from None
    except Exception as exc:
        frames = _traceback_frames(exc)
        if frames and _in_cnnir(frames[-1][0]) and not _in_cnnir_user_zone(frames[-1][0]):
            raise
        user = [f for f in frames if not _in_cnnir(f[0]) and not _in_python(f[0])]
        where = SourceLoc(_display_path(user[-1][0]), user[-1][1]) if user else (
            SourceLoc(_display_path(path), 0) if path else None)
        msg = _dsl_call_message(exc) if isinstance(exc, TypeError) else None
        if isinstance(exc, NameError):
            msg = f"{type(exc).__name__}: {exc}{_name_suggestion(exc)}"
        elif isinstance(exc, AttributeError) and isinstance(getattr(exc, "obj", None), Tensor):
            msg = _method_suggestion(str(getattr(exc, "name", "") or ""))
        raise DslError(msg or f"{type(exc).__name__}: {exc}", loc=where) from None


#: what users of other frameworks type, and the DSL's name for it
_METHOD_ALIASES = {
    "gap": "global_avgpool", "global_avg_pool": "global_avgpool", "avg_pool": "avgpool",
    "max_pool": "maxpool", "pool": "maxpool", "batchnorm": "bn", "batch_norm": "bn",
    "fc": "linear", "dense": "linear", "conv2d": "conv", "deconv": "conv_transpose",
    "convtranspose": "conv_transpose", "upconv": "conv_transpose", "drop": "dropout",
    "swish": "silu", "hard_swish": "hardswish", "view": "flatten", "reshape": "flatten",
}
_FUNCTIONS = {"concat", "cat", "add", "mul", "mean"}


def _method_suggestion(name: str) -> str:
    """The message for ``x.<name>(...)`` when Tensor has no such layer method."""
    import difflib

    methods = sorted(m for m in dir(Tensor) if not m.startswith("_") and m != "name")
    msg = f"a tensor has no layer method '{name}'"
    if name in _FUNCTIONS:
        fn = "concat" if name == "cat" else name
        return f"{msg}; {fn} is a function of several tensors: {fn}(a, b)"
    close = [_METHOD_ALIASES[name]] if name in _METHOD_ALIASES else \
        difflib.get_close_matches(name, methods, n=1)
    if close:
        return f"{msg}; did you mean '{close[0]}'?"
    return f"{msg}; the layer methods are: {', '.join(methods)}"


def _name_suggestion(exc: NameError) -> str:
    """``"; did you mean 'channels'?"`` for a misspelt name, from the failing frame's names."""
    import builtins
    import difflib

    name = getattr(exc, "name", None)
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if not name or tb is None:
        return ""
    frame = tb.tb_frame
    names = [*frame.f_locals, *frame.f_globals, *vars(builtins)]
    close = difflib.get_close_matches(name, [n for n in names if not n.startswith("__")], n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _call_user(fn: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any],
               what: str, loc: SourceLoc, hint: str | None = None,
               extra: Sequence[str] = ()) -> Any:
    """``fn(*args, **kwargs)`` for a user's block or model function.

    A call that does not fit ``fn``'s signature (an unknown keyword, a missing
    argument) fails before ``fn`` runs, inside cnnir; it is the user's mistake, so
    it becomes a :class:`DslError` at the user's call, with a suggestion.
    """
    try:
        return fn(*args, **kwargs)
    except TypeError as exc:
        tb = exc.__traceback__
        if tb is None or tb.tb_next is not None:  # raised inside fn: not a binding error
            raise
        msg = _with_suggestion(str(exc), fn, extra)
        raise DslError(f"{what}: {msg}" + (f"; {hint}" if hint else ""), loc=loc) from None


def _params(fn: Callable[..., Any]) -> list[str]:
    import inspect

    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return []
    return [p for p in sig.parameters if p != "self"]


def _with_suggestion(msg: str, fn: Callable[..., Any], extra: Sequence[str] = ()) -> str:
    """Add "did you mean 'stride'?" (or the valid names) to an unknown-keyword message."""
    import difflib
    import re

    m = re.search(r"unexpected keyword argument '(\w+)'", msg)
    if not m:
        return msg
    params = [*_params(fn), *extra]
    close = difflib.get_close_matches(m.group(1), params, n=1)
    if close:
        return f"{msg}; did you mean '{close[0]}'?"
    return f"{msg}; it takes: {', '.join(params)}" if params else msg


def _dsl_call_message(exc: TypeError) -> str | None:
    """``Tensor.conv() got an unexpected keyword argument 'strides'`` as the user wrote
    it: ``conv() got ...; did you mean 'stride'?``; None for other TypeErrors."""
    import re

    m = re.match(r"Tensor\.(\w+)\(\) (.*)", str(exc))
    method = getattr(Tensor, m.group(1), None) if m else None
    if m is None or method is None:
        return None
    return _with_suggestion(f"{m.group(1)}() {m.group(2)}", method)


def _traceback_frames(exc: BaseException) -> list[tuple[str, int]]:
    out = []
    tb = exc.__traceback__
    while tb is not None:
        out.append((tb.tb_frame.f_code.co_filename, tb.tb_lineno))
        tb = tb.tb_next
    return out


def _in_cnnir(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_PKG_DIR + os.sep)


def _in_cnnir_user_zone(filename: str) -> bool:
    """The zoo is DSL code too: its exceptions are located like a user's."""
    return os.path.abspath(filename).startswith(os.path.join(_PKG_DIR, "zoo") + os.sep)


def _in_python(filename: str) -> bool:
    if filename.startswith("<"):
        return True
    ab = os.path.abspath(filename)
    prefixes = {os.path.abspath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    return any(ab.startswith(os.path.join(p, "lib")) for p in prefixes)


__all__ = ["model", "block", "repeat", "scope", "stage", "concat", "add", "mul", "mean", "Tensor",
           "Model", "load_file", "user_code"]
