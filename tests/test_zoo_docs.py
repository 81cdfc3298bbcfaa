"""The zoo's registry tells an outsider what each model is, and docs/zoo.md says the same.

docs/zoo.md is generated (``python -m cnnir.zoo.catalog > docs/zoo.md``); these tests
fail when it, a description or the README's list of families falls out of step with
the registry.
"""

from __future__ import annotations

import importlib
import pathlib
import re

import pytest

from cnnir import zoo
from cnnir.errors import UsageError
from cnnir.frontends.dsl import Model
from cnnir.zoo import catalog

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_docs_zoo_md_is_generated_from_the_registry():
    doc = ROOT / "docs" / "zoo.md"
    assert doc.read_text() == catalog.markdown(), (
        "docs/zoo.md is stale: python -m cnnir.zoo.catalog > docs/zoo.md")


@pytest.mark.parametrize("name", zoo.names())
def test_description_names_paper_year_and_the_declared_input(name):
    e = zoo.entry(name)
    declared = "x".join(map(str, zoo.get(name).input))
    # the text a user reads states the input the model really declares
    assert e.description.endswith(f"; {declared}."), e.description
    if name in zoo.NO_PAPER:
        assert e.paper is None and "no paper" in e.description
    else:
        assert e.paper is not None and f"({e.paper.short})" in e.description
    assert len(f"{name:<20} {e.description}") <= 120
    # the table cell drops what has a column of its own
    assert declared not in e.summary and (e.paper is None or e.paper.short not in e.summary)


def test_every_family_has_a_registered_model_and_a_citation():
    used = {zoo.paper(n).family for n in zoo.names() if n not in zoo.NO_PAPER}
    assert used == set(zoo.PAPERS)
    for p in zoo.PAPERS.values():
        assert p.url is None or re.fullmatch(r"https://arxiv\.org/abs/\d{4}\.\d{4,5}", p.url)


def test_entry_knows_the_input_without_building():
    e = zoo.entry("Inception_v3")
    assert (e.name, e.input, e.input_size) == ("inception_v3", (3, 299, 299), "3x299x299")
    assert e.paper is zoo.PAPERS["Inception v3"]
    with pytest.raises(UsageError, match="did you mean resnet50"):
        zoo.entry("resnet51")


def test_figures_are_exact_and_the_table_prints_them_whole():
    f = catalog.figures("resnet50")
    assert (f.params, f.buffers, f.macs, f.flops) == (25_557_032, 53_120, 4_089_184_256,
                                                       8_178_368_512)
    row = next(r for r in (ROOT / "docs" / "zoo.md").read_text().splitlines()
               if r.startswith("| `resnet50` |"))
    assert row.split(" | ")[2:7] == ["He et al. 2015 [9]", "3x224x224", "25,557,032",
                                      "4,089,184,256",
                                      "25,557,032 params, 4.089G MACs (torchvision)"]


def test_the_table_lists_every_model_once():
    rows = re.findall(r"^\| `([a-z0-9_]+)` \|", catalog.markdown(), flags=re.M)
    assert rows == zoo.names()


@pytest.mark.parametrize("target", [t for t, _ in catalog.BUILDERS])
def test_unregistered_builders_exist(target):
    mod, attr = target.split(":")
    builder = getattr(importlib.import_module(f"cnnir.zoo.{mod}"), attr)
    assert isinstance(builder, Model) and attr not in zoo.MODELS


def test_readme_lists_every_family_and_links_the_table():
    text = (ROOT / "README.md").read_text()
    start = text.index("The zoo (`cnnir zoo`")
    sentence = " ".join(text[start:text.index("\n\n", start)].split())
    assert "[docs/zoo.md](docs/zoo.md)" in sentence
    missing = [f for f in zoo.PAPERS if f not in sentence]
    assert not missing, f"README's zoo sentence does not name {missing}"


@pytest.mark.parametrize("name", sorted(catalog.PUBLISHED))
def test_published_figures_read_the_same_unless_a_note_says_why(name):
    pub = catalog.PUBLISHED[name]
    assert name in zoo.MODELS and (pub.params or pub.macs)
    fig = catalog.figures(name)
    if not pub.note:
        assert catalog.agrees(pub, fig), (name, pub, fig)


def test_published_rounding_is_the_printed_one():
    assert catalog.as_printed(25_557_032, "25,557,032") == "25,557,032"
    assert catalog.as_printed(272_474, "0.27M") == "0.27M"
    assert catalog.as_printed(275_226, "0.46M") == "0.28M"
    assert catalog.as_printed(568_740_352, "569M") == "569M"
    assert catalog.as_printed(4_089_184_256, "4.089G") == "4.089G"
    # a disagreement the table notes: option B's projections round ResNet-32 up
    pub = catalog.PUBLISHED["resnet32_cifar"]
    assert pub.note and not catalog.agrees(pub, catalog.figures("resnet32_cifar"))
    assert not catalog.agrees(catalog.Published("x", "4.2M"), catalog.Figures(4_140_000, 0, 0))
