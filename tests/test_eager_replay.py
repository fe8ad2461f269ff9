"""The replay's compiler stance is taken only where compiled code can exist (replay/eager.py).

The stance imports ``torch._dynamo`` (a second or more of CPU, in every check and every kernel); a
check of code that never called ``torch.compile`` must not pay it, and code that did still replays
eagerly (tests/test_compile_region.py diagnoses errors raised inside compiled regions).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

CHECK = textwrap.dedent(
    """
    import json, sys
    from inplace_magic.cli import main
    code = main(["check", sys.argv[1], "--json", "--no-fix"])
    print(json.dumps({"code": code, "dynamo": "torch._dynamo" in sys.modules}), file=sys.stderr)
    """
)

EAGER = (
    "import torch\nx = torch.ones(3, requires_grad=True)\ny = x.sigmoid()\ny.mul_(2)\ny.sum().backward()\n"
)
COMPILED = (
    "import torch\n"
    "@torch.compile(backend='eager')\n"
    "def f(x):\n    return x * 2\n"
    "x = torch.ones(3, requires_grad=True)\n"
    "y = f(x).sigmoid()\n"
    "y.mul_(2)\n"
    "y.sum().backward()\n"
)


def _check(tmp_path: Path, source: str) -> tuple[dict[str, object], dict[str, object]]:
    script = tmp_path / "case.py"
    script.write_text(source)
    command = [sys.executable, "-c", CHECK, str(script)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    seen = json.loads(done.stderr.strip().splitlines()[-1])
    return seen, json.loads(done.stdout)


def test_a_check_of_code_that_never_compiled_does_not_import_dynamo(tmp_path: Path) -> None:
    seen, report = _check(tmp_path, EAGER)
    assert seen == {"code": 1, "dynamo": False}
    assert report["inplace"]["code"] == "y.mul_(2)"


def test_code_that_compiled_is_still_replayed_and_diagnosed(tmp_path: Path) -> None:
    seen, report = _check(tmp_path, COMPILED)
    assert seen == {"code": 1, "dynamo": True}
    assert report["inplace"]["code"] == "y.mul_(2)"
