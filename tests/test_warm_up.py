"""The first diagnosis in a fresh kernel imports nothing: %load_ext imported it in the background."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SESSION = textwrap.dedent(
    """
    import json, sys, threading
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell(config=config)
    shell.run_line_magic("load_ext", "inplace_magic")
    for thread in threading.enumerate():
        if thread.name == "inplace_magic warm-up":
            thread.join()
    before = set(sys.modules)
    with capture_output():
        shell.run_cell("import torch\\nw = torch.ones(3, requires_grad=True)\\n")
        after_setup = set(sys.modules)
        result = shell.run_cell("%%gradcheck\\ny = (w * 2).sigmoid()\\ny.mul_(2)\\ny.sum().backward()\\n")
    import inplace_magic
    diagnosis = inplace_magic.last_diagnosis()
    print(json.dumps({
        "error": type(result.error_in_exec).__name__,
        "writer": diagnosis["inplace"]["code"],
        "fixes": len(diagnosis["fixes"]),
        "imported_by_the_diagnosis": sorted(set(sys.modules) - after_setup),
    }))
    """
)


def test_the_first_diagnosis_imports_nothing_that_load_ext_did_not_import_in_the_background() -> None:
    out = subprocess.run([sys.executable, "-c", SESSION], capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["error"] == "RuntimeError" and seen["writer"] == "y.mul_(2)" and seen["fixes"] >= 1
    ours = [
        name
        for name in seen["imported_by_the_diagnosis"]
        if name.split(".")[0] in ("inplace_magic", "libcst") or name.startswith("torch._dynamo")
    ]
    assert ours == [], ours
