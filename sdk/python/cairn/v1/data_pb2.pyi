from buf.validate import validate_pb2 as _validate_pb2
from cairn.v1 import namespace_pb2 as _namespace_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AbortMultipartWriteRequest(_message.Message):
    __slots__ = ["upload_id"]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    def __init__(self, upload_id: _Optional[str] = ...) -> None: ...

class AbortMultipartWriteResponse(_message.Message):
    __slots__ = ["aborted"]
    ABORTED_FIELD_NUMBER: _ClassVar[int]
    aborted: bool
    def __init__(self, aborted: bool = ...) -> None: ...

class CachedFile(_message.Message):
    __slots__ = ["block_size", "identity", "last_access", "local_dir", "pinned", "unpersisted", "write_type"]
    BLOCK_SIZE_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    LAST_ACCESS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_DIR_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    UNPERSISTED_FIELD_NUMBER: _ClassVar[int]
    WRITE_TYPE_FIELD_NUMBER: _ClassVar[int]
    block_size: int
    identity: FileIdentity
    last_access: _timestamp_pb2.Timestamp
    local_dir: str
    pinned: bool
    unpersisted: bool
    write_type: _namespace_pb2.WriteType
    def __init__(self, identity: _Optional[_Union[FileIdentity, _Mapping]] = ..., write_type: _Optional[_Union[_namespace_pb2.WriteType, str]] = ..., pinned: bool = ..., unpersisted: bool = ..., block_size: _Optional[int] = ..., last_access: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., local_dir: _Optional[str] = ...) -> None: ...

class CompleteMultipartWriteRequest(_message.Message):
    __slots__ = ["checksum", "upload_id"]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    checksum: int
    upload_id: str
    def __init__(self, upload_id: _Optional[str] = ..., checksum: _Optional[int] = ...) -> None: ...

class CompleteMultipartWriteResponse(_message.Message):
    __slots__ = ["file", "ufs_etag", "ufs_mtime", "ufs_version_id"]
    FILE_FIELD_NUMBER: _ClassVar[int]
    UFS_ETAG_FIELD_NUMBER: _ClassVar[int]
    UFS_MTIME_FIELD_NUMBER: _ClassVar[int]
    UFS_VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    file: CachedFile
    ufs_etag: str
    ufs_mtime: _timestamp_pb2.Timestamp
    ufs_version_id: str
    def __init__(self, file: _Optional[_Union[CachedFile, _Mapping]] = ..., ufs_mtime: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., ufs_etag: _Optional[str] = ..., ufs_version_id: _Optional[str] = ...) -> None: ...

class DataServiceDeleteRequest(_message.Message):
    __slots__ = ["path", "version"]
    PATH_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    path: str
    version: int
    def __init__(self, path: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class DataServiceDeleteResponse(_message.Message):
    __slots__ = ["deleted"]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: bool = ...) -> None: ...

class FileIdentity(_message.Message):
    __slots__ = ["checksum", "etag", "length", "metadata", "path", "version"]
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
    VERSION_FIELD_NUMBER: _ClassVar[int]
    checksum: int
    etag: str
    length: int
    metadata: _containers.ScalarMap[str, str]
    path: str
    version: int
    def __init__(self, path: _Optional[str] = ..., version: _Optional[int] = ..., length: _Optional[int] = ..., checksum: _Optional[int] = ..., etag: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PartHeader(_message.Message):
    __slots__ = ["checksum", "length", "offset", "upload_id"]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    checksum: int
    length: int
    offset: int
    upload_id: str
    def __init__(self, upload_id: _Optional[str] = ..., offset: _Optional[int] = ..., length: _Optional[int] = ..., checksum: _Optional[int] = ...) -> None: ...

class ReadRequest(_message.Message):
    __slots__ = ["length", "no_cache", "no_partial_caching", "offset", "path", "ufs_fallback", "version"]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    NO_CACHE_FIELD_NUMBER: _ClassVar[int]
    NO_PARTIAL_CACHING_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    UFS_FALLBACK_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    length: int
    no_cache: bool
    no_partial_caching: bool
    offset: int
    path: str
    ufs_fallback: _namespace_pb2.File
    version: int
    def __init__(self, path: _Optional[str] = ..., version: _Optional[int] = ..., offset: _Optional[int] = ..., length: _Optional[int] = ..., ufs_fallback: _Optional[_Union[_namespace_pb2.File, _Mapping]] = ..., no_cache: bool = ..., no_partial_caching: bool = ...) -> None: ...

class ReadResponse(_message.Message):
    __slots__ = ["chunk", "file"]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    chunk: bytes
    file: CachedFile
    def __init__(self, file: _Optional[_Union[CachedFile, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class StartMultipartWriteRequest(_message.Message):
    __slots__ = ["header"]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    header: WriteHeader
    def __init__(self, header: _Optional[_Union[WriteHeader, _Mapping]] = ...) -> None: ...

class StartMultipartWriteResponse(_message.Message):
    __slots__ = ["upload_id"]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    def __init__(self, upload_id: _Optional[str] = ...) -> None: ...

class StatRequest(_message.Message):
    __slots__ = ["paths"]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, paths: _Optional[_Iterable[str]] = ...) -> None: ...

class StatResponse(_message.Message):
    __slots__ = ["files"]
    FILES_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[CachedFile]
    def __init__(self, files: _Optional[_Iterable[_Union[CachedFile, _Mapping]]] = ...) -> None: ...

class TransferRequest(_message.Message):
    __slots__ = ["path", "rebalance_epoch", "target_address", "version"]
    PATH_FIELD_NUMBER: _ClassVar[int]
    REBALANCE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    TARGET_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    path: str
    rebalance_epoch: int
    target_address: str
    version: int
    def __init__(self, path: _Optional[str] = ..., version: _Optional[int] = ..., target_address: _Optional[str] = ..., rebalance_epoch: _Optional[int] = ...) -> None: ...

class TransferResponse(_message.Message):
    __slots__ = ["bytes_sent", "file", "sent"]
    BYTES_SENT_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    bytes_sent: int
    file: CachedFile
    sent: bool
    def __init__(self, file: _Optional[_Union[CachedFile, _Mapping]] = ..., sent: bool = ..., bytes_sent: _Optional[int] = ...) -> None: ...

class WriteHeader(_message.Message):
    __slots__ = ["checksum_last", "identity", "new_version", "no_cache", "pinned", "rebalance_epoch", "replaces", "through", "unpersisted", "write_type"]
    CHECKSUM_LAST_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    NEW_VERSION_FIELD_NUMBER: _ClassVar[int]
    NO_CACHE_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    REBALANCE_EPOCH_FIELD_NUMBER: _ClassVar[int]
    REPLACES_FIELD_NUMBER: _ClassVar[int]
    THROUGH_FIELD_NUMBER: _ClassVar[int]
    UNPERSISTED_FIELD_NUMBER: _ClassVar[int]
    WRITE_TYPE_FIELD_NUMBER: _ClassVar[int]
    checksum_last: bool
    identity: FileIdentity
    new_version: bool
    no_cache: bool
    pinned: bool
    rebalance_epoch: int
    replaces: int
    through: bool
    unpersisted: bool
    write_type: _namespace_pb2.WriteType
    def __init__(self, identity: _Optional[_Union[FileIdentity, _Mapping]] = ..., write_type: _Optional[_Union[_namespace_pb2.WriteType, str]] = ..., pinned: bool = ..., unpersisted: bool = ..., checksum_last: bool = ..., through: bool = ..., no_cache: bool = ..., rebalance_epoch: _Optional[int] = ..., new_version: bool = ..., replaces: _Optional[int] = ...) -> None: ...

class WritePartRequest(_message.Message):
    __slots__ = ["chunk", "header"]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    chunk: bytes
    header: PartHeader
    def __init__(self, header: _Optional[_Union[PartHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class WritePartResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class WriteRequest(_message.Message):
    __slots__ = ["checksum", "chunk", "header"]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    checksum: int
    chunk: bytes
    header: WriteHeader
    def __init__(self, header: _Optional[_Union[WriteHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ..., checksum: _Optional[int] = ...) -> None: ...

class WriteResponse(_message.Message):
    __slots__ = ["already_held", "file", "ufs_etag", "ufs_mtime", "ufs_version_id"]
    ALREADY_HELD_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    UFS_ETAG_FIELD_NUMBER: _ClassVar[int]
    UFS_MTIME_FIELD_NUMBER: _ClassVar[int]
    UFS_VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    already_held: bool
    file: CachedFile
    ufs_etag: str
    ufs_mtime: _timestamp_pb2.Timestamp
    ufs_version_id: str
    def __init__(self, file: _Optional[_Union[CachedFile, _Mapping]] = ..., ufs_mtime: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., already_held: bool = ..., ufs_etag: _Optional[str] = ..., ufs_version_id: _Optional[str] = ...) -> None: ...
