"""scripts/genproto.py keeps the committed raftpb code equal to what the pinned protoc makes."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("genproto", ROOT / "scripts" / "genproto.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["genproto"] = module
    spec.loader.exec_module(module)
    return module


genproto = _load()


@pytest.fixture
def fake_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the repository's protos and pyproject, with the generated code written."""
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "proto", root / "proto")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    monkeypatch.setattr(genproto, "ROOT", root)
    monkeypatch.setattr(genproto, "PROTO_DIR", root / "proto")
    assert genproto.main([]) == 0
    return root


def test_committed_code_is_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    """`genproto.py --check` passes on the repository: nobody edited or forgot generated code."""
    assert genproto.main(["--check"]) == 0, capsys.readouterr().err


def test_check_lists_what_is_out_of_date(
    fake_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--check exits 1 and names each generated file that differs, is missing or is extra."""
    pkg = fake_root / "controlplane" / "raftpb"
    assert sorted(p.name for p in pkg.iterdir()) == ["__init__.py", "raft_pb2.py", "raft_pb2.pyi"]
    (pkg / "raft_pb2.py").write_text((pkg / "raft_pb2.py").read_text() + "# hand edit\n")
    (pkg / "raft_pb2.pyi").unlink()
    (fake_root / "controlplane" / "oldpb").mkdir()
    (fake_root / "controlplane" / "oldpb" / "old_pb2.py").write_text("")
    capsys.readouterr()
    assert genproto.main(["--check"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[:3] == [
        "genproto: extra: controlplane/oldpb/old_pb2.py",
        "genproto: differs: controlplane/raftpb/raft_pb2.py",
        "genproto: missing: controlplane/raftpb/raft_pb2.pyi",
    ]
    assert "run `python scripts/genproto.py`" in err[3]
    assert genproto.main([]) == 0
    assert genproto.main(["--check"]) == 0
    assert not (fake_root / "controlplane" / "oldpb" / "old_pb2.py").exists()


def test_services_get_grpc_stubs(fake_root: Path) -> None:
    """A .proto that declares a service also yields its _pb2_grpc module."""
    svc = fake_root / "proto" / "controlplane" / "svctestpb" / "kv.proto"
    svc.parent.mkdir()
    svc.write_text(
        'syntax = "proto3";\npackage controlplane.svctestpb;\n'
        "message Req {}\nservice KV {\n  rpc Get(Req) returns (Req);\n}\n"
    )
    assert genproto.main([]) == 0
    names = sorted(p.name for p in (fake_root / "controlplane" / "svctestpb").iterdir())
    assert names == ["__init__.py", "kv_pb2.py", "kv_pb2.pyi", "kv_pb2_grpc.py"]
    assert not (fake_root / "controlplane" / "raftpb" / "raft_pb2_grpc.py").exists()


def test_protoc_errors_are_reported_plainly(
    fake_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken .proto exits 2 with protoc's message and no traceback."""
    (fake_root / "proto" / "controlplane" / "raftpb" / "raft.proto").write_text("syntax = nope")
    assert genproto.main(["--check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("genproto: error: protoc failed on proto/controlplane/raftpb/raft.proto")
    assert "Traceback" not in err


def test_other_grpcio_tools_is_refused(fake_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Generating with a grpcio-tools other than the pinned one exits 2 and says what to do."""
    pyproject = fake_root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"grpcio-tools==', '"grpcio-tools==0.0.'))
    assert genproto.main(["--check"]) == 2
    assert "but pyproject.toml pins 0.0." in capsys.readouterr().err
