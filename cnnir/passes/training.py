"""``training-memory`` and ``backward-cost``: what one training step keeps and computes.

Both walk the graph and ask each op (:meth:`cnnir.ops.Op.saved`,
:meth:`cnnir.ops.Op.backward_cost`); an op without the rule is a
:class:`~cnnir.errors.PassError` naming the node, never a zero.

Gradients.  The network input needs none; a tensor requires a gradient when some
trainable, not ``frozen`` parameter lies upstream of it.  A node that neither has a
trainable weight nor reads a tensor that requires a gradient has no autograd node: it
keeps nothing and its backward costs nothing (the first layer computes no input
gradient; a frozen layer no weight gradient).

``training-memory`` produces ``meta["training"]`` per node::

    {"saved_bytes": 3211264,   # the tensors its autograd node keeps, by storage: a
                               # storage another node kept first is not counted again
     "saved": [["input", 3211264], ["indices", 6422528]],  # what, bytes (each kept tensor)
     "param_bytes": ..., "grad_bytes": ..., "optimizer_bytes": ...}

and on the pass the totals (:class:`TrainingMemory`'s fields).  Storages: a view
(flatten, identity: the ``view`` trait) shares its input's storage, and so does an
activation that runs in place (as the PyTorch backend runs it: an ``inplace_safe``
activation that is its producer's only user, the producer not a graph output, with a
weight or a pool or a merge that keeps nothing, and not keeping its own output).

The peak follows one training step in the graph's order: the forward allocates each
output, frees it after its last reader unless some node keeps it; the backward walks
back, allocating each input gradient and the weight gradients, freeing an output's
gradient once its node has run and a kept storage once every node that keeps it has
run; then the optimizer step holds parameters, gradients and its state.  Parameters,
gradients and optimizer state (``momentum`` 1x, ``adam``/``adamw`` 2x the trainable
parameters; ``sgd`` none) are in the parameter dtype: ``dtype`` without ``amp``,
float32 (the master weights) with it.  Under ``amp`` activations are counted in the
low ``dtype`` and each conv and linear keeps the low-precision copy of its weight that
autocast made (and of the network input it reads).

``backward-cost`` produces ``meta["backward"]``: ``{"input_grad_macs", "weight_grad_macs",
"other_ops"}`` for ``batch`` images, with totals on the pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ..errors import PassError
from ..ir import Graph, Node
from ..ops import INPLACE_SAFE, MERGE, VIEW, NoRule, Saved, TensorShape, TrainCtx, numel
from . import register
from .base import Pass
from .count_params import op_params
from .support import no_rule, node_shapes

#: bytes per element of the training dtypes (and of what ops keep beside them)
TRAIN_DTYPES: dict[str, int] = {"float32": 4, "bfloat16": 2, "float16": 2}
FIXED_BYTES: dict[str, int] = {"float32": 4, "int64": 8, "bool": 1}
#: optimizer state per trainable parameter, in parameter elements
OPTIMIZER_STATE: dict[str, int] = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}

T = TypeVar("T")


def _frozen(name: str, frozen: tuple[str, ...]) -> bool:
    return any(name == f or name.startswith(f + "/") for f in frozen)


@dataclass
class _Walk:
    """Per node: input shapes, trainable / buffer elements, gradient flags."""

    shapes: dict[str, list[TensorShape]]
    trainable: dict[str, int]
    buffers: dict[str, int]
    weight_grad: dict[str, bool]
    requires_grad: dict[str, bool]


def _walk(graph: Graph, frozen: tuple[str, ...], what: str) -> tuple[list[Node], _Walk]:
    views = graph.walk()
    known: dict[str, TensorShape] = {}
    w = _Walk({}, {}, {}, {}, {})
    for v in views:
        ins = node_shapes(v, known, what)
        known[v.name] = v.meta["shape"]
        try:
            p, _, buf = op_params(v.op, ins)
        except NoRule:
            raise no_rule(graph, v.name, what) from None
        w.shapes[v.name] = ins
        w.trainable[v.name] = p
        w.buffers[v.name] = buf
        w.weight_grad[v.name] = p > 0 and not _frozen(v.name, frozen)
        w.requires_grad[v.name] = w.weight_grad[v.name] or any(
            w.requires_grad[i] for i in v.inputs)
    return views, w


def _ask(graph: Graph, v: Node, what: str, rule: Callable[..., T], *args: object) -> T:
    """``rule(*args)`` (one of ``v``'s op's rules); a missing rule becomes the error
    naming the node."""
    try:
        return rule(*args)
    except NoRule as exc:
        if exc.op is v.op:
            raise no_rule(graph, v.name, what) from None
        raise PassError(f"{what}: no {exc.rule} rule for the fused activation "
                        f"'{exc.op.kind}'", loc=v.loc, node=v.name) from None


@register
@dataclass
class TrainingMemory(Pass):
    """Bytes one training step needs: kept activations, parameters, gradients, optimizer."""

    name = "training-memory"
    kind = "analysis"
    batch: int = 1
    dtype: str = "float32"
    amp: bool = False
    optimizer: str = "sgd"
    device: str = "cuda"
    frozen: tuple[str, ...] = ()

    #: totals of the last run, in bytes
    saved_bytes: int = field(default=0, init=False, repr=False)
    weight_copy_bytes: int = field(default=0, init=False, repr=False)
    param_bytes: int = field(default=0, init=False, repr=False)
    grad_bytes: int = field(default=0, init=False, repr=False)
    optimizer_bytes: int = field(default=0, init=False, repr=False)
    forward_peak_bytes: int = field(default=0, init=False, repr=False)
    backward_peak_bytes: int = field(default=0, init=False, repr=False)
    peak_bytes: int = field(default=0, init=False, repr=False)

    def _check(self) -> tuple[int, int]:
        if self.batch < 1:
            raise PassError(f"training-memory: batch must be at least 1, got {self.batch}")
        if self.dtype not in TRAIN_DTYPES:
            raise PassError(f"training-memory: unknown dtype {self.dtype!r}; supported: "
                            f"{', '.join(TRAIN_DTYPES)}")
        if self.amp and self.dtype == "float32":
            raise PassError("training-memory: amp needs a low dtype (bfloat16 or float16)")
        if self.optimizer not in OPTIMIZER_STATE:
            raise PassError(f"training-memory: unknown optimizer {self.optimizer!r}; "
                            f"supported: {', '.join(OPTIMIZER_STATE)}")
        if self.device not in ("cuda", "cpu"):
            raise PassError(f"training-memory: device must be cuda or cpu, got {self.device!r}")
        act = TRAIN_DTYPES[self.dtype]
        return act, (4 if self.amp else act)

    def run(self, graph: Graph) -> Graph:
        act, pbytes = self._check()
        what = "training-memory"
        views, w = _walk(graph, self.frozen, what)
        outputs = set(graph.outputs)
        users: dict[str, int] = {}
        for v in views:
            for i in v.inputs:
                users[i] = users.get(i, 0) + 1
        storage: dict[str, str] = {}     # node -> the storage its output lives in
        size: dict[str, int] = {}        # storage -> bytes
        keepers: dict[str, list[int]] = {}  # storage -> positions of the nodes keeping it
        saved_list: list[list[str]] = []  # per position: the storages it keeps
        kept_of: dict[str, list[Saved]] = {}
        ops = {v.name: v.op for v in views}
        total = copies = 0
        for idx, v in enumerate(views):
            n, op, ins = v.name, v.op, w.shapes[v.name]
            out = v.meta["shape"]
            rg = tuple(w.requires_grad[i] for i in v.inputs)
            inplace = self._inplace(v, ops, w, users, outputs, kept_of)
            if op.has(VIEW) or inplace:
                storage[n] = storage[v.inputs[0]]
            else:
                storage[n] = n
                size[n] = numel(out) * self.batch * act
            kept: list[Saved] = []
            if w.weight_grad[n] or any(rg):
                ctx = TrainCtx(rg, w.weight_grad[n], inplace, self.device)
                kept = _ask(graph, v, what, op.saved, ins, out, ctx)
            kept_of[n] = kept
            mine: list[str] = []
            rows: list[list[object]] = []
            node_bytes = 0
            for k, s in enumerate(kept):
                key, nbytes = self._storage(n, k, s, v, storage, ops, act, size)
                if key is None:
                    continue  # a parameter: counted as parameter memory
                rows.append([s.what, nbytes])
                first = key not in keepers
                keepers.setdefault(key, []).append(idx)
                mine.append(key)
                if first:
                    node_bytes += nbytes
                    if key.startswith("#copy"):
                        copies += nbytes
            saved_list.append(mine)
            total += node_bytes
            p, buf = w.trainable[n], w.buffers[n]
            trainable = p if w.weight_grad[n] else 0
            v.meta["training"] = {
                "saved_bytes": node_bytes, "saved": rows,
                "param_bytes": (p + buf) * pbytes, "grad_bytes": trainable * pbytes,
                "optimizer_bytes": trainable * pbytes * OPTIMIZER_STATE[self.optimizer]}
        self.saved_bytes = total
        self.weight_copy_bytes = copies
        self.param_bytes = sum(m.meta["training"]["param_bytes"] for m in views)
        self.grad_bytes = sum(m.meta["training"]["grad_bytes"] for m in views)
        self.optimizer_bytes = sum(m.meta["training"]["optimizer_bytes"] for m in views)
        self._peaks(views, w, storage, size, keepers, saved_list, outputs, act, pbytes)
        return graph

    @staticmethod
    def _inplace(v: Node, ops: dict, w: _Walk, users: dict[str, int], outputs: set[str],
                 kept_of: dict[str, list[Saved]]) -> bool:
        """Whether the PyTorch backend runs ``v`` in place on its producer's output."""
        if not v.op.has(INPLACE_SAFE) or len(v.inputs) != 1:
            return False
        src = v.inputs[0]
        prod = ops[src]
        overwritable = (w.trainable[src] + w.buffers[src] > 0 or prod.family == "pool"
                        or (prod.has(MERGE) and not kept_of[src]))
        return (users.get(src) == 1 and src not in outputs and overwritable
                and not prod.has(VIEW)
                and not any(s.storage == "output" for s in kept_of[src]))

    def _storage(self, n: str, k: int, s: Saved, v: Node, storage: dict[str, str],
                 ops: dict, act: int, size: dict[str, int]) -> tuple[str | None, int]:
        """The storage key and bytes of the ``k``-th tensor node ``n`` keeps."""
        per = self.batch if s.per_image else 1
        elem = act if s.dtype == "act" else FIXED_BYTES[s.dtype]
        nbytes = s.numel * per * elem
        amp_cast = self.amp and ops[n].family in ("conv", "linear")
        if s.storage == "param":
            if amp_cast and s.what == "weight":  # autocast's low-precision copy, kept
                return f"#copy:{n}:{k}", s.numel * act
            return None, 0
        if s.storage == "new":
            key = f"#new:{n}:{k}"
            size[key] = nbytes
            return key, nbytes
        if s.storage == "output":
            key = storage[n]
        else:
            src = v.inputs[int(s.storage[5:])]
            if amp_cast and ops[src].kind == "input":  # the float32 image, cast
                return f"#copy:{n}:{k}", s.numel * per * act
            key = storage[src]
        return key, size[key]

    def _peaks(self, views: list[Node], w: _Walk, storage: dict[str, str],
               size: dict[str, int], keepers: dict[str, list[int]],
               saved_list: list[list[str]], outputs: set[str], act: int,
               pbytes: int) -> None:
        # forward: a storage lives until its last reader, or, if kept, to the backward
        last_read: dict[str, int] = {}
        for idx, v in enumerate(views):
            for i in v.inputs:
                last_read[storage[i]] = idx
        for o in outputs:
            last_read[storage[o]] = len(views)
        live = peak = 0
        alive: set[str] = set()
        for idx, v in enumerate(views):
            s = storage[v.name]
            if s not in alive:
                alive.add(s)
                live += size[s]
            for key in saved_list[idx]:
                if key not in alive:
                    alive.add(key)
                    live += size.get(key, 0)
            peak = max(peak, live)
            for i in {storage[x] for x in v.inputs} | {s}:
                if i in alive and last_read.get(i, idx) <= idx and i not in keepers:
                    alive.discard(i)
                    live -= size[i]
        forward = peak
        # backward: kept storages and the gradients in flight, in reverse order
        out_bytes = {v.name: numel(v.meta["shape"]) * self.batch * act for v in views}
        last_keeper = {k: min(pos) for k, pos in keepers.items()}
        grads: dict[str, int] = {o: out_bytes[o] for o in outputs}
        live_grad = sum(grads.values())
        pgrads = 0
        back = live + live_grad
        for idx in range(len(views) - 1, -1, -1):
            v = views[idx]
            n = v.name
            if w.weight_grad[n]:
                pgrads += w.trainable[n] * pbytes
            for i in v.inputs:
                if w.requires_grad[i] and i not in grads:
                    grads[i] = out_bytes[i]
                    live_grad += grads[i]
            back = max(back, live + live_grad + pgrads)
            live_grad -= grads.pop(n, 0)
            for key in saved_list[idx]:
                if last_keeper.get(key) == idx and key in alive:
                    alive.discard(key)
                    live -= size.get(key, 0)
        self.forward_peak_bytes = forward + self.param_bytes + self.optimizer_bytes
        self.backward_peak_bytes = back + self.param_bytes + self.optimizer_bytes
        step = self.param_bytes + self.grad_bytes + self.optimizer_bytes
        self.peak_bytes = max(self.forward_peak_bytes, self.backward_peak_bytes, step)


@register
@dataclass
class BackwardCost(Pass):
    """Backward MACs per node, input and weight gradients apart, and other operations."""

    name = "backward-cost"
    kind = "analysis"
    batch: int = 1
    frozen: tuple[str, ...] = ()

    total_input_grad_macs: int = field(default=0, init=False, repr=False)
    total_weight_grad_macs: int = field(default=0, init=False, repr=False)
    total_other_ops: int = field(default=0, init=False, repr=False)

    def run(self, graph: Graph) -> Graph:
        if self.batch < 1:
            raise PassError(f"backward-cost: batch must be at least 1, got {self.batch}")
        views, w = _walk(graph, self.frozen, "backward-cost")
        ti = tw = to = 0
        for v in views:
            ins, out = w.shapes[v.name], v.meta["shape"]
            needs_in = any(w.requires_grad[i] for i in v.inputs)
            needs_w = w.weight_grad[v.name]
            if needs_in or needs_w:
                i, wg, other = _ask(graph, v, "backward-cost", v.op.backward_cost,
                                    ins, out, needs_in, needs_w)
            else:
                i = wg = other = 0
            i, wg, other = i * self.batch, wg * self.batch, other * self.batch
            v.meta["backward"] = {"input_grad_macs": i, "weight_grad_macs": wg,
                                  "other_ops": other}
            ti += i
            tw += wg
            to += other
        self.total_input_grad_macs = ti
        self.total_weight_grad_macs = tw
        self.total_other_ops = to
        return graph


__all__ = ["TrainingMemory", "BackwardCost", "TRAIN_DTYPES", "OPTIMIZER_STATE"]
