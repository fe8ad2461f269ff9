"""The headline and the explanation are short (issue 14): a torch module is named by its path and
class (`block2.act` (ReLU)), never by its repr (`ReLU(inplace=True)`, `Conv2d(3, 64, kernel_size=...`),
and a line is quoted without its trailing comment. This holds in the diagnosis every face reads
(``inplace-magic check --json``) and in the text report of ``inplace-magic check``, on every case
of ../shared/cases and tests/cases. The repr stays in the site's ``module_type`` and the whole line in
its ``code``: the detail rows and the panel's hover show them.

The library cases (torchvision, timm, transformers) are checked the same way by
tests/test_library_cases.py, which runs where those libraries import (``make test-libraries``).
"""

from __future__ import annotations

import io
import json
import tokenize
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import OWN_CASES, positive_cases


def comments_of(source: str) -> set[str]:
    """Every comment of ``source`` (``# residual sum``), the cell markers aside."""
    found = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and token.string.strip() != "# %%":
            found.add(token.string)
    return found


def _values(node: Any, key: str) -> Iterator[str]:
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key and isinstance(value, str):
                yield value
            yield from _values(value, key)
    elif isinstance(node, list):
        for value in node:
            yield from _values(value, key)


def long_forms(diagnosis: dict[str, Any], source: str) -> set[str]:
    """What a short sentence leaves out: the module reprs the diagnosis holds, the comments of the
    code it ran and of the lines it quotes."""
    comments = comments_of(source)
    for code in _values(diagnosis, "code"):
        try:
            comments |= comments_of(code)
        except (tokenize.TokenError, SyntaxError):  # a line of a longer statement: its comment, if any
            comments |= {code[code.index("#") :]} if "#" in code else set()
    return set(_values(diagnosis, "module_type")) | comments


def _flat(text: str) -> str:
    return " ".join(text.split())  # the text report wraps at 100 columns


def assert_short(diagnosis: dict[str, Any], source: str, texts: dict[str, str]) -> None:
    """No repr and no comment in any of ``texts`` (what -> words)."""
    left = long_forms(diagnosis, source)
    for what, words in texts.items():
        found = sorted(form for form in left if _flat(form) in _flat(words))
        assert not found, f"{what} carries {found}: {words!r}"


def text_report_words(report: str) -> dict[str, str]:
    """The headline and the explanation of a text report: the paragraph after the title, and the
    one after the rows of the writer, the saver and the tensor."""
    paragraphs = report.split("\n\n")
    title = next(i for i, p in enumerate(paragraphs) if p.startswith("In-place autograd error"))
    rows = next(i for i, p in enumerate(paragraphs) if p.startswith("WRITTEN IN PLACE BY"))
    return {"text headline": paragraphs[title + 1], "text explanation": paragraphs[rows + 1]}


@pytest.mark.parametrize("case", positive_cases(), ids=lambda p: p.stem)
def test_headline_and_explanation_carry_no_repr_and_no_comment(case: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    _, out, _ = run_cli("check", str(case), "--json", "--no-fix")
    diagnosis = json.loads(out)
    _, report, _ = run_cli("check", str(case), "--no-fix")
    texts = {"headline": diagnosis["headline"], "explanation": diagnosis["explanation"]}
    assert_short(diagnosis, case.read_text(), {**texts, **text_report_words(report)})


CASE = OWN_CASES / "commented_residual_conv_input_iadd.py"


def test_a_commented_residual_block_is_named_by_path_and_class(run_cli) -> None:  # type: ignore[no-untyped-def]
    """The case written for this: every line it quotes has a comment and the saver is a Conv2d with
    a long repr. The sentences name `1.proj` (Conv2d) and quote `h += out`; the data keeps both."""
    _, out, _ = run_cli("check", str(CASE), "--json", "--no-fix")
    diagnosis = json.loads(out)
    saver, writer = diagnosis["saved_by"], diagnosis["inplace"]
    assert saver["module_type"].startswith("Conv2d(8, 8, kernel_size=(3, 3)")
    assert writer["code"] == "h += out  # residual sum"
    for words in (diagnosis["headline"], diagnosis["explanation"]):
        assert "`1.proj` (Conv2d)" in words and "`h += out` [add_ in `1`]" in words, words
    _, report, _ = run_cli("check", str(CASE), "--no-fix")
    headline = _flat(text_report_words(report)["text headline"])
    assert headline.startswith("`h += out` at cell 0, line 15 overwrote"), headline
    assert "`1.proj` at cell 0, line 14 saved for backward" in headline, headline
    assert f"module   1.proj  {saver['module_type']}" in report  # the detail row keeps the repr


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("# %%\nx = 1  # one\n# a note\n", {"# one", "# a note"}),
        ("s = '# not a comment'\n", set()),
    ],
)
def test_comments_are_found_by_tokens(source: str, expected: set[str]) -> None:
    assert comments_of(source) == expected


def test_a_long_form_in_the_words_fails_the_check() -> None:
    """The check itself can fail: a repr or a comment in the words is named."""
    diagnosis = {"inplace": {"code": "h += out  # residual sum", "module_type": "ReLU(inplace=True)"}}
    with pytest.raises(AssertionError, match="ReLU"):
        assert_short(diagnosis, "", {"headline": "`act` (ReLU(inplace=True)) at cell 0"})
    with pytest.raises(AssertionError, match="residual sum"):
        assert_short(diagnosis, "", {"explanation": "`h += out  #\nresidual sum` wrote"})
    assert_short(diagnosis, "", {"headline": "`act` (ReLU) and `h += out` at cell 0"})
