"""cairn: the Python SDK of the cairn distributed cache.

``cairn.v1`` holds the messages and gRPC stubs that buf generates from
proto/cairn/v1 (``cairn.v1.cluster_pb2``, ``cairn.v1.cluster_pb2_grpc``, ...);
do not edit them. The rest is a thin hand-written client::

    import cairn
    c = cairn.Client(["10.0.0.1:7700", "10.0.0.2:7700"], token=open("admin.token").read().strip())
    print(c.cluster_map())
    print(c.owners("/data/part-00001.parquet"))
    job = c.start_rebalance().job
    for m in c.watch_job(job.id):
        print(m.job.state, m.job.counters.sent)

See sdk/python/README.md and docs/python-sdk.md.
"""

from cairn.client import (
    DEFAULT_MASTERS,
    LINEARIZABLE,
    STALE,
    STALE_ANY,
    Client,
    Services,
    job_kind,
    parse_masters,
)
from cairn.errors import CairnError, StatusCode
from cairn.placement import MAX_REPLICATION, Placement, Worker
from cairn.v1 import cluster_pb2, jobs_pb2, namespace_pb2

__all__ = [
    "Client",
    "Services",
    "CairnError",
    "StatusCode",
    "Placement",
    "Worker",
    "MAX_REPLICATION",
    "DEFAULT_MASTERS",
    "LINEARIZABLE",
    "STALE",
    "STALE_ANY",
    "job_kind",
    "parse_masters",
    "job_state_name",
    "job_kind_name",
    "cluster_pb2",
    "jobs_pb2",
    "namespace_pb2",
]


def job_state_name(state: int) -> str:
    """``JOB_STATE_SUCCEEDED`` -> ``"succeeded"``, as the CLI prints it."""
    return jobs_pb2.JobState.Name(state).removeprefix("JOB_STATE_").lower()


def job_kind_name(kind: int) -> str:
    """``JOB_KIND_REBALANCE`` -> ``"rebalance"``, as the CLI prints it."""
    return jobs_pb2.JobKind.Name(kind).removeprefix("JOB_KIND_").lower()
