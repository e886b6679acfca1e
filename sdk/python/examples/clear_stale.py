#!/usr/bin/python3
"""Clear stale copies from Python (the seed API's POST /api/v1/cache
{"op":"clear-stale"}): start a cleanup on every ACTIVE worker, print the
errors map (why a worker got no task), follow the job to its end and print
what it removed and kept.

    export CAIRN_TOKEN=$(cat .dev-data/admin.token)
    sdk/python/examples/clear_stale.py --masters 127.0.0.1:7700 [--force]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import cairn  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--masters", default=os.environ.get("CAIRN_MASTERS", cairn.DEFAULT_MASTERS))
    ap.add_argument("--token-file", help="default: $CAIRN_TOKEN")
    ap.add_argument("--force", action="store_true", help="also remove copies that cannot be verified or that diverge")
    args = ap.parse_args()
    with cairn.Client(args.masters, token=os.environ.get("CAIRN_TOKEN"), token_file=args.token_file) as c:
        r = c.clear_stale(force=args.force)
        print(f"clear-stale job {r.job.id} {'started' if r.created else 'already running'}: {r.job.tasks} tasks")
        print("errors:", json.dumps(dict(r.errors), indent=2, sort_keys=True))
        end = c.wait_job(r.job.id)
        k = end.counters
        print(
            f"job {end.id} {cairn.job_state_name(end.state)}: scanned {k.scanned}, removed {k.removed} "
            f"({k.reclaimed_bytes} B reclaimed: {k.stale_version} old versions, {k.deleted} deleted files, "
            f"{k.forced} forced), kept {k.kept_peer_missing} peer-missing, {k.kept_diverged} diverged, "
            f"{k.kept_unverified} unverified"
        )
        return 0 if end.state == cairn.jobs_pb2.JOB_STATE_SUCCEEDED else 1


if __name__ == "__main__":
    sys.exit(main())
