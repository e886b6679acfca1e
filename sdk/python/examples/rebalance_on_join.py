#!/usr/bin/python3
"""Rebalance control from Python: wait for a worker to join, start a rebalance
by the new map, and print its progress until it ends.

    export CAIRN_TOKEN=$(cat .dev-data/admin.token)
    sdk/python/examples/rebalance_on_join.py --masters 127.0.0.1:7700
    # then, elsewhere: cairn worker --data /tmp/w4 --api 127.0.0.1:7790 --masters 127.0.0.1:7700 ...

The masters start a rebalance by themselves on every new epoch (the
rebalance.enabled setting); starting one here then returns that job
(created False) instead of starting a second one, so the script works with
the setting on or off.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import cairn  # noqa: E402


def progress(m) -> None:
    j = m.job
    c = j.counters
    print(
        f"job {j.id} {cairn.job_state_name(j.state)}: tasks {j.tasks_done}/{j.tasks}, "
        f"scanned {c.scanned}, sent {c.sent} ({c.sent_bytes} B), received {c.received} ({c.received_bytes} B)",
        flush=True,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--masters", default=os.environ.get("CAIRN_MASTERS", cairn.DEFAULT_MASTERS))
    ap.add_argument("--token-file", help="default: $CAIRN_TOKEN")
    ap.add_argument("--once", action="store_true", help="stop after the first rebalance ends")
    args = ap.parse_args()
    with cairn.Client(args.masters, token=os.environ.get("CAIRN_TOKEN"), token_file=args.token_file) as c:
        known = None
        for cm in c.watch_cluster_map():
            ids = {w.id for w in cm.workers}
            if known is None:
                print(f"epoch {cm.epoch}: {len(ids)} workers; waiting for one to join", flush=True)
                known = ids
                continue
            joined = sorted(ids - known)
            known = ids
            if not joined:
                continue
            print(f"epoch {cm.epoch}: {', '.join(joined)} joined ({cm.cause})", flush=True)
            r = c.start_rebalance()
            print(f"rebalance job {r.job.id} {'started' if r.created else 'already running'} for epoch {r.job.spec.epoch}", flush=True)
            for worker, why in r.errors.items():
                print(f"  {worker}: {why}")
            end = c.wait_job(r.job.id, progress=progress)
            print(f"job {end.id} ended {cairn.job_state_name(end.state)} {end.reason}".rstrip(), flush=True)
            if args.once:
                return 0 if end.state == cairn.jobs_pb2.JOB_STATE_SUCCEEDED else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
