"""The client against a live ``cairn dev`` (one master, three workers, real
processes): the map and its watch, owners against where the Go SDK put
files, jobs watched to their end, the namespace, reading bytes the Go CLI
wrote, tokens and roles, consistency, TLS."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import xxhash

import cairn
from cairn.v1 import cluster_pb2, jobs_pb2, namespace_pb2
from conftest import SDK, Cluster, eventually, random_bytes, start_dev


def put(dev: Cluster, tmp: Path, path: str, data: bytes, *flags: str) -> None:
    local = tmp / (path.strip("/").replace("/", "_") or "root")
    local.write_bytes(data)
    dev.cli("fs", "put", str(local), path, *flags)


def test_cluster_map(dev: Cluster, client: cairn.Client):
    resp = client.get_cluster_map()
    cm = resp.map
    assert cm.epoch >= 1 and cm.replication == 1
    assert [w.id for w in cm.workers] == sorted(w.id for w in cm.workers)
    assert len(cm.workers) == 3 and all(w.address and w.capacity_bytes for w in cm.workers)
    assert resp.cluster_id.startswith("c-")
    assert {w.id for w in client.workers() if w.state == cluster_pb2.WORKER_STATE_ACTIVE} == {w.id for w in cm.workers}
    assert client.cluster_map(cm.epoch) == cm
    # The watch starts with the current map.
    watch = client.watch_cluster_map()
    first = next(watch)
    watch.close()
    assert first.epoch == cm.epoch
    # The Go CLI sees the same map.
    out = dev.cli("--json", "cluster", "show").stdout.decode()
    assert f'"epoch":  "{cm.epoch}"' in out or f'"epoch": "{cm.epoch}"' in out or str(cm.epoch) in out


def test_watch_sees_a_new_epoch(client: cairn.Client):
    cm = client.cluster_map()
    watch = client.watch_cluster_map(after_epoch=cm.epoch)
    try:
        client.set_replication(2)
        nxt = next(watch)
        assert nxt.epoch > cm.epoch and nxt.replication == 2
    finally:
        watch.close()
        client.set_replication(1)
    assert client.cluster_map().replication == 1


def test_owners_equal_where_go_put_files(dev: Cluster, client: cairn.Client, tmp: Path):
    """Files written by the Go CLI (client.Files.Put places them by the Go
    placement code) sit exactly on the workers Python computes as owners."""
    paths = [f"/placed/file-{i:03d}.bin" for i in range(24)] + ["/placed/ünïcödé/路径.bin"]
    for i, p in enumerate(paths):
        put(dev, tmp, p, random_bytes(100 + i, i))
    pl = client.placement()
    held = dev.holders(paths, client)
    for p in paths:
        assert held[p] == set(pl.owners(p)), f"{p}: held by {held[p]}, python owners {pl.owners(p)}"
        assert client.owners(p) == pl.owners(p)
    # Every worker got some: the check is not vacuous.
    assert len(set().union(*held.values())) == 3


def test_job_started_and_watched_to_its_end(client: cairn.Client):
    r = client.start_rebalance()
    job = r.job
    assert job.id > 0 and job.spec.kind == jobs_pb2.JOB_KIND_REBALANCE
    updates = list(client.watch_job(job.id))
    assert updates, "the watch yields at least the job's current state"
    last = updates[-1].job
    assert last.id == job.id
    assert last.state == jobs_pb2.JOB_STATE_SUCCEEDED, last.reason
    assert last.tasks_done == last.tasks and last.ended_time.seconds > 0
    assert all(m.job.state == jobs_pb2.JOB_STATE_RUNNING for m in updates[:-1])
    got = client.get_job(job.id)
    assert got.job.state == jobs_pb2.JOB_STATE_SUCCEEDED and len(got.tasks) == job.tasks
    assert job.id in [j.id for j in client.list_jobs(kind="rebalance", page_size=1)]
    assert client.stop_job(job.id) == 0  # stopping a job that ended succeeds
    assert cairn.job_state_name(last.state) == "succeeded" and cairn.job_kind_name(last.spec.kind) == "rebalance"


def quiesce(client: cairn.Client) -> None:
    """Waits for the jobs the masters' controllers started by themselves (a
    cleanup refuses to start beside a running rebalance or cleanup)."""
    for j in list(client.list_jobs(state=jobs_pb2.JOB_STATE_RUNNING)):
        client.wait_job(j.id)


def test_clear_stale_and_cleanup(client: cairn.Client):
    quiesce(client)
    r = client.clear_stale()
    assert isinstance(dict(r.errors), dict)
    assert r.job.spec.kind == jobs_pb2.JOB_KIND_CLEANUP
    end = client.wait_job(r.job.id)
    assert end.state == jobs_pb2.JOB_STATE_SUCCEEDED, end.reason
    assert client.stop_clear_stale() == 0
    quiesce(client)
    r = client.start_cleanup(prefix="/placed", force=True)
    seen = []
    end = client.wait_job(r.job.id, progress=seen.append)
    assert seen and end.state == jobs_pb2.JOB_STATE_SUCCEEDED and end.spec.prefix == "/placed" and end.spec.force
    # The safety window: the job's own, or the cluster setting's written into its spec.
    quiesce(client)
    r = client.start_cleanup(prefix="/placed", dont_cleanup_time=90)
    assert client.wait_job(r.job.id).spec.dont_cleanup_time.ToSeconds() == 90
    quiesce(client)
    r = client.start_cleanup(prefix="/placed")
    assert client.wait_job(r.job.id).spec.dont_cleanup_time.ToSeconds() == 2 * 3600


def test_persist_then_free(dev: Cluster, client: cairn.Client, tmp: Path):
    data = random_bytes(70_000, 99)
    put(dev, tmp, "/persisted/a.bin", data)
    r = client.start_persist("/persisted/a.bin")
    end = client.wait_job(r.job.id)
    assert end.state == jobs_pb2.JOB_STATE_SUCCEEDED, end.reason
    cairn_file = client.get_file("/persisted/a.bin")
    assert cairn_file.persistence_state == namespace_pb2.PERSISTENCE_STATE_PERSISTED
    r = client.start_free(prefix="/persisted")
    end = client.wait_job(r.job.id)
    assert end.state == jobs_pb2.JOB_STATE_SUCCEEDED and end.counters.freed == 1
    assert dev.holders(["/persisted/a.bin"], client)["/persisted/a.bin"] == set()
    # No copy is cached now: the owner reads it from the UFS.
    assert client.read("/persisted/a.bin") == data
    with pytest.raises(ValueError):
        client.start_free()


def test_read_back_what_the_go_cli_wrote(dev: Cluster, client: cairn.Client, tmp: Path):
    sizes = [0, 1, 4 << 20, (4 << 20) + 3, (9 << 20) + 12345]
    for i, n in enumerate(sizes):
        data = random_bytes(n, 1000 + i)
        path = f"/go-written/{n}.bin"
        put(dev, tmp, path, data)
        f = client.get_file(path)
        assert f.length == n and f.checksum == xxhash.xxh64_intdigest(data)
        # The bulk endpoint, and DataService.Read alone.
        assert client.read(path) == data
        assert client.read(path, raw=False) == data
        out = tmp / "out.bin"
        with open(out, "wb") as fh:
            assert client.read_to(path, fh) == n
        assert out.read_bytes() == data
        if n > 10:
            for off, ln in [(0, 1), (3, 7), (n - 5, 5), (n - 5, 100), (n // 2, n)]:
                assert client.read(path, off, ln) == data[off:off + ln]
                assert client.read(path, off, ln, raw=False) == data[off:off + ln]
    # And the other way: the Go CLI reads what the CLI wrote and Python read.
    out = tmp / "go-out.bin"
    dev.cli("fs", "get", f"/go-written/{sizes[-1]}.bin", str(out))
    assert out.read_bytes() == client.read(f"/go-written/{sizes[-1]}.bin")


def test_read_a_file_only_the_ufs_has(dev: Cluster, client: cairn.Client, tmp: Path):
    data = random_bytes(300_000, 7)
    put(dev, tmp, "/through/t.bin", data, "--write-type", "THROUGH")
    assert dev.holders(["/through/t.bin"], client)["/through/t.bin"] == set()
    assert client.read("/through/t.bin", raw=False, no_cache=True) == data
    assert dev.holders(["/through/t.bin"], client)["/through/t.bin"] == set()  # no_cache
    assert client.read("/through/t.bin") == data  # read through the owner, cached on the way
    # A file the namespace lacks but the UFS has is loaded first.
    ufs = dev.root / "data" / "ufs" / "ufs-only"
    ufs.mkdir(parents=True, exist_ok=True)
    (ufs / "u.bin").write_bytes(b"from the ufs\n")
    assert client.read("/ufs-only/u.bin") == b"from the ufs\n"


def test_range_read_and_partial_caching(dev: Cluster, client: cairn.Client, tmp: Path):
    data = random_bytes(400_000, 11)
    for name in ("p.bin", "q.bin"):
        put(dev, tmp, f"/partial/{name}", data, "--write-type", "THROUGH")
    for raw in (True, False):
        # A range of a file nobody caches, without partial caching: the bytes,
        # from the UFS, and still no cached copy.
        assert client.read("/partial/p.bin", 1000, 5000, raw=raw, no_partial_caching=True) == data[1000:6000]
        assert dev.holders(["/partial/p.bin"], client)["/partial/p.bin"] == set()
    # With it (the default, cache.partial on), the range fills the file.
    assert client.read("/partial/q.bin", 1000, 5000) == data[1000:6000]
    eventually("the ranged miss to fill the cache", lambda: dev.holders(["/partial/q.bin"], client)["/partial/q.bin"] != set())
    assert client.read("/partial/q.bin", 399_990) == data[399_990:]


def test_namespace_get_list_delete(dev: Cluster, client: cairn.Client, tmp: Path):
    for i in range(5):
        put(dev, tmp, f"/ns/f{i}", f"file {i}\n".encode())
    files = list(client.list_files("/ns", page_size=2))
    assert [f.path for f in files] == [f"/ns/f{i}" for i in range(5)]
    f = client.get_file("/ns/f3")
    assert f.length == len(b"file 3\n") and f.version > 0 and f.write_type == namespace_pb2.WRITE_TYPE_MUST_CACHE
    assert client.delete_file("/ns/f3") == 1
    with pytest.raises(cairn.CairnError) as e:
        client.delete_file("/ns/f3")  # as a repeated delete answers
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(cairn.CairnError) as e:
        client.get_file("/ns/f3")
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    assert dev.holders(["/ns/f3"], client)["/ns/f3"] == set()  # the owners dropped their copies
    assert client.delete_file("/ns", recursive=True) == 4
    assert list(client.list_files("/ns")) == []
    with pytest.raises(cairn.CairnError) as e:
        client.read("/ns/f1")
    assert e.value.code == grpc.StatusCode.NOT_FOUND


def test_tokens_and_roles(dev: Cluster, client: cairn.Client, tmp: Path):
    put(dev, tmp, "/roles/r.bin", b"readable by a reader\n")
    assert client.whoami().name == "admin"
    with dev.client(token=None) as anon:
        with pytest.raises(cairn.CairnError) as e:
            anon.cluster_map()
    assert e.value.code == grpc.StatusCode.UNAUTHENTICATED
    reader = dev.cli("auth", "token", "create", "--name", "py-reader", "--role", "reader").stdout.decode().strip()
    token_file = dev.root / "reader.token"
    token_file.write_text(reader + "\n")
    with cairn.Client(dev.masters, token_file=str(token_file)) as r:
        assert r.whoami().name == "py-reader"
        assert len(r.cluster_map().workers) == 3
        assert r.read("/roles/r.bin") == b"readable by a reader\n"
        assert r.read("/roles/r.bin", raw=False) == b"readable by a reader\n"
        with pytest.raises(cairn.CairnError) as e:
            r.start_rebalance()
        assert e.value.code == grpc.StatusCode.PERMISSION_DENIED
    dev.cli("auth", "token", "revoke", "py-reader")
    with cairn.Client(dev.masters, token=reader, retry_budget=1) as r:
        with pytest.raises(cairn.CairnError) as e:
            r.cluster_map()
        assert e.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_consistency_header(dev: Cluster):
    for level in (cairn.LINEARIZABLE, cairn.STALE, cairn.STALE_ANY):
        with dev.client(consistency=level) as c:
            assert len(c.cluster_map().workers) == 3
    with pytest.raises(ValueError):
        dev.client(consistency="eventual")


def test_errors_are_cairn_errors(client: cairn.Client):
    with pytest.raises(cairn.CairnError) as e:
        client.get_file("relative/path")
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and e.value.master == client.masters[0]
    with pytest.raises(cairn.CairnError) as e:
        client.get_job(10**9)
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(ValueError):
        client.start_job("defrag")


def test_unreachable_master_alone_is_unavailable():
    with cairn.Client(["127.0.0.1:1"], retry_budget=0.3) as c:
        with pytest.raises(cairn.CairnError) as e:
            c.cluster_map()
    assert e.value.code == grpc.StatusCode.UNAVAILABLE


def test_tls(cairn_bin: str, tmp_path_factory, tmp: Path):
    """cairn dev --tls: the client trusts the dev CA (root_certificates) for
    the masters and the workers, over gRPC and the bulk endpoint alike."""
    c = start_dev(cairn_bin, tmp_path_factory.mktemp("dev-tls"), "--tls")
    try:
        assert c.ca is not None
        with c.client() as cl:
            assert len(cl.cluster_map().workers) == 3
            data = random_bytes(5 << 20, 5)
            put(c, tmp, "/tls/x.bin", data)
            assert cl.read("/tls/x.bin") == data
            assert cl.read("/tls/x.bin", raw=False) == data
        # Without the CA the servers' certificates are not trusted.
        with cairn.Client(c.masters, token=c.token, retry_budget=0.5, timeout=2) as bad:
            with pytest.raises(cairn.CairnError):
                bad.cluster_map()
    finally:
        c.stop()


def test_example_clear_stale(dev: Cluster, client: cairn.Client):
    quiesce(client)
    r = subprocess.run(
        [sys.executable, str(SDK / "examples" / "clear_stale.py"), "--masters", ",".join(dev.masters)],
        env={**os.environ, "CAIRN_TOKEN": dev.token},
        capture_output=True, timeout=120,
    )
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    assert "errors: {}" in out and " succeeded: scanned " in out, out
