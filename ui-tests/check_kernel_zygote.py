"""What kernel_zygote.py promises, checked against the tests' own server config (about 30 s):

    .venv/bin/python ui-tests/check_kernel_zygote.py

A server started as the browser tests start it; a kernel made through its REST API must be a fork
of the zygote (not the server's child) that runs code, on its own connection file, in the folder
and with the environment jupyter_client gives a kernel, leading its own process group; an interrupt
must end a running cell with KeyboardInterrupt; a restart must give a new fork under the same id;
a shutdown must leave no process behind (reaped by the zygote, not a zombie), and the zygote must
end with the server. Exits 1 with what failed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from jupyter_client import BlockingKernelClient
from jupyter_core.paths import jupyter_runtime_dir

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, root: Path, pids: Path) -> None:
        self.port = free_port()
        env = dict(os.environ, UI_TESTS_KERNEL_PIDS=str(pids), OMP_NUM_THREADS="1")
        command = [sys.executable, "-m", "jupyterlab", "--config", "jupyter_server_test_config.py"]
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port), f"--ServerApp.root_dir={root}"], cwd=HERE, env=env
        )
        for _ in range(240):
            try:
                self.call("GET", "api")
                return
            except OSError:
                time.sleep(0.5)
        raise AssertionError("the server did not start")

    def call(self, method: str, path: str, data: Any = None) -> Any:
        body = json.dumps(data).encode() if data is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/{path}", body, {"Content-Type": "application/json"}, method=method
        )
        with urllib.request.urlopen(request, timeout=120) as answer:
            text = answer.read()
        return json.loads(text) if text else None


def client(kernel_id: str) -> BlockingKernelClient:
    kernel = BlockingKernelClient(
        connection_file=os.path.join(jupyter_runtime_dir(), f"kernel-{kernel_id}.json")
    )
    kernel.load_connection_file()
    kernel.start_channels()
    # a client without a manager takes a heartbeat not beating yet (the kernel still starting) for
    # a dead kernel: asked again until the kernel answers, or for two minutes
    for _ in range(60):
        try:
            kernel.wait_for_ready(timeout=30)
            return kernel
        except RuntimeError:
            time.sleep(2)
    raise AssertionError(f"kernel {kernel_id} never answered")


def run(kernel: BlockingKernelClient, code: str) -> str:
    out: list[str] = []
    reply = kernel.execute_interactive(
        code, timeout=60, output_hook=lambda m: out.append(m["content"].get("text", ""))
    )
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(out)


def pid_of(pids: Path, kernel_id: str) -> int:
    lines = [json.loads(line) for line in pids.read_text().splitlines()] if pids.exists() else []
    forks = [line["pid"] for line in lines if line["kernel_id"] == kernel_id]
    assert forks, f"no fork of the zygote for kernel {kernel_id}: it was started the usual way"
    return int(forks[-1])


def state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None  # gone


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="zygote-check-") as folder:
        root, pids = Path(folder) / "root", Path(folder) / "pids.jsonl"
        (root / "sub").mkdir(parents=True)
        server = Server(root, pids)
        try:
            started = server.call("POST", "api/kernels", {"name": "python3", "path": "sub"})
            kernel_id = started["id"]
            kernel = client(kernel_id)
            fork = pid_of(pids, kernel_id)
            facts = json.loads(
                run(
                    kernel,
                    "import json, os, sys, torch\n"
                    "print(json.dumps({'pid': os.getpid(), 'ppid': os.getppid(), 'pgid': os.getpgid(0),"
                    " 'argv': sys.argv[1:], 'cwd': os.getcwd(), 'parent': os.environ.get('JPY_PARENT_PID'),"
                    " 'x': float(torch.ones(2).sum())}))",
                )
            )
            assert facts["pid"] == fork, (facts, fork)
            assert facts["ppid"] != server.process.pid, "the kernel is the server's child: not a fork"
            assert facts["pgid"] == fork, "the kernel does not lead its own process group"
            assert facts["argv"] == ["-f", kernel.connection_file], facts
            assert facts["cwd"] == str(root / "sub"), facts
            assert facts["parent"] == str(server.process.pid), facts
            assert facts["x"] == 2.0, facts
            zygote = facts["ppid"]

            cell = kernel.execute("import time; time.sleep(60)")
            time.sleep(1)
            server.call("POST", f"api/kernels/{kernel_id}/interrupt")
            while (reply := kernel.get_shell_msg(timeout=30))["parent_header"].get("msg_id") != cell:
                pass
            assert reply["content"].get("ename") == "KeyboardInterrupt", reply["content"]
            kernel.stop_channels()

            server.call("POST", f"api/kernels/{kernel_id}/restart")
            kernel = client(kernel_id)
            again = pid_of(pids, kernel_id)
            assert again != fork and state(fork) is None, (fork, again, state(fork))
            assert json.loads(run(kernel, "import os; print(os.getppid())")) == zygote
            kernel.stop_channels()

            server.call("DELETE", f"api/kernels/{kernel_id}")
            time.sleep(1)
            assert state(again) is None, f"the shut-down kernel is still there ({state(again)})"
        finally:
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(timeout=60)
        # ended: gone, or a zombie of whichever process adopted it when the server ended
        for _ in range(20):
            if state(zygote) in (None, "Z"):
                break
            time.sleep(0.5)
        assert state(zygote) in (None, "Z"), f"the zygote outlived the server ({state(zygote)})"
    print("kernel_zygote: a fork per kernel; interrupt, restart, shutdown and the server's end as promised")
    return 0


if __name__ == "__main__":
    sys.exit(main())
