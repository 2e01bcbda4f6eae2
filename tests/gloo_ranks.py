"""Runs a script as the ranks of a torch.distributed job on 127.0.0.1 (gloo), each in its own
process, and returns what each rank printed last as JSON."""

import json
import os
import socket
import subprocess
import sys


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(script, args, world_size, timeout=600):
    """The script reads RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT from its environment."""
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE=str(world_size))
    env["PYTHONFAULTHANDLER"] = "1"
    ranks = [
        subprocess.Popen(
            [sys.executable, str(script), *map(str, args)],
            env=dict(env, RANK=str(rank)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(world_size)
    ]
    outputs = []
    try:
        for rank, process in enumerate(ranks):
            stdout, stderr = process.communicate(timeout=timeout)
            assert process.returncode == 0, f"rank {rank} failed:\n{stderr[-4000:]}"
            outputs.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for process in ranks:
            process.kill()
    return outputs
