from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
PERSISTENCE_STATE_LOST: PersistenceState
PERSISTENCE_STATE_NOT_PERSISTED: PersistenceState
PERSISTENCE_STATE_PERSISTED: PersistenceState
PERSISTENCE_STATE_PERSISTING: PersistenceState
PERSISTENCE_STATE_TO_BE_PERSISTED: PersistenceState
PERSISTENCE_STATE_UNSPECIFIED: PersistenceState
WRITE_TYPE_ASYNC_THROUGH: WriteType
WRITE_TYPE_CACHE_THROUGH: WriteType
WRITE_TYPE_MUST_CACHE: WriteType
WRITE_TYPE_THROUGH: WriteType
WRITE_TYPE_UNSPECIFIED: WriteType

class AddMountRequest(_message.Message):
    __slots__ = ["options", "path", "uri"]
    class OptionsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    options: _containers.ScalarMap[str, str]
    path: str
    uri: str
    def __init__(self, path: _Optional[str] = ..., uri: _Optional[str] = ..., options: _Optional[_Mapping[str, str]] = ...) -> None: ...

class AddMountResponse(_message.Message):
    __slots__ = ["mount"]
    MOUNT_FIELD_NUMBER: _ClassVar[int]
    mount: Mount
    def __init__(self, mount: _Optional[_Union[Mount, _Mapping]] = ...) -> None: ...

class CompleteFileRequest(_message.Message):
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

class CompleteFileResponse(_message.Message):
    __slots__ = ["file"]
    FILE_FIELD_NUMBER: _ClassVar[int]
    file: File
    def __init__(self, file: _Optional[_Union[File, _Mapping]] = ...) -> None: ...

class CreateFileRequest(_message.Message):
    __slots__ = ["block_size", "overwrite", "path", "replication", "write_type"]
    BLOCK_SIZE_FIELD_NUMBER: _ClassVar[int]
    OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    WRITE_TYPE_FIELD_NUMBER: _ClassVar[int]
    block_size: int
    overwrite: bool
    path: str
    replication: int
    write_type: WriteType
    def __init__(self, path: _Optional[str] = ..., write_type: _Optional[_Union[WriteType, str]] = ..., block_size: _Optional[int] = ..., replication: _Optional[int] = ..., overwrite: bool = ...) -> None: ...

class CreateFileResponse(_message.Message):
    __slots__ = ["write"]
    WRITE_FIELD_NUMBER: _ClassVar[int]
    write: PendingWrite
    def __init__(self, write: _Optional[_Union[PendingWrite, _Mapping]] = ...) -> None: ...

class DeleteFileRequest(_message.Message):
    __slots__ = ["path", "recursive"]
    PATH_FIELD_NUMBER: _ClassVar[int]
    RECURSIVE_FIELD_NUMBER: _ClassVar[int]
    path: str
    recursive: bool
    def __init__(self, path: _Optional[str] = ..., recursive: bool = ...) -> None: ...

class DeleteFileResponse(_message.Message):
    __slots__ = ["deleted"]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    def __init__(self, deleted: _Optional[int] = ...) -> None: ...

class File(_message.Message):
    __slots__ = ["block_size", "checksum", "completed_time", "created_time", "etag", "length", "metadata", "path", "persist_error", "persistence_state", "pinned", "replication", "ufs_drift", "ufs_drift_time", "ufs_etag", "ufs_mtime", "ufs_path", "ufs_version_id", "version", "write_type"]
    class MetadataEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    BLOCK_SIZE_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATED_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    PERSISTENCE_STATE_FIELD_NUMBER: _ClassVar[int]
    PERSIST_ERROR_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    UFS_DRIFT_FIELD_NUMBER: _ClassVar[int]
    UFS_DRIFT_TIME_FIELD_NUMBER: _ClassVar[int]
    UFS_ETAG_FIELD_NUMBER: _ClassVar[int]
    UFS_MTIME_FIELD_NUMBER: _ClassVar[int]
    UFS_PATH_FIELD_NUMBER: _ClassVar[int]
    UFS_VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WRITE_TYPE_FIELD_NUMBER: _ClassVar[int]
    block_size: int
    checksum: int
    completed_time: _timestamp_pb2.Timestamp
    created_time: _timestamp_pb2.Timestamp
    etag: str
    length: int
    metadata: _containers.ScalarMap[str, str]
    path: str
    persist_error: str
    persistence_state: PersistenceState
    pinned: bool
    replication: int
    ufs_drift: str
    ufs_drift_time: _timestamp_pb2.Timestamp
    ufs_etag: str
    ufs_mtime: _timestamp_pb2.Timestamp
    ufs_path: str
    ufs_version_id: str
    version: int
    write_type: WriteType
    def __init__(self, path: _Optional[str] = ..., version: _Optional[int] = ..., length: _Optional[int] = ..., block_size: _Optional[int] = ..., checksum: _Optional[int] = ..., etag: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., write_type: _Optional[_Union[WriteType, str]] = ..., replication: _Optional[int] = ..., pinned: bool = ..., persistence_state: _Optional[_Union[PersistenceState, str]] = ..., created_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., completed_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., ufs_mtime: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., persist_error: _Optional[str] = ..., ufs_path: _Optional[str] = ..., ufs_etag: _Optional[str] = ..., ufs_version_id: _Optional[str] = ..., ufs_drift: _Optional[str] = ..., ufs_drift_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetFileRequest(_message.Message):
    __slots__ = ["path"]
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class GetFileResponse(_message.Message):
    __slots__ = ["file"]
    FILE_FIELD_NUMBER: _ClassVar[int]
    file: File
    def __init__(self, file: _Optional[_Union[File, _Mapping]] = ...) -> None: ...

class GetFilesRequest(_message.Message):
    __slots__ = ["paths"]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, paths: _Optional[_Iterable[str]] = ...) -> None: ...

class GetFilesResponse(_message.Message):
    __slots__ = ["files", "pending"]
    FILES_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[File]
    pending: _containers.RepeatedCompositeFieldContainer[PendingWrite]
    def __init__(self, files: _Optional[_Iterable[_Union[File, _Mapping]]] = ..., pending: _Optional[_Iterable[_Union[PendingWrite, _Mapping]]] = ...) -> None: ...

class GetUploadMappingRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class GetUploadMappingResponse(_message.Message):
    __slots__ = ["mapping"]
    MAPPING_FIELD_NUMBER: _ClassVar[int]
    mapping: UploadMapping
    def __init__(self, mapping: _Optional[_Union[UploadMapping, _Mapping]] = ...) -> None: ...

class ListFilesRequest(_message.Message):
    __slots__ = ["after", "limit", "prefix"]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    after: str
    limit: int
    prefix: str
    def __init__(self, prefix: _Optional[str] = ..., after: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListFilesResponse(_message.Message):
    __slots__ = ["files", "next_after"]
    FILES_FIELD_NUMBER: _ClassVar[int]
    NEXT_AFTER_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[File]
    next_after: str
    def __init__(self, files: _Optional[_Iterable[_Union[File, _Mapping]]] = ..., next_after: _Optional[str] = ...) -> None: ...

class ListMountsRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class ListMountsResponse(_message.Message):
    __slots__ = ["mounts"]
    MOUNTS_FIELD_NUMBER: _ClassVar[int]
    mounts: _containers.RepeatedCompositeFieldContainer[Mount]
    def __init__(self, mounts: _Optional[_Iterable[_Union[Mount, _Mapping]]] = ...) -> None: ...

class LoadFileRequest(_message.Message):
    __slots__ = ["path"]
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class LoadFileResponse(_message.Message):
    __slots__ = ["file"]
    FILE_FIELD_NUMBER: _ClassVar[int]
    file: File
    def __init__(self, file: _Optional[_Union[File, _Mapping]] = ...) -> None: ...

class Mount(_message.Message):
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

class PathMapping(_message.Message):
    __slots__ = ["cache_path", "ufs_path"]
    CACHE_PATH_FIELD_NUMBER: _ClassVar[int]
    UFS_PATH_FIELD_NUMBER: _ClassVar[int]
    cache_path: str
    ufs_path: str
    def __init__(self, cache_path: _Optional[str] = ..., ufs_path: _Optional[str] = ...) -> None: ...

class PendingWrite(_message.Message):
    __slots__ = ["block_size", "created_time", "path", "pinned", "replaces", "replication", "version", "write_type"]
    BLOCK_SIZE_FIELD_NUMBER: _ClassVar[int]
    CREATED_TIME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    REPLACES_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WRITE_TYPE_FIELD_NUMBER: _ClassVar[int]
    block_size: int
    created_time: _timestamp_pb2.Timestamp
    path: str
    pinned: bool
    replaces: int
    replication: int
    version: int
    write_type: WriteType
    def __init__(self, path: _Optional[str] = ..., write_type: _Optional[_Union[WriteType, str]] = ..., block_size: _Optional[int] = ..., replication: _Optional[int] = ..., pinned: bool = ..., created_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[int] = ..., replaces: _Optional[int] = ...) -> None: ...

class PersistFileRequest(_message.Message):
    __slots__ = ["path"]
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class PersistFileResponse(_message.Message):
    __slots__ = ["file"]
    FILE_FIELD_NUMBER: _ClassVar[int]
    file: File
    def __init__(self, file: _Optional[_Union[File, _Mapping]] = ...) -> None: ...

class RemoveMountRequest(_message.Message):
    __slots__ = ["path"]
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class RemoveMountResponse(_message.Message):
    __slots__ = ["forgotten"]
    FORGOTTEN_FIELD_NUMBER: _ClassVar[int]
    forgotten: int
    def __init__(self, forgotten: _Optional[int] = ...) -> None: ...

class SetUploadMappingRequest(_message.Message):
    __slots__ = ["mapping_json"]
    MAPPING_JSON_FIELD_NUMBER: _ClassVar[int]
    mapping_json: str
    def __init__(self, mapping_json: _Optional[str] = ...) -> None: ...

class SetUploadMappingResponse(_message.Message):
    __slots__ = ["mapping"]
    MAPPING_FIELD_NUMBER: _ClassVar[int]
    mapping: UploadMapping
    def __init__(self, mapping: _Optional[_Union[UploadMapping, _Mapping]] = ...) -> None: ...

class UploadMapping(_message.Message):
    __slots__ = ["black_list", "cache_only_mount_point", "mappings"]
    BLACK_LIST_FIELD_NUMBER: _ClassVar[int]
    CACHE_ONLY_MOUNT_POINT_FIELD_NUMBER: _ClassVar[int]
    MAPPINGS_FIELD_NUMBER: _ClassVar[int]
    black_list: _containers.RepeatedScalarFieldContainer[str]
    cache_only_mount_point: str
    mappings: _containers.RepeatedCompositeFieldContainer[PathMapping]
    def __init__(self, cache_only_mount_point: _Optional[str] = ..., mappings: _Optional[_Iterable[_Union[PathMapping, _Mapping]]] = ..., black_list: _Optional[_Iterable[str]] = ...) -> None: ...

class WriteType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class PersistenceState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
