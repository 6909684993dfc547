"""Reading manifests like kubectl's `-f`: files, directories, stdin, YAML and JSON streams,
`kind: List`, and errors that name the file, the line and column, or the document."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from controlplane.kube.manifests import (
    STDIN,
    Manifest,
    ManifestError,
    load_manifests,
    parse_manifests,
)
from controlplane.kube.resources import CONFIGMAPS, DEPLOYMENTS, NAMESPACES

NO_STDIN = io.StringIO("")


def cm(name: str, **extra: object) -> str:
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata:", f"  name: {name}"]
    lines += [f"{k}: {json.dumps(v)}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def names(manifests: list[Manifest]) -> list[str]:
    return [m.name for m in manifests]


def test_multi_document_yaml_skips_empty_documents(tmp_path: Path) -> None:
    """Every `---` document is an object; empty ones (comments only, a trailing `---`)
    are skipped, but still counted in `index` so messages match the file."""
    f = tmp_path / "all.yaml"
    f.write_text("---\n" + cm("a") + "---\n# only a comment\n---\n" + cm("b") + "---\n")
    got = load_manifests(f, stdin=NO_STDIN)
    assert names(got) == ["a", "b"]
    assert [m.index for m in got] == [0, 2]
    assert {m.source for m in got} == {str(f)}
    assert got[0].resource is CONFIGMAPS


def test_directory_reads_yaml_yml_json_sorted_not_recursive(tmp_path: Path) -> None:
    """kubectl's `-f DIR` without `-R`: the directory's manifest files by name only."""
    (tmp_path / "b.yml").write_text(cm("from-b"))
    (tmp_path / "a.yaml").write_text(cm("from-a"))
    (tmp_path / "c.json").write_text(
        json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-c"}})
    )
    (tmp_path / "notes.txt").write_text("not a manifest: {")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.yaml").write_text(cm("nested"))
    got = load_manifests(tmp_path, stdin=NO_STDIN)
    assert names(got) == ["from-a", "from-b", "from-c"]
    assert got[0].source == str(tmp_path / "a.yaml")


def test_stdin_is_dash_and_named_STDIN() -> None:  # noqa: N802
    got = load_manifests("-", stdin=io.StringIO(cm("piped")))
    assert names(got) == ["piped"]
    assert got[0].source == STDIN


def test_json_stream_of_several_objects() -> None:
    """A source starting with `{` is a JSON stream (kubectl sniffs the same way)."""
    objs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n1"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}},
    ]
    got = parse_manifests("\n".join(json.dumps(o, indent=2) for o in objs), "x.json")
    assert [m.resource for m in got] == [NAMESPACES, DEPLOYMENTS]
    assert [m.index for m in got] == [0, 1]


def test_list_items_are_expanded_with_their_position() -> None:
    text = json.dumps(
        {
            "apiVersion": "v1",
            "kind": "List",
            "items": [
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "one"}},
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "two"}},
            ],
        }
    )
    got = parse_manifests(text, "list.json")
    assert names(got) == ["one", "two"]
    assert [m.item for m in got] == [0, 1]
    assert got[1].where == "list.json (document 1, item 2)"


def test_generate_name_is_enough() -> None:
    got = parse_manifests(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: cm-\n", "g.yaml"
    )
    assert got[0].name == ""
    assert got[0].metadata["generateName"] == "cm-"


def test_yaml_keeps_dates_as_strings_and_keys_as_strings() -> None:
    """Kubernetes stores what it reads as JSON: a date is text, a numeric key is text."""
    text = cm("d") + "data:\n  when: 2024-05-01\n  1: one\n  off: f\n  ~: n\n"
    got = parse_manifests(text, "d.yaml")
    assert got[0].obj["data"] == {"when": "2024-05-01", "1": "one", "false": "f", "null": "n"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: a: b\n",
            "bad.yaml:5:12: mapping values are not allowed here",
            id="mapping-in-plain-scalar",
        ),
        pytest.param(
            "apiVersion: v1\nkind: ConfigMap\ndata: [1, 2\n",
            "bad.yaml:4:1: expected ',' or ']', but got '<stream end>' "
            "(while parsing a flow sequence at line 3)",
            id="unclosed-flow-sequence",
        ),
        pytest.param(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: x\n",
            "bad.yaml:4:1: found character '\\t' that cannot start any token",
            id="tab-indent",
        ),
        pytest.param(
            '{"apiVersion": "v1",\n "kind": }',
            "bad.yaml:2:10: Expecting value",
            id="json",
        ),
    ],
)
def test_invalid_syntax_names_line_and_column(text: str, expected: str) -> None:
    """Positions are 1-based, as editors count (PyYAML's marks are 0-based)."""
    with pytest.raises(ManifestError) as e:
        parse_manifests(text, "bad.yaml")
    assert str(e.value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            cm("ok") + "---\n- a\n- b\n",
            "m.yaml (document 2): expected an object (a mapping with apiVersion, kind and "
            "metadata), got a list",
            id="not-a-mapping",
        ),
        pytest.param(
            "metadata:\n  name: x\n",
            "m.yaml (document 1): apiVersion not set, kind not set",
            id="no-apiversion-kind",
        ),
        pytest.param(
            "apiVersion: v1\nkind: ConfigMap\n",
            "m.yaml (document 1): metadata not set",
            id="no-metadata",
        ),
        pytest.param(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {a: b}\n",
            "m.yaml (document 1): metadata.name not set",
            id="no-name",
        ),
        pytest.param(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: [x]\n",
            "m.yaml (document 1): metadata must be a mapping, got a list",
            id="metadata-list",
        ),
        pytest.param(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: 7\n",
            "m.yaml (document 1): metadata.name must be a string",
            id="name-number",
        ),
        pytest.param(
            cm("b") + "binaryData:\n  x: !!binary aGVsbG8=\n",
            "m.yaml (document 1): binaryData.x: a bytes value cannot be sent to the API",
            id="yaml-binary",
        ),
    ],
)
def test_bad_documents_name_the_file_and_document(text: str, expected: str) -> None:
    with pytest.raises(ManifestError) as e:
        parse_manifests(text, "m.yaml")
    assert str(e.value) == expected


def test_unknown_kind_lists_the_known_kinds() -> None:
    with pytest.raises(ManifestError) as e:
        parse_manifests("apiVersion: v9\nkind: Foo\nmetadata:\n  name: x\n", "foo.yaml")
    message = str(e.value)
    assert message.startswith(
        'foo.yaml (document 1): the server doesn\'t have a resource type "Foo" '
        "(apiVersion v9): known kinds are Namespace (v1), "
    )
    assert "Deployment (apps/v1)" in message
    assert "Lease (coordination.k8s.io/v1)" in message


def test_known_kind_under_the_wrong_api_version_is_unknown() -> None:
    """`extensions/v1beta1` Deployments are long gone: the message shows `apps/v1`."""
    with pytest.raises(ManifestError, match=r"\(apiVersion extensions/v1beta1\).*apps/v1"):
        parse_manifests(
            "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata:\n  name: x\n", "d.yaml"
        )


def test_missing_path_is_kubectls_message(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as e:
        load_manifests(tmp_path / "nope.yaml", stdin=NO_STDIN)
    assert str(e.value) == f'the path "{tmp_path / "nope.yaml"}" does not exist'


def test_empty_directory_has_no_manifests(tmp_path: Path) -> None:
    assert load_manifests(tmp_path, stdin=NO_STDIN) == []
