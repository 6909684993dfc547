"""The scheduler and the controller-manager inside a master process (DESIGN.md: they run
on every master and act only while holding their Lease).

They talk to the API like any client, through gRPC with the `controller` token, this
master first and the others after it, so that a paused or partitioned master's managers
are judged by the same rules as everyone else's (deadlines, the Lease, the fence).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from controlplane.client.resources import ResourceClient
from controlplane.config import ClusterConfig, MasterSpec
from controlplane.controllers.base import Manager
from controlplane.controllers.deployment import DeploymentController
from controlplane.controllers.endpoints import EndpointsController
from controlplane.controllers.gc import GarbageCollector
from controlplane.controllers.namespace import NamespaceController
from controlplane.controllers.nodelifecycle import NodeLifecycleController
from controlplane.controllers.replicaset import ReplicaSetController
from controlplane.scheduler.scheduler import Scheduler

logger = logging.getLogger(__name__)

CONTROLLER_USER = "controller"

# The Event source of each controller, as kube-controller-manager names them.
EVENT_SOURCES = {
    "replicaset": "replicaset-controller",
    "deployment": "deployment-controller",
    "nodelifecycle": "node-controller",
    "endpoints": "endpoint-controller",
    "garbagecollector": "garbage-collector-controller",
    "namespace": "namespace-controller",
}


def managers(cfg: ClusterConfig, me: MasterSpec, client: ResourceClient) -> list[Manager]:
    """kube-scheduler and kube-controller-manager for this master. Identities are
    `<master>_<uuid>`, as Kubernetes' `<hostname>_<uuid>`."""
    scheduler = Manager.from_env(
        "kube-scheduler",
        client,
        [Scheduler()],
        timers=cfg.timers,
        identity=f"{me.name}_{uuid.uuid4()}",
        component="default-scheduler",
        member=me.name,
    )
    controller_manager = Manager.from_env(
        "kube-controller-manager",
        client,
        [
            ReplicaSetController(),
            DeploymentController(),
            NodeLifecycleController(),
            EndpointsController(),
            GarbageCollector(),
            NamespaceController(),
        ],
        timers=cfg.timers,
        identity=f"{me.name}_{uuid.uuid4()}",
        component="kube-controller-manager",
        member=me.name,
        components=EVENT_SOURCES,
    )
    return [scheduler, controller_manager]


async def run_managers(cfg: ClusterConfig, me: MasterSpec) -> None:
    """Run both managers until cancelled."""
    client = ResourceClient.for_cluster(cfg, CONTROLLER_USER, first=me.name)
    try:
        async with asyncio.TaskGroup() as tg:
            for m in managers(cfg, me, client):
                tg.create_task(m.run(), name=m.name)
    finally:
        with contextlib.suppress(Exception):
            await client.close()
