"""The thin client: control calls with failover across masters, placement,
jobs, the namespace, and reading a file's bytes from its owners.

Every method either returns the generated protobuf messages (``cairn.v1.*_pb2``)
or plain Python values, and raises :class:`cairn.CairnError` when a call fails.
"""

from __future__ import annotations

import base64
import http.client
import os
import ssl
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import (
    IO,
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

import grpc

from cairn.errors import CairnError
from cairn.placement import Placement
from cairn.v1 import auth_pb2, auth_pb2_grpc
from cairn.v1 import cluster_pb2, cluster_pb2_grpc
from cairn.v1 import data_pb2, data_pb2_grpc
from cairn.v1 import events_pb2_grpc
from cairn.v1 import jobs_pb2, jobs_pb2_grpc
from cairn.v1 import namespace_pb2, namespace_pb2_grpc
from cairn.v1 import operator_pb2, operator_pb2_grpc

__all__ = [
    "Client",
    "Services",
    "DEFAULT_MASTERS",
    "LINEARIZABLE",
    "STALE",
    "STALE_ANY",
    "parse_masters",
    "job_kind",
]

T = TypeVar("T")

DEFAULT_MASTERS = "127.0.0.1:7700"
"""Where a client looks when given no masters (as the CLI does)."""

# Read consistencies, sent as the cairn-consistency header (see
# docs/cluster-and-failover.md, "Reads").
LINEARIZABLE = "linearizable"
"""The default: a read reflects every write acknowledged before it began."""
STALE = "stale"
"""The answering master replies from its own state at once (maybe a little behind
the leader); refused by a master that has heard from no leader for a while."""
STALE_ANY = "stale-any"
"""Like STALE, also from a master cut off from the leader, however old its state."""

_CONSISTENCIES = (LINEARIZABLE, STALE, STALE_ANY)

_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE

# ReadResponse chunks are 4 MiB of data plus framing: above gRPC's default
# 4 MiB receive limit.
_MAX_MESSAGE = 64 << 20

_KINDS = {
    "rebalance": jobs_pb2.JOB_KIND_REBALANCE,
    "cleanup": jobs_pb2.JOB_KIND_CLEANUP,
    "clear-stale": jobs_pb2.JOB_KIND_CLEANUP,
    "free": jobs_pb2.JOB_KIND_FREE,
    "persist": jobs_pb2.JOB_KIND_PERSIST,
}


def job_kind(kind: Union[str, int]) -> int:
    """A ``JobKind`` value from a name as the CLI takes it (``rebalance``,
    ``cleanup``/``clear-stale``, ``free``, ``persist``) or from the enum itself."""
    if isinstance(kind, int):
        return kind
    k = _KINDS.get(kind.lower())
    if k is None:
        raise ValueError(f"unknown job kind {kind!r}: want rebalance, cleanup (clear-stale), free or persist")
    return k


def parse_masters(masters: Union[str, Iterable[str]]) -> List[str]:
    """Splits ``"host:port,host:port"`` (or takes a list), drops ``http://``
    and ``https://``, and checks every address has a port."""
    items = masters.split(",") if isinstance(masters, str) else list(masters)
    out = []
    for a in items:
        a = a.strip()
        for prefix in ("http://", "https://"):
            if a.startswith(prefix):
                a = a[len(prefix):]
        if not a:
            continue
        if ":" not in a:
            raise ValueError(f"master address {a!r} has no port (want host:port)")
        out.append(a)
    if not out:
        raise ValueError("no master addresses given")
    return out


@dataclass
class Services:
    """The generated stubs of one master, and what every call to it carries.

    ``Client.call`` hands one of these to its function; use ``metadata`` and
    ``timeout`` on every call you make with the stubs, e.g.
    ``s.operator.GetStatus(req, metadata=s.metadata, timeout=s.timeout)``.
    """

    address: str
    cluster: cluster_pb2_grpc.ClusterServiceStub
    namespace: namespace_pb2_grpc.NamespaceServiceStub
    jobs: jobs_pb2_grpc.JobServiceStub
    operator: operator_pb2_grpc.OperatorServiceStub
    events: events_pb2_grpc.EventServiceStub
    auth: auth_pb2_grpc.AuthServiceStub
    metadata: Tuple[Tuple[str, str], ...]
    timeout: Optional[float]
    channel: grpc.Channel


def _connect_failed(err: grpc.RpcError) -> bool:
    """Whether a call failed because its channel could not connect (rather
    than with the server's own Unavailable)."""
    try:
        details = (err.details() or "").lower()
    except Exception:  # not a call's error
        return False
    return "failed to connect" in details or "connection refused" in details or "socket closed" in details


class _ReadPos:
    """How far a read has got (shared by the owner attempts of one read)."""

    __slots__ = ("off",)

    def __init__(self, off: int) -> None:
        self.off = off


class _OwnerFailed(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Watchdog:
    """Cancels a stream that has received nothing for ``stall`` seconds while
    it was waiting for the server (time the caller spends on a chunk does not
    count): a stopped worker must not hang a read."""

    def __init__(self, call: Any, stall: Optional[float]) -> None:
        self._call = call
        self._stall = stall
        self._last = time.monotonic()
        self._held = False
        self._done = threading.Event()
        self.fired = False
        if stall and stall > 0:
            t = threading.Thread(target=self._run, name="cairn-read-watchdog", daemon=True)
            t.start()

    def _run(self) -> None:
        assert self._stall is not None
        step = min(1.0, self._stall / 4)
        while not self._done.wait(step):
            if not self._held and time.monotonic() - self._last > self._stall:
                self.fired = True
                self._call.cancel()
                return

    def kick(self) -> None:
        self._last = time.monotonic()

    def hold(self) -> None:
        self._held = True

    def release(self) -> None:
        self._last = time.monotonic()
        self._held = False

    def stop(self) -> None:
        self._done.set()


class Client:
    """A client of a cairn cluster: any of its masters, and its workers for data.

    ``masters`` is a list of ``host:port`` API addresses or one
    comma-separated string (default ``127.0.0.1:7700``). Give every master:
    a call that fails with ``UNAVAILABLE`` (the master is unreachable, has no
    leader, or leadership moved) moves on to the next master, round after
    round, until ``retry_budget`` seconds have passed; any other error is
    returned at once. Masters forward writes to the leader themselves, so the
    client never needs to know which one leads.

    This is the Go SDK's rule (``client.Do``), writes included. A master
    answers ``UNAVAILABLE`` to a write either when nothing was done (no
    leader; the master stopped leading before the write was made) or when
    leadership moved while the write was in flight, and then says so ("may
    or may not have been made"). Moving on repeats such a write on the next
    master. The writes this client makes are safe to repeat, or say so when
    repeated: starting a job equal to a running one returns the running one
    (``created`` False), stopping a job that is not running succeeds,
    setting R or a setting to the value it has changes nothing; a delete
    whose first attempt was made answers ``NOT_FOUND`` when repeated. A
    call that fails in another way (a deadline, a refusal) is not repeated.
    Writes made through :meth:`call` are the caller's to judge.

    Auth: ``token`` (or ``token_file``) is sent as ``authorization: Bearer
    TOKEN`` with every call, to the masters and to the workers; the token's
    role decides what it may do (docs/security.md). TLS: give
    ``root_certificates`` (PEM bytes of the CA that signed the cluster's
    certificates) and, under mutual TLS, ``certificate_chain`` and
    ``private_key`` (PEM bytes of this client's certificate and key);
    ``server_name`` overrides the name checked in the servers' certificates;
    ``tls=True`` alone trusts the system's CAs.

    ``consistency`` is how fresh reads must be: :data:`LINEARIZABLE` (the
    default), :data:`STALE` or :data:`STALE_ANY`. ``timeout`` bounds each
    unary call (seconds; None: no bound). Streams (watches, reads) have no
    overall deadline.

    A client is safe to use from several threads. Close it (or use it in a
    ``with`` block) to release its connections.
    """

    def __init__(
        self,
        masters: Union[str, Sequence[str]] = DEFAULT_MASTERS,
        token: Optional[str] = None,
        *,
        token_file: Optional[str] = None,
        consistency: Optional[str] = None,
        root_certificates: Optional[bytes] = None,
        private_key: Optional[bytes] = None,
        certificate_chain: Optional[bytes] = None,
        server_name: Optional[str] = None,
        tls: bool = False,
        retry_budget: float = 15.0,
        timeout: Optional[float] = 30.0,
    ) -> None:
        if token is None and token_file is not None:
            with open(token_file, "r", encoding="utf-8") as f:
                token = f.read().strip()
        if consistency is not None and consistency not in _CONSISTENCIES:
            raise ValueError(f"consistency {consistency!r}: want one of {', '.join(_CONSISTENCIES)}")
        self._addrs = parse_masters(masters)
        self._retry_budget = retry_budget
        self._timeout = timeout
        self._tls = tls or root_certificates is not None or certificate_chain is not None
        self._tls_files = (root_certificates, certificate_chain, private_key)
        self._sslctx: Optional[ssl.SSLContext] = None
        self._server_name = server_name
        self._creds = (
            grpc.ssl_channel_credentials(
                root_certificates=root_certificates,
                private_key=private_key,
                certificate_chain=certificate_chain,
            )
            if self._tls
            else None
        )
        self._options: List[Tuple[str, Any]] = [
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.max_send_message_length", _MAX_MESSAGE),
            # Dial a master that was down again soon after it returns (gRPC's
            # default backoff grows to two minutes), as the Go SDK, which
            # dials per call, does.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 2000),
            # A channel of its own per master: a new channel (see
            # _redial_master) must not share the old one's subchannel.
            ("grpc.use_local_subchannel_pool", 1),
        ]
        if server_name:
            self._options.append(("grpc.ssl_target_name_override", server_name))
        md: List[Tuple[str, str]] = []
        if token:
            md.append(("authorization", "Bearer " + token))
        self._data_md = tuple(md)
        self._data_md_http = tuple(("Authorization", v) for k, v in md if k == "authorization")
        if consistency and consistency != LINEARIZABLE:
            md.append(("cairn-consistency", consistency))
        self._md = tuple(md)
        self._lock = threading.Lock()
        self._good = 0
        self._services: List[Services] = [self._dial_master(a) for a in self._addrs]
        self._workers: Dict[str, Tuple[grpc.Channel, data_pb2_grpc.DataServiceStub]] = {}

    # ------------------------------------------------------------------ plumbing

    def _channel(self, addr: str) -> grpc.Channel:
        if self._creds is not None:
            return grpc.secure_channel(addr, self._creds, options=self._options)
        return grpc.insecure_channel(addr, options=self._options)

    def _dial_master(self, addr: str) -> Services:
        ch = self._channel(addr)
        return Services(
            address=addr,
            cluster=cluster_pb2_grpc.ClusterServiceStub(ch),
            namespace=namespace_pb2_grpc.NamespaceServiceStub(ch),
            jobs=jobs_pb2_grpc.JobServiceStub(ch),
            operator=operator_pb2_grpc.OperatorServiceStub(ch),
            events=events_pb2_grpc.EventServiceStub(ch),
            auth=auth_pb2_grpc.AuthServiceStub(ch),
            metadata=self._md,
            timeout=self._timeout,
            channel=ch,
        )

    def _redial_master(self, i: int, s: Services, err: grpc.RpcError) -> None:
        """After a call to master i could not connect, gives it a new channel,
        so that the next call dials it afresh (as the Go SDK does) instead of
        waiting out gRPC's reconnect backoff, which in this gRPC version can
        keep a channel failing for seconds after the master is back."""
        if not _connect_failed(err):
            return
        with self._lock:
            if self._services[i] is not s:
                return  # another thread did it
            self._services[i] = self._dial_master(s.address)
        s.channel.close()

    def _redial_worker(self, addr: str, err: grpc.RpcError) -> None:
        if not _connect_failed(err):
            return
        with self._lock:
            w = self._workers.pop(addr, None)
        if w is not None:
            w[0].close()

    def close(self) -> None:
        """Closes every connection to the masters and workers."""
        with self._lock:
            services, self._services = self._services, []
            workers, self._workers = self._workers, {}
        for s in services:
            s.channel.close()
        for ch, _ in workers.values():
            ch.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def masters(self) -> List[str]:
        """The masters' addresses, in the order given."""
        return list(self._addrs)

    def call(self, fn: Callable[[Services], T]) -> T:
        """Calls ``fn`` with one master's :class:`Services`, starting with the
        master that answered last, and moves on to the next master while
        ``fn`` raises a ``grpc.RpcError`` with code ``UNAVAILABLE``. Gives up
        when the retry budget is spent, raising the last error as a
        :class:`CairnError`; any other ``RpcError`` is raised at once as a
        CairnError. After every full round without an answer it waits 100 ms
        (an election takes about a second).

        This is the escape hatch for any RPC the client has no method for::

            st = c.call(lambda s: s.operator.GetStatus(
                operator_pb2.GetStatusRequest(), metadata=s.metadata, timeout=s.timeout))
        """
        deadline = time.monotonic() + self._retry_budget
        with self._lock:
            start = self._good
        n = len(self._services)
        if n == 0:
            raise ValueError("the client is closed")
        attempt = 0
        while True:
            i = (start + attempt) % n
            s = self._services[i]
            try:
                out = fn(s)
            except grpc.RpcError as e:
                err = CairnError.from_rpc(e, s.address)
                if err.code == _UNAVAILABLE:
                    self._redial_master(i, s, e)
                if err.code != _UNAVAILABLE or time.monotonic() >= deadline:
                    raise err from e
                attempt += 1
                if attempt % n == 0:
                    time.sleep(0.1)
                continue
            with self._lock:
                self._good = i
            return out

    def _stream(
        self,
        open_call: Callable[[Services], Any],
        on_message: Callable[[Any], bool],
    ) -> Iterator[Any]:
        """Yields the messages of a server stream opened by ``open_call`` on
        one master after another: on ``UNAVAILABLE`` (before or during the
        stream) it opens the stream again on the next master, until the
        retry budget (counted from the last message) is spent.
        ``on_message`` is told every message and returns True when the
        stream has said all it will (then the generator ends); a stream that
        ends before that is opened again after 200 ms."""
        deadline = time.monotonic() + self._retry_budget
        with self._lock:
            start = self._good
        n = len(self._services)
        if n == 0:
            raise ValueError("the client is closed")
        attempt = 0
        while True:
            i = (start + attempt) % n
            s = self._services[i]
            call = open_call(s)
            try:
                for m in call:
                    deadline = time.monotonic() + self._retry_budget
                    with self._lock:
                        self._good = i
                    end = on_message(m)
                    yield m
                    if end:
                        return
            except grpc.RpcError as e:
                err = CairnError.from_rpc(e, s.address)
                if err.code == _UNAVAILABLE:
                    self._redial_master(i, s, e)
                if err.code != _UNAVAILABLE or time.monotonic() >= deadline:
                    raise err from e
                attempt += 1
                if attempt % n == 0:
                    time.sleep(0.1)
                continue
            finally:
                call.cancel()
            if time.monotonic() >= deadline:
                raise CairnError(_UNAVAILABLE, "the stream kept ending before it was complete", s.address)
            time.sleep(0.2)

    def _unary(self, method: Callable[[Services], Callable[..., T]], request: Any) -> T:
        return self.call(lambda s: method(s)(request, metadata=s.metadata, timeout=s.timeout))

    # ------------------------------------------------------------------ cluster

    def get_cluster_map(self, epoch: int = 0) -> cluster_pb2.GetClusterMapResponse:
        """The cluster map at ``epoch`` (0: the current one), every worker the
        journal knows (any state), and the cluster id."""
        return self._unary(lambda s: s.cluster.GetClusterMap, cluster_pb2.GetClusterMapRequest(epoch=epoch))

    def cluster_map(self, epoch: int = 0) -> cluster_pb2.ClusterMap:
        """The cluster map (ACTIVE workers, R) at ``epoch`` (0: the current one)."""
        return self.get_cluster_map(epoch).map

    def workers(self) -> List[cluster_pb2.Worker]:
        """Every worker the journal knows, in any state, sorted by id."""
        return list(self.get_cluster_map().workers)

    def watch_cluster_map(self, after_epoch: int = 0) -> Iterator[cluster_pb2.ClusterMap]:
        """Yields the current map (unless ``after_epoch`` is given), then every
        new epoch, for as long as the caller iterates. Rides through the loss
        of a master: the watch resumes on the next one after the last epoch
        seen."""
        last = [after_epoch]

        def open_call(s: Services) -> Any:
            return s.cluster.WatchClusterMap(
                cluster_pb2.WatchClusterMapRequest(after_epoch=last[0]), metadata=s.metadata
            )

        def seen(m: cluster_pb2.WatchClusterMapResponse) -> bool:
            last[0] = max(last[0], m.map.epoch)
            return False

        for m in self._stream(open_call, seen):
            yield m.map

    def placement(self, epoch: int = 0) -> Placement:
        """The :class:`Placement` of the map at ``epoch`` (0: the current one),
        to place many paths with one call to the masters."""
        return Placement.from_cluster_map(self.cluster_map(epoch))

    def owners(self, path: str, replication: Optional[int] = None) -> List[str]:
        """The ids of the workers that own ``path`` under the current map,
        primary first, computed here by the spec in placement/doc.go.
        ``replication`` overrides the map's R (a file's own replication)."""
        return self.placement().owners(path, replication)

    def set_replication(self, replication: int) -> cluster_pb2.ClusterMap:
        """Sets the replication factor R (a new epoch when it changes)."""
        return self._unary(
            lambda s: s.cluster.SetReplication, cluster_pb2.SetReplicationRequest(replication=replication)
        ).map

    # ------------------------------------------------------------------ jobs

    def start_job(
        self,
        kind: Union[str, int],
        *,
        prefix: str = "",
        force: bool = False,
        paths: Sequence[str] = (),
        workers: Sequence[str] = (),
        epoch: int = 0,
        path: str = "",
        version: int = 0,
        ufs_path: str = "",
        delivery_limit: int = 0,
        requested_by: str = "",
    ) -> jobs_pb2.StartJobResponse:
        """Starts a job, or returns the equal job that is already running
        (``created`` is then False). ``errors`` in the answer says, per worker,
        why it got no task.

        - ``rebalance``: send every cached file to its owners under ``epoch``
          (0: the current map).
        - ``cleanup`` (``clear-stale``): remove verified stale copies under
          ``prefix``; ``force`` also removes unverifiable or diverged ones;
          ``workers`` limits it to some workers.
        - ``free``: drop cached copies of persisted files under ``prefix`` or
          of ``paths``.
        - ``persist``: upload ``path`` at ``version`` (0: the namespace's
          current version) to the UFS (at ``ufs_path``, default the file's
          own). The file must be waiting for an upload (TO_BE_PERSISTED):
          :meth:`start_persist` marks it first.
        """
        k = job_kind(kind)
        if k == jobs_pb2.JOB_KIND_FREE and not prefix and not paths:
            raise ValueError("free needs prefix or paths: say what to free")
        if k == jobs_pb2.JOB_KIND_PERSIST:
            if not path:
                raise ValueError("persist needs path")
            if not version:
                f = self.get_file(path)
                version = f.version
                ufs_path = ufs_path or f.ufs_path
        spec = jobs_pb2.JobSpec(
            kind=k,
            epoch=epoch,
            prefix=prefix,
            force=force,
            paths=list(paths),
            path=path,
            version=version,
            workers=list(workers),
            ufs_path=ufs_path,
        )
        req = jobs_pb2.StartJobRequest(spec=spec, delivery_limit=delivery_limit, requested_by=requested_by)
        return self._unary(lambda s: s.jobs.StartJob, req)

    def start_rebalance(self, epoch: int = 0, **kw: Any) -> jobs_pb2.StartJobResponse:
        """Starts a rebalance by the current map (see :meth:`start_job`)."""
        return self.start_job("rebalance", epoch=epoch, **kw)

    def start_cleanup(
        self, prefix: str = "", force: bool = False, workers: Sequence[str] = (), **kw: Any
    ) -> jobs_pb2.StartJobResponse:
        """Starts a cleanup (see :meth:`start_job`)."""
        return self.start_job("cleanup", prefix=prefix, force=force, workers=workers, **kw)

    def start_free(self, prefix: str = "", paths: Sequence[str] = (), **kw: Any) -> jobs_pb2.StartJobResponse:
        """Starts a free of persisted files' cached copies (see :meth:`start_job`)."""
        return self.start_job("free", prefix=prefix, paths=paths, **kw)

    def start_persist(self, path: str, ufs_path: str = "", **kw: Any) -> jobs_pb2.StartJobResponse:
        """Uploads one file to the UFS as a job: marks it to be persisted
        (``persist_file``, as ``cairn fs persist`` does) and starts its
        PERSIST job, or returns the equal one the masters' persistence
        controller started meanwhile (``created`` False)."""
        f = self.get_file(path)
        if f.persistence_state in (namespace_pb2.PERSISTENCE_STATE_NOT_PERSISTED, namespace_pb2.PERSISTENCE_STATE_LOST):
            f = self.persist_file(path)
        try:
            return self.start_job("persist", path=f.path, version=f.version, ufs_path=ufs_path or f.ufs_path, **kw)
        except CairnError as e:
            if e.code != grpc.StatusCode.FAILED_PRECONDITION:
                raise
            # The controller's job may have uploaded it already: return that job.
            for j in self.list_jobs(kind="persist", page_size=100):
                if j.spec.path == f.path and j.spec.version == f.version:
                    return jobs_pb2.StartJobResponse(job=j, created=False)
            raise

    def stop_job(self, job_id: int = 0, kind: Union[str, int, None] = None, reason: str = "") -> int:
        """Stops a job by id, or (``job_id`` 0) every running job of ``kind``.
        Stopping a job that is not running succeeds. Returns how many jobs
        were running and are now cancelled."""
        req = jobs_pb2.StopJobRequest(id=job_id, kind=job_kind(kind) if kind is not None else 0, reason=reason)
        return self._unary(lambda s: s.jobs.StopJob, req).stopped

    def get_job(self, job_id: int) -> jobs_pb2.GetJobResponse:
        """A job (``.job``) and its tasks (``.tasks``)."""
        return self._unary(lambda s: s.jobs.GetJob, jobs_pb2.GetJobRequest(id=job_id))

    def list_jobs(
        self,
        kind: Union[str, int, None] = None,
        state: Optional[int] = None,
        page_size: int = 0,
    ) -> Iterator[jobs_pb2.Job]:
        """Every job (newest first), filtered by kind and ``JobState``, fetched
        a page at a time as the caller iterates."""
        token = ""
        while True:
            req = jobs_pb2.ListJobsRequest(
                kind=job_kind(kind) if kind is not None else 0,
                state=state or 0,
                page_size=page_size,
                page_token=token,
            )
            resp = self._unary(lambda s: s.jobs.ListJobs, req)
            yield from resp.jobs
            token = resp.next_page_token
            if not token:
                return

    def watch_job(self, job_id: int) -> Iterator[jobs_pb2.WatchJobResponse]:
        """Yields the job and its tasks (``.job``, ``.tasks``) now and whenever
        they change, until the job ends: the last message shows its final
        state (SUCCEEDED, FAILED or CANCELLED). Rides through the loss of a
        master (the watch reopens on the next one and starts with the job as
        it stands)."""

        def open_call(s: Services) -> Any:
            return s.jobs.WatchJob(jobs_pb2.WatchJobRequest(id=job_id), metadata=s.metadata)

        return self._stream(open_call, lambda m: m.job.state != jobs_pb2.JOB_STATE_RUNNING)

    def wait_job(self, job_id: int, progress: Optional[Callable[[jobs_pb2.WatchJobResponse], None]] = None) -> jobs_pb2.Job:
        """Follows :meth:`watch_job` to the end (calling ``progress`` with each
        update) and returns the job in its final state."""
        last = None
        for m in self.watch_job(job_id):
            last = m
            if progress is not None:
                progress(m)
        assert last is not None
        return last.job

    def clear_stale(self, force: bool = False) -> jobs_pb2.ClearStaleResponse:
        """Starts a cleanup on every ACTIVE worker (the seed API's
        ``POST /api/v1/cache {"op":"clear-stale"}``), or returns the running
        one. ``.errors`` maps each worker that got no task to why; ``.job``
        is the job; ``.created`` is False when one was already running."""
        return self._unary(lambda s: s.jobs.ClearStale, jobs_pb2.ClearStaleRequest(force=force))

    def stop_clear_stale(self) -> int:
        """Stops running cleanups; returns how many were stopped (0 is fine)."""
        return self._unary(lambda s: s.jobs.StopClearStale, jobs_pb2.StopClearStaleRequest()).stopped

    def get_settings(self) -> jobs_pb2.Settings:
        """The job controllers' settings."""
        return self._unary(lambda s: s.jobs.GetSettings, jobs_pb2.GetSettingsRequest()).settings

    def update_setting(self, name: str, value: str) -> jobs_pb2.Settings:
        """Changes one setting (``rebalance.enabled``, ``cleanup.auto``, ``jobs.retention``)."""
        return self._unary(
            lambda s: s.jobs.UpdateSetting, jobs_pb2.UpdateSettingRequest(name=name, value=value)
        ).settings

    # ------------------------------------------------------------------ namespace

    def get_file(self, path: str) -> namespace_pb2.File:
        """The namespace's record of ``path`` (NOT_FOUND when it has none)."""
        return self._unary(lambda s: s.namespace.GetFile, namespace_pb2.GetFileRequest(path=path)).file

    def list_files(self, prefix: str = "/", page_size: int = 0) -> Iterator[namespace_pb2.File]:
        """Every file at or under ``prefix``, in path order, fetched a page at
        a time as the caller iterates."""
        after = ""
        while True:
            req = namespace_pb2.ListFilesRequest(prefix=prefix, after=after, limit=page_size)
            resp = self._unary(lambda s: s.namespace.ListFiles, req)
            yield from resp.files
            if not resp.next_after:
                return
            after = resp.next_after

    def delete_file(self, path: str, recursive: bool = False) -> int:
        """Removes ``path`` (and, with ``recursive``, everything under it) from
        the namespace, then asks each file's owners to drop their cached
        copies (best effort: cleanup removes whatever remains). Returns how
        many files the namespace removed."""
        victims: List[namespace_pb2.File] = []
        try:
            victims = list(self.list_files(path))
        except CairnError as e:
            if e.code != grpc.StatusCode.NOT_FOUND:
                raise
        n = self._unary(
            lambda s: s.namespace.DeleteFile, namespace_pb2.DeleteFileRequest(path=path, recursive=recursive)
        ).deleted
        try:
            pl = self.placement()
        except CairnError:
            return n  # the namespace no longer has them; cleanup removes the copies
        for f in victims:
            for w in pl.owner_workers(f.path, f.replication):
                try:
                    self._data(w.address).Delete(
                        data_pb2.DataServiceDeleteRequest(path=f.path, version=f.version),
                        metadata=self._data_md,
                        timeout=self._timeout,
                    )
                except grpc.RpcError:
                    pass
        return n

    def persist_file(self, path: str) -> namespace_pb2.File:
        """Asks for ``path`` to be uploaded to the UFS (``cairn fs persist``)."""
        return self._unary(lambda s: s.namespace.PersistFile, namespace_pb2.PersistFileRequest(path=path)).file

    def load_file(self, path: str) -> namespace_pb2.File:
        """Records a file the UFS has but the namespace lacks."""
        return self._unary(lambda s: s.namespace.LoadFile, namespace_pb2.LoadFileRequest(path=path)).file

    # ------------------------------------------------------------------ data

    def _data(self, addr: str) -> data_pb2_grpc.DataServiceStub:
        with self._lock:
            w = self._workers.get(addr)
            if w is None:
                ch = self._channel(addr)
                w = (ch, data_pb2_grpc.DataServiceStub(ch))
                self._workers[addr] = w
            return w[1]

    def _stat_or_load(self, path: str) -> namespace_pb2.File:
        try:
            return self.get_file(path)
        except CairnError as e:
            if e.code != grpc.StatusCode.NOT_FOUND:
                raise
        # The namespace lacks it; the UFS may have it (as the Go SDK does).
        return self.load_file(path)

    def read_chunks(
        self,
        path: str,
        offset: int = 0,
        length: Optional[int] = None,
        *,
        no_cache: bool = False,
        stall_timeout: Optional[float] = 60.0,
        raw: bool = True,
    ) -> Iterator[bytes]:
        """Yields the bytes of the current version of ``path`` from
        ``offset`` (``length`` bytes, or to the end), as they arrive.

        The way the Go SDK reads (client/files_get.go): the masters give the
        file's record (a file only the UFS has is loaded into the namespace
        first) and the cluster map; the owners are computed here; each owner
        in rank order is asked, and where one fails the next resumes at the
        byte the last one stopped at. From one owner, the bytes come from the
        worker's bulk endpoint (``GET /data/v1/read``, raw bytes without
        message framing; skipped with ``raw=False`` or ``no_cache``), and
        where that cannot serve them (or stops), over ``DataService.Read``
        from where it stopped. An owner that does not cache the file reads
        it from the UFS (and caches it, unless ``no_cache``). An owner that sends nothing for ``stall_timeout``
        seconds is given up on (None: never). When no owner could serve the
        file and the map has moved on meanwhile, the rest is read once more
        from the new map's owners. Raises :class:`CairnError`: ``NOT_FOUND``
        when every owner said so, ``DATA_LOSS`` when one found the only
        copies untrustworthy, else ``UNAVAILABLE``.
        """
        f = self._stat_or_load(path)
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("offset and length must not be negative")
        end = f.length if length is None else min(f.length, offset + length)
        pos = _ReadPos(min(offset, end))
        pl = self.placement()
        try:
            yield from self._read_owners(pl, f, pos, end, no_cache, stall_timeout, raw)
            return
        except CairnError as e:
            if e.code not in (grpc.StatusCode.NOT_FOUND, _UNAVAILABLE):
                raise
            first = e
        # The map may have moved on (a worker left or joined): the owners
        # may be others now. Go on once more under the new map.
        try:
            pl2 = self.placement()
        except CairnError:
            raise first from None
        if pl2.epoch == pl.epoch:
            raise first
        yield from self._read_owners(pl2, f, pos, end, no_cache, stall_timeout, raw)

    def read(self, path: str, offset: int = 0, length: Optional[int] = None, **kw: Any) -> bytes:
        """The bytes of ``path`` (see :meth:`read_chunks`) as one ``bytes``."""
        return b"".join(self.read_chunks(path, offset, length, **kw))

    def read_to(self, path: str, out: IO[bytes], **kw: Any) -> int:
        """Writes the bytes of ``path`` to the binary file ``out`` (see
        :meth:`read_chunks`); returns how many were written."""
        n = 0
        for chunk in self.read_chunks(path, **kw):
            out.write(chunk)
            n += len(chunk)
        return n

    def _read_owners(
        self,
        pl: Placement,
        f: namespace_pb2.File,
        pos: _ReadPos,
        end: int,
        no_cache: bool,
        stall: Optional[float],
        raw: bool,
    ) -> Iterator[bytes]:
        owners = pl.owner_workers(f.path, f.replication)
        if not owners:
            raise CairnError(_UNAVAILABLE, f"no ACTIVE workers in the cluster map (epoch {pl.epoch})")
        errs: List[Tuple[str, grpc.StatusCode, str]] = []
        for w in owners:
            if pos.off >= end and end > 0:
                return
            try:
                yield from self._read_from(w.address, f, pos, end, no_cache, stall, raw)
                return
            except _OwnerFailed as e:
                errs.append((w.id, e.code, e.message))
        code = grpc.StatusCode.NOT_FOUND
        for _, c, _ in errs:
            if c == grpc.StatusCode.DATA_LOSS:
                code = c
            elif c != grpc.StatusCode.NOT_FOUND and code != grpc.StatusCode.DATA_LOSS:
                code = _UNAVAILABLE
        why = "; ".join(f"{wid}: {c.name}: {m}" for wid, c, m in errs)
        raise CairnError(
            code, f"{f.path} version {f.version}: no owner under epoch {pl.epoch} could serve it: {why}"
        )

    def _read_from(
        self,
        addr: str,
        f: namespace_pb2.File,
        pos: _ReadPos,
        end: int,
        no_cache: bool,
        stall: Optional[float],
        raw: bool,
    ) -> Iterator[bytes]:
        if raw and not no_cache:
            done = yield from self._raw_read(addr, f, pos, end, stall)
            if done:
                return
        req = data_pb2.ReadRequest(
            path=f.path,
            version=f.version,
            offset=pos.off,
            length=0 if end == f.length else end - pos.off,
            ufs_fallback=f,
            no_cache=no_cache,
        )
        call = self._data(addr).Read(req, metadata=self._data_md)
        dog = _Watchdog(call, stall)
        try:
            for m in call:
                dog.kick()
                chunk = m.chunk
                if not chunk:
                    continue
                if pos.off + len(chunk) > end:
                    chunk = chunk[: end - pos.off]
                pos.off += len(chunk)
                dog.hold()
                yield chunk
                dog.release()
                if pos.off >= end:
                    break
        except grpc.RpcError as e:
            if dog.fired:
                raise _OwnerFailed(_UNAVAILABLE, f"{addr} sent nothing for {stall}s") from e
            if e.code() == _UNAVAILABLE:
                self._redial_worker(addr, e)
            raise _OwnerFailed(e.code(), e.details() or "") from e
        finally:
            dog.stop()
            call.cancel()
        if pos.off < end:
            raise _OwnerFailed(_UNAVAILABLE, f"{addr} ended the read at byte {pos.off} of {end}")

    def _ssl_context(self) -> Optional[ssl.SSLContext]:
        """The TLS settings of the gRPC channels, for the bulk endpoint."""
        if not self._tls:
            return None
        with self._lock:
            if self._sslctx is None:
                roots = self._tls_files[0]
                ctx = ssl.create_default_context(cadata=roots.decode("ascii") if roots else None)
                cert, key = self._tls_files[1], self._tls_files[2]
                if cert is not None:
                    # ssl loads a client certificate from files only.
                    with tempfile.TemporaryDirectory(prefix="cairn-tls-") as d:
                        cf, kf = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
                        with open(cf, "wb") as fh:
                            fh.write(cert)
                        with open(os.open(kf, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as fh:
                            fh.write(key or b"")
                        ctx.load_cert_chain(cf, kf if key else None)
                self._sslctx = ctx
            return self._sslctx

    def _raw_read(
        self, addr: str, f: namespace_pb2.File, pos: _ReadPos, end: int, stall: Optional[float]
    ) -> Iterator[bytes]:
        """Reads from ``pos`` to ``end`` through the owner's bulk endpoint,
        yielding what arrives; returns True when it reached the end. Anything
        amiss (not cached and no UFS copy, a cut connection, a stall) returns
        False and leaves the rest to DataService.Read, as the Go SDK does."""
        if self._server_name:
            return False  # the bulk endpoint is dialled by address: no name override
        host, _, port = addr.rpartition(":")
        host = host.strip("[]")
        q = {"path": f.path, "version": str(f.version), "offset": str(pos.off)}
        if end != f.length:
            q["length"] = str(end - pos.off)
        headers = dict(self._data_md_http)
        rec = f.SerializeToString()
        if len(rec) < 6 << 10:
            # With the file's record, the owner reads a miss from the UFS here too.
            headers["X-Cairn-File"] = base64.b64encode(rec).decode("ascii")
        timeout = stall if stall and stall > 0 else None
        ctx = self._ssl_context()
        conn: http.client.HTTPConnection
        if ctx is not None:
            conn = http.client.HTTPSConnection(host, int(port), timeout=timeout, context=ctx)
        else:
            conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
        try:
            conn.request("GET", "/data/v1/read?" + urllib.parse.urlencode(q), headers=headers)
            resp = conn.getresponse()
            if resp.status != 200 or resp.getheader("X-Cairn-Version") != str(f.version):
                return False
            while pos.off < end:
                chunk = resp.read(min(1 << 20, end - pos.off))
                if not chunk:
                    return False
                pos.off += len(chunk)
                yield chunk
            return True
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    # ------------------------------------------------------------------ misc

    def whoami(self) -> auth_pb2.WhoAmIResponse:
        """The name and role of this client's token, as the masters see it."""
        return self._unary(lambda s: s.auth.WhoAmI, auth_pb2.WhoAmIRequest())

    def status(self) -> operator_pb2.GetStatusResponse:
        """The answering master's own status (id, raft state, leader, indexes)."""
        return self._unary(lambda s: s.operator.GetStatus, operator_pb2.GetStatusRequest())
