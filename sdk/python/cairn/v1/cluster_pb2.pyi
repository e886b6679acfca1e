from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
WORKER_STATE_ACTIVE: WorkerState
WORKER_STATE_DECOMMISSIONING: WorkerState
WORKER_STATE_DOWN: WorkerState
WORKER_STATE_MAINTENANCE: WorkerState
WORKER_STATE_REMOVED: WorkerState
WORKER_STATE_UNSPECIFIED: WorkerState

class ActivateWorkerRequest(_message.Message):
    __slots__ = ["reason", "worker_id"]
    REASON_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    reason: str
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ActivateWorkerResponse(_message.Message):
    __slots__ = ["epoch", "worker"]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    worker: Worker
    def __init__(self, worker: _Optional[_Union[Worker, _Mapping]] = ..., epoch: _Optional[int] = ...) -> None: ...

class ClusterMap(_message.Message):
    __slots__ = ["cause", "epoch", "replication", "time", "workers"]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    cause: str
    epoch: int
    replication: int
    time: _timestamp_pb2.Timestamp
    workers: _containers.RepeatedCompositeFieldContainer[MapWorker]
    def __init__(self, epoch: _Optional[int] = ..., replication: _Optional[int] = ..., workers: _Optional[_Iterable[_Union[MapWorker, _Mapping]]] = ..., time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., cause: _Optional[str] = ...) -> None: ...

class DecommissionWorkerRequest(_message.Message):
    __slots__ = ["reason", "worker_id"]
    REASON_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    reason: str
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DecommissionWorkerResponse(_message.Message):
    __slots__ = ["epoch", "worker"]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    worker: Worker
    def __init__(self, worker: _Optional[_Union[Worker, _Mapping]] = ..., epoch: _Optional[int] = ...) -> None: ...

class GetClusterMapRequest(_message.Message):
    __slots__ = ["epoch"]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    def __init__(self, epoch: _Optional[int] = ...) -> None: ...

class GetClusterMapResponse(_message.Message):
    __slots__ = ["cluster_id", "map", "workers"]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    MAP_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    cluster_id: str
    map: ClusterMap
    workers: _containers.RepeatedCompositeFieldContainer[Worker]
    def __init__(self, map: _Optional[_Union[ClusterMap, _Mapping]] = ..., workers: _Optional[_Iterable[_Union[Worker, _Mapping]]] = ..., cluster_id: _Optional[str] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ["epoch", "worker_id"]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ..., epoch: _Optional[int] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ["epoch", "partial_caching_off", "state", "ufs_drifts"]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_CACHING_OFF_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    UFS_DRIFTS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    partial_caching_off: bool
    state: WorkerState
    ufs_drifts: int
    def __init__(self, epoch: _Optional[int] = ..., state: _Optional[_Union[WorkerState, str]] = ..., ufs_drifts: _Optional[int] = ..., partial_caching_off: bool = ...) -> None: ...

class MaintainWorkerRequest(_message.Message):
    __slots__ = ["reason", "worker_id"]
    REASON_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    reason: str
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class MaintainWorkerResponse(_message.Message):
    __slots__ = ["epoch", "worker"]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    worker: Worker
    def __init__(self, worker: _Optional[_Union[Worker, _Mapping]] = ..., epoch: _Optional[int] = ...) -> None: ...

class MapWorker(_message.Message):
    __slots__ = ["address", "capacity_bytes", "id"]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_BYTES_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    address: str
    capacity_bytes: int
    id: str
    def __init__(self, id: _Optional[str] = ..., address: _Optional[str] = ..., capacity_bytes: _Optional[int] = ...) -> None: ...

class RegisterWorkerRequest(_message.Message):
    __slots__ = ["address", "capacity_bytes", "worker_id"]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_BYTES_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    address: str
    capacity_bytes: int
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ..., address: _Optional[str] = ..., capacity_bytes: _Optional[int] = ...) -> None: ...

class RegisterWorkerResponse(_message.Message):
    __slots__ = ["epoch", "heartbeat_interval", "worker"]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    heartbeat_interval: _duration_pb2.Duration
    worker: Worker
    def __init__(self, worker: _Optional[_Union[Worker, _Mapping]] = ..., epoch: _Optional[int] = ..., heartbeat_interval: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class SetReplicationRequest(_message.Message):
    __slots__ = ["replication"]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    replication: int
    def __init__(self, replication: _Optional[int] = ...) -> None: ...

class SetReplicationResponse(_message.Message):
    __slots__ = ["map"]
    MAP_FIELD_NUMBER: _ClassVar[int]
    map: ClusterMap
    def __init__(self, map: _Optional[_Union[ClusterMap, _Mapping]] = ...) -> None: ...

class WatchClusterMapRequest(_message.Message):
    __slots__ = ["after_epoch"]
    AFTER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    after_epoch: int
    def __init__(self, after_epoch: _Optional[int] = ...) -> None: ...

class WatchClusterMapResponse(_message.Message):
    __slots__ = ["map"]
    MAP_FIELD_NUMBER: _ClassVar[int]
    map: ClusterMap
    def __init__(self, map: _Optional[_Union[ClusterMap, _Mapping]] = ...) -> None: ...

class Worker(_message.Message):
    __slots__ = ["address", "capacity_bytes", "clean_epoch", "id", "registered_time", "state", "state_reason", "state_time"]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_BYTES_FIELD_NUMBER: _ClassVar[int]
    CLEAN_EPOCH_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_REASON_FIELD_NUMBER: _ClassVar[int]
    STATE_TIME_FIELD_NUMBER: _ClassVar[int]
    address: str
    capacity_bytes: int
    clean_epoch: int
    id: str
    registered_time: _timestamp_pb2.Timestamp
    state: WorkerState
    state_reason: str
    state_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., address: _Optional[str] = ..., capacity_bytes: _Optional[int] = ..., state: _Optional[_Union[WorkerState, str]] = ..., registered_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., state_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., state_reason: _Optional[str] = ..., clean_epoch: _Optional[int] = ...) -> None: ...

class WorkerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
