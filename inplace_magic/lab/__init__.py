"""Face: the JupyterLab sidebar's kernel half, its comm and its wire protocol."""
