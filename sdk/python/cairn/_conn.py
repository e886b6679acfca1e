"""Connections to a cairn cluster's masters and workers: dialling, the
failover rule every call follows, and the consistency and auth every call
carries. :class:`cairn.Client` builds on it; nothing here is public but what
``cairn`` re-exports.
"""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass
from typing import (
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
from cairn.v1 import auth_pb2_grpc, cluster_pb2_grpc, data_pb2_grpc, events_pb2_grpc
from cairn.v1 import jobs_pb2_grpc, namespace_pb2_grpc, operator_pb2_grpc

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



class _Conn:
    """The connections of a :class:`cairn.Client` (see its docstring for the
    arguments) and the calls every method makes through them."""

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

    def _first(self) -> Tuple[int, int]:
        """The master to try first (the one that answered last) and how many
        there are."""
        with self._lock:
            start = self._good
        n = len(self._services)
        if n == 0:
            raise ValueError("the client is closed")
        return start, n

    def _move_on(self, i: int, s: Services, e: grpc.RpcError, deadline: float, attempt: int, n: int) -> int:
        """After master ``i`` of ``n`` failed with ``e``: raises it as a
        :class:`CairnError` unless it is ``UNAVAILABLE`` and the retry budget
        lasts (then the master gets a new channel if it could not be reached);
        returns the next attempt, after a 100 ms pause each full round."""
        err = CairnError.from_rpc(e, s.address)
        if err.code == _UNAVAILABLE:
            self._redial_master(i, s, e)
        if err.code != _UNAVAILABLE or time.monotonic() >= deadline:
            raise err from e
        attempt += 1
        if attempt % n == 0:
            time.sleep(0.1)
        return attempt

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
        start, n = self._first()
        attempt = 0
        while True:
            i = (start + attempt) % n
            s = self._services[i]
            try:
                out = fn(s)
            except grpc.RpcError as e:
                attempt = self._move_on(i, s, e, deadline, attempt, n)
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
        start, n = self._first()
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
                attempt = self._move_on(i, s, e, deadline, attempt, n)
                continue
            finally:
                call.cancel()
            if time.monotonic() >= deadline:
                raise CairnError(_UNAVAILABLE, "the stream kept ending before it was complete", s.address)
            time.sleep(0.2)

    def _unary(self, method: Callable[[Services], Callable[..., T]], request: Any) -> T:
        return self.call(lambda s: method(s)(request, metadata=s.metadata, timeout=s.timeout))
