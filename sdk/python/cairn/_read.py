"""Reading a file's bytes from its owners, as the Go SDK does
(client/files_get.go): the bulk endpoint first, DataService.Read where it
cannot serve, the next owner resuming where the last one stopped.
:class:`cairn.Client` mixes this in.
"""

from __future__ import annotations

import base64
import http.client
import os
import ssl
import tempfile
import threading
import time
import urllib.parse
from typing import (
    IO,
    Any,
    Iterator,
    List,
    Optional,
    Tuple,
)

import grpc

from cairn._conn import _UNAVAILABLE
from cairn.errors import CairnError
from cairn.placement import Placement
from cairn.v1 import data_pb2, data_pb2_grpc
from cairn.v1 import namespace_pb2


class _ReadPos:
    """How far a read has got (shared by the owner attempts of one read)."""

    __slots__ = ("off",)

    def __init__(self, off: int) -> None:
        self.off = off


class _OwnerFailed(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Watchdog:
    """Cancels a stream that has received nothing for ``stall`` seconds while
    it was waiting for the server (time the caller spends on a chunk does not
    count): a stopped worker must not hang a read."""

    def __init__(self, call: Any, stall: Optional[float]) -> None:
        self._call = call
        self._stall = stall
        self._last = time.monotonic()
        self._held = False
        self._done = threading.Event()
        self.fired = False
        if stall and stall > 0:
            t = threading.Thread(target=self._run, name="cairn-read-watchdog", daemon=True)
            t.start()

    def _run(self) -> None:
        assert self._stall is not None
        step = min(1.0, self._stall / 4)
        while not self._done.wait(step):
            if not self._held and time.monotonic() - self._last > self._stall:
                self.fired = True
                self._call.cancel()
                return

    def kick(self) -> None:
        self._last = time.monotonic()

    def hold(self) -> None:
        self._held = True

    def release(self) -> None:
        self._last = time.monotonic()
        self._held = False

    def stop(self) -> None:
        self._done.set()


class _Reader:
    """The read methods of :class:`cairn.Client`; they use its connections
    (``_Conn``) and its namespace and placement methods."""


    def _data(self, addr: str) -> data_pb2_grpc.DataServiceStub:
        with self._lock:
            w = self._workers.get(addr)
            if w is None:
                ch = self._channel(addr)
                w = (ch, data_pb2_grpc.DataServiceStub(ch))
                self._workers[addr] = w
            return w[1]

    def _stat_or_load(self, path: str) -> namespace_pb2.File:
        try:
            return self.get_file(path)
        except CairnError as e:
            if e.code != grpc.StatusCode.NOT_FOUND:
                raise
        # The namespace lacks it; the UFS may have it (as the Go SDK does).
        return self.load_file(path)

    def read_chunks(
        self,
        path: str,
        offset: int = 0,
        length: Optional[int] = None,
        *,
        no_cache: bool = False,
        stall_timeout: Optional[float] = 60.0,
        raw: bool = True,
        no_partial_caching: bool = False,
    ) -> Iterator[bytes]:
        """Yields the bytes of the current version of ``path`` from
        ``offset`` (``length`` bytes, or to the end), as they arrive.

        The way the Go SDK reads (client/files_get.go): the masters give the
        file's record (a file only the UFS has is loaded into the namespace
        first) and the cluster map; the owners are computed here; each owner
        in rank order is asked, and where one fails the next resumes at the
        byte the last one stopped at. From one owner, the bytes come from the
        worker's bulk endpoint (``GET /data/v1/read``, raw bytes without
        message framing; skipped with ``raw=False`` or ``no_cache``), and
        where that cannot serve them (or stops), over ``DataService.Read``
        from where it stopped. An owner that does not cache the file reads
        it from the UFS (and caches it, unless ``no_cache``; with
        ``no_partial_caching``, a range that is not the whole file is served
        from the UFS without caching, as when the cluster setting
        ``cache.partial`` is off). An owner that sends nothing for ``stall_timeout``
        seconds is given up on (None: never). When no owner could serve the
        file and the map has moved on meanwhile, the rest is read once more
        from the new map's owners. Raises :class:`CairnError`: ``NOT_FOUND``
        when every owner said so, ``DATA_LOSS`` when one found the only
        copies untrustworthy, else ``UNAVAILABLE``.
        """
        f = self._stat_or_load(path)
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("offset and length must not be negative")
        end = f.length if length is None else min(f.length, offset + length)
        pos = _ReadPos(min(offset, end))
        pl = self.placement()
        try:
            yield from self._read_owners(pl, f, pos, end, no_cache, stall_timeout, raw, no_partial_caching)
            return
        except CairnError as e:
            if e.code not in (grpc.StatusCode.NOT_FOUND, _UNAVAILABLE):
                raise
            first = e
        # The map may have moved on (a worker left or joined): the owners
        # may be others now. Go on once more under the new map.
        try:
            pl2 = self.placement()
        except CairnError:
            raise first from None
        if pl2.epoch == pl.epoch:
            raise first
        yield from self._read_owners(pl2, f, pos, end, no_cache, stall_timeout, raw, no_partial_caching)

    def read(self, path: str, offset: int = 0, length: Optional[int] = None, **kw: Any) -> bytes:
        """The bytes of ``path`` (see :meth:`read_chunks`) as one ``bytes``."""
        return b"".join(self.read_chunks(path, offset, length, **kw))

    def read_to(self, path: str, out: IO[bytes], **kw: Any) -> int:
        """Writes the bytes of ``path`` to the binary file ``out`` (see
        :meth:`read_chunks`); returns how many were written."""
        n = 0
        for chunk in self.read_chunks(path, **kw):
            out.write(chunk)
            n += len(chunk)
        return n

    def _read_owners(
        self,
        pl: Placement,
        f: namespace_pb2.File,
        pos: _ReadPos,
        end: int,
        no_cache: bool,
        stall: Optional[float],
        raw: bool,
        no_partial: bool = False,
    ) -> Iterator[bytes]:
        owners = pl.owner_workers(f.path, f.replication)
        if not owners:
            raise CairnError(_UNAVAILABLE, f"no ACTIVE workers in the cluster map (epoch {pl.epoch})")
        errs: List[Tuple[str, grpc.StatusCode, str]] = []
        for w in owners:
            if pos.off >= end and end > 0:
                return
            try:
                yield from self._read_from(w.address, f, pos, end, no_cache, stall, raw, no_partial)
                return
            except _OwnerFailed as e:
                errs.append((w.id, e.code, e.message))
        code = grpc.StatusCode.NOT_FOUND
        for _, c, _ in errs:
            if c == grpc.StatusCode.DATA_LOSS:
                code = c
            elif c != grpc.StatusCode.NOT_FOUND and code != grpc.StatusCode.DATA_LOSS:
                code = _UNAVAILABLE
        why = "; ".join(f"{wid}: {c.name}: {m}" for wid, c, m in errs)
        raise CairnError(
            code, f"{f.path} version {f.version}: no owner under epoch {pl.epoch} could serve it: {why}"
        )

    def _read_from(
        self,
        addr: str,
        f: namespace_pb2.File,
        pos: _ReadPos,
        end: int,
        no_cache: bool,
        stall: Optional[float],
        raw: bool,
        no_partial: bool = False,
    ) -> Iterator[bytes]:
        if raw and not no_cache:
            done = yield from self._raw_read(addr, f, pos, end, stall, no_partial)
            if done:
                return
        req = data_pb2.ReadRequest(
            path=f.path,
            version=f.version,
            offset=pos.off,
            length=0 if end == f.length else end - pos.off,
            ufs_fallback=f,
            no_cache=no_cache,
            no_partial_caching=no_partial,
        )
        call = self._data(addr).Read(req, metadata=self._data_md)
        dog = _Watchdog(call, stall)
        try:
            for m in call:
                dog.kick()
                chunk = m.chunk
                if not chunk:
                    continue
                if pos.off + len(chunk) > end:
                    chunk = chunk[: end - pos.off]
                pos.off += len(chunk)
                dog.hold()
                yield chunk
                dog.release()
                if pos.off >= end:
                    break
        except grpc.RpcError as e:
            if dog.fired:
                raise _OwnerFailed(_UNAVAILABLE, f"{addr} sent nothing for {stall}s") from e
            if e.code() == _UNAVAILABLE:
                self._redial_worker(addr, e)
            raise _OwnerFailed(e.code(), e.details() or "") from e
        finally:
            dog.stop()
            call.cancel()
        if pos.off < end:
            raise _OwnerFailed(_UNAVAILABLE, f"{addr} ended the read at byte {pos.off} of {end}")

    def _ssl_context(self) -> Optional[ssl.SSLContext]:
        """The TLS settings of the gRPC channels, for the bulk endpoint."""
        if not self._tls:
            return None
        with self._lock:
            if self._sslctx is None:
                roots = self._tls_files[0]
                ctx = ssl.create_default_context(cadata=roots.decode("ascii") if roots else None)
                cert, key = self._tls_files[1], self._tls_files[2]
                if cert is not None:
                    # ssl loads a client certificate from files only.
                    with tempfile.TemporaryDirectory(prefix="cairn-tls-") as d:
                        cf, kf = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
                        with open(cf, "wb") as fh:
                            fh.write(cert)
                        with open(os.open(kf, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as fh:
                            fh.write(key or b"")
                        ctx.load_cert_chain(cf, kf if key else None)
                self._sslctx = ctx
            return self._sslctx

    def _raw_read(
        self, addr: str, f: namespace_pb2.File, pos: _ReadPos, end: int, stall: Optional[float], no_partial: bool = False
    ) -> Iterator[bytes]:
        """Reads from ``pos`` to ``end`` through the owner's bulk endpoint,
        yielding what arrives; returns True when it reached the end. Anything
        amiss (not cached and no UFS copy, a cut connection, a stall) returns
        False and leaves the rest to DataService.Read, as the Go SDK does."""
        if self._server_name:
            return False  # the bulk endpoint is dialled by address: no name override
        host, _, port = addr.rpartition(":")
        host = host.strip("[]")
        q = {"path": f.path, "version": str(f.version), "offset": str(pos.off)}
        if end != f.length:
            q["length"] = str(end - pos.off)
        if no_partial:
            q["no_partial_caching"] = "true"
        headers = dict(self._data_md_http)
        rec = f.SerializeToString()
        if len(rec) < 6 << 10:
            # With the file's record, the owner reads a miss from the UFS here too.
            headers["X-Cairn-File"] = base64.b64encode(rec).decode("ascii")
        timeout = stall if stall and stall > 0 else None
        ctx = self._ssl_context()
        conn: http.client.HTTPConnection
        if ctx is not None:
            conn = http.client.HTTPSConnection(host, int(port), timeout=timeout, context=ctx)
        else:
            conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
        try:
            conn.request("GET", "/data/v1/read?" + urllib.parse.urlencode(q), headers=headers)
            resp = conn.getresponse()
            if resp.status != 200 or resp.getheader("X-Cairn-Version") != str(f.version):
                return False
            while pos.off < end:
                chunk = resp.read(min(1 << 20, end - pos.off))
                if not chunk:
                    return False
                pos.off += len(chunk)
                yield chunk
            return True
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()
