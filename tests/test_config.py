"""`controlplane.config`: cluster.toml parsing, validation, precedence, addresses, discovery."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from procfixtures import cleanup, sleeper_argv

from controlplane import procs
from controlplane.config import (
    PROFILES,
    TIMER_KEYS,
    ClusterConfig,
    ConfigError,
    Token,
    dump_config,
    find_cluster,
    load_config,
    new_tokens,
    parse_config,
    read_token_file,
    register_cluster,
    unregister_cluster,
    write_config,
    write_token_file,
)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own KUBELAB_HOME and no KUBELAB_CLUSTER."""
    h = tmp_path / "home"
    monkeypatch.setenv("KUBELAB_HOME", str(h))
    monkeypatch.delenv("KUBELAB_CLUSTER", raising=False)
    yield h
    assert cleanup(h) == [], "leaked processes"


def cfg_text(subnet: str = "127.77.0.0/16", name: str = "lab", extra: str = "") -> str:
    return f'[cluster]\nname = "{name}"\nsubnet = "{subnet}"\n{extra}'


# -- the shipped default -----------------------------------------------------------------------


def test_default_loads_with_three_masters_and_three_workers(home: Path) -> None:
    """The packaged cluster.toml is valid: 3 masters, 3 workers, demo timers, 127.10/16."""
    cfg = load_config()
    assert cfg.name == "kubelab"
    assert cfg.subnet == ipaddress.IPv4Network("127.10.0.0/16")
    assert [m.name for m in cfg.masters] == ["master-1", "master-2", "master-3"]
    assert [w.name for w in cfg.workers] == ["worker-1", "worker-2", "worker-3"]
    assert cfg.timers.profile == "demo"
    assert cfg.data_dir == home / "kubelab"
    assert cfg.source is None
    assert cfg.warnings == ()


def test_repo_root_cluster_toml_is_the_packaged_one() -> None:
    """`cluster.toml` at the repository root is the default the package ships."""
    root = Path(__file__).resolve().parent.parent
    assert (root / "cluster.toml").read_text() == (root / "controlplane/cluster.toml").read_text()


def test_default_addresses_for_c10() -> None:
    """DESIGN.md "Addresses" for the default subnet 127.10.0.0/16."""
    cfg = load_config()
    assert cfg.frontdoor == ("127.10.0.1", 6443)
    m2 = cfg.master("master-2")
    assert (m2.id, m2.ip) == (2, "127.10.0.12")
    assert (m2.raft_port, m2.grpc_port, m2.rest_port, m2.health_port) == (2380, 2379, 6443, 2381)
    assert m2.data_dir == cfg.data_dir / "master-2"
    assert m2.health_url == "http://127.10.0.12:2381"
    w3 = cfg.worker("worker-3")
    assert (w3.index, w3.node_ip, w3.kubelet_port) == (3, "127.10.13.1", 10250)
    assert w3.pod_cidr == ipaddress.IPv4Network("127.10.13.0/24")
    assert cfg.service_cidr == ipaddress.IPv4Network("127.10.250.0/23")
    assert (cfg.token_file, cfg.run_dir) == (cfg.data_dir / "tokens.csv", cfg.data_dir / "run")
    assert cfg.kubeconfig == cfg.data_dir / "kubeconfig"


@pytest.mark.parametrize("c", [1, 77, 254], ids=["c1", "c77", "c254"])
def test_addresses_follow_the_subnet(c: int) -> None:
    """Master i is 127.C.0.(10+i), worker i 127.C.(10+i).1, the front door 127.C.0.1."""
    masters = "".join(f'[[masters]]\nname = "m{i}"\n' for i in range(1, 6))
    workers = "".join(f'[[workers]]\nname = "w{i}"\n' for i in range(1, 3))
    cfg = parse_config(cfg_text(f"127.{c}.0.0/16") + masters + workers)
    assert [m.ip for m in cfg.masters] == [f"127.{c}.0.{10 + i}" for i in range(1, 6)]
    assert [m.id for m in cfg.masters] == [1, 2, 3, 4, 5]
    assert [w.node_ip for w in cfg.workers] == [f"127.{c}.11.1", f"127.{c}.12.1"]
    assert cfg.frontdoor == (f"127.{c}.0.1", 6443)


# -- profiles and precedence -------------------------------------------------------------------

DESIGN_PROFILES = {
    # DESIGN.md "Timer profiles (exact values)", row by row: kubernetes, demo.
    "heartbeat_ms": (100, 100),
    "election_ms": (1000, 600),
    "node_lease_renew_s": (10, 1),
    "node_monitor_period_s": (5, 0.5),
    "node_monitor_grace_s": (50, 4),
    "toleration_s": (300, 3),
    "leader_lease_duration_s": (15, 4),
    "leader_renew_deadline_s": (10, 3),
    "leader_retry_s": (2, 0.5),
    "crashloop_backoff_base_s": (10, 1),
    "crashloop_backoff_max_s": (300, 30),
    "node_eviction_rate": (0.1, 1),
    "event_ttl_s": (3600, 600),
    "compaction_interval_s": (300, 60),
}


@pytest.mark.parametrize("profile", ["kubernetes", "demo"])
def test_profiles_have_the_design_values(profile: str) -> None:
    """Each profile yields exactly DESIGN.md's table, in [raft] and Timers."""
    cfg = parse_config(cfg_text(extra=f'timers = "{profile}"\n'))
    column = 0 if profile == "kubernetes" else 1
    got = {**cfg.raft.to_dict(), **cfg.timers.to_dict()}
    for key, values in DESIGN_PROFILES.items():
        assert got[key] == values[column], key
    assert set(DESIGN_PROFILES) == {"heartbeat_ms", "election_ms", *TIMER_KEYS}
    assert set(PROFILES[profile]) == set(DESIGN_PROFILES)


def test_raft_defaults() -> None:
    """pre_vote, check_quorum, fsync on; snapshot_count 10,000 (DESIGN.md)."""
    raft = parse_config(cfg_text()).raft
    assert (raft.pre_vote, raft.check_quorum, raft.fsync, raft.snapshot_count) == (
        True,
        True,
        True,
        10_000,
    )
    assert raft.election_ticks == 6


def test_file_keys_override_the_profile() -> None:
    """profile < [raft]/[timers] keys."""
    text = cfg_text(extra='timers = "kubernetes"\n')
    text += "[raft]\nelection_ms = 2000\n[timers]\ntoleration_s = 30\n"
    cfg = parse_config(text)
    assert cfg.raft.election_ms == 2000
    assert cfg.raft.heartbeat_ms == 100  # from the profile
    assert cfg.timers.toleration_s == 30.0
    assert cfg.timers.node_monitor_grace_s == 50.0  # from the profile


def test_overrides_beat_file_keys() -> None:
    """[raft]/[timers] keys < command-line overrides."""
    text = cfg_text() + "[raft]\nelection_ms = 2000\n[timers]\ntoleration_s = 30\n"
    cfg = parse_config(text, overrides={"raft.election_ms": 900, "timers.toleration_s": 7})
    assert (cfg.raft.election_ms, cfg.timers.toleration_s) == (900, 7.0)


def test_timers_flag_switches_the_profile_and_keeps_explicit_keys() -> None:
    """`--timers P` replaces the profile (the bottom layer); keys set in the file still win."""
    text = cfg_text() + "[timers]\ntoleration_s = 30\n"
    cfg = parse_config(text, overrides={"cluster.timers": "kubernetes"})
    assert cfg.timers.profile == "kubernetes"
    assert cfg.timers.node_lease_renew_s == 10.0
    assert cfg.timers.toleration_s == 30.0
    assert cfg.raft.election_ms == 1000


@pytest.mark.parametrize(
    ("count", "names"),
    [
        (1, ["master-1"]),
        (3, ["master-1", "master-2", "master-3"]),
        (5, [f"master-{i}" for i in range(1, 6)]),
    ],
    ids=["cut-to-1", "same", "extend-to-5"],
)
def test_masters_override_cuts_or_extends(count: int, names: list[str]) -> None:
    """`--masters N` keeps the file's first N masters or adds master-<i>."""
    assert [m.name for m in load_config(overrides={"masters": count}).masters] == names


def test_workers_override_copies_the_last_worker() -> None:
    """Added workers copy the last entry's runtime and capacity; `workers.runtime` sets all."""
    text = cfg_text() + '[[workers]]\nname = "w1"\nruntime = "fake"\n'
    text += 'capacity = { cpu = "500m", memory = "1Gi", pods = 20 }\n'
    cfg = parse_config(text, overrides={"workers": 3})
    assert [w.name for w in cfg.workers] == ["w1", "worker-2", "worker-3"]
    assert {(w.runtime, w.cpu, w.memory, w.pods) for w in cfg.workers} == {
        ("fake", "500m", "1Gi", 20)
    }
    cfg = parse_config(text, overrides={"workers": 0})
    assert cfg.workers == ()
    cfg = load_config(overrides={"workers.runtime": "process"})
    assert {w.runtime for w in cfg.workers} == {"process"}


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (
            {"raft.heartbeat": 1},
            r"override 'raft.heartbeat': unknown; valid overrides: .*raft\.<heartbeat_ms",
        ),
        ({"bogus": 1}, r"override 'bogus': unknown"),
        ({"raft.heartbeat_ms": "fast"}, r"raft\.heartbeat_ms: expected an integer, got 'fast'"),
        ({"masters": 0}, r"masters: expected 1 to 7 \[\[masters\]\] entries, got 0"),
        ({"masters": 9}, r"masters: expected 1 to 7 \[\[masters\]\] entries, got 9"),
        ({"workers.runtime": "podman"}, r"workers\[1\]\.runtime: expected one of 'docker'"),
        ({"cluster.timers": "fast"}, r"cluster\.timers: expected one of 'demo', 'kubernetes'"),
    ],
    ids=[
        "unknown-section-key",
        "unknown-key",
        "bad-type",
        "no-masters",
        "too-many-masters",
        "bad-runtime",
        "bad-profile",
    ],
)
def test_bad_overrides_are_errors_naming_the_key(overrides: dict[str, object], match: str) -> None:
    """A bad flag gets the same message as a bad key in the file."""
    with pytest.raises(ConfigError, match=match):
        load_config(overrides=overrides)


# -- validation: every error names its key -----------------------------------------------------

BAD = [
    # (id, file text after a valid [cluster] header or replacing it, expected message part)
    ("bad-toml", "[cluster\n", "not valid TOML"),
    (
        "unknown-table",
        "[cluster]\n[network]\n",
        "network: unknown key; valid keys: cluster, masters",
    ),
    (
        "unknown-cluster-key",
        '[cluster]\nnmae = "x"\n',
        "cluster.nmae: unknown key (did you mean 'name'?); valid keys: name, subnet, data_dir",
    ),
    (
        "unknown-raft-key",
        "[raft]\nheartbeat = 100\n",
        "raft.heartbeat: unknown key (did you mean 'heartbeat_ms'?)",
    ),
    (
        "raft-key-in-timers",
        "[timers]\nelection_ms = 100\n",
        "timers.election_ms: unknown key (Raft timers live in [raft]",
    ),
    ("unknown-timer", "[timers]\nlease_s = 1\n", "timers.lease_s: unknown key"),
    ("cluster-not-table", 'cluster = "x"\n', "cluster: expected a table [cluster], got 'x'"),
    (
        "subnet-not-loopback",
        '[cluster]\nsubnet = "10.0.0.0/8"\n',
        "cluster.subnet: expected an IPv4 /16 inside 127.0.0.0/8 like 127.10.0.0/16, "
        "got '10.0.0.0/8'",
    ),
    ("subnet-24", '[cluster]\nsubnet = "127.10.0.0/24"\n', "cluster.subnet: expected an IPv4 /16"),
    (
        "subnet-host-bits",
        '[cluster]\nsubnet = "127.10.0.1/16"\n',
        "cluster.subnet: expected an IPv4 /16",
    ),
    ("subnet-garbage", '[cluster]\nsubnet = "lab"\n', "cluster.subnet: expected an IPv4 /16"),
    ("subnet-int", "[cluster]\nsubnet = 127\n", "got 127"),
    (
        "subnet-localhost",
        '[cluster]\nsubnet = "127.0.0.0/16"\n',
        "cluster.subnet: 127.0.0.0/16 holds 127.0.0.1",
    ),
    ("name-upper", '[cluster]\nname = "Lab"\n', "cluster.name: expected a DNS label"),
    ("name-empty", '[cluster]\nname = ""\n', "cluster.name: expected a DNS label"),
    ("data-dir-empty", '[cluster]\ndata_dir = ""\n', "cluster.data_dir: expected a directory path"),
    ("uid-bad", '[cluster]\nuid = "a b"\n', "cluster.uid: expected letters, digits and '-'"),
    (
        "profile-unknown",
        '[cluster]\ntimers = "fast"\n',
        "cluster.timers: expected one of 'demo', 'kubernetes', got 'fast'",
    ),
    (
        "heartbeat-zero",
        "[raft]\nheartbeat_ms = 0\n",
        "raft.heartbeat_ms: expected an integer at least 1, got 0",
    ),
    (
        "heartbeat-float",
        "[raft]\nheartbeat_ms = 1.5\n",
        "raft.heartbeat_ms: expected an integer, got 1.5",
    ),
    (
        "heartbeat-bool",
        "[raft]\nheartbeat_ms = true\n",
        "raft.heartbeat_ms: expected an integer, got true",
    ),
    (
        "election-below-5x",
        "[raft]\nheartbeat_ms = 100\nelection_ms = 300\n",
        "raft.election_ms: must be at least 5 x heartbeat_ms (500), got 300",
    ),
    (
        "election-too-long",
        "[raft]\nelection_ms = 60000\n",
        "raft.election_ms: must be at most 50000, got 60000",
    ),
    (
        "snapshot-count-zero",
        "[raft]\nsnapshot_count = 0\n",
        "raft.snapshot_count: expected an integer at least 1",
    ),
    (
        "pre-vote-string",
        '[raft]\npre_vote = "yes"\n',
        "raft.pre_vote: expected true or false, got 'yes'",
    ),
    ("fsync-int", "[raft]\nfsync = 1\n", "raft.fsync: expected true or false, got 1"),
    (
        "timer-negative",
        "[timers]\ntoleration_s = -1\n",
        "timers.toleration_s: expected a positive finite number, got -1",
    ),
    (
        "timer-zero",
        "[timers]\nevent_ttl_s = 0\n",
        "timers.event_ttl_s: expected a positive finite number",
    ),
    (
        "timer-string",
        '[timers]\nevent_ttl_s = "1h"\n',
        "timers.event_ttl_s: expected a number, got '1h'",
    ),
    (
        "timer-inf",
        "[timers]\nevent_ttl_s = inf\n",
        "timers.event_ttl_s: expected a positive finite number",
    ),
    (
        "grace-below-renew",
        "[timers]\nnode_monitor_grace_s = 1\n",
        "timers.node_monitor_grace_s: must be greater than node_lease_renew_s (1) "
        "or healthy nodes look dead, got 1",
    ),
    (
        "lease-below-deadline",
        "[timers]\nleader_lease_duration_s = 3\n",
        "timers.leader_lease_duration_s: must be greater than leader_renew_deadline_s (3)",
    ),
    (
        "deadline-below-retry",
        "[timers]\nleader_retry_s = 2.5\n",
        "timers.leader_renew_deadline_s: must be greater than 1.2 x leader_retry_s (2.5)",
    ),
    (
        "backoff-max-below-base",
        "[timers]\ncrashloop_backoff_max_s = 0.5\n",
        "timers.crashloop_backoff_max_s: must be at least crashloop_backoff_base_s (1), got 0.5",
    ),
    ("masters-empty", "masters = []\n", "masters: expected 1 to 7 [[masters]] entries, got 0"),
    (
        "masters-not-tables",
        'masters = ["a"]\n',
        "masters: expected [[masters]] tables, got an array",
    ),
    (
        "master-unknown-key",
        '[[masters]]\nname = "m1"\nid = 4\n',
        "masters[1].id: unknown key; valid keys: name",
    ),
    ("master-bad-name", '[[masters]]\nname = "M_1"\n', "masters[1].name: expected a DNS label"),
    (
        "master-reserved-name",
        '[[masters]]\nname = "frontdoor"\n',
        "masters[1].name: 'frontdoor' is reserved",
    ),
    (
        "duplicate-master",
        '[[masters]]\nname = "a"\n[[masters]]\nname = "a"\n[[masters]]\nname = "b"\n',
        "masters[2].name: 'a' is already the name of masters[1]",
    ),
    (
        "worker-named-like-master",
        '[[masters]]\nname = "a"\n[[workers]]\nname = "a"\n',
        "workers[1].name: 'a' is already the name of masters[1]",
    ),
    (
        "runtime-unknown",
        '[[workers]]\nruntime = "podman"\n',
        "workers[1].runtime: expected one of 'docker', 'process', 'fake', got 'podman'",
    ),
    (
        "capacity-not-table",
        "[[workers]]\ncapacity = 4\n",
        "workers[1].capacity: expected a table like",
    ),
    (
        "capacity-unknown-key",
        "[[workers]]\ncapacity = { disk = 1 }\n",
        "workers[1].capacity.disk: unknown key; valid keys: cpu, memory, pods",
    ),
    (
        "cpu-bad",
        '[[workers]]\ncapacity = { cpu = "two" }\n',
        "workers[1].capacity.cpu: expected cores or millicores",
    ),
    (
        "cpu-zero",
        "[[workers]]\ncapacity = { cpu = 0 }\n",
        "workers[1].capacity.cpu: expected cores or millicores",
    ),
    (
        "memory-bad",
        '[[workers]]\ncapacity = { memory = "4GB" }\n',
        "workers[1].capacity.memory: expected a quantity",
    ),
    (
        "pods-zero",
        "[[workers]]\ncapacity = { pods = 0 }\n",
        "workers[1].capacity.pods: expected an integer from 1 to 253, got 0",
    ),
]


@pytest.mark.parametrize(("text", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_invalid_config_is_an_error_naming_the_key(text: str, message: str, tmp_path: Path) -> None:
    """Every invalid key or value raises ConfigError naming the key and the constraint."""
    path = tmp_path / "cluster.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert message in str(e.value)
    assert str(e.value).startswith(f"{path}: ")


def test_every_problem_is_reported_at_once() -> None:
    """Validation collects all problems into one error, one line each."""
    text = '[cluster]\nsubnet = "x"\nname = "A"\n[raft]\nfsync = 1\n'
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    assert len(e.value.problems) == 3
    assert "3 problems" in str(e.value)
    assert [p.split(":")[0] for p in e.value.problems] == [
        "cluster.name",
        "cluster.subnet",
        "raft.fsync",
    ]


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")


def test_unknown_master_name_lists_the_masters() -> None:
    with pytest.raises(
        ConfigError, match=r"no master named 'master-9'.*masters: master-1, master-2, master-3"
    ):
        load_config().master("master-9")


@pytest.mark.parametrize(
    ("count", "warning"),
    [
        (1, "no fault tolerance"),
        (2, "even member count"),
        (3, None),
        (4, "even member count"),
        (5, None),
        (7, "etcd recommends 3 or 5"),
    ],
)
def test_member_count_warnings(count: int, warning: str | None) -> None:
    """3 and 5 masters are silent; 1, even counts and 7 come with a warning (not an error)."""
    cfg = load_config(overrides={"masters": count})
    if warning is None:
        assert cfg.warnings == ()
    else:
        assert len(cfg.warnings) == 1 and warning in cfg.warnings[0]


def test_capacity_quantities() -> None:
    """cpu and memory are Kubernetes quantities, numbers accepted."""
    text = cfg_text() + "[[workers]]\ncapacity = { cpu = 1.5, memory = 1073741824, pods = 10 }\n"
    text += '[[workers]]\ncapacity = { cpu = "250m", memory = "512Mi" }\n'
    w1, w2 = parse_config(text).workers
    assert (w1.cpu, w1.cpu_millis, w1.memory_bytes, w1.pods) == ("1.5", 1500, 2**30, 10)
    assert (w2.cpu_millis, w2.memory_bytes, w2.pods) == (250, 512 * 2**20, 110)


# -- paths -------------------------------------------------------------------------------------


def test_data_dir_defaults_to_kubelab_home(home: Path) -> None:
    assert parse_config(cfg_text(name="lab2")).data_dir == home / "lab2"


def test_kubelab_home_defaults_to_dot_kubelab(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBELAB_HOME")
    assert parse_config(cfg_text()).data_dir == Path("~/.kubelab/lab").expanduser()


def test_relative_data_dir_is_relative_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "c.toml"
    path.parent.mkdir()
    path.write_text(cfg_text(extra='data_dir = "../data/lab"\n'))
    assert load_config(path).data_dir == tmp_path / "data" / "lab"


def test_tilde_in_data_dir_is_expanded() -> None:
    cfg = parse_config(cfg_text(extra='data_dir = "~/x"\n'))
    assert cfg.data_dir == Path("~/x").expanduser()


# -- the effective file ------------------------------------------------------------------------


def test_dump_round_trips_the_default() -> None:
    cfg = load_config()
    assert parse_config(dump_config(cfg)) == cfg


def test_dump_round_trips_a_custom_config() -> None:
    """Profile, deviations, uid, workers and capacity survive a write and a read."""
    text = cfg_text(extra='timers = "kubernetes"\nuid = "0b8e-11"\n')
    text += "[raft]\nelection_ms = 1500\nfsync = false\nsnapshot_count = 50\n"
    text += "[timers]\ntoleration_s = 12.5\nnode_eviction_rate = 0.25\n"
    text += '[[masters]]\nname = "a"\n[[masters]]\nname = "b"\n[[masters]]\nname = "c"\n'
    text += '[[workers]]\nname = "w"\nruntime = "fake"\n'
    text += 'capacity = { cpu = "750m", memory = "3G", pods = 7 }\n'
    cfg = parse_config(text)
    dumped = dump_config(cfg)
    assert parse_config(dumped) == cfg
    assert "election_ms = 1500\n" in dumped
    assert '# heartbeat_ms = 100  (profile "kubernetes")' in dumped


def test_dumped_file_follows_a_later_profile_switch() -> None:
    """Profile values are comments, so the stored file can switch profile later."""
    stored = dump_config(parse_config(cfg_text()))
    assert (
        parse_config(stored, overrides={"cluster.timers": "kubernetes"}).timers.toleration_s == 300
    )


def test_write_config_is_what_load_reads(tmp_path: Path) -> None:
    cfg = dataclasses.replace(
        parse_config(cfg_text(extra=f'data_dir = "{tmp_path}/d"\n')), uid="u-1"
    )
    path = write_config(cfg)
    assert path == tmp_path / "d" / "cluster.toml"
    again = load_config(path)
    assert dataclasses.replace(again, source=None) == cfg


def test_to_dict_has_the_effective_values() -> None:
    d = load_config(overrides={"raft.election_ms": 800}).to_dict()
    assert d["raft"]["election_ms"] == 800
    assert d["timers"]["profile"] == "demo"
    assert d["frontdoor"] == "127.10.0.1:6443"
    assert d["masters"][0]["ip"] == "127.10.0.11"


# -- finding the cluster -----------------------------------------------------------------------


def make_cluster(home: Path, name: str, c: int, *, running: bool = False) -> ClusterConfig:
    """A stored cluster under `home` (as `up` leaves it), optionally with a live process."""
    cfg = dataclasses.replace(parse_config(cfg_text(f"127.{c}.0.0/16", name)), uid=f"uid-{name}")
    write_config(cfg)
    cfg = load_config(cfg.stored_config)
    if running:
        spec = cfg.masters[0]
        procs.start_master(cfg, spec, initial_cluster=False, argv=sleeper_argv(cfg.data_dir))
    return cfg


def test_find_prefers_the_config_file(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """-c FILE beats --cluster, KUBELAB_CLUSTER and running clusters."""
    make_cluster(home, "other", 21, running=True)
    monkeypatch.setenv("KUBELAB_CLUSTER", "other")
    path = tmp_path / "mine.toml"
    path.write_text(cfg_text(name="mine"))
    assert find_cluster(path, "other").name == "mine"


def test_find_by_name_then_env(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--cluster NAME beats KUBELAB_CLUSTER, which beats the only running cluster."""
    make_cluster(home, "a", 21)
    make_cluster(home, "b", 22)
    make_cluster(home, "c", 23, running=True)
    monkeypatch.setenv("KUBELAB_CLUSTER", "b")
    assert find_cluster(None, "a").name == "a"
    assert find_cluster(None, None).name == "b"
    monkeypatch.delenv("KUBELAB_CLUSTER")
    assert find_cluster(None, None).name == "c"


def test_find_the_only_running_cluster_else_the_default(home: Path) -> None:
    make_cluster(home, "idle", 21)
    assert find_cluster(None, None).name == "kubelab"  # nothing runs: the default
    make_cluster(home, "busy", 22, running=True)
    found = find_cluster(None, None)
    assert found.name == "busy"
    assert found.source == home / "busy" / "cluster.toml"
    assert find_cluster(None, None, running=False).name == "kubelab"


def test_find_refuses_to_guess_between_running_clusters(home: Path) -> None:
    make_cluster(home, "a", 21, running=True)
    make_cluster(home, "b", 22, running=True)
    with pytest.raises(
        ConfigError, match=r"2 clusters are running \(a, b\): choose one with --cluster"
    ):
        find_cluster(None, None)


def test_find_unknown_name_says_how_to_create_it(home: Path) -> None:
    make_cluster(home, "a", 21)
    with pytest.raises(ConfigError, match=r"no cluster named 'zz'.*known: a.*kubelab up -c FILE"):
        find_cluster(None, "zz")


def test_find_default_name_before_first_up(home: Path) -> None:
    """`--cluster kubelab` works before the default cluster was ever started."""
    assert find_cluster(None, "kubelab").source is None


def test_find_returns_the_stored_effective_config(home: Path, tmp_path: Path) -> None:
    """A file whose data dir holds `up`'s effective config resolves to that config."""
    path = tmp_path / "lab.toml"
    path.write_text(cfg_text(name="lab", extra='timers = "kubernetes"\n'))
    stored = dataclasses.replace(load_config(path, overrides={"cluster.timers": "demo"}), uid="x")
    write_config(stored)
    found = find_cluster(path, None)
    assert found.timers.profile == "demo"
    assert found.uid == "x"


def test_find_ignores_broken_stored_files(home: Path) -> None:
    (home / "broken").mkdir(parents=True)
    (home / "broken" / "cluster.toml").write_text("[cluster\n")
    assert find_cluster(None, None).name == "kubelab"


def test_register_outside_home_symlinks(home: Path, tmp_path: Path) -> None:
    """A data dir outside KUBELAB_HOME is reachable by name; a taken name is refused."""
    cfg = parse_config(cfg_text(name="ext", extra=f'data_dir = "{tmp_path}/ext"\n'))
    write_config(cfg)
    register_cluster(cfg)
    assert (home / "ext").resolve() == (tmp_path / "ext").resolve()
    assert find_cluster(None, "ext").data_dir == tmp_path / "ext"
    clash = parse_config(cfg_text(name="ext", extra=f'data_dir = "{tmp_path}/ext2"\n'))
    with pytest.raises(ConfigError, match="cluster name 'ext' is taken"):
        register_cluster(clash)
    unregister_cluster(cfg)
    assert not (home / "ext").exists()


# -- tokens ------------------------------------------------------------------------------------


def test_token_file_round_trip_and_mode(tmp_path: Path) -> None:
    tokens = new_tokens()
    assert [t.user for t in tokens] == ["admin", "kubelet", "kube-proxy", "controller"]
    assert tokens[0].groups == ("system:masters",)
    assert len({t.token for t in tokens}) == 4
    path = tmp_path / "tokens.csv"
    write_token_file(path, [*tokens, Token("t", "u", "1", ("g1", "g2"))])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert read_token_file(path) == (*tokens, Token("t", "u", "1", ("g1", "g2")))
    assert 't,u,1,"g1,g2"' in path.read_text()


def test_malformed_token_line_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text("# comment\nabc,admin,1,system:masters\nonly-a-token\n")
    with pytest.raises(ConfigError, match=r"tokens\.csv:3: expected token,user,uid"):
        read_token_file(path)
