"""Backends: read a graph (and its analysis results) and emit something.

One module per target: :mod:`~cnnir.backends.pytorch` (an ``nn.Module``) and
:mod:`~cnnir.backends.pytorch_source` (its ``.py`` source),
:mod:`~cnnir.backends.onnx_export`, :mod:`~cnnir.backends.runtime` (onnxruntime),
:mod:`~cnnir.backends.dot` (Graphviz), :mod:`~cnnir.backends.report` and
:mod:`~cnnir.backends.compare` (tables, rendered by :mod:`~cnnir.backends.tables`).
A backend takes a graph and options and returns data; the commands that load a
model, write files and print are :mod:`cnnir.api`'s.  Backends are imported only
when used, so heavy libraries stay off the report path.
"""
