"""Three masters and three workers of unequal capacity, real processes:
weighted owners against where the Go SDK put files, Unavailable from a
stopped or cut-off master handled by moving on, and a read that falls back
to the next owner when the first is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import grpc
import pytest

import cairn
from cairn.v1 import jobs_pb2, operator_pb2
from conftest import SDK, Cluster, eventually, free_port, random_bytes, start_trio


@pytest.fixture(scope="module")
def trio(cairn_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = start_trio(cairn_bin, tmp_path_factory.mktemp("trio"), ["1GiB", "2GiB", "3GiB"])
    try:
        yield c
    finally:
        c.stop()


def leader_index(c: Cluster) -> int:
    with c.client(retry_budget=5) as cl:
        lid = cl.status().leader_id
    return int(lid.lstrip("m")) - 1


def test_weighted_owners_equal_where_go_put_files(trio: Cluster, tmp: Path):
    with trio.client() as cl:
        cl.set_replication(2)
        pl = cl.placement()
        assert pl.weighted and pl.replication == 2
        paths = [f"/w/{i:03d}" for i in range(30)]
        for i, p in enumerate(paths):
            (tmp / "f").write_bytes(random_bytes(50 + i, i))
            trio.cli("fs", "put", str(tmp / "f"), p)
        held = trio.holders(paths, cl)
        for p in paths:
            assert held[p] == set(pl.owners(p)), f"{p}: held by {held[p]}, python owners {pl.owners(p)}"
        # The 3 GiB worker is an owner most often.
        counts = {w: sum(w in pl.owners(p) for p in paths) for w in ("w1", "w2", "w3")}
        assert counts["w3"] >= counts["w1"], counts


def test_unavailable_from_a_cut_off_master_moves_on(trio: Cluster):
    """A master cut off from the others answers Unavailable itself (it
    cannot confirm the leader's commit index, or reach a leader for a
    write): the client moves on to the next master, for reads and writes."""
    li = leader_index(trio)
    fi = (li + 1) % 3
    follower = trio.master_procs[fi]
    follower.signal(signal.SIGUSR1)  # cut its raft transport
    try:
        alone = trio.client([trio.masters[fi]], retry_budget=0.5, timeout=10)
        eventually("the cut-off master to answer Unavailable", lambda: _unavailable(alone.cluster_map), timeout=20)
        # Its own state is still there for a caller that asks for it.
        with trio.client([trio.masters[fi]], consistency=cairn.STALE_ANY, retry_budget=0.5) as stale:
            assert len(stale.cluster_map().workers) == 3
        order = [trio.masters[fi]] + [m for i, m in enumerate(trio.masters) if i != fi]
        with trio.client(order, retry_budget=15) as cl:
            assert len(cl.cluster_map().workers) == 3
            for j in list(cl.list_jobs(state=jobs_pb2.JOB_STATE_RUNNING)):
                cl.wait_job(j.id)  # a cleanup refuses to start beside a running rebalance or cleanup
            r = cl.start_cleanup(prefix="/w")
            assert cl.wait_job(r.job.id).state == jobs_pb2.JOB_STATE_SUCCEEDED
            assert cl.status().master_id != f"m{fi + 1}"
        alone.close()
    finally:
        follower.signal(signal.SIGUSR2)


def _unavailable(fn) -> bool:
    try:
        fn()
    except cairn.CairnError as e:
        return e.code == grpc.StatusCode.UNAVAILABLE
    return False


def test_stopped_master_moves_on(trio: Cluster, tmp: Path):
    """The leader is stopped (SIGKILL): a client that lists it first gets
    Unavailable from it (the connection is refused) and carries on with the
    others, through the election, for reads, writes, watches and data."""
    li = leader_index(trio)
    order = [trio.masters[li]] + [m for i, m in enumerate(trio.masters) if i != li]
    with trio.client(order, retry_budget=20) as cl:
        watch = cl.watch_cluster_map()
        before = next(watch)  # from the leader, the first master listed
        assert cl.status().master_id == f"m{li + 1}"
        trio.master_procs[li].kill()
        t0 = time.monotonic()
        r = cl.start_rebalance()
        took = time.monotonic() - t0
        end = cl.wait_job(r.job.id)
        assert end.state == jobs_pb2.JOB_STATE_SUCCEEDED, end.reason
        assert cl.status().master_id != f"m{li + 1}"
        print(f"rebalance started {took:.2f}s after the leader was killed")
        # The map's watch resumes on another master and sees the next epoch.
        cl.set_replication(3 if before.replication != 3 else 2)
        after = next(watch)
        watch.close()
        assert after.epoch > before.epoch
        with trio.client([trio.masters[li]], retry_budget=0.3) as dead:
            with pytest.raises(cairn.CairnError) as e:
                dead.cluster_map()
            assert e.value.code == grpc.StatusCode.UNAVAILABLE
        # A file the Go CLI writes now reads back byte-identical.
        data = random_bytes(3 << 20, 3)
        (tmp / "after").write_bytes(data)
        trio.cli("fs", "put", str(tmp / "after"), "/after-failover.bin")
        assert cl.read("/after-failover.bin") == data
    trio.master_procs[li].start()
    with trio.client(retry_budget=20) as cl:
        peers = lambda: cl.call(lambda s: s.operator.ListRaftPeers(operator_pb2.ListRaftPeersRequest(), metadata=s.metadata, timeout=2)).peers
        eventually("the stopped master back among the voters", lambda: len(peers()) == 3)
        one = trio.client([trio.masters[li]], retry_budget=1, timeout=2)
        eventually("the restarted master to answer", lambda: len(one.cluster_map().workers) == 3)
        one.close()


def test_read_falls_back_to_the_next_owner(trio: Cluster, tmp: Path):
    with trio.client(retry_budget=20) as cl:
        cl.set_replication(2)
        data = random_bytes((6 << 20) + 17, 11)
        (tmp / "r").write_bytes(data)
        trio.cli("fs", "put", str(tmp / "r"), "/two-owners.bin")
        pl = cl.placement()
        first, second = pl.owners("/two-owners.bin")
        assert trio.holders(["/two-owners.bin"], cl)["/two-owners.bin"] == {first, second}
        trio.worker_procs[first].kill()  # before the map knows: the primary refuses connections
        try:
            assert cl.read("/two-owners.bin", raw=False) == data
            assert cl.read("/two-owners.bin") == data
        finally:
            trio.worker_procs[first].start()
        eventually("the worker back in the map", lambda: len(cl.cluster_map().workers) == 3)


def test_example_rebalance_on_join(trio: Cluster):
    """The docs' script: it waits for a worker to join, starts a rebalance
    and prints its progress until it ends. (Last: it adds a fourth worker.)"""
    script = subprocess.Popen(
        [sys.executable, str(SDK / "examples" / "rebalance_on_join.py"), "--once", "--masters", ",".join(trio.masters)],
        env={**os.environ, "CAIRN_TOKEN": trio.token},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        assert script.stdout is not None
        first = script.stdout.readline().decode()
        assert "waiting for one to join" in first, first
        trio.worker_procs["w4"] = trio.start(
            "w4", "worker", "--id", "w4", "--data", str(trio.root / "w4"), "--api", f"127.0.0.1:{free_port()}",
            "--masters", ",".join(trio.masters), "--capacity", "1GiB", "--token-file", str(trio.root / "worker.token"),
        )
        out, _ = script.communicate(timeout=90)
        out = first + out.decode()
        assert script.returncode == 0, out
        assert "w4 joined" in out and "rebalance job" in out and "ended succeeded" in out, out
    finally:
        if script.poll() is None:
            script.kill()
            script.wait()
