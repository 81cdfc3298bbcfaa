"""The error catalog: every kind of bad input, with its exact message.

Each :class:`Case` is a minimal bad input (files written into an empty folder)
and the command line that meets it.  ``tests/errors/test_catalog.py`` runs each
case as a user would (a subprocess in that folder) and checks: exit code 2, the
exact message, no traceback, no output file written, and an output file from an
earlier run left intact.  ``docs/errors.md`` is generated from this list
(``python -m tests.errors.catalog > docs/errors.md``) and a test keeps it in sync,
so the documented messages are the real ones.
"""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    id: str
    section: str
    title: str
    argv: tuple[str, ...]
    expect: str
    files: dict[str, str | bytes] = field(default_factory=dict)
    #: the output file the command would write (pre-created to check it survives)
    output: str | None = None


def dsl(body: str) -> str:
    return textwrap.dedent(body).lstrip("\n")


GOOD_NET = dsl("""
    from cnnir.dsl import model

    @model(input=(3, 32, 32))
    def net(x):
        return x.conv(8, 3, padding=1).relu().global_avgpool().flatten().linear(10)
""")

CASES: list[Case] = [
    # ------------------------------------------------------------------ DSL programs
    Case("dsl-kernel-too-large", "DSL", "kernel larger than the padded input",
         ("check", "net.py"),
         "net.py:5: error: conv2d 'conv2': kernel 7 is larger than the "
         "padded input 4 along height (input 4, padding 0+0)",
         {"net.py": dsl("""
             from cnnir.dsl import model

             @model(input=(3, 8, 8))
             def net(x):
                 return x.conv(8, 5).conv(8, 7)
         """)}),
    Case("dsl-misspelt-method", "DSL", "a layer method that does not exist (a typo)",
         ("check", "net.py"),
         "net.py:5: error: a tensor has no layer method 'cnov'; did you mean 'conv'?",
         {"net.py": dsl("""
             from cnnir.dsl import model

             @model(input=(3, 16, 16))
             def net(x):
                 return x.cnov(8, 3).relu()
         """)}),
    Case("dsl-sys-exit", "DSL", "a DSL file that calls sys.exit() while it is loaded",
         ("compile", "net.py", "--to", "onnx", "-o", "net.onnx"),
         "net.py:3: error: the DSL file stopped with sys.exit(0) while it ran; a DSL file "
         "defines a @model and returns",
         {"net.py": dsl("""
             import sys

             sys.exit(0)
         """)}, output="net.onnx"),
    Case("dsl-keyboard-interrupt", "DSL", "a model function that raises KeyboardInterrupt",
         ("compile", "net.py", "--to", "onnx", "-o", "net.onnx"),
         "net.py:5: error: the DSL file stopped with KeyboardInterrupt while it ran; a DSL "
         "file defines a @model and returns",
         {"net.py": dsl("""
             from cnnir.dsl import model

             @model(input=(3, 32, 32))
             def net(x):
                 raise KeyboardInterrupt
         """)}, output="net.onnx"),
    Case("dsl-add-mismatch", "DSL", "add of two different shapes (missing projection)",
         ("check", "net.py"),
         "net.py:7: error: add 'add1' got 16x8x8 from 'conv2' (net.py:6) and 8x16x16 from "
         "'conv1' (net.py:5) (channels and spatial size differ)\n"
         "  hint: project the shortcut with a 1x1 conv to 16 channels, stride 2, or run "
         "with --passes fix-residual",
         {"net.py": dsl("""
             from cnnir.dsl import model

             @model(input=(3, 16, 16))
             def net(x):
                 x = x.conv(8, 3, padding=1)
                 y = x.conv(16, 3, stride=2, padding=1)
                 return y + x
         """)}),
    Case("dsl-concat-mismatch", "DSL", "concat of maps with different H/W",
         ("check", "net.py"),
         "net.py:7: error: concat 'concat1': inputs must agree on everything but "
         "channels: got 8x16x16 from 'conv1' (net.py:5), 8x8x8 from 'conv2' (net.py:6)\n"
         "  hint: upsample 'conv2' by 2 to 16x16 (.upsample(2)), or crop or pad the larger "
         "map",
         {"net.py": dsl("""
             from cnnir.dsl import model, concat

             @model(input=(3, 16, 16))
             def net(x):
                 a = x.conv(8, 3, padding=1)
                 b = x.conv(8, 3, stride=2, padding=1)
                 return concat(a, b)
         """)}),
    Case("dsl-groups-in", "DSL", "groups not dividing the input channels",
         ("check", "net.py"),
         "net.py:5: error: conv2d 'conv1': groups=2 does not divide the 3 input channels",
         {"net.py": dsl("""
             from cnnir.dsl import model

             @model(input=(3, 16, 16))
             def net(x):
                 return x.conv(8, 3, groups=2)
         """)}),
    Case("dsl-groups-out", "DSL", "groups not dividing the output channels",
         ("check", "net.py"),
         "net.py:5: error: conv 'conv1': groups=3 does not divide out_channels=8",
         {"net.py": dsl("""
             from cnnir.dsl import model

             @model(input=(3, 16, 16))
             def net(x):
                 return x.conv(8, 3, groups=3)
         """)}),
    Case("dsl-zero-stride", "DSL", "zero stride",
         ("check", "net.py"),
         "net.py:5: error: conv 'conv1': stride must be at least 1, got 0",
         {"net.py": dsl("""
             from cnnir.dsl import model

             @model(input=(3, 16, 16))
             def net(x):
                 return x.conv(8, 3, stride=0)
         """)}),
    Case("dsl-negative-padding", "DSL", "negative padding",
         ("check", "net.py"),
         "net.py:5: error: maxpool 'maxpool1': padding must not be negative, got -1",
         {"net.py": dsl("""
             from cnnir.dsl import model

             @model(input=(3, 16, 16))
             def net(x):
                 return x.maxpool(3, padding=-1)
         """)}),
    Case("dsl-unknown-kwarg", "DSL", "unknown keyword argument",
         ("check", "net.py"),
         "net.py:5: error: conv() got an unexpected keyword argument 'strides'; "
         "did you mean 'stride'?",
         {"net.py": dsl("""
             from cnnir.dsl import model

             @model(input=(3, 16, 16))
             def net(x):
                 return x.conv(8, 3, strides=2)
         """)}),
    Case("dsl-returns-nothing", "DSL", "a model that returns nothing",
         ("check", "net.py"),
         "net.py:3: error: model 'net' returns nothing; return its output tensor",
         {"net.py": dsl("""
             from cnnir.dsl import model

             @model(input=(3, 16, 16))
             def net(x):
                 x.conv(8, 3)
         """)}),
    Case("dsl-foreign-tensor", "DSL", "a tensor from another model",
         ("check", "net.py:b"),
         "net.py:13: error: tensor 'conv1' belongs to model 'a', not to the model 'b' being "
         "built; tensors cannot be shared between models",
         {"net.py": dsl("""
             from cnnir.dsl import model

             saved = []

             @model(input=(3, 16, 16))
             def a(x):
                 saved.append(x.conv(8, 3))
                 return saved[0]

             @model(input=(3, 16, 16))
             def b(x):
                 a.build()
                 return x.conv(8, 3) + saved[-1]
         """)}),
    Case("dsl-syntax", "DSL", "a Python syntax error in the user's file",
         ("check", "net.py"),
         "net.py:5: error: syntax error: '(' was never closed",
         {"net.py": dsl("""
             from cnnir.dsl import model

             @model(input=(3, 16, 16))
             def net(x):
                 return x.conv(8, 3
         """)}),
    Case("dsl-name-error", "DSL", "a NameError in the user's code",
         ("check", "net.py"),
         "net.py:5: error: NameError: name 'relu' is not defined",
         {"net.py": dsl("""
             from cnnir.dsl import model

             @model(input=(3, 16, 16))
             def net(x):
                 return relu(x.conv(8, 3))
         """)}),
    Case("dsl-linear-no-flatten", "DSL", "a linear layer on a feature map",
         ("check", "net.py"),
         "net.py:5: error: linear 'fc1': expects a flat input, got 8x14x14; add "
         ".flatten() (or a global pool and .flatten()) before it",
         {"net.py": dsl("""
             from cnnir.dsl import model

             @model(input=(3, 16, 16))
             def net(x):
                 return x.conv(8, 3).linear(10)
         """)}),
    Case("dsl-same-stride", "DSL", "padding='same' with stride 2",
         ("check", "net.py"),
         "net.py:5: error: conv 'conv1': padding='same' needs stride 1 (as in PyTorch)",
         {"net.py": dsl("""
             from cnnir.dsl import model

             @model(input=(3, 16, 16))
             def net(x):
                 return x.conv(8, 3, stride=2, padding="same")
         """)}),
    Case("dsl-duplicate-name", "DSL", "two layers with the same name",
         ("check", "net.py"),
         "net.py:5: error: a layer named 'stem' already exists; pick another name=",
         {"net.py": dsl("""
             from cnnir.dsl import model

             @model(input=(3, 16, 16))
             def net(x):
                 return x.conv(8, 3, name="stem").conv(8, 3, name="stem")
         """)}),
    Case("dsl-repeat-plain-function", "DSL", "repeat() of a function that is not a @block",
         ("check", "net.py"),
         "net.py:8: error: repeat() needs a @block function, got 'unit'",
         {"net.py": dsl("""
             from cnnir.dsl import model, repeat

             def unit(x):
                 return x.conv(8, 3, padding=1).relu()

             @model(input=(3, 16, 16))
             def net(x):
                 return repeat(unit, 3, x)
         """)}),
    Case("dsl-no-model", "DSL", "a file that defines no @model",
         ("check", "net.py"),
         "net.py: error: the file defines no @model; decorate the network function with "
         "@model(input=(C, H, W))",
         {"net.py": "x = 1\n"}),
    Case("dsl-several-models", "DSL", "several models and no :NAME",
         ("check", "net.py"),
         "net.py:7: error: a second @model 'b' (the file has 2: a at line 3, b at line 7); "
         "pick one with net.py:NAME, e.g. net.py:a",
         {"net.py": dsl("""
             from cnnir.dsl import model

             @model(input=(3, 8, 8))
             def a(x):
                 return x.relu()

             @model(input=(3, 8, 8))
             def b(x):
                 return x.relu()
         """)}),
    Case("dsl-unknown-model-name", "DSL", "net.py:NAME where NAME is not defined",
         ("check", "net.py:resnet"),
         "net.py: error: the file defines no model named 'resnet'; it has: net",
         {"net.py": GOOD_NET}),
    Case("dsl-bad-input-decl", "DSL", "a bad @model input declaration",
         ("check", "net.py"),
         "net.py:3: error: model 'net': input shape must be positive integers, got (3, 0, 8)",
         {"net.py": dsl("""
             from cnnir.dsl import model

             @model(input=(3, 0, 8))
             def net(x):
                 return x.relu()
         """)}),
    Case("dsl-block-returns-nothing", "DSL", "a @block that returns nothing",
         ("check", "net.py"),
         "net.py:3: error: block 'unit' returns nothing; return its output tensor",
         {"net.py": dsl("""
             from cnnir.dsl import block, model

             @block
             def unit(x):
                 x.conv(8, 3)

             @model(input=(3, 16, 16))
             def net(x):
                 return unit(x)
         """)}),
    Case("dsl-dropout-p", "DSL", "dropout probability out of range",
         ("check", "net.py"),
         "net.py:5: error: dropout 'dropout1': dropout p must be < 1, got 1.5",
         {"net.py": dsl("""
             from cnnir.dsl import model

             @model(input=(3, 16, 16))
             def net(x):
                 return x.dropout(1.5)
         """)}),
    Case("dsl-tensor-truth", "DSL", "using a tensor as a condition",
         ("check", "net.py"),
         "net.py:6: error: a cnnir Tensor has no truth value while a model is built "
         "(its values are not computed)",
         {"net.py": dsl("""
             from cnnir.dsl import model

             @model(input=(3, 16, 16))
             def net(x):
                 y = x.conv(8, 3)
                 if y:
                     y = y.relu()
                 return y
         """)}),
    # ------------------------------------------------------------------ command line
    Case("cli-unknown-zoo", "Command line", "an unknown zoo name (with a suggestion)",
         ("report", "resnet51"),
         "error: 'resnet51' is neither a file nor a zoo model; did you mean resnet50, "
         "resnet18, resnet152? 'cnnir zoo' lists the {zoo_count} zoo models"),
    Case("cli-missing-file", "Command line", "a model file that does not exist",
         ("check", "missing.py"),
         "error: no such file: missing.py"),
    Case("cli-unknown-suffix", "Command line", "a file cnnir cannot read",
         ("check", "model.h5"),
         "error: cannot read model.h5: MODEL must be a zoo name, a .py DSL file, a .onnx or "
         "a .json file", {"model.h5": b"\x89HDF\r\n"}),
    Case("cli-bad-input", "Command line", "a malformed --input",
         ("check", "net.py", "--input", "3x224"),
         "error: --input must be CxHxW such as 3x224x224 (or F for a flat input), "
         "without the batch size, got '3x224'",
         {"net.py": GOOD_NET}),
    Case("cli-bad-input-text", "Command line", "--input that is not a size",
         ("check", "net.py", "--input", "3xbigx224"),
         "error: --input must look like 3x224x224, got '3xbigx224'", {"net.py": GOOD_NET}),
    Case("cli-input-too-small", "Command line", "--input too small for the network",
         ("check", "vgg16", "--input", "3x16x16"),
         "cnnir/zoo/vgg.py:{vgg_pool_line}: error: maxpool2d 'block5/pool5': kernel 2 is larger than "
         "the padded input 1 along height (input 1, padding 0+0)"),
    Case("cli-unknown-flag", "Command line", "an unknown flag",
         ("report", "resnet50", "--colour"),
         "error: unrecognized arguments: --colour (see 'cnnir report --help')"),
    Case("cli-unknown-command", "Command line", "an unknown command",
         ("analyse", "resnet50"),
         "error: argument COMMAND: invalid choice: 'analyse' (choose from 'check', "
         "'report', 'compare', 'compile', 'draw', 'run', 'zoo', 'passes', 'sweep', 'explain') "
         "(see 'cnnir --help')"),
    Case("cli-explain-unknown-layer", "Command line", "explain: a layer that is not in the model",
         ("explain", "alexnet", "--layer", "conv9"),
         "error: explain: no layer or block named 'conv9' in alexnet (cnnir check MODEL "
         "--print lists the layers)"),
    Case("cli-solve-missing-option", "Command line", "explain --solve: an option the question needs",
         ("explain", "--solve", "bottleneck", "--size", "192x28x28"),
         "error: --solve bottleneck needs --filters, --kernel, --reduce"),
    Case("cli-bad-format", "Command line", "an unknown report format",
         ("report", "net.py", "--format", "xlsx"),
         "error: argument --format: invalid choice: 'xlsx' (choose from 'table', 'json', "
         "'csv', 'md', 'latex') (see 'cnnir report --help')", {"net.py": GOOD_NET}),
    Case("cli-compile-no-target", "Command line", "compile without --to",
         ("compile", "net.py"),
         "error: the following arguments are required: --to (see 'cnnir compile --help')",
         {"net.py": GOOD_NET}),
    Case("cli-bad-batch", "Command line", "a batch size that is not positive",
         ("report", "net.py", "--batch", "0"),
         "error: argument --batch: expected a positive integer, got '0' "
         "(see 'cnnir report --help')", {"net.py": GOOD_NET}),
    Case("cli-unknown-pass", "Command line", "an unknown pass in a pipeline",
         ("check", "net.py", "--passes", "fuse-everything"),
         "error: unknown pass 'fuse-everything'; valid passes: {pass_names}",
         {"net.py": GOOD_NET}),
    Case("cli-pipeline-brace", "Command line", "a pipeline with an unclosed brace",
         ("check", "net.py", "--passes", "infer-shapes{strict=true"),
         "error: pipeline 'infer-shapes{{strict=true': '{{' after 'infer-shapes' is never closed",
         {"net.py": GOOD_NET}),
    Case("cli-bad-option", "Command line", "an unknown pass option",
         ("check", "net.py", "--passes", "infer-shapes{ratio=4}"),
         "error: pass 'infer-shapes' has no option 'ratio'; its options: strict",
         {"net.py": GOOD_NET}),
    Case("cli-bad-option-value", "Command line", "a pass option of the wrong type",
         ("check", "net.py", "--passes", "infer-shapes{strict=maybe}"),
         "error: option strict='maybe' of pass 'infer-shapes' is not a valid bool",
         {"net.py": GOOD_NET}),
    Case("cli-output-dir-missing", "Command line", "-o into a directory that does not exist",
         ("report", "net.py", "-o", "nowhere/report.txt"),
         "error: cannot write nowhere/report.txt: directory {tmp}/nowhere does not exist",
         {"net.py": GOOD_NET}),
    Case("cli-output-is-dir", "Command line", "-o naming a directory",
         ("report", "net.py", "-o", "out"),
         "error: cannot write out: it is a directory",
         {"net.py": GOOD_NET, "out/keep": ""}),
    Case("cli-report-error-keeps-output", "Command line",
         "a failing run leaves the previous output intact",
         ("report", "net.py", "-o", "report.txt"),
         "net.py:5: error: conv2d 'conv1': groups=2 does not divide the 3 input channels",
         {"net.py": dsl("""
             from cnnir.dsl import model

             @model(input=(3, 16, 16))
             def net(x):
                 return x.conv(8, 3, groups=2)
         """)}, output="report.txt"),
    Case("cli-symbolic-flat-input", "Command line",
         "report --symbolic on a model without H and W",
         ("report", "net.py", "--symbolic", "-o", "report.txt"),
         "error: net cannot be made symbolic: its input is flat (16 features), without H and W",
         {"net.py": dsl("""
             from cnnir.dsl import model

             @model(input=(16,))
             def net(x):
                 return x.linear(4)
         """)}, output="report.txt"),
    Case("cli-symbolic-csv", "Command line", "report --symbolic into a CSV file",
         ("report", "net.py", "--symbolic", "-o", "report.csv"),
         "error: --symbolic: a CSV file holds the layers' rows only; the formulas go into "
         "--format table, json, md or latex",
         {"net.py": GOOD_NET}, output="report.csv"),
]


def substitutions(tmp: str) -> dict[str, str]:
    """Values that depend on the installation, filled into expected messages."""
    import inspect

    from cnnir import zoo
    from cnnir.passes import available
    from cnnir.zoo import vgg

    src, start = inspect.getsourcelines(vgg.vgg_features)
    line = next(start + i for i, s in enumerate(src) if "maxpool(" in s)
    return {"tmp": tmp, "zoo_count": str(len(zoo.MODELS)),
            "pass_names": ", ".join(available()), "vgg_pool_line": str(line)}


def render_markdown() -> str:
    """docs/errors.md: every case with its input and exact message."""
    subs = substitutions("/path/to/cwd")
    out = ["# Error catalog", "",
           "Every error a user can meet, with a minimal example and the exact message "
           "cnnir prints. Each one exits with code 2, prints no traceback (`--debug` shows "
           "one), and writes no output file: an output from an earlier run stays as it was.",
           "", "This page is generated from `tests/errors/catalog.py` "
           "(`python -m tests.errors.catalog > docs/errors.md`), and the test suite runs "
           "every case, so the messages below are the real ones.", ""]
    section = None
    for case in CASES:
        if case.section != section:
            section = case.section
            out += [f"## {section}", ""]
        out += [f"### {case.title}", "", f"<a id=\"{case.id}\"></a>", ""]
        for name, content in case.files.items():
            if isinstance(content, bytes) or name.endswith("/keep"):
                continue
            lang = {".py": "python", ".json": "json"}.get(name[name.rfind("."):], "")
            out += [f"`{name}`:", "", f"```{lang}", content.rstrip("\n"), "```", ""]
        out += ["```console", f"$ cnnir {' '.join(case.argv)}",
                case.expect.format(**subs), "```", ""]
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
