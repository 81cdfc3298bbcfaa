"""The ONNX graph under construction: nodes, initializers, tensor names.

:class:`Emitter` is what an ONNX export rule (:mod:`cnnir.backends.onnx_export_rules`)
writes into: :meth:`Emitter.emit` appends a node, :meth:`Emitter.param` turns a
layer's weight into an initializer, :meth:`Emitter.const` shares a scalar,
:meth:`Emitter.add_input` declares a graph input.  Names are made unique here, so a
rule names its tensors after the IR node (``"conv1"``, ``"conv1:relu"``) and never
checks for clashes.  The driver (:mod:`cnnir.backends.onnx_export`) walks the graph
and assembles the model around it.
"""

from __future__ import annotations

import linecache
import os
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..ir import Graph

Weights = dict[str, dict[str, Any]]


class Emitter:
    """Collects nodes and initializers; maps IR node names to ONNX tensor names."""

    def __init__(self, graph: Graph, weights: Weights, batch: int | str = "N") -> None:
        self.graph = graph
        self.weights = weights
        #: the batch dimension of every graph input and output: a size or a symbol
        self.batch = batch
        self.nodes: list[onnx.NodeProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        #: initializers go straight into the model's graph (no copies of the weights)
        self.model = onnx.ModelProto()
        self.tensor: dict[str, str] = {}  # IR node -> ONNX tensor holding its output
        self.tensors: set[str] = set()  # tensor names in use
        self._node_names: set[str] = set()
        self._consts: dict[tuple[str, bytes], str] = {}
        #: the opset being written (rules pick a newer operator where it exists)
        self.opset = 17

    @staticmethod
    def _unique(used: set[str], base: str) -> str:
        name, i = base, 2
        while name in used:
            name = f"{base}_{i}"
            i += 1
        used.add(name)
        return name

    def add_input(self, name: str, shape: tuple[int, ...]) -> str:
        """Declare graph input ``name`` (float, batch first); its tensor is ``name``."""
        self.inputs.append(helper.make_tensor_value_info(
            name, TensorProto.FLOAT, [self.batch, *shape]))
        self.tensors.add(name)
        return name

    def add_init(self, name: str, array: Any, dtype: Any = np.float32) -> str:
        name = self._unique(self.tensors, name)
        arr = np.ascontiguousarray(array, np.dtype(dtype).newbyteorder("<"))
        t = self.model.graph.initializer.add()
        t.name = name
        t.data_type = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        t.dims.extend(arr.shape)
        t.raw_data = arr.tobytes()
        return name

    def const(self, value: float) -> str:
        """A shared scalar float32 initializer."""
        arr = np.asarray(value, np.float32)
        key = ("f32", arr.tobytes())
        if key not in self._consts:
            self._consts[key] = self.add_init(f"const:{float(value):g}", arr)
        return self._consts[key]

    def param(self, node: str, key: str) -> str:
        return self.add_init(f"{node}.{key}", self.weights[node][key])

    def emit(self, op_type: str, inputs: list[str], output: str, name: str, doc: str,
             **attrs: Any) -> str:
        """Append a node; ``output`` and ``name`` are used as given when free."""
        out = self._unique(self.tensors, output)
        self.nodes.append(helper.make_node(
            op_type, inputs, [out], name=self._unique(self._node_names, name),
            doc_string=doc, **attrs))
        return out


def doc(graph: Graph, n: str) -> str:
    """``file:line: source text`` of the DSL call that made node ``n``."""
    loc = graph.loc(n)
    if loc is None:
        return ""
    text = ""
    if loc.line:
        # zoo locations read "cnnir/zoo/vgg.py", relative to the package's parent
        pkg_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        for path in (loc.file, os.path.join(pkg_parent, loc.file)):
            text = linecache.getline(path, loc.line).strip()
            if text:
                break
    return f"{loc}: {text}" if text else str(loc)


__all__ = ["Emitter", "Weights", "doc"]
