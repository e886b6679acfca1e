from buf.validate import validate_pb2 as _validate_pb2
from cairn.v1 import event_pb2 as _event_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AppendNoteRequest(_message.Message):
    __slots__ = ["text"]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class AppendNoteResponse(_message.Message):
    __slots__ = ["index"]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    index: int
    def __init__(self, index: _Optional[int] = ...) -> None: ...

class TailEventsRequest(_message.Message):
    __slots__ = ["from_index", "no_follow"]
    FROM_INDEX_FIELD_NUMBER: _ClassVar[int]
    NO_FOLLOW_FIELD_NUMBER: _ClassVar[int]
    from_index: int
    no_follow: bool
    def __init__(self, from_index: _Optional[int] = ..., no_follow: bool = ...) -> None: ...

class TailEventsResponse(_message.Message):
    __slots__ = ["event", "index", "position"]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    event: _event_pb2.Event
    index: int
    position: int
    def __init__(self, index: _Optional[int] = ..., position: _Optional[int] = ..., event: _Optional[_Union[_event_pb2.Event, _Mapping]] = ...) -> None: ...
