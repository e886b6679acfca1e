"""The placement spec held by a second language: the Python owners() must
give the Go code's answers, on the published vectors and on fresh random
vectors the Go code writes in this very run."""

from __future__ import annotations

import json
import random
import struct
import subprocess

import pytest

from conftest import REPO
from cairn.placement import MAX_REPLICATION, Placement, Worker, ln, mix, xxh64

VECTORS = REPO / "placement" / "testdata" / "vectors.json"


def check_cases(cases) -> int:
    n = 0
    for c in cases:
        p = Placement([Worker(w["ID"], w["Weight"]) for w in c["workers"]], c["replication"])
        for lk in c["lookups"]:
            got = p.owners(lk["path"])
            assert got == lk["owners"], f"case {c['name']!r} path {lk['path']!r}: python {got}, go {lk['owners']}"
            n += 1
    return n


def test_published_vectors():
    v = json.loads(VECTORS.read_text(encoding="utf-8"))
    assert v["xxh64"][0] == {"in": "", "out": "ef46db3751d8e999"}
    for p in v["xxh64"]:
        assert f"{xxh64(p['in']):016x}" == p["out"], p
    for p in v["mix"]:
        assert f"{mix(int(p['in'], 16)):016x}" == p["out"], p
    for p in v["ln"]:
        x = struct.unpack(">d", bytes.fromhex(p["x_bits"]))[0]
        assert struct.pack(">d", ln(x)).hex() == p["ln_bits"], p
    weighted = [c for c in v["cases"] if len({w["Weight"] for w in c["workers"]}) > 1]
    assert weighted and len(weighted) < len(v["cases"]), "the vectors should hold equal and weighted cases"
    assert check_cases(v["cases"]) > 100


def test_fresh_vectors_from_go(go_bin):
    """Random maps (equal and weighted, 1 to 400 workers, R 1..16, unicode
    ids and paths, weights up to 2^64-1) placed by the Go code now."""
    seed = random.SystemRandom().randrange(1, 1 << 63)
    r = subprocess.run(
        [go_bin, "run", "./sdk/python/tests/vectorgen", "-seed", str(seed), "-cases", "250"],
        cwd=REPO, capture_output=True, check=False,
    )
    assert r.returncode == 0, r.stderr.decode()
    v = json.loads(r.stdout)
    assert v["seed"] == seed
    kinds = {Placement([Worker(w["ID"], w["Weight"]) for w in c["workers"]], c["replication"]).weighted for c in v["cases"]}
    assert kinds == {True, False}
    n = check_cases(v["cases"])
    print(f"{n} lookups from Go (seed {seed}) agree")


def test_equal_weights_rank_as_hash():
    """With equal weights the weighted formula ranks exactly as h does (doc.go)."""
    ws = [Worker(f"w-{i:03d}", 7 << 30) for i in range(50)]
    p = Placement(ws, replication=5)
    for i in range(200):
        path = f"/x/{i}"
        dp = xxh64(path)
        by_h = sorted(ws, key=lambda w: -mix(xxh64(w.id) ^ dp))
        assert p.owners(path) == [w.id for w in by_h[:5]]


def test_weighted_share_follows_capacity():
    p = Placement([Worker("small", 1), Worker("big", 3)], replication=1)
    n = 20000
    big = sum(1 for i in range(n) if p.owners(f"/obj/{i}") == ["big"])
    assert abs(big / n - 0.75) < 0.02


def test_owners_bounds():
    p = Placement([Worker("a", 1), Worker("b", 1)], replication=4)
    assert sorted(p.owners("/p")) == ["a", "b"]  # R above the worker count
    assert len(p.owners("/p", replication=1)) == 1
    assert Placement([], replication=1).owners("/p") == []
    assert len(Placement([Worker(f"w{i}", 1) for i in range(40)], 3).owners("/p", replication=99)) == MAX_REPLICATION
    with pytest.raises(ValueError):
        Placement([Worker("a", 1), Worker("a", 1)])
    with pytest.raises(ValueError):
        Placement([Worker("a", 0)])
    with pytest.raises(ValueError):
        Placement([Worker("a", 1)], replication=MAX_REPLICATION + 1)
