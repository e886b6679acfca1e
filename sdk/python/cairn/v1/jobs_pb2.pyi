from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
JOB_KIND_CLEANUP: JobKind
JOB_KIND_FREE: JobKind
JOB_KIND_PERSIST: JobKind
JOB_KIND_REBALANCE: JobKind
JOB_KIND_UNSPECIFIED: JobKind
JOB_STATE_CANCELLED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_UNSPECIFIED: JobState
REFUSAL_FAILED_PRECONDITION: Refusal
REFUSAL_INVALID_ARGUMENT: Refusal
REFUSAL_NOT_FOUND: Refusal
REFUSAL_UNSPECIFIED: Refusal
REPORT_OUTCOME_COUNTED: ReportOutcome
REPORT_OUTCOME_REFUSED: ReportOutcome
REPORT_OUTCOME_REPEAT: ReportOutcome
REPORT_OUTCOME_STALE_LEASE: ReportOutcome
REPORT_OUTCOME_UNSPECIFIED: ReportOutcome
TASK_STATE_CANCELLED: TaskState
TASK_STATE_FAILED: TaskState
TASK_STATE_LEASED: TaskState
TASK_STATE_PENDING: TaskState
TASK_STATE_SUCCEEDED: TaskState
TASK_STATE_UNSPECIFIED: TaskState

class ClearStaleRequest(_message.Message):
    __slots__ = ["force"]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    force: bool
    def __init__(self, force: bool = ...) -> None: ...

class ClearStaleResponse(_message.Message):
    __slots__ = ["created", "errors", "job"]
    class ErrorsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CREATED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    created: bool
    errors: _containers.ScalarMap[str, str]
    job: Job
    def __init__(self, errors: _Optional[_Mapping[str, str]] = ..., job: _Optional[_Union[Job, _Mapping]] = ..., created: bool = ...) -> None: ...

class Counters(_message.Message):
    __slots__ = ["deleted", "errors", "forced", "freed", "freed_bytes", "kept_diverged", "kept_peer_missing", "kept_recent", "kept_unverified", "received", "received_bytes", "reclaimed_bytes", "removed", "scanned", "scanned_bytes", "sent", "sent_bytes", "stale_version", "uploaded", "uploaded_bytes"]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    FORCED_FIELD_NUMBER: _ClassVar[int]
    FREED_BYTES_FIELD_NUMBER: _ClassVar[int]
    FREED_FIELD_NUMBER: _ClassVar[int]
    KEPT_DIVERGED_FIELD_NUMBER: _ClassVar[int]
    KEPT_PEER_MISSING_FIELD_NUMBER: _ClassVar[int]
    KEPT_RECENT_FIELD_NUMBER: _ClassVar[int]
    KEPT_UNVERIFIED_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_BYTES_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    RECLAIMED_BYTES_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    SCANNED_BYTES_FIELD_NUMBER: _ClassVar[int]
    SCANNED_FIELD_NUMBER: _ClassVar[int]
    SENT_BYTES_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    STALE_VERSION_FIELD_NUMBER: _ClassVar[int]
    UPLOADED_BYTES_FIELD_NUMBER: _ClassVar[int]
    UPLOADED_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    errors: int
    forced: int
    freed: int
    freed_bytes: int
    kept_diverged: int
    kept_peer_missing: int
    kept_recent: int
    kept_unverified: int
    received: int
    received_bytes: int
    reclaimed_bytes: int
    removed: int
    scanned: int
    scanned_bytes: int
    sent: int
    sent_bytes: int
    stale_version: int
    uploaded: int
    uploaded_bytes: int
    def __init__(self, scanned: _Optional[int] = ..., scanned_bytes: _Optional[int] = ..., sent: _Optional[int] = ..., sent_bytes: _Optional[int] = ..., received: _Optional[int] = ..., received_bytes: _Optional[int] = ..., removed: _Optional[int] = ..., reclaimed_bytes: _Optional[int] = ..., kept_peer_missing: _Optional[int] = ..., kept_diverged: _Optional[int] = ..., kept_unverified: _Optional[int] = ..., freed: _Optional[int] = ..., freed_bytes: _Optional[int] = ..., uploaded: _Optional[int] = ..., uploaded_bytes: _Optional[int] = ..., errors: _Optional[int] = ..., stale_version: _Optional[int] = ..., deleted: _Optional[int] = ..., forced: _Optional[int] = ..., kept_recent: _Optional[int] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ["id"]
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class GetJobResponse(_message.Message):
    __slots__ = ["job", "tasks"]
    JOB_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    job: Job
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ..., tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ...) -> None: ...

class GetSettingsRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class GetSettingsResponse(_message.Message):
    __slots__ = ["settings"]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    settings: Settings
    def __init__(self, settings: _Optional[_Union[Settings, _Mapping]] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ["counters", "created_time", "delivery_limit", "ended_time", "id", "reason", "requested_by", "spec", "state", "stopped_by", "tasks", "tasks_done"]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    CREATED_TIME_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    ENDED_TIME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STOPPED_BY_FIELD_NUMBER: _ClassVar[int]
    TASKS_DONE_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    counters: Counters
    created_time: _timestamp_pb2.Timestamp
    delivery_limit: int
    ended_time: _timestamp_pb2.Timestamp
    id: int
    reason: str
    requested_by: str
    spec: JobSpec
    state: JobState
    stopped_by: str
    tasks: int
    tasks_done: int
    def __init__(self, id: _Optional[int] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., state: _Optional[_Union[JobState, str]] = ..., created_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., ended_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., counters: _Optional[_Union[Counters, _Mapping]] = ..., tasks: _Optional[int] = ..., tasks_done: _Optional[int] = ..., delivery_limit: _Optional[int] = ..., requested_by: _Optional[str] = ..., stopped_by: _Optional[str] = ...) -> None: ...

class JobSpec(_message.Message):
    __slots__ = ["dont_cleanup_time", "epoch", "force", "kind", "path", "paths", "prefix", "ufs_path", "version", "workers"]
    DONT_CLEANUP_TIME_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    UFS_PATH_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    dont_cleanup_time: _duration_pb2.Duration
    epoch: int
    force: bool
    kind: JobKind
    path: str
    paths: _containers.RepeatedScalarFieldContainer[str]
    prefix: str
    ufs_path: str
    version: int
    workers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, kind: _Optional[_Union[JobKind, str]] = ..., epoch: _Optional[int] = ..., prefix: _Optional[str] = ..., force: bool = ..., paths: _Optional[_Iterable[str]] = ..., path: _Optional[str] = ..., version: _Optional[int] = ..., workers: _Optional[_Iterable[str]] = ..., ufs_path: _Optional[str] = ..., dont_cleanup_time: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class LeaseRequest(_message.Message):
    __slots__ = ["kinds", "max_tasks", "wait", "worker_id"]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    MAX_TASKS_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    kinds: _containers.RepeatedScalarFieldContainer[JobKind]
    max_tasks: int
    wait: _duration_pb2.Duration
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ..., kinds: _Optional[_Iterable[_Union[JobKind, str]]] = ..., max_tasks: _Optional[int] = ..., wait: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class LeaseResponse(_message.Message):
    __slots__ = ["tasks", "waited"]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    WAITED_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[LeasedTask]
    waited: _duration_pb2.Duration
    def __init__(self, tasks: _Optional[_Iterable[_Union[LeasedTask, _Mapping]]] = ..., waited: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class LeaseSeq(_message.Message):
    __slots__ = ["lease_id", "seq"]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    lease_id: int
    seq: int
    def __init__(self, lease_id: _Optional[int] = ..., seq: _Optional[int] = ...) -> None: ...

class LeasedTask(_message.Message):
    __slots__ = ["spec", "task", "ttl"]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    spec: JobSpec
    task: Task
    ttl: _duration_pb2.Duration
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., ttl: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ["kind", "page_size", "page_token", "state"]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    kind: JobKind
    page_size: int
    page_token: str
    state: JobState
    def __init__(self, kind: _Optional[_Union[JobKind, str]] = ..., state: _Optional[_Union[JobState, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ["jobs", "next_page_token"]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RenewRequest(_message.Message):
    __slots__ = ["leases", "worker_id"]
    LEASES_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    leases: _containers.RepeatedCompositeFieldContainer[TaskRef]
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ..., leases: _Optional[_Iterable[_Union[TaskRef, _Mapping]]] = ...) -> None: ...

class RenewResponse(_message.Message):
    __slots__ = ["results", "ttl"]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[RenewResult]
    ttl: _duration_pb2.Duration
    def __init__(self, results: _Optional[_Iterable[_Union[RenewResult, _Mapping]]] = ..., ttl: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class RenewResult(_message.Message):
    __slots__ = ["lease", "message", "ok"]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    lease: TaskRef
    message: str
    ok: bool
    def __init__(self, lease: _Optional[_Union[TaskRef, _Mapping]] = ..., ok: bool = ..., message: _Optional[str] = ...) -> None: ...

class ReportBatchRequest(_message.Message):
    __slots__ = ["reports", "worker_id"]
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    reports: _containers.RepeatedCompositeFieldContainer[ReportRequest]
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ..., reports: _Optional[_Iterable[_Union[ReportRequest, _Mapping]]] = ...) -> None: ...

class ReportBatchResponse(_message.Message):
    __slots__ = ["results"]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ReportResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ReportResult, _Mapping]]] = ...) -> None: ...

class ReportRequest(_message.Message):
    __slots__ = ["delta", "error", "final", "lease", "local_done", "no_copy", "seq", "ufs_etag", "ufs_mtime", "ufs_version_id", "worker_id"]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    LOCAL_DONE_FIELD_NUMBER: _ClassVar[int]
    NO_COPY_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    UFS_ETAG_FIELD_NUMBER: _ClassVar[int]
    UFS_MTIME_FIELD_NUMBER: _ClassVar[int]
    UFS_VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    delta: Counters
    error: str
    final: TaskState
    lease: TaskRef
    local_done: bool
    no_copy: bool
    seq: int
    ufs_etag: str
    ufs_mtime: _timestamp_pb2.Timestamp
    ufs_version_id: str
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ..., lease: _Optional[_Union[TaskRef, _Mapping]] = ..., seq: _Optional[int] = ..., delta: _Optional[_Union[Counters, _Mapping]] = ..., final: _Optional[_Union[TaskState, str]] = ..., error: _Optional[str] = ..., local_done: bool = ..., ufs_mtime: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., no_copy: bool = ..., ufs_etag: _Optional[str] = ..., ufs_version_id: _Optional[str] = ...) -> None: ...

class ReportResponse(_message.Message):
    __slots__ = ["counted", "outcome", "task"]
    COUNTED_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    counted: bool
    outcome: ReportOutcome
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ..., counted: bool = ..., outcome: _Optional[_Union[ReportOutcome, str]] = ...) -> None: ...

class ReportResult(_message.Message):
    __slots__ = ["counted", "message", "outcome", "refusal", "task"]
    COUNTED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    counted: bool
    message: str
    outcome: ReportOutcome
    refusal: Refusal
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ..., counted: bool = ..., message: _Optional[str] = ..., outcome: _Optional[_Union[ReportOutcome, str]] = ..., refusal: _Optional[_Union[Refusal, str]] = ...) -> None: ...

class Settings(_message.Message):
    __slots__ = ["cleanup_auto", "dont_cleanup_time", "job_retention", "partial_caching", "rebalance_enabled"]
    CLEANUP_AUTO_FIELD_NUMBER: _ClassVar[int]
    DONT_CLEANUP_TIME_FIELD_NUMBER: _ClassVar[int]
    JOB_RETENTION_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_CACHING_FIELD_NUMBER: _ClassVar[int]
    REBALANCE_ENABLED_FIELD_NUMBER: _ClassVar[int]
    cleanup_auto: bool
    dont_cleanup_time: _duration_pb2.Duration
    job_retention: _duration_pb2.Duration
    partial_caching: bool
    rebalance_enabled: bool
    def __init__(self, rebalance_enabled: bool = ..., job_retention: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., cleanup_auto: bool = ..., partial_caching: bool = ..., dont_cleanup_time: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class StartJobRequest(_message.Message):
    __slots__ = ["delivery_limit", "requested_by", "spec"]
    DELIVERY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    delivery_limit: int
    requested_by: str
    spec: JobSpec
    def __init__(self, spec: _Optional[_Union[JobSpec, _Mapping]] = ..., requested_by: _Optional[str] = ..., delivery_limit: _Optional[int] = ...) -> None: ...

class StartJobResponse(_message.Message):
    __slots__ = ["created", "errors", "job"]
    class ErrorsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CREATED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    created: bool
    errors: _containers.ScalarMap[str, str]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ..., created: bool = ..., errors: _Optional[_Mapping[str, str]] = ...) -> None: ...

class StopClearStaleRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class StopClearStaleResponse(_message.Message):
    __slots__ = ["stopped"]
    STOPPED_FIELD_NUMBER: _ClassVar[int]
    stopped: int
    def __init__(self, stopped: _Optional[int] = ...) -> None: ...

class StopJobRequest(_message.Message):
    __slots__ = ["id", "kind", "reason"]
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    id: int
    kind: JobKind
    reason: str
    def __init__(self, id: _Optional[int] = ..., kind: _Optional[_Union[JobKind, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class StopJobResponse(_message.Message):
    __slots__ = ["stopped"]
    STOPPED_FIELD_NUMBER: _ClassVar[int]
    stopped: int
    def __init__(self, stopped: _Optional[int] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ["attempt", "counters", "ended_time", "index", "job_id", "last_error", "lease_expiry", "lease_id", "lease_worker", "local_done", "not_before", "seqs", "started_time", "state", "worker_id"]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    ENDED_TIME_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRY_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_WORKER_FIELD_NUMBER: _ClassVar[int]
    LOCAL_DONE_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    SEQS_FIELD_NUMBER: _ClassVar[int]
    STARTED_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    counters: Counters
    ended_time: _timestamp_pb2.Timestamp
    index: int
    job_id: int
    last_error: str
    lease_expiry: _timestamp_pb2.Timestamp
    lease_id: int
    lease_worker: str
    local_done: bool
    not_before: _timestamp_pb2.Timestamp
    seqs: _containers.RepeatedCompositeFieldContainer[LeaseSeq]
    started_time: _timestamp_pb2.Timestamp
    state: TaskState
    worker_id: str
    def __init__(self, job_id: _Optional[int] = ..., index: _Optional[int] = ..., worker_id: _Optional[str] = ..., state: _Optional[_Union[TaskState, str]] = ..., attempt: _Optional[int] = ..., lease_id: _Optional[int] = ..., lease_worker: _Optional[str] = ..., lease_expiry: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., counters: _Optional[_Union[Counters, _Mapping]] = ..., last_error: _Optional[str] = ..., started_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., ended_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., local_done: bool = ..., seqs: _Optional[_Iterable[_Union[LeaseSeq, _Mapping]]] = ..., not_before: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TaskRef(_message.Message):
    __slots__ = ["index", "job_id", "lease_id"]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    index: int
    job_id: int
    lease_id: int
    def __init__(self, job_id: _Optional[int] = ..., index: _Optional[int] = ..., lease_id: _Optional[int] = ...) -> None: ...

class UpdateSettingRequest(_message.Message):
    __slots__ = ["name", "value"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class UpdateSettingResponse(_message.Message):
    __slots__ = ["settings"]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    settings: Settings
    def __init__(self, settings: _Optional[_Union[Settings, _Mapping]] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ["id"]
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class WatchJobResponse(_message.Message):
    __slots__ = ["job", "tasks"]
    JOB_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    job: Job
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ..., tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ...) -> None: ...

class JobKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class TaskState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class ReportOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class Refusal(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
