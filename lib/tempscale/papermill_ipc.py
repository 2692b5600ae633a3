"""papermill's command line, with the notebook's kernel on Unix sockets in a folder of its own instead of TCP ports.

    python -m tempscale.papermill_ipc IN.ipynb OUT.ipynb -k tempscale -p profile quick …   (papermill's arguments)

Over TCP the client picks free ports and releases them before the kernel binds them, so another kernel starting at
the same moment (the other notebook of ``./run_all.sh --jobs 2``, a test worker's) can take one first: the kernel
dies with zmq's "Address already in use" and papermill gives up after 60 s ("Kernel didn't respond"). Sockets in a
private temporary folder cannot collide. Linux and macOS (ZeroMQ has no IPC transport on Windows).
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from papermill.cli import papermill
from papermill.engines import NBClientEngine, papermill_engines

ENGINE = "tempscale-ipc"


class IPCKernelManager(AsyncKernelManager):
    """nbclient's kernel manager on the IPC transport; `socket_prefix` is set by `IPCEngine` for each notebook."""

    socket_prefix = ""

    def __init__(self, **kwargs):
        super().__init__(**{"transport": "ipc", "ip": self.socket_prefix, **kwargs})


class IPCEngine(NBClientEngine):
    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
        with tempfile.TemporaryDirectory(prefix="tempscale-kernel-") as sockets:
            IPCKernelManager.socket_prefix = str(Path(sockets) / "kernel")
            return super().execute_managed_notebook(nb_man, kernel_name, kernel_manager_class=IPCKernelManager,
                                                    **kwargs)


def main(argv: list[str] | None = None) -> None:
    papermill_engines.register(ENGINE, IPCEngine)
    papermill.main(args=[*(sys.argv[1:] if argv is None else argv), "--engine", ENGINE], prog_name="papermill")


if __name__ == "__main__":
    main()
