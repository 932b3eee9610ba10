"""A multi-node Ray cluster inside one machine, and where its work really ran.

The fault drills (``omnicodec.jobs.chaos``, ``omnicodec.serve.chaos``) start real raylets on
127.0.0.1 with ``ray.cluster_utils.Cluster``: a head without CPUs and 1-CPU nodes, so work
must spread over nodes, and the driver joins by address as on a real cluster. Why not
``ray start`` twice: with Ray 2.60 a second ``ray start`` on this machine either aborts
(``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` keeps Ray on loopback and forbids joining) or
rewrites 127.0.0.1 into the network address.
"""

from __future__ import annotations

import os

NODE = {"node_ip_address": "127.0.0.1", "include_dashboard": False, "object_store_memory": 120 * 1024 * 1024}


def process_nodes(cluster, tag: str) -> dict[int, str]:
    """Processes whose command line contains ``tag`` (Ray titles workers ``ray::ClassName``)
    -> the node whose raylet spawned them: where the cluster really placed the work."""
    import psutil

    raylets = {n.all_processes["raylet"][0].process.pid: n.node_id
               for n in [cluster.head_node, *cluster.worker_nodes]}
    out = {}
    for p in psutil.process_iter(["pid", "cmdline"]):
        if tag not in " ".join(p.info["cmdline"] or []):
            continue
        for parent in p.parents():
            if parent.pid in raylets:
                out[p.info["pid"]] = raylets[parent.pid]
                break
    return out


def loopback_cluster(worker_nodes: int = 2, cpus_per_node: float = 1):
    """A head without CPUs and ``worker_nodes`` nodes, all real raylets on 127.0.0.1."""
    from ray.cluster_utils import Cluster

    # The nodes start in this process without a token; a token left in ~/.ray by another
    # cluster would switch the driver to token mode and the GCS would drop its actors
    # ("Actor may be already destroyed"), so the drill's client matches its nodes.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "num_cpus": 0})
    for _ in range(worker_nodes):
        cluster.add_node(**NODE, num_cpus=cpus_per_node)
    return cluster
