"""The scheduler (kube-scheduler semantics): `algorithm` decides where a pod fits, purely;
`scheduler.Scheduler` is the controller around it (queue, cache, binding), run by a
`controlplane.controllers.base.Manager` under the `kube-scheduler` Lease."""

from .algorithm import NodeInfo, ScheduleResult, build_node_infos, pod_requests, schedule, tolerates
from .scheduler import Scheduler, SchedulerCache, SchedulingQueue

__all__ = [
    "NodeInfo",
    "ScheduleResult",
    "Scheduler",
    "SchedulerCache",
    "SchedulingQueue",
    "build_node_infos",
    "pod_requests",
    "schedule",
    "tolerates",
]
