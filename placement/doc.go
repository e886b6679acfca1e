// Package placement decides which workers own a file: rendezvous
// (highest-random-weight, HRW) hashing over the ACTIVE workers of one
// cluster-map epoch, optionally weighted by capacity.
//
// # The function
//
// The owners of a path under a map are fixed by these steps. They use only
// 64-bit unsigned integer arithmetic (modulo 2^64) and, for unequal weights,
// IEEE-754 binary64 operations each rounded on its own (no fused
// multiply-add), so any language can reproduce them bit for bit. The vectors
// in testdata/vectors.json hold an SDK to them.
//
//  1. Worker digest: dw = XXH64(utf8(worker id), seed 0), once per epoch.
//  2. Path digest:   dp = XXH64(utf8(path), seed 0), once per lookup.
//  3. Worker hash for the path: h = mix(dw XOR dp), where mix is XXH64's
//     final avalanche:
//     x ^= x >> 33; x *= 0xC2B2AE3D27D4EB4F; x ^= x >> 29;
//     x *= 0x165667B19E3779F9; x ^= x >> 32.
//  4. Ranking.
//     - All weights equal (the common case, and plain HRW): rank workers by h,
//     highest first.
//     - Otherwise (weighted rendezvous): u = float64((h >> 11) | 1) / 2^53,
//     an odd multiple of 2^-53 in (0, 1), exact; score = w / (-Ln(u)) with
//     w = float64(weight) (round to nearest even), Ln as below; rank by
//     score, highest first, then by h, highest first.
//     - Remaining ties (two workers with equal digests): lower id first, ids
//     compared bytewise.
//  5. Owners = the first min(R, n) workers of the ranking, in rank order; the
//     first is the primary owner.
//
// A worker's weight is its capacity in bytes. Weighted rendezvous gives each
// worker a share of paths proportional to its weight: a worker with twice the
// capacity owns about twice the files. With equal weights the weighted
// formula ranks exactly as h does (-Ln is decreasing in u, and u in h), which
// is why the equal case may skip it.
//
// Ln(x) for x in (0, 1) is the algorithm of FreeBSD msun's e_log.c (also
// Go's portable math.log), with every product and sum rounded to binary64 on
// its own:
//
//	f1, k = frexp(x)            // x = f1 * 2^k, f1 in [0.5, 1)
//	if f1 < sqrt(2)/2 { f1 = f1*2; k = k-1 }
//	f = f1 - 1; s = f / (2 + f); s2 = s*s; s4 = s2*s2
//	t1 = s2 * (L1 + s4*(L3 + s4*(L5 + s4*L7)))
//	t2 = s4 * (L2 + s4*(L4 + s4*L6))
//	R = t1 + t2; hfsq = 0.5*f*f   // (0.5*f)*f
//	Ln = k*Ln2Hi - ((hfsq - (s*(hfsq + R) + k*Ln2Lo)) - f)
//
// with the constants Ln2Hi, Ln2Lo, L1..L7 of that algorithm (see ln.go), and
// the parenthesised order evaluated left to right.
//
// # Properties
//
// Each worker's hash and score depend only on the worker and the path, so
// adding a worker to N only takes paths from the others (about 1/(N+1) of
// them), removing one only gives its paths away, and no path moves between
// two workers that stayed.
//
// # Cost
//
// Worker digests are computed once per map; a lookup is one XXH64 of the
// path plus one avalanche and one compare per worker (the weighted path adds
// a logarithm for the few workers whose score bound can beat the current
// R-th best). Lookups do not allocate when the caller supplies the
// destination slice.
package placement
