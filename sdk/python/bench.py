#!/usr/bin/python3
"""The Python SDK's figures in BENCHMARKS.md, each beside the Go figure from
the same run:

1. owners per second (one lookup of a path's owners), Python's
   ``Placement.owners`` at 10, 100 and 1,000 workers, R = 1 and 3, equal
   and unequal weights, beside ``go test ./placement -bench BenchmarkOwners``
   (the same workers and paths);
2. read MiB/s of a 256 MiB cached file from Python (the bulk endpoint, and
   DataService.Read alone) beside the Go SDK (``cairn fs get`` and
   ``cairn fs cat``), on a ``cairn dev`` this script starts and stops.

    make bench-python            # or: /usr/bin/python3 sdk/python/bench.py [--skip-read] [--skip-owners]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

SDK = Path(__file__).resolve().parent
REPO = SDK.parent.parent
sys.path.insert(0, str(SDK))

import cairn  # noqa: E402
from cairn.placement import Placement, Worker  # noqa: E402

SIZES = (10, 100, 1000)
PATHS = [f"/bucket/dir-{i % 17}/object-{i}.bin" for i in range(1024)]


def workers(n: int, weighted: bool) -> List[Worker]:
    # As placement/bench_test.go: equalWorkers(n), weights (1+i%4)<<40 when weighted.
    return [Worker(f"worker-{i:03d}", ((1 + i % 4) if weighted else 1) << 40) for i in range(n)]


def python_owners(seconds: float) -> Dict[Tuple[str, int, int], float]:
    """ns per lookup, per (kind, workers, R)."""
    out = {}
    for weighted in (False, True):
        kind = "weighted" if weighted else "equal"
        for n in SIZES:
            for r in (1, 3):
                p = Placement(workers(n, weighted), r)
                owners = p.owners
                best = float("inf")
                for _ in range(3):  # the best of three: other work on the machine only adds
                    k, j = 0, 0
                    t0 = time.perf_counter()
                    deadline = t0 + seconds / 3
                    while True:
                        for _ in range(64):
                            owners(PATHS[j & 1023])
                            j += 1
                        k += 64
                        if time.perf_counter() >= deadline:
                            break
                    best = min(best, (time.perf_counter() - t0) / k * 1e9)
                out[(kind, n, r)] = best
    return out


def go_owners(go: str) -> Dict[Tuple[str, int, int], float]:
    r = subprocess.run(
        [go, "test", "./placement", "-run", "XXX", "-bench", "BenchmarkOwners", "-benchtime", "300000x", "-count", "3"],
        cwd=REPO, capture_output=True, check=True,
    )
    out = {}
    for line in r.stdout.decode().splitlines():
        m = re.match(r"BenchmarkOwners/(\w+)/workers=(\d+)/R=(\d+)\S*\s+\d+\s+([\d.]+) ns/op", line)
        if m:  # the best of the three counts, as for Python
            key = (m.group(1), int(m.group(2)), int(m.group(3)))
            out[key] = min(out.get(key, float("inf")), float(m.group(4)))
    return out


def free_port_pair() -> int:
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue
    raise RuntimeError("no free ports")


def timed(fn: Callable[[], None], runs: int) -> List[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def read_bench(cairn_bin: str, size: int, runs: int) -> List[Tuple[str, str, List[float]]]:
    work = Path(tempfile.mkdtemp(prefix="cairn-pybench-"))
    shm = Path(tempfile.mkdtemp(prefix="cairn-pybench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    port = free_port_pair()
    api = f"127.0.0.1:{port}"
    log = open(work / "dev.log", "wb")
    dev = subprocess.Popen([cairn_bin, "dev", "--data", str(work / "data"), "--api", api], stdout=log, stderr=subprocess.STDOUT)
    try:
        tok = work / "data" / "admin.token"
        deadline = time.monotonic() + 30
        while not (tok.exists() and tok.stat().st_size > 0):
            if time.monotonic() > deadline:
                raise RuntimeError("cairn dev wrote no admin token")
            time.sleep(0.05)
        token = tok.read_text().strip()
        env = dict(os.environ, CAIRN_TOKEN=token, CAIRN_MASTERS=api)
        c = cairn.Client(api, token=token)
        while True:
            try:
                if len(c.cluster_map().workers) == 3:
                    break
            except cairn.CairnError:
                pass
            time.sleep(0.05)
        src = work / "big.bin"
        with open(src, "wb") as f:
            f.write(os.urandom(size))
        subprocess.run([cairn_bin, "fs", "put", str(src), "/bench/big.bin"], env=env, check=True, capture_output=True)
        assert c.read("/bench/big.bin") == src.read_bytes()  # cached, and the same bytes

        def py_discard(raw: bool) -> Callable[[], None]:
            def run() -> None:
                n = 0
                for chunk in c.read_chunks("/bench/big.bin", raw=raw):
                    n += len(chunk)
                assert n == size

            return run

        def py_file() -> None:
            dst = shm / "py.bin"
            with open(dst, "wb") as f:
                assert c.read_to("/bench/big.bin", f) == size
            dst.unlink()

        def go_get(*flags: str) -> Callable[[], None]:
            def run() -> None:
                dst = shm / "go.bin"
                subprocess.run([cairn_bin, "fs", "get", "/bench/big.bin", str(dst), *flags], env=env, check=True, capture_output=True)
                dst.unlink()

            return run

        def go_cat() -> None:
            with open(os.devnull, "wb") as null:
                subprocess.run([cairn_bin, "fs", "cat", "/bench/big.bin"], env=env, check=True, stdout=null)

        cases = [
            ("Python `read_chunks` (bulk endpoint), bytes discarded", "python", py_discard(True)),
            ("Python `read_chunks(raw=False)` (DataService.Read), bytes discarded", "python", py_discard(False)),
            ("Python `read_to` a file in /dev/shm (bulk endpoint)", "python", py_file),
            ("Go `cairn fs get` to /dev/shm (short-circuit: reads the block files)", "go", go_get()),
            ("Go `cairn fs get --no-short-circuit` to /dev/shm (bulk endpoint)", "go", go_get("--no-short-circuit")),
            ("Go `cairn fs cat > /dev/null` (short-circuit)", "go", go_cat),
        ]
        results = []
        for name, lang, fn in cases:
            fn()  # warm
            results.append((name, lang, timed(fn, runs)))
        c.close()
        return results
    finally:
        dev.send_signal(signal.SIGTERM)
        try:
            dev.wait(10)
        except subprocess.TimeoutExpired:
            dev.kill()
            dev.wait()
        log.close()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cairn", default=str(REPO / "bin" / "cairn"), help="the cairn binary (make build)")
    ap.add_argument("--go", default=os.environ.get("GO") or shutil.which("go") or "go")
    ap.add_argument("--seconds", type=float, default=1.5, help="per Python owners case (three rounds; the best counts)")
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--skip-owners", action="store_true")
    ap.add_argument("--skip-read", action="store_true")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, grpcio {__import__('grpc').__version__}, protobuf {__import__('google.protobuf').protobuf.__version__}, {os.cpu_count()} CPUs")
    if not args.skip_owners:
        go = go_owners(args.go)
        py = python_owners(args.seconds)
        print("\nBest of three rounds each (Go: -count 3), same workers and paths as placement/bench_test.go:")
        print("\n| weights | workers | R | Python ns/lookup | Python owners/s | Go ns/lookup | Go owners/s | Python time ÷ Go time |")
        print("|---|---|---|---|---|---|---|---|")
        for key, ns in py.items():
            g = go.get(key)
            gs = f"{g:.1f} | {1e9 / g:,.0f} | {ns / g:,.0f}×" if g else "- | - | -"
            print(f"| {key[0]} | {key[1]:,} | {key[2]} | {ns:,.0f} | {1e9 / ns:,.0f} | {gs} |")
    if not args.skip_read:
        size = args.size_mib << 20
        res = read_bench(args.cairn, size, args.runs)
        print(f"\n{args.size_mib} MiB cached file, cairn dev on loopback, median (best) of {args.runs} runs:\n")
        print("| reader | MiB/s median | MiB/s best | s median |")
        print("|---|---|---|---|")
        for name, _, ts in res:
            med = statistics.median(ts)
            print(f"| {name} | {args.size_mib / med:,.0f} | {args.size_mib / min(ts):,.0f} | {med:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
