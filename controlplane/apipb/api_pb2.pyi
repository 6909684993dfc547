from controlplane.storepb import store_pb2 as _store_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WatchRequest(_message.Message):
    __slots__ = ("key", "range_end", "start_revision", "prev_kv", "progress_notify")
    KEY_FIELD_NUMBER: _ClassVar[int]
    RANGE_END_FIELD_NUMBER: _ClassVar[int]
    START_REVISION_FIELD_NUMBER: _ClassVar[int]
    PREV_KV_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_NOTIFY_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    range_end: bytes
    start_revision: int
    prev_kv: bool
    progress_notify: bool
    def __init__(self, key: _Optional[bytes] = ..., range_end: _Optional[bytes] = ..., start_revision: _Optional[int] = ..., prev_kv: _Optional[bool] = ..., progress_notify: _Optional[bool] = ...) -> None: ...

class WatchResponse(_message.Message):
    __slots__ = ("header", "created", "canceled", "compact_revision", "cancel_reason", "events")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    CANCELED_FIELD_NUMBER: _ClassVar[int]
    COMPACT_REVISION_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REASON_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    header: _store_pb2.ResponseHeader
    created: bool
    canceled: bool
    compact_revision: int
    cancel_reason: str
    events: _containers.RepeatedCompositeFieldContainer[_store_pb2.Event]
    def __init__(self, header: _Optional[_Union[_store_pb2.ResponseHeader, _Mapping]] = ..., created: _Optional[bool] = ..., canceled: _Optional[bool] = ..., compact_revision: _Optional[int] = ..., cancel_reason: _Optional[str] = ..., events: _Optional[_Iterable[_Union[_store_pb2.Event, _Mapping]]] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Member(_message.Message):
    __slots__ = ("id", "name", "peer_address", "client_address")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PEER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    peer_address: str
    client_address: str
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ..., peer_address: _Optional[str] = ..., client_address: _Optional[str] = ...) -> None: ...

class PeerProgress(_message.Message):
    __slots__ = ("match", "next", "state")
    MATCH_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    match: int
    next: int
    state: str
    def __init__(self, match: _Optional[int] = ..., next: _Optional[int] = ..., state: _Optional[str] = ...) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("header", "id", "name", "role", "term", "leader", "leader_name", "commit_index", "applied_index", "members", "progress", "compact_revision", "snapshot_index", "elections")
    class ProgressEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: PeerProgress
        def __init__(self, key: _Optional[int] = ..., value: _Optional[_Union[PeerProgress, _Mapping]] = ...) -> None: ...
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    LEADER_NAME_FIELD_NUMBER: _ClassVar[int]
    COMMIT_INDEX_FIELD_NUMBER: _ClassVar[int]
    APPLIED_INDEX_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    COMPACT_REVISION_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_INDEX_FIELD_NUMBER: _ClassVar[int]
    ELECTIONS_FIELD_NUMBER: _ClassVar[int]
    header: _store_pb2.ResponseHeader
    id: int
    name: str
    role: str
    term: int
    leader: int
    leader_name: str
    commit_index: int
    applied_index: int
    members: _containers.RepeatedCompositeFieldContainer[Member]
    progress: _containers.MessageMap[int, PeerProgress]
    compact_revision: int
    snapshot_index: int
    elections: int
    def __init__(self, header: _Optional[_Union[_store_pb2.ResponseHeader, _Mapping]] = ..., id: _Optional[int] = ..., name: _Optional[str] = ..., role: _Optional[str] = ..., term: _Optional[int] = ..., leader: _Optional[int] = ..., leader_name: _Optional[str] = ..., commit_index: _Optional[int] = ..., applied_index: _Optional[int] = ..., members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ..., progress: _Optional[_Mapping[int, PeerProgress]] = ..., compact_revision: _Optional[int] = ..., snapshot_index: _Optional[int] = ..., elections: _Optional[int] = ...) -> None: ...

class TransferLeadershipRequest(_message.Message):
    __slots__ = ("target",)
    TARGET_FIELD_NUMBER: _ClassVar[int]
    target: int
    def __init__(self, target: _Optional[int] = ...) -> None: ...

class TransferLeadershipResponse(_message.Message):
    __slots__ = ("leader", "term")
    LEADER_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    leader: int
    term: int
    def __init__(self, leader: _Optional[int] = ..., term: _Optional[int] = ...) -> None: ...

class CompactRequest(_message.Message):
    __slots__ = ("revision",)
    REVISION_FIELD_NUMBER: _ClassVar[int]
    revision: int
    def __init__(self, revision: _Optional[int] = ...) -> None: ...

class CompactResponse(_message.Message):
    __slots__ = ("header",)
    HEADER_FIELD_NUMBER: _ClassVar[int]
    header: _store_pb2.ResponseHeader
    def __init__(self, header: _Optional[_Union[_store_pb2.ResponseHeader, _Mapping]] = ...) -> None: ...

class HashRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HashResponse(_message.Message):
    __slots__ = ("header", "hash", "revision", "applied_index")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    APPLIED_INDEX_FIELD_NUMBER: _ClassVar[int]
    header: _store_pb2.ResponseHeader
    hash: int
    revision: int
    applied_index: int
    def __init__(self, header: _Optional[_Union[_store_pb2.ResponseHeader, _Mapping]] = ..., hash: _Optional[int] = ..., revision: _Optional[int] = ..., applied_index: _Optional[int] = ...) -> None: ...

class PeerFault(_message.Message):
    __slots__ = ("peer", "drop_out", "drop_in", "delay_ms", "block_out", "block_in")
    PEER_FIELD_NUMBER: _ClassVar[int]
    DROP_OUT_FIELD_NUMBER: _ClassVar[int]
    DROP_IN_FIELD_NUMBER: _ClassVar[int]
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_OUT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_IN_FIELD_NUMBER: _ClassVar[int]
    peer: int
    drop_out: float
    drop_in: float
    delay_ms: int
    block_out: bool
    block_in: bool
    def __init__(self, peer: _Optional[int] = ..., drop_out: _Optional[float] = ..., drop_in: _Optional[float] = ..., delay_ms: _Optional[int] = ..., block_out: _Optional[bool] = ..., block_in: _Optional[bool] = ...) -> None: ...

class SetFaultsRequest(_message.Message):
    __slots__ = ("clear", "faults", "unsafe_local_reads")
    CLEAR_FIELD_NUMBER: _ClassVar[int]
    FAULTS_FIELD_NUMBER: _ClassVar[int]
    UNSAFE_LOCAL_READS_FIELD_NUMBER: _ClassVar[int]
    clear: bool
    faults: _containers.RepeatedCompositeFieldContainer[PeerFault]
    unsafe_local_reads: bool
    def __init__(self, clear: _Optional[bool] = ..., faults: _Optional[_Iterable[_Union[PeerFault, _Mapping]]] = ..., unsafe_local_reads: _Optional[bool] = ...) -> None: ...

class SetFaultsResponse(_message.Message):
    __slots__ = ("faults_json",)
    FAULTS_JSON_FIELD_NUMBER: _ClassVar[int]
    faults_json: str
    def __init__(self, faults_json: _Optional[str] = ...) -> None: ...
