"""A generator of residual-block variants: one small model per skip form, with the in-place op
before, inside and after the merge (tests/test_skip_forms.py runs every one).

A variant is a percent-format script (cell 0 builds the model, cell 1 runs a training step) and, for
the library form, an imported helper module beside it. Body lines carry tags that are stripped
from the text and turned into the expected locations:

* ``#@W`` a statement that writes in place the value autograd saved (any of them is a correct writer:
  when two statements write the same stale tensor, both are the cause);
* ``#@M`` the line where the branches meet (``skip.merge``), ``#@F`` where the branched value is
  produced or captured (``skip.from``; the block's ``def forward`` when the value is the block input).

What the generator does not decide is whether torch raises, and which op saved the tensor: the test
runs each variant plainly (a variant that does not raise is a negative and must get no diagnosis)
and asks anomaly mode for the saver's line.

Positions are the statement's place with respect to the merge; ``position`` is what the diagnosis
must report as ``writer_position``: ``before`` (the write sits on a branch), ``inside`` (the write is
the merge, or stores the merge's result into the branched value) or ``after``. A form whose merge
writes the branched value itself (``h += f(h)``, ``x *= gate``, ``x.copy_(x + y)``) has its *after*
variant written with the merge's out-of-place twin: the in-place merge is already the first write.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

POSITIONS = ("before", "inside", "after")


@dataclass(frozen=True)
class Body:
    """The lines of ``Block.forward`` (after ``def forward(self, x):``), tagged; it sets ``out``."""

    lines: str
    position: str | None  # expected writer_position; None: no skip is involved in this error
    stem_relu: bool = False  # the block input comes out of a ReLU (which saves it)


@dataclass(frozen=True)
class Form:
    name: str
    bodies: dict[str, Body]
    extra_init: str = ""  # more modules for Block.__init__
    library: bool = False  # the block lives in an imported helper module (file locations)


_BASIC_INIT = """
self.body = nn.Conv2d(c, c, 3, padding=1)
self.act = nn.ReLU()
self.ff = nn.Sequential(nn.Conv2d(c, c, 1), nn.ReLU(), nn.Conv2d(c, c, 1))
self.fc = nn.Linear(c, c)
self.fuse = nn.Conv2d(2 * c, c, 1)
self.layers = nn.ModuleList([nn.Conv2d(c, c, 1) for _ in range(3)])
self.saving_layers = nn.ModuleList([nn.Sequential(nn.Conv2d(c, c, 1), nn.Tanh()) for _ in range(3)])
"""

_GATE = "gate = torch.sigmoid(self.fc(x.mean((2, 3)))).view(-1, x.shape[1], 1, 1)"

FORMS: tuple[Form, ...] = (
    Form(
        "iadd",  # out = conv(x); out += x  (ResNet / VQ-VAE residual blocks)
        {
            "before": Body("out = self.body(x)\nx.mul_(2)  #@W\nout += x  #@M", "before"),
            "inside": Body("out = self.act(self.body(x))\nout += x  #@W #@M", "inside"),
            "after": Body("out = self.body(x)\nout += x  #@M\nx.mul_(2)  #@W", "after"),
        },
    ),
    Form(
        "iadd_fn",  # h += f(h)  (transformer / conformer residuals)
        {
            "before": Body("y = self.ff(x)\nx.mul_(2)  #@W\nx += y  #@W #@M\nout = x", "before"),
            "inside": Body("x += self.ff(x)  #@W #@M\nout = x", "inside"),
            "after": Body("out = x + self.ff(x)  #@M\nx.mul_(2)  #@W", "after"),
        },
    ),
    Form(
        "iadd_scaled_fn",  # h += 0.5 * self.ff(h)
        {
            "before": Body("y = 0.5 * self.ff(x)\nx.mul_(2)  #@W\nx += y  #@W #@M\nout = x", "before"),
            "inside": Body("x += 0.5 * self.ff(x)  #@W #@M\nout = x", "inside"),
            "after": Body("out = x + 0.5 * self.ff(x)  #@M\nx.mul_(2)  #@W", "after"),
        },
    ),
    Form(
        "add_out",  # torch.add(x, y, out=x): refused by autograd at the call
        {
            "before": Body("out = self.body(x)\nx.mul_(2)  #@W\nout = torch.add(out, x)  #@M", "before"),
            "inside": Body("out = self.body(x)\ntorch.add(out, x, out=out)  #@W #@M", "inside"),
            "after": Body("out = self.body(x)\nout = torch.add(out, x)  #@M\nx.mul_(2)  #@W", "after"),
        },
    ),
    Form(
        "add_method",  # out.add_(x)
        {
            "before": Body("out = self.body(x)\nx.mul_(2)  #@W\nout.add_(x)  #@M", "before"),
            "inside": Body("out = self.act(self.body(x))\nout.add_(x)  #@W #@M", "inside"),
            "after": Body("out = self.body(x)\nout.add_(x)  #@M\nx.mul_(2)  #@W", "after"),
        },
    ),
    Form(
        "copy_merge",  # x.copy_(x + y)
        {
            "before": Body("y = self.body(x)\nx.mul_(2)  #@W\nx.copy_(x + y)  #@W #@M\nout = x", "before"),
            "inside": Body("x.copy_(x + self.body(x))  #@W #@M\nout = x", "inside"),
            "after": Body("out = x + self.body(x)  #@M\nx.mul_(2)  #@W", "after"),
        },
    ),
    Form(
        "accumulate",  # acc += layer_out over a list of layers' outputs
        {
            "before": Body(
                "outs = [layer(x) for layer in self.layers]\nx.mul_(2)  #@W\n"
                "out = torch.zeros_like(outs[0])\nfor o in outs:\n    out += o  #@M",
                "before",
            ),
            "inside": Body(
                "outs = [layer(x) for layer in self.saving_layers]  #@F\nout = outs[0]\n"
                "for o in outs[1:]:\n    out += o  #@W #@M",
                "inside",
            ),
            "after": Body(
                "outs = [layer(x) for layer in self.layers]\nout = torch.zeros_like(outs[0])\n"
                "for o in outs:\n    out += o  #@M\nx.mul_(2)  #@W",
                "after",
            ),
        },
    ),
    Form(
        "cat",  # DenseNet / U-Net concatenation
        {
            "before": Body(
                "y = self.body(x)\nx.mul_(2)  #@W\nout = self.fuse(torch.cat([x, y], 1))  #@M", "before"
            ),
            # the write inside the merging statement runs before the cat: it sits on a branch
            "inside": Body(
                "y = self.body(x)\nout = self.fuse(torch.cat([x.mul_(2), y], 1))  #@W #@M", "before"
            ),
            "after": Body(
                "y = self.body(x)\nout = self.fuse(torch.cat([x, y], 1))  #@M\nx.mul_(2)  #@W", "after"
            ),
        },
    ),
    Form(
        "mul_gate",  # x *= gate, after a ReLU that saved x
        {
            "before": Body(f"{_GATE}\nx.mul_(2)  #@W\nx *= gate  #@W #@M\nout = x", "before", stem_relu=True),
            "inside": Body(f"{_GATE}\nx *= gate  #@W #@M\nout = x", "inside", stem_relu=True),
            "after": Body(f"{_GATE}\nout = x * gate  #@M\nx.mul_(2)  #@W", "after", stem_relu=True),
        },
    ),
    Form(
        "se_scale",  # squeeze-and-excitation: scale * input
        {
            "before": Body(
                "scale = torch.sigmoid(self.fc(x.mean((2, 3)))).view(-1, x.shape[1], 1, 1)\nx.mul_(2)  #@W\n"
                "out = scale * x  #@M",
                "before",
                stem_relu=True,
            ),
            "inside": Body(
                "scale = torch.sigmoid(self.fc(x.mean((2, 3)))).view(-1, x.shape[1], 1, 1)\n"
                "out = scale.mul_(x)  #@W #@M",
                "inside",
            ),
            "after": Body(
                "scale = torch.sigmoid(self.fc(x.mean((2, 3)))).view(-1, x.shape[1], 1, 1)\n"
                "out = scale * x  #@M\nx.mul_(2)  #@W",
                "after",
                stem_relu=True,
            ),
        },
    ),
    Form(
        "gate_plus_skip",  # x * gate + skip
        {
            "before": Body(f"h = self.body(x)\n{_GATE}\nx.mul_(2)  #@W\nout = h * gate + x  #@M", "before"),
            "inside": Body(
                f"h = self.act(self.body(x))\n{_GATE}  #@F\nout = h.mul_(gate) + x  #@W #@M", "inside"
            ),
            "after": Body(f"h = self.body(x)\n{_GATE}\nout = h * gate + x  #@M\nx.mul_(2)  #@W", "after"),
        },
    ),
    Form(
        "library_block",  # the merge sits in an imported block; the user's call line beside it
        {
            # a pre-activation block: the shortcut saves x, then its own in-place ReLU overwrites x
            "before": Body(
                "shortcut = self.shortcut(x)\nout = self.relu_(x)  #@W\nout = self.conv1(out)\n"
                "out += shortcut  #@M",
                "before",
            ),
            "inside": Body(
                "identity = x  #@F\nout = self.relu(self.conv1(x))\nout = self.relu(self.conv2(out))\n"
                "out += identity  #@W #@M",
                "inside",
            ),
            # the block ran; the user's code then writes the block's input, which conv1 saved
            "after": Body(
                "identity = x  #@F\nout = self.conv1(x)\nout = self.conv2(out)\nout += identity  #@M",
                "after",
            ),
        },
        extra_init="""
self.shortcut = nn.Conv2d(c, c, 1)
self.conv1 = nn.Conv2d(c, c, 3, padding=1)
self.conv2 = nn.Conv2d(c, c, 3, padding=1)
self.relu = nn.ReLU()
self.relu_ = nn.ReLU(inplace=True)
""",
        library=True,
    ),
)

# the FPN top-down path is its own model: feature maps of three stages, laterals, and the merge
_FPN = {
    "before": """
        lats = [lat(f) for lat, f in zip(self.lateral, feats)]
        feats[1].mul_(2)  #@W
        for i in range(len(lats) - 1, 0, -1):
            lats[i - 1] += F.interpolate(lats[i], size=lats[i - 1].shape[-2:], mode="nearest")  #@M""",
    "inside": """
        lats = [self.act(lat(f)) for lat, f in zip(self.lateral, feats)]  #@F
        for i in range(len(lats) - 1, 0, -1):
            lats[i - 1] += F.interpolate(lats[i], size=lats[i - 1].shape[-2:], mode="nearest")  #@W #@M""",
    "after": """
        lats = [lat(f) for lat, f in zip(self.lateral, feats)]
        for i in range(len(lats) - 1, 0, -1):
            lats[i - 1] += F.interpolate(lats[i], size=lats[i - 1].shape[-2:], mode="nearest")  #@M
        feats[1].mul_(2)  #@W""",
}


@dataclass
class Variant:
    form: str
    position: str  # where the statement sits: before, inside, after
    files: dict[str, str]  # file name -> text; the script is ``script``
    script: str
    writers: set[tuple[str, int]]  # (cell index or file name, line)
    merge: tuple[str, int] | None
    source: tuple[str, int] | None
    expected_position: str | None
    helper: str | None = None  # the imported module's file name, for the library form
    notes: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.form}-{self.position}"

    def write(self, folder: Path) -> Path:
        for name, text in self.files.items():
            (folder / name).write_text(text)
        return folder / self.script


def _strip_tags(text: str) -> tuple[str, dict[str, list[int]]]:
    """The text without ``#@X`` tags, and the 1-based lines of each tag."""
    tags: dict[str, list[int]] = {}
    out = []
    for number, line in enumerate(text.split("\n"), start=1):
        found = re.findall(r"#@([WMF])", line)
        for tag in found:
            tags.setdefault(tag, []).append(number)
        out.append(re.sub(r"\s*(#@[WMF]\s*)+$", "", line))
    return "\n".join(out), tags


def _indent(text: str, spaces: int) -> str:
    return textwrap.indent(textwrap.dedent(text).strip("\n"), " " * spaces)


def _block_class(form: Form, body: Body) -> str:
    init = _indent(_BASIC_INIT + form.extra_init, 8)
    return (
        "class Block(nn.Module):\n"
        "    def __init__(self, c=4):\n"
        "        super().__init__()\n"
        f"{init}\n\n"
        "    def forward(self, x):  #@F\n"
        f"{_indent(body.lines, 8)}\n"
        "        return out\n"
    )


def _net(stem_relu: bool, block: str) -> str:
    stem = (
        "nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.ReLU())"
        if stem_relu
        else "nn.Conv2d(3, c, 3, padding=1)"
    )
    return (
        "class Net(nn.Module):\n"
        "    def __init__(self, c=4):\n"
        "        super().__init__()\n"
        f"        self.stem = {stem}\n"
        f"        self.block = {block}\n"
        "        self.head = nn.Linear(c, 1)\n\n"
        "    def forward(self, x):\n"
        "        return self.head(self.block(self.stem(x)).mean((2, 3)))\n"
    )


_HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
_RUN = "# %%\nmodel(data).sum().backward()\n"


def _script(cell0: str) -> str:
    return f"# %%\n{cell0}\n\ntorch.manual_seed(0)\nmodel = Net()\ndata = torch.randn(2, 3, 6, 6)\n\n{_RUN}"


def _cell_line(script: str, cell: int, file_line: int) -> int:
    """File line -> line within its cell (cells start after each ``# %%``)."""
    starts = [i + 1 for i, line in enumerate(script.split("\n"), start=1) if line == "# %%"]
    return file_line - starts[cell] + 1


def _variant(form: Form, position: str) -> Variant:
    body = form.bodies[position]
    tag = f"{form.name}_{position}"
    if form.library:
        module = f"blocks_{tag}"
        block_text, block_tags = _strip_tags(f"{_HEADER}\n\n{_block_class(form, body)}")
        user_write = position == "after"
        net = _net(body.stem_relu, "Block(c)")
        if user_write:  # the user's own line writes the block input after the block ran
            net = net.replace(
                "        return self.head(self.block(self.stem(x)).mean((2, 3)))\n",
                "        h = self.stem(x)\n        out = self.block(h)\n        h.mul_(2)  #@W\n"
                "        return self.head(out.mean((2, 3)))\n",
            )
        cell0, cell_tags = _strip_tags(f"{_HEADER}from {module} import Block\n\n\n{net}")
        script = _script(cell0)
        helper = f"{module}.py"
        writers = {(helper, n) for n in block_tags.get("W", [])}
        writers |= {("0", n) for n in cell_tags.get("W", [])}  # cell 0 starts right after its marker
        merge = (helper, block_tags["M"][0])
        sources = block_tags.get("F", [])
        source = (helper, sources[-1]) if sources else None
        return Variant(
            form.name,
            position,
            {f"{tag}.py": script, helper: block_text},
            f"{tag}.py",
            writers,
            merge,
            source,
            body.position,
            helper=helper,
        )
    text, tags = _strip_tags(
        _script(f"{_HEADER}\n\n{_block_class(form, body)}\n\n{_net(body.stem_relu, 'Block(c)')}")
    )
    return _from_tags(form.name, position, text, tags, body.position)


def _from_tags(
    form: str, position: str, text: str, tags: dict[str, list[int]], expected: str | None
) -> Variant:
    def cell(n: int) -> tuple[str, int]:
        return ("0", _cell_line(text, 0, n))

    sources = tags.get("F", [])
    return Variant(
        form,
        position,
        {f"{form}_{position}.py": text},
        f"{form}_{position}.py",
        {cell(n) for n in tags.get("W", [])},
        cell(tags["M"][0]) if tags.get("M") else None,
        cell(sources[-1]) if sources else None,  # the last tag: a capture line wins over def forward
        expected,
    )


def _fpn(position: str) -> Variant:
    forward_tail = _FPN[position]
    cell0 = (
        f"{_HEADER}\n\n"
        "class FPN(nn.Module):\n"
        "    def __init__(self, c=4):\n"
        "        super().__init__()\n"
        "        self.stages = nn.ModuleList(\n"
        "            [nn.Conv2d(c if i else 3, c, 3, stride=2 if i else 1, padding=1) for i in range(3)]\n"
        "        )\n"
        "        self.lateral = nn.ModuleList([nn.Conv2d(c, c, 1) for _ in range(3)])\n"
        "        self.act = nn.ReLU()\n"
        "        self.head = nn.Linear(c, 1)\n\n"
        "    def forward(self, x):\n"
        "        feats = []\n"
        "        for stage in self.stages:\n"
        f"            x = stage(x){'  #@F' if position != 'inside' else ''}\n"
        "            feats.append(x)\n"
        f"{_indent(forward_tail, 8)}\n"
        "        return self.head(sum(lat.mean((2, 3)) for lat in lats))\n\n\n"
        "Net = FPN\n"
    )
    text, tags = _strip_tags(_script(cell0))
    return _from_tags("list_element", position, text, tags, position)


def variants() -> list[Variant]:
    """Every form in every position, the FPN's list-element merges among them."""
    out = [_variant(form, position) for form in FORMS for position in POSITIONS]
    out += [_fpn(position) for position in POSITIONS]
    return out
