"""Fixtures: real cairn processes for the SDK's tests.

The tests start the cairn binary itself (``cairn dev``, or three masters and
three workers), on free loopback ports, and stop every process they started
by its pid when the session ends, pass or fail (and the kernel kills them if
pytest itself dies first).

The binary is $CAIRN_BIN (what `make test` and tests/python_test.go pass),
else it is built from this repository into a temporary folder.
"""

from __future__ import annotations

import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import pytest

HERE = Path(__file__).resolve().parent
SDK = HERE.parent
REPO = SDK.parent.parent
sys.path.insert(0, str(SDK))

import cairn  # noqa: E402
from cairn.v1 import data_pb2, data_pb2_grpc  # noqa: E402

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: SIGKILL when pytest dies, as the Go harness does."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def free_port(consecutive: int = 1) -> int:
    """A loopback port (and the next ones) that were free a moment ago."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + consecutive >= 65535:
            continue
        ok = True
        for p in range(port + 1, port + consecutive):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no free loopback port")


def eventually(what: str, cond: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if cond():
                return
        except cairn.CairnError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


class Proc:
    """One process a test started; killed by pid at the end."""

    def __init__(self, name: str, args: List[str], log_dir: Path) -> None:
        self.name = name
        self.args = args
        self.log = log_dir / f"{name}.log"
        self.p: Optional[subprocess.Popen] = None
        self.start()

    def start(self) -> None:
        with open(self.log, "ab") as f:
            self.p = subprocess.Popen(
                self.args, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent
            )

    @property
    def pid(self) -> int:
        assert self.p is not None
        return self.p.pid

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def kill(self) -> None:
        if self.p is None or self.p.poll() is not None:
            return
        try:
            os.kill(self.p.pid, signal.SIGCONT)
            os.kill(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.p.wait()

    def alive(self) -> bool:
        return self.p is not None and self.p.poll() is None

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


@pytest.fixture(scope="session")
def cairn_bin(tmp_path_factory: pytest.TempPathFactory) -> str:
    b = os.environ.get("CAIRN_BIN")
    if b:
        return b
    out = tmp_path_factory.mktemp("bin") / "cairn"
    subprocess.run(["go", "build", "-o", str(out), "./cmd/cairn"], cwd=REPO, check=True)
    return str(out)


@pytest.fixture(scope="session")
def go_bin() -> str:
    g = os.environ.get("GO") or shutil.which("go")
    if not g:
        pytest.fail("the go tool is needed to write fresh placement vectors (set GO or put go on PATH)")
    return g


class Cluster:
    """Processes that make one cluster, and how to reach it."""

    def __init__(self, cairn_bin: str, root: Path) -> None:
        self.bin = cairn_bin
        self.root = root
        self.procs: List[Proc] = []
        self.masters: List[str] = []
        self.master_procs: List[Proc] = []
        self.worker_procs: Dict[str, Proc] = {}
        self.token = ""
        self.worker_token = ""
        self.ca: Optional[bytes] = None

    def start(self, name: str, *args: str) -> Proc:
        p = Proc(name, [self.bin, *args], self.root)
        self.procs.append(p)
        return p

    def client(self, masters: Optional[List[str]] = None, **kw) -> cairn.Client:
        kw.setdefault("token", self.token)
        if self.ca is not None:
            kw.setdefault("root_certificates", self.ca)
        return cairn.Client(masters or self.masters, **kw)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Runs a client verb of the Go CLI (the Go SDK) against this cluster."""
        env = dict(os.environ, CAIRN_TOKEN=self.token, CAIRN_MASTERS=",".join(self.masters))
        extra = ["--tls-ca", str(self.root / "data" / "tls" / "ca.pem")] if self.ca is not None else []
        r = subprocess.run([self.bin, *args, *extra], env=env, capture_output=True, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError(f"cairn {' '.join(args)}: exit {r.returncode}\n{r.stdout.decode()}\n{r.stderr.decode()}")
        return r

    def holders(self, paths: List[str], client: Optional[cairn.Client] = None) -> Dict[str, set]:
        """Which workers hold a cached copy of each path, by asking every
        worker in the map (DataService.Stat): where the writes put them."""
        c = client or self.client()
        held: Dict[str, set] = {p: set() for p in paths}
        for w in c.cluster_map().workers:
            stub = data_pb2_grpc.DataServiceStub(c._channel(w.address))
            resp = stub.Stat(
                data_pb2.StatRequest(paths=paths), metadata=[("authorization", "Bearer " + self.token)], timeout=10
            )
            for f in resp.files:
                held[f.identity.path].add(w.id)
        return held

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.kill()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.tail()}" for p in self.procs)


def start_dev(cairn_bin: str, root: Path, *extra: str) -> Cluster:
    """``cairn dev``: one master and three workers in one process."""
    c = Cluster(cairn_bin, root)
    port = free_port(consecutive=2)  # the API port, and raft on the next one
    api = f"127.0.0.1:{port}"
    data = root / "data"
    p = c.start("dev", "dev", "--data", str(data), "--api", api, "--workers", "3", *extra)
    c.masters = [api]
    c.master_procs = [p]
    try:
        eventually("cairn dev to write its admin token", lambda: (data / "admin.token").exists() and (data / "admin.token").stat().st_size > 0)
        c.token = (data / "admin.token").read_text().strip()
        if "--tls" in extra:
            eventually("cairn dev to write its CA", lambda: (data / "tls" / "ca.pem").exists())
            c.ca = (data / "tls" / "ca.pem").read_bytes()
        cl = c.client(retry_budget=1.0, timeout=2.0)
        eventually("three workers in the map", lambda: len(cl.cluster_map().workers) == 3)
        cl.close()
    except BaseException:
        print(c.logs(), file=sys.stderr)
        c.stop()
        raise
    return c


@pytest.fixture(scope="session")
def dev(cairn_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = start_dev(cairn_bin, tmp_path_factory.mktemp("dev"))
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="session")
def client(dev: Cluster) -> Iterator[cairn.Client]:
    c = dev.client()
    try:
        yield c
    finally:
        c.close()


def start_trio(cairn_bin: str, root: Path, capacities: List[str]) -> Cluster:
    """Three masters (the first bootstraps, the others join it; each with
    --fault-signals, so SIGUSR1 cuts it off from the others and SIGUSR2 heals
    it) and a worker per capacity, all knowing every master; tokens are
    provisioned as tests/harness_test.go does."""
    c = Cluster(cairn_bin, root)
    new = lambda: subprocess.run([cairn_bin, "auth", "token", "new"], capture_output=True, check=True).stdout.decode().strip()
    c.token, c.worker_token = new(), new()
    admin_file, worker_file, initial = root / "admin.token", root / "worker.token", root / "initial-tokens"
    admin_file.write_text(c.token + "\n")
    worker_file.write_text(c.worker_token + "\n")
    initial.write_text(f"admin admin {c.token}\nworkers worker {c.worker_token}\n")
    for f in (admin_file, worker_file, initial):
        f.chmod(0o600)
    try:
        for i in range(3):
            mid = f"m{i + 1}"
            api, raft = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
            join = ["--bootstrap"] if i == 0 else ["--join", c.masters[0]]
            p = c.start(
                mid, "master", "--id", mid, "--data", str(root / mid), "--api", api, "--raft", raft,
                "--heartbeat-timeout", "2s", "--fault-signals",
                "--initial-tokens", str(initial), "--token-file", str(admin_file), *join,
            )
            c.masters.append(api)
            c.master_procs.append(p)
            one = c.client([api], retry_budget=1.0, timeout=2.0)
            eventually(f"{mid} to answer with a leader", lambda: p.alive() and one.status().leader_id != "")
            one.close()
        for i, cap in enumerate(capacities):
            wid = f"w{i + 1}"
            c.worker_procs[wid] = c.start(
                wid, "worker", "--id", wid, "--data", str(root / wid), "--api", f"127.0.0.1:{free_port()}",
                "--masters", ",".join(c.masters), "--capacity", cap, "--token-file", str(worker_file),
            )
        cl = c.client(retry_budget=2.0, timeout=2.0)
        from cairn.v1 import operator_pb2

        def voters() -> int:
            r = cl.call(lambda s: s.operator.ListRaftPeers(operator_pb2.ListRaftPeersRequest(), metadata=s.metadata, timeout=2))
            return len(r.peers)

        eventually("three voters", lambda: voters() == 3)
        eventually(f"{len(capacities)} workers in the map", lambda: len(cl.cluster_map().workers) == len(capacities))
        cl.close()
    except BaseException:
        print(c.logs(), file=sys.stderr)
        c.stop()
        raise
    return c


def random_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


def pytest_report_header(config) -> str:
    return f"cairn SDK at {SDK}; python {sys.version.split()[0]}; tmp {tempfile.gettempdir()}"
