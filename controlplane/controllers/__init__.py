"""The scheduler and the controller-manager, as in Kubernetes: reconcilers that watch the
API through informers and write through it, each acting only while it holds its Lease.

`base` is the common machinery (the leader-elected `Manager`, a `Context` with informers,
an Event recorder and a `Writer` whose every write is fenced by the Lease, the work-queue
loop). Decisions are pure functions in each controller's module (table-driven tests);
the classes around them only read caches and write results.
"""
