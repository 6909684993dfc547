"""Kubernetes API machinery on the replicated store.

Pure parts (no I/O): `resources` (the kinds served), `errors` (metav1.Status), `quantity`,
`selectors` (label and field selectors), `defaults`, `validation`, `admission` (the one path
every write takes), `tables` (server-side printing). `storage` maps objects onto the MVCC
store (`/registry/<resource>/<namespace>/<name>`) through a `Backend`: the master's Raft
path in production, a local store in tests.
"""
