"""The node agent: `fakenodes` (every fake worker of a cluster in one process, like kwok)
now; the kubelet proper, with its docker and process runtimes, reuses its node, lease and
pod-status functions."""
