"""The Kubernetes API emulator as a process of its own (python -m this module).

In-process, the emulator shares the interpreter (and its GIL) with whoever started it;
a benchmark that drives a hundred rollouts would then measure its own bookkeeping
as much as the API server's answers. Served from a separate process, the emulator
only competes for CPU like a real API server would. It registers the IngestionRollout
CRD (status subresource), writes a kubeconfig, prints one line `ready <url>` and
serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import threading

from ingestion_sandbox.servers.kube_emulator import KubeEmulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig")
    args = parser.parse_args()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    kube = KubeEmulator(port=args.port or None)
    kube.start()
    try:
        kube.register_rollout_crd()
        kube.write_kubeconfig(args.kubeconfig)
        print(f"ready {kube.url}", flush=True)
        stop.wait()
    finally:
        kube.stop()


if __name__ == "__main__":
    main()
