"""Every generated residual-block variant (tests/skip_variants.py): writer, saver and merge.

The ground truth comes from torch, not from the engine: each variant is first run plainly (one that
does not raise an in-place error is a negative and must get no diagnosis), and the saver's line is
the one anomaly mode names for the backward node that failed.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from skip_variants import FORMS, Variant, variants

from inplace_magic.pipeline.core import check_cells
from inplace_magic.record.family import classify
from inplace_magic.replay.cells import read_cells
from inplace_magic.replay.run import (
    SourceMap,
    as_script,
    compile_cells,
    fresh_namespace,
    run_program,
)

VARIANTS = variants()


def _where(item: dict[str, Any] | None) -> tuple[str, int] | None:
    if not item or "line" not in item:
        return None
    if "cell" in item:
        return str(item["cell"]), item["line"]
    return os.path.basename(item["file"]), item["line"]


def _places(site: dict[str, Any] | None) -> set[tuple[str, int]]:
    """Where a site is: its own line and the line that built its module."""
    found = {_where(site), _where((site or {}).get("defined_at"))}
    return {place for place in found if place is not None}


def _plain_run(path: Path, *, anomaly: bool) -> tuple[BaseException | None, str]:
    """Run the variant's cells as a notebook would; with anomaly mode, also its forward traceback."""
    source_map = SourceMap()
    compiled = compile_cells(read_cells(str(path)), source_map)
    with as_script(str(path)), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.manual_seed(0)
        if anomaly:
            with torch.autograd.detect_anomaly(check_nan=False):
                result = run_program(compiled, fresh_namespace(str(path)))
        else:
            result = run_program(compiled, fresh_namespace(str(path)))
    traceback_text = "\n".join(
        str(w.message) for w in caught if "Traceback of forward call" in str(w.message)
    )
    return result.exception, traceback_text


def _anomaly_saver(text: str, helper: str | None) -> tuple[str, int] | None:
    """The innermost frame of the user's code (a cell or the helper) in anomaly mode's forward trace."""
    found = None
    for filename, line in re.findall(r'File "([^"]+)", line (\d+)', text):
        cell = re.fullmatch(r"<cell (\d+)>", filename)
        if cell:
            found = (cell.group(1), int(line))
        elif helper and os.path.basename(filename) == helper:
            found = (helper, int(line))
    return found


@pytest.fixture
def variant_folder(tmp_path: Path):  # type: ignore[no-untyped-def]
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:  # the helper modules of library variants
        if name.startswith("blocks_"):
            del sys.modules[name]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_variant_writer_saver_and_merge(variant: Variant, variant_folder: Path) -> None:
    path = variant.write(variant_folder)
    plain, _ = _plain_run(path, anomaly=False)
    result = check_cells(read_cells(str(path)), script_path=str(path), with_fixes=False)
    if plain is None or classify(plain) is None:
        # torch says this variant is fine (or fails for another reason): nothing may be invented
        assert result.diagnosis is None, result.to_json()["headline"]
        assert result.status == ("ok" if plain is None else "other_error")
        return
    got = result.to_json()
    assert got["status"] == "inplace_error" and got["reproduced"], got["notes"]
    assert _places(got["inplace"]) & variant.writers, (got["inplace"], variant.writers)
    _, trace = _plain_run(path, anomaly=True)
    saver = _anomaly_saver(trace, variant.helper)
    if saver is not None:
        assert saver in _places(got["saved_by"]), (got["saved_by"], saver)
    assert variant.merge is not None
    skip = got["skip"]
    assert skip is not None, got["explanation"]
    assert _where(skip["merge"]) == variant.merge, skip["merge"]
    assert skip["writer_position"] == variant.expected_position
    if variant.source is not None:
        assert _where(skip["from"]) == variant.source, skip["from"]
    if variant.helper is not None:
        # the library's line, and the user's line that called the block beside it
        assert any("cell" in outer for outer in skip["merge"].get("stack", [])), skip["merge"]


def test_every_form_has_variants_that_torch_rejects(tmp_path: Path) -> None:
    """The generator would be worthless if torch accepted all its variants: each form must have
    at least two that raise (so the test above checks writer, saver and merge on them)."""
    raising: dict[str, int] = {}
    for variant in VARIANTS:
        folder = tmp_path / variant.id
        folder.mkdir()
        plain, _ = _plain_run(variant.write(folder), anomaly=False)
        if plain is not None and classify(plain) is not None:
            raising[variant.form] = raising.get(variant.form, 0) + 1
    forms = {form.name for form in FORMS} | {"list_element"}
    assert all(raising.get(form, 0) >= 2 for form in forms), raising
