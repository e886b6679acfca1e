from buf.validate import validate_pb2 as _validate_pb2
from cairn.v1 import auth_pb2 as _auth_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from cairn.v1 import jobs_pb2 as _jobs_pb2
from cairn.v1 import namespace_pb2 as _namespace_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
UFS_DRIFT_KIND_CHANGED: UfsDriftKind
UFS_DRIFT_KIND_GONE: UfsDriftKind
UFS_DRIFT_KIND_UNSPECIFIED: UfsDriftKind

class ClusterInitialized(_message.Message):
    __slots__ = ["cluster_id"]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    cluster_id: str
    def __init__(self, cluster_id: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ["actor", "cluster_initialized", "file_completed", "file_created", "file_deleted", "file_loaded", "job_started", "job_stopped", "jobs_pruned", "lease_expired", "lease_renewed", "leases_extended", "master_advertised", "master_removed", "note_appended", "persist_requested", "replication_set", "request_id", "setting_changed", "task_leased", "task_reported", "time", "token_created", "token_revoked", "ufs_copy_drifted", "ufs_copy_removed", "ufs_mounted", "ufs_unmounted", "upload_mapping_set", "worker_activated", "worker_decommissioned", "worker_down", "worker_maintenance_started", "worker_registered", "worker_up", "workers_clean", "write_abandoned"]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_INITIALIZED_FIELD_NUMBER: _ClassVar[int]
    FILE_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    FILE_CREATED_FIELD_NUMBER: _ClassVar[int]
    FILE_DELETED_FIELD_NUMBER: _ClassVar[int]
    FILE_LOADED_FIELD_NUMBER: _ClassVar[int]
    JOBS_PRUNED_FIELD_NUMBER: _ClassVar[int]
    JOB_STARTED_FIELD_NUMBER: _ClassVar[int]
    JOB_STOPPED_FIELD_NUMBER: _ClassVar[int]
    LEASES_EXTENDED_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRED_FIELD_NUMBER: _ClassVar[int]
    LEASE_RENEWED_FIELD_NUMBER: _ClassVar[int]
    MASTER_ADVERTISED_FIELD_NUMBER: _ClassVar[int]
    MASTER_REMOVED_FIELD_NUMBER: _ClassVar[int]
    NOTE_APPENDED_FIELD_NUMBER: _ClassVar[int]
    PERSIST_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_SET_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SETTING_CHANGED_FIELD_NUMBER: _ClassVar[int]
    TASK_LEASED_FIELD_NUMBER: _ClassVar[int]
    TASK_REPORTED_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TOKEN_CREATED_FIELD_NUMBER: _ClassVar[int]
    TOKEN_REVOKED_FIELD_NUMBER: _ClassVar[int]
    UFS_COPY_DRIFTED_FIELD_NUMBER: _ClassVar[int]
    UFS_COPY_REMOVED_FIELD_NUMBER: _ClassVar[int]
    UFS_MOUNTED_FIELD_NUMBER: _ClassVar[int]
    UFS_UNMOUNTED_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_MAPPING_SET_FIELD_NUMBER: _ClassVar[int]
    WORKERS_CLEAN_FIELD_NUMBER: _ClassVar[int]
    WORKER_ACTIVATED_FIELD_NUMBER: _ClassVar[int]
    WORKER_DECOMMISSIONED_FIELD_NUMBER: _ClassVar[int]
    WORKER_DOWN_FIELD_NUMBER: _ClassVar[int]
    WORKER_MAINTENANCE_STARTED_FIELD_NUMBER: _ClassVar[int]
    WORKER_REGISTERED_FIELD_NUMBER: _ClassVar[int]
    WORKER_UP_FIELD_NUMBER: _ClassVar[int]
    WRITE_ABANDONED_FIELD_NUMBER: _ClassVar[int]
    actor: str
    cluster_initialized: ClusterInitialized
    file_completed: FileCompleted
    file_created: FileCreated
    file_deleted: FileDeleted
    file_loaded: FileLoaded
    job_started: JobStarted
    job_stopped: JobStopped
    jobs_pruned: JobsPruned
    lease_expired: LeaseExpired
    lease_renewed: LeaseRenewed
    leases_extended: LeasesExtended
    master_advertised: MasterAdvertised
    master_removed: MasterRemoved
    note_appended: NoteAppended
    persist_requested: PersistRequested
    replication_set: ReplicationSet
    request_id: str
    setting_changed: SettingChanged
    task_leased: TaskLeased
    task_reported: TaskReported
    time: _timestamp_pb2.Timestamp
    token_created: TokenCreated
    token_revoked: TokenRevoked
    ufs_copy_drifted: UfsCopyDrifted
    ufs_copy_removed: UfsCopyRemoved
    ufs_mounted: UfsMounted
    ufs_unmounted: UfsUnmounted
    upload_mapping_set: UploadMappingSet
    worker_activated: WorkerActivated
    worker_decommissioned: WorkerDecommissioned
    worker_down: WorkerDown
    worker_maintenance_started: WorkerMaintenanceStarted
    worker_registered: WorkerRegistered
    worker_up: WorkerUp
    workers_clean: WorkersClean
    write_abandoned: WriteAbandoned
    def __init__(self, time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ..., actor: _Optional[str] = ..., cluster_initialized: _Optional[_Union[ClusterInitialized, _Mapping]] = ..., master_advertised: _Optional[_Union[MasterAdvertised, _Mapping]] = ..., master_removed: _Optional[_Union[MasterRemoved, _Mapping]] = ..., worker_registered: _Optional[_Union[WorkerRegistered, _Mapping]] = ..., worker_down: _Optional[_Union[WorkerDown, _Mapping]] = ..., worker_up: _Optional[_Union[WorkerUp, _Mapping]] = ..., worker_maintenance_started: _Optional[_Union[WorkerMaintenanceStarted, _Mapping]] = ..., worker_activated: _Optional[_Union[WorkerActivated, _Mapping]] = ..., worker_decommissioned: _Optional[_Union[WorkerDecommissioned, _Mapping]] = ..., replication_set: _Optional[_Union[ReplicationSet, _Mapping]] = ..., note_appended: _Optional[_Union[NoteAppended, _Mapping]] = ..., file_created: _Optional[_Union[FileCreated, _Mapping]] = ..., file_completed: _Optional[_Union[FileCompleted, _Mapping]] = ..., file_deleted: _Optional[_Union[FileDeleted, _Mapping]] = ..., file_loaded: _Optional[_Union[FileLoaded, _Mapping]] = ..., ufs_mounted: _Optional[_Union[UfsMounted, _Mapping]] = ..., job_started: _Optional[_Union[JobStarted, _Mapping]] = ..., job_stopped: _Optional[_Union[JobStopped, _Mapping]] = ..., task_leased: _Optional[_Union[TaskLeased, _Mapping]] = ..., lease_renewed: _Optional[_Union[LeaseRenewed, _Mapping]] = ..., task_reported: _Optional[_Union[TaskReported, _Mapping]] = ..., lease_expired: _Optional[_Union[LeaseExpired, _Mapping]] = ..., leases_extended: _Optional[_Union[LeasesExtended, _Mapping]] = ..., jobs_pruned: _Optional[_Union[JobsPruned, _Mapping]] = ..., setting_changed: _Optional[_Union[SettingChanged, _Mapping]] = ..., workers_clean: _Optional[_Union[WorkersClean, _Mapping]] = ..., persist_requested: _Optional[_Union[PersistRequested, _Mapping]] = ..., ufs_copy_removed: _Optional[_Union[UfsCopyRemoved, _Mapping]] = ..., upload_mapping_set: _Optional[_Union[UploadMappingSet, _Mapping]] = ..., write_abandoned: _Optional[_Union[WriteAbandoned, _Mapping]] = ..., token_created: _Optional[_Union[TokenCreated, _Mapping]] = ..., token_revoked: _Optional[_Union[TokenRevoked, _Mapping]] = ..., ufs_unmounted: _Optional[_Union[UfsUnmounted, _Mapping]] = ..., ufs_copy_drifted: _Optional[_Union[UfsCopyDrifted, _Mapping]] = ...) -> None: ...

class EventBatch(_message.Message):
    __slots__ = ["events"]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class FileCompleted(_message.Message):
    __slots__ = ["checksum", "etag", "length", "metadata", "path", "ufs_etag", "ufs_mtime", "ufs_version_id", "version"]
    class MetadataEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    UFS_ETAG_FIELD_NUMBER: _ClassVar[int]
    UFS_MTIME_FIELD_NUMBER: _ClassVar[int]
    UFS_VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    checksum: int
    etag: str
    length: int
    metadata: _containers.ScalarMap[str, str]
    path: str
    ufs_etag: str
    ufs_mtime: _timestamp_pb2.Timestamp
    ufs_version_id: str
    version: int
    def __init__(self, path: _Optional[str] = ..., length: _Optional[int] = ..., checksum: _Optional[int] = ..., etag: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., version: _Optional[int] = ..., ufs_mtime: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., ufs_etag: _Optional[str] = ..., ufs_version_id: _Optional[str] = ...) -> None: ...

class FileCreated(_message.Message):
    __slots__ = ["block_size", "overwrite", "path", "pinned", "replication", "write_type"]
    BLOCK_SIZE_FIELD_NUMBER: _ClassVar[int]
    OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    WRITE_TYPE_FIELD_NUMBER: _ClassVar[int]
    block_size: int
    overwrite: bool
    path: str
    pinned: bool
    replication: int
    write_type: _namespace_pb2.WriteType
    def __init__(self, path: _Optional[str] = ..., write_type: _Optional[_Union[_namespace_pb2.WriteType, str]] = ..., block_size: _Optional[int] = ..., replication: _Optional[int] = ..., pinned: bool = ..., overwrite: bool = ...) -> None: ...

class FileDeleted(_message.Message):
    __slots__ = ["path", "recursive"]
    PATH_FIELD_NUMBER: _ClassVar[int]
    RECURSIVE_FIELD_NUMBER: _ClassVar[int]
    path: str
    recursive: bool
    def __init__(self, path: _Optional[str] = ..., recursive: bool = ...) -> None: ...

class FileLoaded(_message.Message):
    __slots__ = ["length", "path", "ufs_etag", "ufs_mtime", "ufs_version_id"]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    UFS_ETAG_FIELD_NUMBER: _ClassVar[int]
    UFS_MTIME_FIELD_NUMBER: _ClassVar[int]
    UFS_VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    length: int
    path: str
    ufs_etag: str
    ufs_mtime: _timestamp_pb2.Timestamp
    ufs_version_id: str
    def __init__(self, path: _Optional[str] = ..., length: _Optional[int] = ..., ufs_mtime: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., ufs_etag: _Optional[str] = ..., ufs_version_id: _Optional[str] = ...) -> None: ...

class JobStarted(_message.Message):
    __slots__ = ["dedup_key", "delivery_limit", "requested_by", "spec", "workers"]
    DEDUP_KEY_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    dedup_key: str
    delivery_limit: int
    requested_by: str
    spec: _jobs_pb2.JobSpec
    workers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, spec: _Optional[_Union[_jobs_pb2.JobSpec, _Mapping]] = ..., dedup_key: _Optional[str] = ..., workers: _Optional[_Iterable[str]] = ..., delivery_limit: _Optional[int] = ..., requested_by: _Optional[str] = ...) -> None: ...

class JobStopped(_message.Message):
    __slots__ = ["job_id", "kind", "reason"]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: int
    kind: _jobs_pb2.JobKind
    reason: str
    def __init__(self, job_id: _Optional[int] = ..., kind: _Optional[_Union[_jobs_pb2.JobKind, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class JobsPruned(_message.Message):
    __slots__ = ["ended_before"]
    ENDED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    ended_before: _timestamp_pb2.Timestamp
    def __init__(self, ended_before: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LeaseExpired(_message.Message):
    __slots__ = ["index", "job_id", "lease_id"]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    index: int
    job_id: int
    lease_id: int
    def __init__(self, job_id: _Optional[int] = ..., index: _Optional[int] = ..., lease_id: _Optional[int] = ...) -> None: ...

class LeaseRenewed(_message.Message):
    __slots__ = ["expiry", "index", "job_id", "lease_id"]
    EXPIRY_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    expiry: _timestamp_pb2.Timestamp
    index: int
    job_id: int
    lease_id: int
    def __init__(self, job_id: _Optional[int] = ..., index: _Optional[int] = ..., lease_id: _Optional[int] = ..., expiry: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LeasesExtended(_message.Message):
    __slots__ = ["ttl"]
    TTL_FIELD_NUMBER: _ClassVar[int]
    ttl: _duration_pb2.Duration
    def __init__(self, ttl: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class MasterAdvertised(_message.Message):
    __slots__ = ["api_address", "master_id", "raft_address"]
    API_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    MASTER_ID_FIELD_NUMBER: _ClassVar[int]
    RAFT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    api_address: str
    master_id: str
    raft_address: str
    def __init__(self, master_id: _Optional[str] = ..., api_address: _Optional[str] = ..., raft_address: _Optional[str] = ...) -> None: ...

class MasterRemoved(_message.Message):
    __slots__ = ["master_id"]
    MASTER_ID_FIELD_NUMBER: _ClassVar[int]
    master_id: str
    def __init__(self, master_id: _Optional[str] = ...) -> None: ...

class NoteAppended(_message.Message):
    __slots__ = ["text"]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class PersistRequested(_message.Message):
    __slots__ = ["path"]
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class ReplicationSet(_message.Message):
    __slots__ = ["replication"]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    replication: int
    def __init__(self, replication: _Optional[int] = ...) -> None: ...

class SettingChanged(_message.Message):
    __slots__ = ["name", "value"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class TaskLeased(_message.Message):
    __slots__ = ["expiry", "index", "job_id", "worker_id"]
    EXPIRY_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    expiry: _timestamp_pb2.Timestamp
    index: int
    job_id: int
    worker_id: str
    def __init__(self, job_id: _Optional[int] = ..., index: _Optional[int] = ..., worker_id: _Optional[str] = ..., expiry: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TaskReported(_message.Message):
    __slots__ = ["delta", "error", "final", "index", "job_id", "lease_id", "local_done", "no_copy", "seq", "ufs_etag", "ufs_mtime", "ufs_version_id"]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    LOCAL_DONE_FIELD_NUMBER: _ClassVar[int]
    NO_COPY_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    UFS_ETAG_FIELD_NUMBER: _ClassVar[int]
    UFS_MTIME_FIELD_NUMBER: _ClassVar[int]
    UFS_VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    delta: _jobs_pb2.Counters
    error: str
    final: _jobs_pb2.TaskState
    index: int
    job_id: int
    lease_id: int
    local_done: bool
    no_copy: bool
    seq: int
    ufs_etag: str
    ufs_mtime: _timestamp_pb2.Timestamp
    ufs_version_id: str
    def __init__(self, job_id: _Optional[int] = ..., index: _Optional[int] = ..., lease_id: _Optional[int] = ..., seq: _Optional[int] = ..., delta: _Optional[_Union[_jobs_pb2.Counters, _Mapping]] = ..., final: _Optional[_Union[_jobs_pb2.TaskState, str]] = ..., error: _Optional[str] = ..., local_done: bool = ..., ufs_mtime: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., no_copy: bool = ..., ufs_etag: _Optional[str] = ..., ufs_version_id: _Optional[str] = ...) -> None: ...

class TokenCreated(_message.Message):
    __slots__ = ["token"]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: _auth_pb2.Token
    def __init__(self, token: _Optional[_Union[_auth_pb2.Token, _Mapping]] = ...) -> None: ...

class TokenRevoked(_message.Message):
    __slots__ = ["name"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class UfsCopyDrifted(_message.Message):
    __slots__ = ["detail", "kind", "path", "ufs_etag", "ufs_mtime", "version"]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    UFS_ETAG_FIELD_NUMBER: _ClassVar[int]
    UFS_MTIME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    detail: str
    kind: UfsDriftKind
    path: str
    ufs_etag: str
    ufs_mtime: _timestamp_pb2.Timestamp
    version: int
    def __init__(self, path: _Optional[str] = ..., version: _Optional[int] = ..., kind: _Optional[_Union[UfsDriftKind, str]] = ..., detail: _Optional[str] = ..., ufs_mtime: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., ufs_etag: _Optional[str] = ...) -> None: ...

class UfsCopyRemoved(_message.Message):
    __slots__ = ["path", "ufs_path"]
    PATH_FIELD_NUMBER: _ClassVar[int]
    UFS_PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    ufs_path: str
    def __init__(self, path: _Optional[str] = ..., ufs_path: _Optional[str] = ...) -> None: ...

class UfsMounted(_message.Message):
    __slots__ = ["cache_only", "from_flag", "options", "path", "replication", "ufs_root", "uri"]
    class OptionsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CACHE_ONLY_FIELD_NUMBER: _ClassVar[int]
    FROM_FLAG_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    UFS_ROOT_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    cache_only: bool
    from_flag: bool
    options: _containers.ScalarMap[str, str]
    path: str
    replication: int
    ufs_root: str
    uri: str
    def __init__(self, path: _Optional[str] = ..., ufs_root: _Optional[str] = ..., cache_only: bool = ..., replication: _Optional[int] = ..., uri: _Optional[str] = ..., options: _Optional[_Mapping[str, str]] = ..., from_flag: bool = ...) -> None: ...

class UfsUnmounted(_message.Message):
    __slots__ = ["path"]
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class UploadMappingSet(_message.Message):
    __slots__ = ["mapping"]
    MAPPING_FIELD_NUMBER: _ClassVar[int]
    mapping: _namespace_pb2.UploadMapping
    def __init__(self, mapping: _Optional[_Union[_namespace_pb2.UploadMapping, _Mapping]] = ...) -> None: ...

class WorkerActivated(_message.Message):
    __slots__ = ["reason", "worker_id"]
    REASON_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    reason: str
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class WorkerDecommissioned(_message.Message):
    __slots__ = ["reason", "worker_id"]
    REASON_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    reason: str
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class WorkerDown(_message.Message):
    __slots__ = ["last_heartbeat_time", "timeout", "worker_id"]
    LAST_HEARTBEAT_TIME_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    last_heartbeat_time: _timestamp_pb2.Timestamp
    timeout: _duration_pb2.Duration
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ..., last_heartbeat_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., timeout: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class WorkerMaintenanceStarted(_message.Message):
    __slots__ = ["reason", "worker_id"]
    REASON_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    reason: str
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class WorkerRegistered(_message.Message):
    __slots__ = ["address", "capacity_bytes", "worker_id"]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_BYTES_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    address: str
    capacity_bytes: int
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ..., address: _Optional[str] = ..., capacity_bytes: _Optional[int] = ...) -> None: ...

class WorkerUp(_message.Message):
    __slots__ = ["worker_id"]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ...) -> None: ...

class WorkersClean(_message.Message):
    __slots__ = ["epoch", "worker_ids"]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    WORKER_IDS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    worker_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, worker_ids: _Optional[_Iterable[str]] = ..., epoch: _Optional[int] = ...) -> None: ...

class WriteAbandoned(_message.Message):
    __slots__ = ["path", "reason", "version"]
    PATH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    path: str
    reason: str
    version: int
    def __init__(self, path: _Optional[str] = ..., version: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class UfsDriftKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
