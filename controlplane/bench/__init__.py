"""Benchmarks of running clusters (`kubelab bench ...`).

- `quorum`: write latency, throughput and failover of the replicated store, optionally
  side by side with etcd (`quorum.py`). The systems under test are in `systems.py`, the
  client in `workload.py`, readings of the members from outside in `probes.py` and
  `profile.py`, the machine in `machine.py`, output in `report.py` and `svg.py`.
- `scale`: a cluster of fake workers under thousands of pods: time to Running, scheduler
  throughput, mutating-call latency, RSS, elections (`scale.py`, which also holds the
  fake-cluster harness and the observers `reschedule` reuses).
- `reschedule`: a node crash, stage by stage, for each timer profile (`reschedule.py`).
"""
