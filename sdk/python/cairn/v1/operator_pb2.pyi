from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
RAFT_STATE_CANDIDATE: RaftState
RAFT_STATE_FOLLOWER: RaftState
RAFT_STATE_LEADER: RaftState
RAFT_STATE_SHUTDOWN: RaftState
RAFT_STATE_UNSPECIFIED: RaftState

class GetStatusRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ["api_address", "applied_index", "cluster_id", "durable_index", "epoch", "leader_id", "master_id", "raft_address", "raft_state", "snapshot_index", "start_applied_index", "term"]
    API_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_INDEX_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    DURABLE_INDEX_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    LEADER_ID_FIELD_NUMBER: _ClassVar[int]
    MASTER_ID_FIELD_NUMBER: _ClassVar[int]
    RAFT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    RAFT_STATE_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_INDEX_FIELD_NUMBER: _ClassVar[int]
    START_APPLIED_INDEX_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    api_address: str
    applied_index: int
    cluster_id: str
    durable_index: int
    epoch: int
    leader_id: str
    master_id: str
    raft_address: str
    raft_state: RaftState
    snapshot_index: int
    start_applied_index: int
    term: int
    def __init__(self, master_id: _Optional[str] = ..., cluster_id: _Optional[str] = ..., raft_state: _Optional[_Union[RaftState, str]] = ..., leader_id: _Optional[str] = ..., term: _Optional[int] = ..., applied_index: _Optional[int] = ..., start_applied_index: _Optional[int] = ..., snapshot_index: _Optional[int] = ..., epoch: _Optional[int] = ..., api_address: _Optional[str] = ..., raft_address: _Optional[str] = ..., durable_index: _Optional[int] = ...) -> None: ...

class JoinClusterRequest(_message.Message):
    __slots__ = ["api_address", "cluster_id", "master_id", "prepare", "raft_address"]
    API_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    MASTER_ID_FIELD_NUMBER: _ClassVar[int]
    PREPARE_FIELD_NUMBER: _ClassVar[int]
    RAFT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    api_address: str
    cluster_id: str
    master_id: str
    prepare: bool
    raft_address: str
    def __init__(self, master_id: _Optional[str] = ..., raft_address: _Optional[str] = ..., api_address: _Optional[str] = ..., cluster_id: _Optional[str] = ..., prepare: bool = ...) -> None: ...

class JoinClusterResponse(_message.Message):
    __slots__ = ["cluster_id", "cluster_secret"]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_SECRET_FIELD_NUMBER: _ClassVar[int]
    cluster_id: str
    cluster_secret: bytes
    def __init__(self, cluster_id: _Optional[str] = ..., cluster_secret: _Optional[bytes] = ...) -> None: ...

class ListRaftPeersRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class ListRaftPeersResponse(_message.Message):
    __slots__ = ["leader_id", "peers"]
    LEADER_ID_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    leader_id: str
    peers: _containers.RepeatedCompositeFieldContainer[RaftPeer]
    def __init__(self, peers: _Optional[_Iterable[_Union[RaftPeer, _Mapping]]] = ..., leader_id: _Optional[str] = ...) -> None: ...

class RaftPeer(_message.Message):
    __slots__ = ["api_address", "leader", "master_id", "raft_address", "voter"]
    API_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    MASTER_ID_FIELD_NUMBER: _ClassVar[int]
    RAFT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    VOTER_FIELD_NUMBER: _ClassVar[int]
    api_address: str
    leader: bool
    master_id: str
    raft_address: str
    voter: bool
    def __init__(self, master_id: _Optional[str] = ..., raft_address: _Optional[str] = ..., api_address: _Optional[str] = ..., voter: bool = ..., leader: bool = ...) -> None: ...

class RemovePeerRequest(_message.Message):
    __slots__ = ["master_id"]
    MASTER_ID_FIELD_NUMBER: _ClassVar[int]
    master_id: str
    def __init__(self, master_id: _Optional[str] = ...) -> None: ...

class RemovePeerResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class SaveSnapshotRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class SaveSnapshotResponse(_message.Message):
    __slots__ = ["chunk", "index", "term"]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    chunk: bytes
    index: int
    term: int
    def __init__(self, index: _Optional[int] = ..., term: _Optional[int] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class TransferLeadershipRequest(_message.Message):
    __slots__ = ["target_id"]
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    target_id: str
    def __init__(self, target_id: _Optional[str] = ...) -> None: ...

class TransferLeadershipResponse(_message.Message):
    __slots__ = ["leader_id"]
    LEADER_ID_FIELD_NUMBER: _ClassVar[int]
    leader_id: str
    def __init__(self, leader_id: _Optional[str] = ...) -> None: ...

class RaftState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
