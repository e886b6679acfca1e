"""Placement: which workers own a path, by the spec in placement/doc.go.

This is the second implementation of cairn's placement function (the first
is the Go package ``placement``). It follows the specification step by step,
with 64-bit unsigned integer arithmetic for the hashes and IEEE-754 binary64
operations, each rounded on its own, for the weighted score; CPython's
``float`` is binary64 and never fuses a multiply with an add, so the steps
below give the Go code's owners bit for bit. ``placement/testdata/vectors.json``
and vectors the Go code writes afresh in every test run hold the two to it.

The function, in short (see placement/doc.go for the full text):

1. worker digest ``dw = XXH64(utf8(id), seed 0)``, once per map;
2. path digest ``dp = XXH64(utf8(path), seed 0)``, once per lookup;
3. ``h = mix(dw ^ dp)``, XXH64's final avalanche;
4. with equal weights rank by ``h``, highest first; otherwise by
   ``score = w / -ln(u)`` with ``u = ((h >> 11) | 1) / 2**53`` and ``ln`` the
   msun algorithm below, then by ``h``; remaining ties: lower id (bytewise) first;
5. owners = the first ``min(R, n)`` of the ranking, the primary first.
"""

from __future__ import annotations

import math
from bisect import insort
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

import xxhash

__all__ = [
    "MAX_REPLICATION",
    "Worker",
    "Placement",
    "xxh64",
    "mix",
    "ln",
    "weighted_score",
]

MAX_REPLICATION = 16
"""The largest replication factor a map accepts (Go: placement.MaxReplication)."""

_MASK = (1 << 64) - 1
_P1 = 0xC2B2AE3D27D4EB4F
_P2 = 0x165667B19E3779F9
_TWO53 = float(1 << 53)
_MARGIN = 1 + 1.0 / (1 << 40)

# Constants of msun's e_log.c (Go's math.log), bit for bit (placement/ln.go).
_LN2_HI = 6.93147180369123816490e-01  # 3fe62e42 fee00000
_LN2_LO = 1.90821492927058770002e-10  # 3dea39ef 35793c76
_L1 = 6.666666666666735130e-01  # 3FE55555 55555593
_L2 = 3.999999999940941908e-01  # 3FD99999 9997FA04
_L3 = 2.857142874366239149e-01  # 3FD24924 94229359
_L4 = 2.222219843214978396e-01  # 3FCC71C5 1D8E78AF
_L5 = 1.818357216161805012e-01  # 3FC74664 96CB03DE
_L6 = 1.531383769920937332e-01  # 3FC39A09 D078C69F
_L7 = 1.479819860511658591e-01  # 3FC2F112 DF3E5244
_SQRT2_HALF = math.sqrt(2) / 2  # Go: math.Sqrt2/2, the same binary64 value


def xxh64(s: str) -> int:
    """XXH64 of the UTF-8 bytes of ``s`` with seed 0 (steps 1 and 2)."""
    return xxhash.xxh64_intdigest(s.encode("utf-8"))


def mix(x: int) -> int:
    """XXH64's final avalanche on a 64-bit value (step 3)."""
    x ^= x >> 33
    x = (x * _P1) & _MASK
    x ^= x >> 29
    x = (x * _P2) & _MASK
    x ^= x >> 32
    return x


def ln(x: float) -> float:
    """The natural logarithm of ``x`` in (0, 1) exactly as the spec gives it.

    This is msun's e_log.c (Go's portable math.log) with every operation
    rounded to binary64 on its own; it is not ``math.log``, which may differ
    in the last bit on some platforms.
    """
    f1, ki = math.frexp(x)  # x = f1 * 2**ki, f1 in [0.5, 1)
    if f1 < _SQRT2_HALF:
        f1 = f1 * 2
        ki -= 1
    f = f1 - 1
    k = float(ki)
    s = f / (2 + f)
    s2 = s * s
    s4 = s2 * s2
    t1 = s2 * (_L1 + s4 * (_L3 + s4 * (_L5 + s4 * _L7)))
    t2 = s4 * (_L2 + s4 * (_L4 + s4 * _L6))
    r = t1 + t2
    hfsq = (0.5 * f) * f
    inner = (s * (hfsq + r)) + (k * _LN2_LO)
    return (k * _LN2_HI) - ((hfsq - inner) - f)


def weighted_score(weight: float, h: int) -> float:
    """A worker's weighted score for hash ``h`` (step 4, weighted case)."""
    u = float((h >> 11) | 1) / _TWO53
    return weight / -ln(u)


@dataclass(frozen=True)
class Worker:
    """One placement candidate: an ACTIVE worker and its weight (capacity in bytes, >= 1)."""

    id: str
    weight: int = 1
    address: str = ""


class Placement:
    """The placement view of one cluster-map epoch.

    Build it once per epoch (the worker digests are computed here), then ask
    :meth:`owners` for as many paths as you like. Immutable.

    >>> p = Placement([Worker("w1", 1 << 30), Worker("w2", 1 << 30)], replication=1)
    >>> p.owners("/data/x")  # doctest: +SKIP
    ['w2']
    """

    def __init__(self, workers: Iterable[Worker], replication: int = 1, epoch: int = 0) -> None:
        if not 1 <= replication <= MAX_REPLICATION:
            raise ValueError(f"replication {replication} out of range 1..{MAX_REPLICATION}")
        ws = sorted(workers, key=lambda w: w.id.encode("utf-8"))
        ids: List[str] = []
        for i, w in enumerate(ws):
            if w.id == "":
                raise ValueError("worker with an empty id")
            if i > 0 and ws[i - 1].id == w.id:
                raise ValueError(f"worker {w.id!r} listed twice")
            if w.weight < 1:
                raise ValueError(f"worker {w.id!r} has weight {w.weight}")
            ids.append(w.id)
        self.epoch = epoch
        self.replication = replication
        self.workers: Tuple[Worker, ...] = tuple(ws)
        self._ids = tuple(ids)
        self._digests = tuple(xxh64(i) for i in ids)
        # float(int) rounds to nearest even, as Go's float64(uint64) does.
        self._weights = tuple(float(w.weight) for w in ws)
        self._equal = all(w.weight == ws[0].weight for w in ws)
        self._by_id = {w.id: w for w in ws}
        # (digest, index) pairs for the equal-weight loops.
        self._pairs = tuple(zip(self._digests, range(len(ids))))

    @classmethod
    def from_cluster_map(cls, cm) -> "Placement":
        """Builds the placement of a ``cairn.v1.ClusterMap`` message: its workers
        weighted by capacity (at least 1) and its replication factor (at least 1),
        as the Go SDK's ``placement.FromClusterMap`` does."""
        return cls(
            (Worker(w.id, max(w.capacity_bytes, 1), w.address) for w in cm.workers),
            replication=min(max(cm.replication, 1), MAX_REPLICATION),
            epoch=cm.epoch,
        )

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def weighted(self) -> bool:
        """True when the workers' weights differ, so lookups use the weighted formula."""
        return not self._equal

    def worker(self, worker_id: str) -> Worker:
        """The worker with this id (its address comes from the cluster map)."""
        return self._by_id[worker_id]

    def owners(self, path: str, replication: Optional[int] = None) -> List[str]:
        """The ids of the owners of ``path``, primary first.

        ``replication`` overrides the map's R (a file's own replication; 0 or
        None means the map's), capped at :data:`MAX_REPLICATION`.
        """
        r = self.replication if not replication else min(replication, MAX_REPLICATION)
        n = len(self._ids)
        if n == 0 or r < 1:
            return []
        r = min(r, n)
        dp = xxh64(path)
        ids = self._ids
        if self._equal:
            if r == 1:
                # Highest h; on equal h (equal digests) the lower index, i.e.
                # the lower id, which max() keeps because it returns the first.
                best, bi = -1, 0
                for d, i in self._pairs:
                    x = d ^ dp
                    x ^= x >> 33
                    x = (x * _P1) & _MASK
                    x ^= x >> 29
                    x = (x * _P2) & _MASK
                    x ^= x >> 32
                    if x > best:
                        best, bi = x, i
                return [ids[bi]]
            # Keep the r best (h descending, index ascending) in a small
            # sorted list; a worker whose h does not beat the r-th best is
            # skipped with one compare (Go: topByHash).
            top: List[Tuple[int, int]] = []
            for d, i in self._pairs:
                x = d ^ dp
                x ^= x >> 33
                x = (x * _P1) & _MASK
                x ^= x >> 29
                x = (x * _P2) & _MASK
                x ^= x >> 32
                if len(top) < r:
                    insort(top, (-x, i))
                elif -x < top[-1][0]:
                    insort(top, (-x, i))
                    top.pop()
            return [ids[i] for _, i in top]
        # Weighted: keep the r best (score, h) pairs. A worker whose score
        # cannot reach the r-th best is skipped without its logarithm:
        # -ln(u) >= 1-u, so score <= w/(1-u); the margin covers rounding, so
        # the skip never changes the result (Go: topByScore).
        weights = self._weights
        topw: List[Tuple[float, int, int]] = []
        for d, i in self._pairs:
            x = d ^ dp
            x ^= x >> 33
            x = (x * _P1) & _MASK
            x ^= x >> 29
            x = (x * _P2) & _MASK
            x ^= x >> 32
            w = weights[i]
            full = len(topw) == r
            if full:
                u = float((x >> 11) | 1) / _TWO53
                if w / (1 - u) * _MARGIN < -topw[-1][0]:
                    continue
            key = (-weighted_score(w, x), -x, i)
            if not full:
                insort(topw, key)
            elif key < topw[-1]:
                insort(topw, key)
                topw.pop()
        return [ids[t[2]] for t in topw]

    def owner_workers(self, path: str, replication: Optional[int] = None) -> List[Worker]:
        """Like :meth:`owners`, with each owner's :class:`Worker` (id, weight, address)."""
        return [self._by_id[i] for i in self.owners(path, replication)]

    def is_owner(self, worker_id: str, path: str) -> bool:
        """Whether ``worker_id`` is among the owners of ``path``."""
        return worker_id in self.owners(path)


def owners(workers: Sequence[Tuple[str, int]], replication: int, path: str) -> List[str]:
    """One-off lookup: the owners of ``path`` among ``(id, weight)`` pairs."""
    return Placement((Worker(i, w) for i, w in workers), replication).owners(path)
