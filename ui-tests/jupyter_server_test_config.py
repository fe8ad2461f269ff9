"""The JupyterLab server the Galata tests drive: Galata's test settings (no token, a fresh
temporary root, its helper extension), bound to the loopback address and allowed to run as root
(CI runs everything as root). The kernel is the Python that starts this server: the repo's .venv."""

from jupyterlab.galata import configure_jupyter_server

c = get_config()  # noqa: F821 (injected by jupyter_server)
configure_jupyter_server(c)

c.ServerApp.ip = "127.0.0.1"
c.ServerApp.allow_root = True
c.LabApp.extension_manager = "readonly"
# quiet logs: the test reporter is the output that matters
c.ServerApp.log_level = "ERROR"
