"""ONNX backend: build a ``ModelProto`` from the IR with ``onnx.helper``.

:func:`to_onnx` emits one ONNX node per IR node (named like the IR node, its output
tensor too), the DSL ``file:line`` and source text in each node's ``doc_string``,
the weights as initializers (``"<node>.weight"``, ``"<node>.bias"``...), a dynamic
(``N``) or fixed batch axis, and model metadata (cnnir version, source, model name,
and the blocks' kinds and repeats as ``cnnir_blocks`` for the ONNX frontend).

The driver: this module walks the graph (topological order), resolves the weights,
asks each node's rule in :mod:`cnnir.backends.onnx_export_rules` (``EXPORT``, one
rule per op class; the op mapping is tabled there) for its node(s), which go into an
:class:`~cnnir.backends.onnx_builder.Emitter` (nodes, initializers, unique names),
then adds the graph outputs and assembles the model (opset, IR version, metadata).

An op kind without a rule raises a :class:`~cnnir.errors.BackendError` naming the
layer; nothing is ever approximated silently.

:func:`save` writes a model atomically; the weights go to ``FILE.onnx.data`` beside
it (ONNX external data) when asked, or when the file would pass protobuf's 2 GB limit.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from .._version import __version__
from ..errors import BackendError, UsageError
from ..ir import Graph
from ..util import _mode_for, check_writable
from ..weights import ensure_weights, with_weights
from .onnx_builder import Emitter, Weights, doc
from .onnx_export_rules import EXPORT, bin_matrix, key

#: the opset emitted by default (HardSwish needs 14, Softmax on one axis 13)
DEFAULT_OPSET = 17
MIN_OPSET = 17
#: weights from this many bytes go to external data: protobuf refuses to serialise a
#: message of 2 GiB or more, and the graph itself needs a margin
EXTERNAL_THRESHOLD = 1_900_000_000

#: the export rules by op class (the ``RuleTable`` of :mod:`.onnx_export_rules`)
RULES = EXPORT


# --------------------------------------------------------------------------- to_onnx


def _batch_dim(batch: int | str) -> int | str:
    if batch == "dynamic":
        return "N"
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise UsageError(f"batch must be 'dynamic' or a positive integer, got {batch!r}")
    return batch


def resolve_weights(graph: Graph, weights: Any = None, seed: int = 0, mode: str = "torchvision",
                    max_params: float = 2e9) -> Weights:
    """The arrays to export: a dict, a PyTorch module's state, or ``graph.weights``/seeded."""
    if hasattr(weights, "state_dict"):  # a torch module: its arrays, read by its backend
        from .pytorch import weights_from_module

        weights = weights_from_module(weights, graph)
    return ensure_weights(with_weights(graph, weights), seed, mode, max_params)


def to_onnx(graph: Graph, weights: Any = None, seed: int = 0, batch: int | str = "dynamic",
            opset: int = DEFAULT_OPSET, mode: str = "torchvision",
            max_params: float = 2e9) -> onnx.ModelProto:
    """The graph as an ONNX model (the op mapping: :mod:`.onnx_export_rules`).

    ``weights``: ``{node: {name: array}}`` in PyTorch layouts, a ``torch.nn.Module``
    built by the PyTorch backend, or None for ``graph.weights`` completed with the
    seeded initialiser (``seed``, ``mode`` as in :func:`cnnir.weights.init_weights`).
    ``batch``: ``"dynamic"`` (a symbolic ``N``) or a fixed size.
    """
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise UsageError(f"opset must be an integer >= {MIN_OPSET}, got {opset!r}")
    if opset > onnx.defs.onnx_opset_version():
        raise UsageError(f"opset {opset} is newer than this onnx package supports "
                         f"({onnx.defs.onnx_opset_version()})")
    bdim = _batch_dim(batch)
    arrays = resolve_weights(graph, weights, seed, mode, max_params)
    e = Emitter(graph, arrays, bdim)
    e.opset = opset
    for n in graph.nodes():
        op = graph.op(n)
        rule = EXPORT.get(key(type(op)))
        if rule is None:
            reason = EXPORT.refused().get(key(type(op)))
            raise BackendError(
                f"onnx: no ONNX rule for op '{op.kind}' of layer '{n}'"
                + (f": {reason}" if reason else ""), loc=graph.loc(n), node=n)
        ins = [e.tensor[s] for s in graph.inputs(n)]
        try:
            e.tensor[n] = rule(e, n, op, ins, doc(graph, n))
        except BackendError as exc:
            raise exc.with_context(graph.loc(n), n) from None
    outputs: list[onnx.ValueInfoProto] = []
    done: set[str] = set()
    input_names = {v.name for v in e.inputs}
    for o in graph.outputs:
        t = e.tensor[o]
        if t != o or o in input_names or o in done:
            t = e.emit("Identity", [t], o if o not in e.tensors else f"{o}:output",
                       f"{o}:output", doc(graph, o))
        done.add(t)
        outputs.append(helper.make_tensor_value_info(
            t, TensorProto.FLOAT, [bdim, *graph.shape(o)]))
    model = e.model
    g = model.graph
    g.name = graph.name
    g.doc_string = f"cnnir graph '{graph.name}'"
    g.node.extend(e.nodes)
    g.input.extend(e.inputs)
    g.output.extend(outputs)
    opsets = [helper.make_opsetid("", opset)]
    model.opset_import.extend(opsets)
    model.ir_version = helper.find_min_ir_version_for(opsets)
    model.producer_name = "cnnir"
    model.producer_version = __version__
    model.doc_string = (f"{graph.name}, compiled by cnnir {__version__}"
                        + (f" from {graph.source}" if graph.source else ""))
    props = {
        "cnnir_version": __version__,
        "source": graph.source or "",
        "model": graph.name,
        "input_shape": "x".join(str(d) for d in graph.input_shape),
    }
    if graph.blocks:
        props[BLOCKS_KEY] = blocks_json(graph)
    helper.set_model_props(model, props)
    return model


#: model metadata key of the block structure (read back by the ONNX frontend)
BLOCKS_KEY = "cnnir_blocks"


def blocks_json(graph: Any) -> str:
    """``graph.blocks`` as JSON for the model's metadata: a list of
    ``{"scope": "layer1/basic2", "kind": "basic", "repeat": [group, index, count]}``
    (``repeat`` only for blocks made by ``repeat``).  Node names already carry the
    scopes (``layer1/basic2/conv1``); this keeps what names cannot: each block's
    kind (the ``@block`` function or ``scope``) and its place in a repeat."""
    import json

    out = []
    for scope, info in graph.blocks.items():
        entry: dict[str, Any] = {"scope": "/".join(scope), "kind": info.kind}
        if info.repeat is not None:
            entry["repeat"] = list(info.repeat)
        out.append(entry)
    return json.dumps(out, separators=(",", ":"))


def tensor_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the initializers (what pushes a model past protobuf's 2 GB)."""
    total = 0
    for t in model.graph.initializer:
        total += len(t.raw_data) if t.raw_data else np.dtype(
            helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize * int(np.prod(t.dims))
    return total


def needs_external(model: onnx.ModelProto, threshold: int | None = None) -> bool:
    """True when the weights alone come near protobuf's 2 GB limit."""
    return tensor_bytes(model) >= (EXTERNAL_THRESHOLD if threshold is None else threshold)


def save(model: onnx.ModelProto, path: str, external_data: bool | None = None,
         threshold: int | None = None) -> list[str]:
    """Write ``model`` to ``path`` atomically; returns the files written.

    ``external_data``: True puts the weights in ``path + ".data"``; None does so only
    when the initializers reach ``threshold`` bytes (default :data:`EXTERNAL_THRESHOLD`,
    below protobuf's 2 GB limit).  Both
    files are written under temporary names beside ``path`` and renamed into place.
    """
    check_writable(path)
    if external_data is None:
        external_data = needs_external(model, threshold)
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    tmpdir = tempfile.mkdtemp(prefix=".cnnir-", dir=directory)
    try:
        tmp = os.path.join(tmpdir, base)
        if external_data:
            data_name = base + ".data"
            copy = onnx.ModelProto()
            copy.CopyFrom(model)
            onnx.save_model(copy, tmp, save_as_external_data=True,
                            all_tensors_to_one_file=True, location=data_name,
                            size_threshold=0)
            data_path = os.path.join(directory, data_name)
            for done, final in ((os.path.join(tmpdir, data_name), data_path), (tmp, path)):
                os.chmod(done, _mode_for(final))  # the mode a plain open() gives, not 0600
                os.replace(done, final)
            return [path, os.path.join(os.path.dirname(path), data_name)]
        with open(tmp, "wb") as fh:
            fh.write(model.SerializeToString())
        os.replace(tmp, path)
        return [path]
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


# --------------------------------------------------------------------------- batch


def parse_batch(text: Any) -> int | str:
    """``--batch``: ``"dynamic"`` or a positive integer."""
    if text is None or text == "dynamic":
        return "dynamic"
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        try:
            value = int(str(text))
        except ValueError:
            value = 0
    if value < 1:
        raise UsageError(f"--batch must be 'dynamic' or a positive integer, got {text!r}")
    return value


__all__ = ["to_onnx", "save", "resolve_weights", "bin_matrix", "tensor_bytes",
           "needs_external", "parse_batch", "RULES", "DEFAULT_OPSET", "EXTERNAL_THRESHOLD"]
