"""A multi-node Ray cluster on this machine: one head and N worker nodes, each with its own CPUs, over loopback.

    python infra/ray/local_cluster.py start --nodes 2 --cpus-per-node 2 --dir /tmp/rc   # prints the address
    RAY_ADDRESS=127.0.0.1:<port> RAY_AUTH_MODE=token cookbook run                        # the lifecycle on it

(A training stage's worker takes `<stage>.cpus_per_worker` CPUs of one node, 2 by default: with 1-CPU nodes the
data stages run and `pretrain` stops with a line saying so.)
    python infra/ray/local_cluster.py stop --dir /tmp/rc

Every node is a `ray start --block` process in its own process group, with its own free ports (node manager,
object manager, agents, metrics), so the nodes are as separate as Ray nodes on different hosts except for the
loopback network; `stop` ends exactly those process groups (never `ray stop`, which would stop every Ray
instance of the machine, other users' included). Node 0 is the head and also runs tasks. `--dir` holds the
cluster's state (`cluster.json`: address, node pids) and each node's log; the head's Ray temp dir lives
under it (short paths: Unix sockets are limited to ~100 bytes). Ray 2.60 turns token authentication on for a
started cluster: drivers on this machine set `RAY_AUTH_MODE=token` and read the token from ~/.ray/auth_token.

The same data stages run unchanged on a cloud cluster (infra/ray/cloud.md): only the address and the URIs
of the inputs and outputs differ.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
STATE = "cluster.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_command(head_port: int, cpus: int, temp_dir: Path, head: bool) -> list[str]:
    """`ray start --block` for one node, every port its own."""
    cmd = [str(BIN / "ray"), "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", str(cpus),
           "--node-manager-port", str(free_port()), "--object-manager-port", str(free_port()),
           "--dashboard-agent-listen-port", str(free_port()), "--dashboard-agent-grpc-port", str(free_port()),
           "--runtime-env-agent-port", str(free_port()), "--metrics-export-port", str(free_port()),
           "--disable-usage-stats"]
    if head:
        return cmd + ["--head", "--port", str(head_port), "--include-dashboard", "false",
                      "--dashboard-port", str(free_port()),
                      "--temp-dir", str(temp_dir)]
    return cmd + ["--address", f"127.0.0.1:{head_port}"]


def spawn(cmd: list[str], log: Path, env: dict) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def wait_for(log: Path, text: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"node did not start ({log}):\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_nodes(address: str, count: int, env: dict, timeout: float) -> None:
    """Wait until the cluster reports `count` alive nodes (a worker node registers after its process starts)."""
    probe = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
             "print(sum(n['Alive'] for n in ray.nodes()))")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run([sys.executable, "-c", probe, address], env=env, capture_output=True, text=True, timeout=120)
        if out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == [str(count)]:
            return
        time.sleep(1)
    raise RuntimeError(f"the cluster at {address} did not reach {count} nodes in {timeout:.0f}s")


def start(folder: Path, nodes: int, cpus_per_node: int, timeout: float = 240) -> dict:
    """Start the head and `nodes - 1` worker nodes; return (and write) the cluster's state."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    env.pop("RAY_ADDRESS", None)
    port = free_port()
    head = spawn(node_command(port, cpus_per_node, folder / "ray", head=True), folder / "node-0.log", env)
    state = {"address": f"127.0.0.1:{port}", "pids": [head.pid], "temp_dir": str(folder / "ray")}
    (folder / STATE).write_text(json.dumps(state))
    wait_for(folder / "node-0.log", "Ray runtime started", head, timeout)
    for i in range(1, nodes):
        node = spawn(node_command(port, cpus_per_node, folder / "ray", head=False), folder / f"node-{i}.log", env)
        state["pids"].append(node.pid)
        (folder / STATE).write_text(json.dumps(state))
    wait_nodes(state["address"], nodes, env, timeout)
    return state


def stop(folder: Path, grace: float = 10.0) -> None:
    """End the cluster's node process groups (SIGTERM, then SIGKILL what is left)."""
    state = json.loads((folder / STATE).read_text())
    for pid in reversed(state["pids"]):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for p in state["pids"]):
        time.sleep(0.2)
    for pid in state["pids"]:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--dir", type=Path, required=True, help="state and logs of the cluster (keep the path short)")
    parser.add_argument("--nodes", type=int, default=2, help="nodes, the head included")
    parser.add_argument("--cpus-per-node", type=int, default=1)
    args = parser.parse_args()
    if args.action == "start":
        state = start(args.dir, args.nodes, args.cpus_per_node)
        print(state["address"])
    else:
        stop(args.dir)


if __name__ == "__main__":
    main()
