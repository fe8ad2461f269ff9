"""The JupyterLab server the Galata tests drive: Galata's test settings (no token, a fresh
temporary root, its helper extension), bound to the loopback address and allowed to run as root
(CI runs everything as root). The kernel is the Python that starts this server: the repo's .venv.

UI_TESTS_EXTRA_LABEXTENSIONS: a folder of lab extensions searched first, e.g. a deliberately broken
build of this project's extension, to check that the tests fail when the feature is broken.
"""

import os
import sys

from jupyterlab.galata import configure_jupyter_server

c = get_config()  # noqa: F821 (injected by jupyter_server)
configure_jupyter_server(c)

c.ServerApp.ip = "127.0.0.1"
c.ServerApp.allow_root = True
c.LabApp.extension_manager = "readonly"
# quiet logs: the test reporter is the output that matters
c.ServerApp.log_level = "ERROR"

_extra = os.environ.get("UI_TESTS_EXTRA_LABEXTENSIONS")
if _extra:
    c.LabServerApp.extra_labextensions_path = [_extra, str(c.LabServerApp.extra_labextensions_path)]
# Notebook 7 is served by the same server (/tree, /notebooks); its app in the page, for Galata's helpers
c.JupyterNotebookApp.expose_app_in_browser = True
# Every page load (each test's, and each reload) asks the server whether JupyterLab needs a rebuild,
# which runs a build check (about half a CPU-second of node on the server, beside the tests' kernels).
# The tests use the build as it is; the extension's own build is checked by `make setup`.
c.ServerApp.tornado_settings = {"page_config_data": {"buildCheck": False}}
# Each kernel is a fork of a process that imported torch, torch._dynamo and ipykernel once
# (kernel_zygote.py: what the fork gives the kernel, and when it falls back to a new interpreter).
# Started now, so that its imports overlap the server's start and the browser's.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kernel_zygote  # noqa: E402

kernel_zygote.start()
c.AsyncMappingKernelManager.kernel_manager_class = "kernel_zygote.ZygoteKernelManager"
