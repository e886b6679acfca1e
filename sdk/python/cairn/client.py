"""The thin client: control calls with failover across masters, placement,
jobs, the namespace, and reading a file's bytes from its owners.

Every method either returns the generated protobuf messages (``cairn.v1.*_pb2``)
or plain Python values, and raises :class:`cairn.CairnError` when a call fails.
"""

from __future__ import annotations

from typing import (
    Any,
    Callable,
    Iterator,
    List,
    Optional,
    Sequence,
    Union,
)

import grpc

from cairn._conn import (
    DEFAULT_MASTERS,
    LINEARIZABLE,
    STALE,
    STALE_ANY,
    Services,
    _Conn,
    parse_masters,
)
from cairn._read import _Reader
from cairn.errors import CairnError
from cairn.placement import Placement
from cairn.v1 import auth_pb2, cluster_pb2, data_pb2, jobs_pb2, namespace_pb2, operator_pb2

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


class Client(_Reader, _Conn):
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
        dont_cleanup_time: Optional[float] = None,
    ) -> jobs_pb2.StartJobResponse:
        """Starts a job, or returns the equal job that is already running
        (``created`` is then False). ``errors`` in the answer says, per worker,
        why it got no task.

        - ``rebalance``: send every cached file to its owners under ``epoch``
          (0: the current map).
        - ``cleanup`` (``clear-stale``): remove verified stale copies under
          ``prefix``; ``force`` also removes a persisted file's copy whose
          owner was reached and holds different bytes (never one whose owners
          could not be reached); ``workers`` limits it to some workers;
          ``dont_cleanup_time`` (seconds) is the safety window: copies newer
          than it are kept whatever else holds, even with ``force`` (None: the
          cluster setting ``cleanup.dont_cleanup_time``, 2 h by default).
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
        if dont_cleanup_time is not None:
            if dont_cleanup_time < 0:
                raise ValueError("dont_cleanup_time must not be negative")
            spec.dont_cleanup_time.FromNanoseconds(int(dont_cleanup_time * 1e9))
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

    # ------------------------------------------------------------------ misc

    def whoami(self) -> auth_pb2.WhoAmIResponse:
        """The name and role of this client's token, as the masters see it."""
        return self._unary(lambda s: s.auth.WhoAmI, auth_pb2.WhoAmIRequest())

    def status(self) -> operator_pb2.GetStatusResponse:
        """The answering master's own status (id, raft state, leader, indexes)."""
        return self._unary(lambda s: s.operator.GetStatus, operator_pb2.GetStatusRequest())
