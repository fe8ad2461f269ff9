"""The wheel carries the prebuilt JupyterLab extension and the panel's bundle, and installing it into a
fresh venv is all JupyterLab needs (no Node): ``jupyter labextension list`` reports it enabled and OK.

The fresh venv gets only the wheel (``--no-deps --no-index``); its dependencies come from this venv
through a ``.pth`` line, so nothing is downloaded and pip never resolves torch. Only the fresh venv's
own ``share/jupyter`` is searched for lab extensions, so what is listed came from the wheel.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = json.loads((ROOT / "package.json").read_text())
NAME = PACKAGE["name"]
LABEXT = f"inplace_magic-{PACKAGE['version']}.data/data/share/jupyter/labextensions/{NAME}"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

pytestmark = pytest.mark.skipif(
    not (ROOT / "inplace_magic" / "labextension" / "package.json").is_file(),
    reason="the front end is not built: run `make setup`",
)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env["PATH"] = (
        f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # npm build calls jupyter-builder
    )
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
        ],
        check=True,
        env=_env(),
        timeout=600,
    )
    (found,) = out.glob("inplace_magic-*.whl")
    return found


def test_the_wheel_contains_the_labextension_and_the_widget_bundle(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "inplace_magic/static/widget.js",
        "inplace_magic/static/widget.css",
        "inplace_magic/panel/widget.py",
    } <= names
    assert {f"{LABEXT}/package.json", f"{LABEXT}/install.json", f"{LABEXT}/static/style.js"} <= names
    assert f"{LABEXT}/schemas/{NAME}/plugin.json" in names
    # only the settings schema: the wire protocol's schemas are no JupyterLab settings
    assert [n for n in names if n.startswith(f"{LABEXT}/schemas/") and n.endswith(".json")] == [
        f"{LABEXT}/schemas/{NAME}/plugin.json"
    ]
    assert any(re.fullmatch(rf"{re.escape(LABEXT)}/static/remoteEntry\.[0-9a-f]+\.js", n) for n in names)
    built = json.loads(zipfile.ZipFile(wheel).read(f"{LABEXT}/package.json"))
    assert built["name"] == NAME and built["jupyterlab"]["_build"]["load"].startswith("static/remoteEntry.")


def test_a_fresh_venv_with_the_wheel_lists_the_extension_enabled_and_ok(wheel: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=False).create(fresh)
    python = fresh / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # this venv's packages (jupyterlab, torch, ...) behind the fresh venv's own
    Path(purelib, "_inplace_magic_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        env=_env(),
        timeout=300,
    )
    home = tmp_path / "home"
    home.mkdir()
    listed = subprocess.run(
        [str(python), "-m", "jupyterlab.labextensions", "list"],
        capture_output=True,
        text=True,
        env=_env(HOME=str(home)),
        timeout=120,
        cwd=tmp_path,
    )
    text = _ANSI.sub("", listed.stdout + listed.stderr)
    assert listed.returncode == 0, text
    assert str(fresh / "share" / "jupyter" / "labextensions") in text
    assert re.search(rf"^\s*{re.escape(NAME)} v\S+ enabled OK \(python, inplace_magic\)\s*$", text, re.M), (
        text
    )
    where, version = subprocess.run(
        [
            str(python),
            "-c",
            "import inplace_magic; print(inplace_magic.__file__); print(inplace_magic.__version__)",
        ],
        check=True,
        capture_output=True,
        text=True,
        env=_env(HOME=str(home)),
        cwd=tmp_path,
    ).stdout.split()
    assert where.startswith(str(fresh)), where  # the wheel's package, not this checkout's
    assert version == PACKAGE["version"]  # written once, in package.json
