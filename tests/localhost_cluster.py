"""Helpers for tests that run several worker processes on localhost ports with TF_CONFIG."""
import json
import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER_SCRIPT = os.path.join(ROOT, "tests", "multi_worker_run.py")
TIMEOUT = 900  # a bound for a loaded machine; healthy runs take seconds


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def cluster_envs(base_env, workers=2):
    """One environment per worker, each with the TF_CONFIG of its task; and the addresses."""
    cluster = {"worker": [f"localhost:{p}" for p in free_ports(workers)]}
    return [dict(base_env, TF_CONFIG=json.dumps({"cluster": cluster,
                                                 "task": {"type": "worker", "index": i}}))
            for i in range(workers)]


def start(args, env, log_path):
    """``(Popen, log file)`` of ``python ARGS`` from the project root, output to ``log_path``."""
    log = open(log_path, "w")
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, text=True), log


def wait(procs, timeout=TIMEOUT):
    """Exit codes of ``procs`` (as `start` returns them); kills all of them on a timeout."""
    deadline = time.monotonic() + timeout
    codes = []
    for proc, log in procs:
        try:
            codes.append(proc.wait(timeout=max(1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            for p, _ in procs:
                p.kill()
            raise
        finally:
            log.close()
    return codes


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def wait_until(predicate, procs, timeout=TIMEOUT, what="training progress"):
    """Poll ``predicate`` until true; fails if a process of ``procs`` ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        ended = [p.args for p, _ in procs if p.poll() is not None]
        if ended:
            raise AssertionError(f"a process ended while waiting for {what}: {ended}")
        time.sleep(0.1)
    for p, _ in procs:
        p.kill()
    raise AssertionError(f"timed out waiting for {what}")
