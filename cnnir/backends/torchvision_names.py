"""torchvision's ``state_dict`` names for the zoo models that mirror torchvision.

The zoo writes torchvision's architectures layer for layer, but names modules by
its DSL scopes (``layer1.basic1.conv1``) where torchvision numbers its
``nn.Sequential`` children (``layer1.0.conv1``).  :func:`torchvision_paths` gives,
for such a model, every weighted node's torchvision module path, by the rules of
torchvision's own classes:

================================  ===================================================
zoo models                        torchvision naming
================================  ===================================================
resnet18..152, resnext*,          ``conv1``, ``bn1``, ``layerN.<i>.{conv,bn}k``,
wide_resnet*                      ``layerN.<i>.downsample.{0,1}``, ``fc``
vgg11..19, vgg*_bn, alexnet       ``features.<i>``, ``classifier.<i>``: the index of
                                  the layer in torchvision's Sequential (ReLU, pool
                                  and dropout layers count)
squeezenet1_0, squeezenet1_1      ``features.<i>`` (a fire module is one child),
                                  ``classifier.1``
densenet121/161/169/201           ``features.{conv0,norm0,denseblockN.denselayerK,
                                  transitionN,norm5}``, ``classifier``
mobilenet_v2                      ``features.<i>.conv.<j>[.<k>]``, ``classifier.1``
shufflenet_v2_x0_5..x2_0          ``conv1.{0,1}``, ``stageN.<i>.branch{1,2}.<j>``,
                                  ``conv5.{0,1}``, ``fc``
inception_v3                      ``Conv2d_1a_3x3``, ``Mixed_5b.branch1x1``... (the
                                  zoo leaves out the auxiliary classifier: build
                                  torchvision's with ``aux_logits=False``)
================================  ===================================================

Models are recognised by their graph name (the zoo's model name; a zoo model
built with other arguments keeps it, and the shapes are checked on loading
anyway).  ``googlenet`` is not here: torchvision's GoogLeNet adds BatchNorm and a
3x3 conv where the paper's 5x5 is (6,624,904 parameters against the paper's
6,998,552).  ``benchmarks/check_torchvision_names.py`` loads torchvision's own
modules' ``state_dict`` through these names and compares the outputs.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..ir import Graph
from ..weights import param_shapes

Rule = Callable[[Graph, dict[str, str]], dict[str, str]]


def _sub_all(path: str, subs: list[tuple[str, str | Callable[[re.Match[str]], str]]]) -> str:
    for pattern, repl in subs:
        path = re.sub(pattern, repl, path)
    return path


def _resnet(graph: Graph, paths: dict[str, str]) -> dict[str, str]:
    """``stem.conv1`` -> ``conv1``; ``layer2.basic1.downsample_bn`` -> ``layer2.0.downsample.1``."""
    subs: list[tuple[str, str | Callable[[re.Match[str]], str]]] = [
        (r"^stem\.", ""),
        (r"^(layer\d+)\.(?:basic|bottleneck)(\d+)\.",
         lambda m: f"{m[1]}.{int(m[2]) - 1}."),
        (r"\.downsample_conv$", ".downsample.0"),
        (r"\.downsample_bn$", ".downsample.1"),
    ]
    return {n: _sub_all(p, subs) for n, p in paths.items()}


def _densenet(graph: Graph, paths: dict[str, str]) -> dict[str, str]:
    """Everything but the classifier under ``features``; ``dense_layer`` -> ``denselayer``,
    ``transition_1`` -> ``transition1``."""
    subs: list[tuple[str, str | Callable[[re.Match[str]], str]]] = [
        (r"^stem\.", "features."),
        (r"^denseblock(\d+)\.dense_layer(\d+)\.", r"features.denseblock\1.denselayer\2."),
        (r"^transition_(\d+)\.", r"features.transition\1."),
        (r"^norm5$", "features.norm5"),
    ]
    return {n: _sub_all(p, subs) for n, p in paths.items()}


def _sequential(nodes: list[str], container: str, depth: int) -> dict[str, str]:
    """Children of one ``nn.Sequential``: node names in order, the child being the
    name's first ``depth`` components (``depth=0``: each node is a child); the
    torchvision path is ``container.<index>`` plus the rest of the name."""
    index: dict[str, int] = {}
    out = {}
    for n in nodes:
        parts = n.split("/")
        child = "/".join(parts[:depth + 1]) if depth else n
        rest = parts[depth + 1:] if depth else []
        i = index.setdefault(child, len(index))
        out[n] = ".".join([container, str(i), *rest])
    return out


def _layers(graph: Graph) -> list[str]:
    return [n for n in graph.nodes() if graph.op(n).kind != "input"]


def _split_at(nodes: list[str], kind_graph: Graph, kind: str) -> tuple[list[str], list[str]]:
    """The nodes before the first ``kind`` op and those after it."""
    for i, n in enumerate(nodes):
        if kind_graph.op(n).kind == kind:
            return nodes[:i], nodes[i + 1:]
    return nodes, []


def _vgg(graph: Graph, paths: dict[str, str]) -> dict[str, str]:
    """``features.<i>`` for the layers before the adaptive pool, ``classifier.<i>``
    for those after the flatten (AlexNet and VGG)."""
    layers = _layers(graph)
    features, _ = _split_at(layers, graph, "adaptive_avgpool2d")
    _, head = _split_at(layers, graph, "flatten")
    names = {**_sequential(features, "features", 0), **_sequential(head, "classifier", 0)}
    return {n: names[n] for n in paths}


def _squeezenet(graph: Graph, paths: dict[str, str]) -> dict[str, str]:
    """``features.<i>`` (a fire module is one child, its convs keep their names) and
    ``classifier.<i>``."""
    layers = _layers(graph)
    feats = [n for n in layers if n.startswith("features/")]
    head = [n for n in layers if n.startswith("classifier/")]
    names = {**_sequential(feats, "features", 1), **_sequential(head, "classifier", 1)}
    return {n: names[n] for n in paths}


def _mobilenet_v2(graph: Graph, paths: dict[str, str]) -> dict[str, str]:
    """``features.0`` the stem, ``features.<i>`` the i-th inverted residual
    (``conv.0.0`` expand or depthwise ...), the last ``features`` child the head,
    ``classifier.1`` the linear layer (after a dropout)."""
    blocks: dict[str, int] = {}
    for p in paths.values():
        m = re.match(r"^(stage\d+\.inverted_residual\d+)\.", p)
        if m:
            blocks.setdefault(m[1], len(blocks) + 1)
    has_expand = {b for b in blocks if any(p == f"{b}.expand" for p in paths.values())}
    inner = {True: {"expand": "0.0", "expand_bn": "0.1", "depthwise": "1.0",
                    "depthwise_bn": "1.1", "project": "2", "project_bn": "3"},
             False: {"depthwise": "0.0", "depthwise_bn": "0.1", "project": "1",
                     "project_bn": "2"}}
    head = len(blocks) + 1
    fixed = {"stem.conv": "features.0.0", "stem.bn": "features.0.1",
             "head.conv": f"features.{head}.0", "head.bn": f"features.{head}.1",
             "classifier": "classifier.1"}
    out = {}
    for n, p in paths.items():
        if p in fixed:
            out[n] = fixed[p]
            continue
        block, _, leaf = p.rpartition(".")
        out[n] = f"features.{blocks[block]}.conv.{inner[block in has_expand][leaf]}"
    return out


def _shufflenet_v2(graph: Graph, paths: dict[str, str]) -> dict[str, str]:
    """``conv1.{0,1}``; ``stageN.<i>.branch1.{0..3}`` (dw, bn, pw, bn),
    ``branch2.{0,1,3,4,5,6}`` (pw, bn, ReLU at 2, dw, bn, pw, bn); ``conv5.{0,1}``."""
    leaf_index = {"branch1": {"dw": 0, "dw_bn": 1, "pw": 2, "pw_bn": 3},
                  "branch2": {"pw1": 0, "pw1_bn": 1, "dw": 3, "dw_bn": 4, "pw2": 5,
                              "pw2_bn": 6}}
    fixed = {"stem.conv": "conv1.0", "stem.bn": "conv1.1", "conv5.conv": "conv5.0",
             "conv5.bn": "conv5.1", "fc": "fc"}
    out = {}
    for n, p in paths.items():
        if p in fixed:
            out[n] = fixed[p]
            continue
        m = re.fullmatch(r"(stage\d+)\.inverted_residual_(\d+)\.(branch[12])\.(\w+)", p)
        if m is None:
            raise KeyError(p)
        out[n] = f"{m[1]}.{int(m[2]) - 1}.{m[3]}.{leaf_index[m[3]][m[4]]}"
    return out


def _inception_v3(graph: Graph, paths: dict[str, str]) -> dict[str, str]:
    """``stem.basic_conv_1a_3x3`` -> ``Conv2d_1a_3x3``; the k-th module of stage
    ``mixed_S`` -> ``Mixed_S<letter>`` (stage 5 starts at b, 6 and 7 at a);
    ``basic_conv_branch1x1`` -> ``branch1x1``."""
    letters: dict[str, str] = {}
    per_stage: dict[str, int] = {}
    for p in paths.values():
        m = re.match(r"^mixed_(\d+)\.(inception_[a-e]\d+)\.", p)
        if m and (m[1], m[2]) not in letters:
            k = per_stage.setdefault(m[1], 0)
            per_stage[m[1]] = k + 1
            letters[(m[1], m[2])] = "abcdefgh"[k + (1 if m[1] == "5" else 0)]  # type: ignore[index]
    out = {}
    for n, p in paths.items():
        m = re.fullmatch(r"stem\.basic_conv_(\w+)\.(conv|bn)", p)
        if m:
            out[n] = f"Conv2d_{m[1]}.{m[2]}"
            continue
        m = re.fullmatch(r"mixed_(\d+)\.(inception_[a-e]\d+)\.basic_conv_(\w+)\.(conv|bn)", p)
        if m:
            out[n] = f"Mixed_{m[1]}{letters[(m[1], m[2])]}.{m[3]}.{m[4]}"  # type: ignore[index]
            continue
        out[n] = p  # fc
    return out


#: graph name pattern -> naming rule
RULES: list[tuple[str, Rule]] = [
    (r"resnet(18|34|50|101|152)|resnext(50_32x4d|101_32x8d|101_64x4d)"
     r"|wide_resnet(50|101)_2", _resnet),
    (r"vgg(11|13|16|19)(_bn)?|alexnet", _vgg),
    (r"squeezenet1_[01]", _squeezenet),
    (r"densenet(121|161|169|201)", _densenet),
    (r"mobilenet_v2", _mobilenet_v2),
    (r"shufflenet_v2_x(0_5|1_0|1_5|2_0)", _shufflenet_v2),
    (r"inception_v3", _inception_v3),
]


def rule_for(name: str) -> Rule | None:
    """The naming rule of the zoo model called ``name``, or None."""
    for pattern, rule in RULES:
        if re.fullmatch(pattern, name):
            return rule
    return None


def torchvision_paths(graph: Graph, paths: dict[str, str]) -> dict[str, str] | None:
    """torchvision's module path of every weighted node (``paths``: the node ->
    module path of cnnir's PyTorch plan), or None when ``graph`` is not a zoo model
    that mirrors torchvision, or has a layer its rule does not know (the model was
    changed) or two layers the rule names alike: no partial naming."""
    rule = rule_for(graph.name)
    if rule is None:
        return None
    weighted = {n: p for n, p in paths.items() if param_shapes(graph, n)}
    try:
        out = rule(graph, weighted)
    except KeyError:
        return None
    if len(set(out.values())) != len(out):
        return None
    return out


def supported() -> list[str]:
    """The patterns of the model names that have torchvision names."""
    return [p for p, _ in RULES]


__all__ = ["torchvision_paths", "rule_for", "supported", "RULES"]
