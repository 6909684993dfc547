"""A stand-in master for CLI tests: the contract of `python -m controlplane`, no Raft.

Usage: `fakemaster.py controlplane --config FILE --name NAME [--initial-cluster]`. Like the
real master it refuses (exit 3) an empty data dir without `--initial-cluster` and creates
a Raft log with it; then it serves `/status`, `/readyz` and `/healthz` on its health port.
The master with id 1 reports itself leader of term 1, the others follow it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from controlplane.config import load_config
from controlplane.raftnode.disk import DiskStorage


def main(argv: list[str]) -> int:
    args = argv[argv.index("--config") + 1 :]
    config, name = Path(args[0]), argv[argv.index("--name") + 1]
    cfg = load_config(config)
    spec = cfg.master(name)
    if not DiskStorage.exists(spec.data_dir):
        if "--initial-cluster" not in argv:
            print(f"{name}: refused to start: {spec.data_dir} holds no Raft log", file=sys.stderr)
            return 3
        spec.data_dir.mkdir(parents=True, exist_ok=True)
        DiskStorage.create(spec.data_dir).close()
    leader = cfg.masters[0].name
    status = {
        "name": name,
        "id": spec.id,
        "pid": os.getpid(),
        "role": "leader" if spec.id == 1 else "follower",
        "term": 1,
        "leader": leader,
        "commit_index": 5,
        "applied_index": 5,
        "revision": 2,
        "peers": {},
        "faults": {},
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(status).encode() if self.path == "/status" else b"ok\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((spec.ip, spec.health_port), Handler)

    def stop(signum: int, frame: types.FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"fake master {name} serving on {spec.ip}:{spec.health_port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
