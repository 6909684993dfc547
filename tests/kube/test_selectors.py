"""Label and field selectors (controlplane.kube.selectors): Kubernetes' syntax, canonical
strings, matching and the field sets of each kind (research/kubectl-api.md §4)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from controlplane.kube.resources import (
    CONFIGMAPS,
    DEPLOYMENTS,
    EVENTS,
    NAMESPACES,
    NODES,
    PODS,
    REPLICASETS,
    RESOURCES,
    SERVICES,
)
from controlplane.kube.selectors import (
    FieldSelector,
    LabelSelector,
    Requirement,
    escape_field_value,
    label_key_errors,
    label_value_errors,
    object_fields,
    selector_string,
    supported_fields,
)

# -- label selector syntax ---------------------------------------------------------------------

# (input, canonical string): labels.Parse then Selector.String().
VALID_LABEL_SELECTORS = [
    ("", ""),
    ("app=web", "app=web"),
    ("app==web", "app==web"),
    ("app!=web", "app!=web"),
    ("app", "app"),
    ("!app", "!app"),
    ("tier in (b,a)", "tier in (a,b)"),
    ("tier notin (a)", "tier notin (a)"),
    ("tier in (a,a,b)", "tier in (a,b)"),
    ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
    ("x in (,a)", "x in (,a)"),
    ("x in (a,)", "x in (,a)"),
    ("  app  =  web  ,  tier  ", "app=web,tier"),
    ("tier=db,app=web", "app=web,tier=db"),
    ("app=", "app="),
    ("app=,b", "app=,b"),
    ("a in (in)", "a in (in)"),
    ("in=notin", "in=notin"),
    ("example.com/role=api", "example.com/role=api"),
    ("replicas>3", "replicas>3"),
    ("replicas<3", "replicas<3"),
    ("a=b,!c,d notin (x,y)", "a=b,!c,d notin (x,y)"),
]


@pytest.mark.parametrize(("text", "canonical"), VALID_LABEL_SELECTORS, ids=repr)
def test_label_selector_parses_to_its_canonical_string(text: str, canonical: str) -> None:
    """labels.Parse accepts the kubectl `-l` syntax; String() sorts requirements by key and
    set values, which is what kubectl prints and sends back."""
    assert str(LabelSelector.parse(text)) == canonical


@pytest.mark.parametrize(("text", "canonical"), VALID_LABEL_SELECTORS, ids=repr)
def test_canonical_label_selector_parses_to_the_same_selector(text: str, canonical: str) -> None:
    """The canonical string is a fixed point: parsing it gives back the same selector."""
    assert LabelSelector.parse(canonical) == LabelSelector.parse(text)


INVALID_LABEL_SELECTORS = [
    ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("a=b=c", "found '=', expected: ',' or 'end of string'"),
    ("a,", "found '', expected: identifier after ','"),
    (",a", "found ',', expected: !, identifier, or 'end of string'"),
    ("a in x", "unable to parse requirement: found 'x' expected: '('"),
    ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("a in (b c)", "found 'c', expected: ',' or ')'"),
    ("a in", "found '' expected: '('"),
    ("!", "unable to parse requirement: found '', expected: identifier"),
    ("!=a", "found '!=', expected: !, identifier, or 'end of string'"),
    ("-a=b", 'invalid label key "-a"'),
    ("a/b/c=d", 'invalid label key "a/b/c"'),
    ("Example.com/x=y", 'invalid label key "Example.com/x"'),
    ("/x=y", "prefix part must be non-empty"),
    ("a=-b", 'invalid label value "-b" for key "a"'),
    ("a=" + "v" * 64, "must be no more than 63 characters"),
    ("k" * 64, "name part must be no more than 63 characters"),
    ("a>b", "the value must be an integer"),
    ("a<-3", 'invalid label value "-3"'),  # gt/lt values are label values too
    ("a<99999999999999999999", "the value must be an integer"),
    ("a=(b)", "found '(', expected: identifier"),
]


@pytest.mark.parametrize(("text", "message"), INVALID_LABEL_SELECTORS, ids=repr)
def test_invalid_label_selector_names_the_problem(text: str, message: str) -> None:
    """A bad `labelSelector` is a ValueError with Kubernetes' parser message (the REST
    server answers 400 with it), never a traceback."""
    with pytest.raises(ValueError) as info:
        LabelSelector.parse(text)
    assert message in str(info.value)


# (selector, labels, matches)
MATCHES = [
    ("", None, True),
    ("", {"a": "b"}, True),
    ("app=web", {"app": "web"}, True),
    ("app=web", {"app": "db"}, False),
    ("app=web", {}, False),
    ("app=web", None, False),
    ("app==web", {"app": "web", "x": "y"}, True),
    ("app!=web", {"app": "db"}, True),
    ("app!=web", {"app": "web"}, False),
    ("app!=web", {}, True),  # a missing label is "not web"
    ("app", {"app": ""}, True),
    ("app", {"other": "x"}, False),
    ("!app", {}, True),
    ("!app", {"app": ""}, False),
    ("tier in (a,b)", {"tier": "b"}, True),
    ("tier in (a,b)", {"tier": "c"}, False),
    ("tier in (a,b)", {}, False),
    ("tier notin (a,b)", {"tier": "c"}, True),
    ("tier notin (a,b)", {"tier": "a"}, False),
    ("tier notin (a,b)", {}, True),
    ("x in ()", {"x": ""}, True),
    ("app=", {"app": ""}, True),
    ("app=", {}, False),
    ("n>3", {"n": "4"}, True),
    ("n>3", {"n": "3"}, False),
    ("n<3", {"n": "-1"}, True),
    ("n>3", {"n": "four"}, False),
    ("n>3", {}, False),
    ("app=web,tier!=db", {"app": "web", "tier": "api"}, True),
    ("app=web,tier!=db", {"app": "web", "tier": "db"}, False),
]


@pytest.mark.parametrize(("text", "labels", "expected"), MATCHES, ids=repr)
def test_label_selector_matches(text: str, labels: dict[str, str] | None, expected: bool) -> None:
    """Requirement.Matches: AND of terms; `!=` and `notin` match objects without the key,
    `=`, `in` and `gt`/`lt` need it."""
    assert LabelSelector.parse(text).matches(labels) is expected


def test_empty_selector_is_empty_and_a_restricting_one_is_not() -> None:
    assert LabelSelector.parse("").empty
    assert LabelSelector.parse("  ").empty
    assert not LabelSelector.parse("a").empty


def test_junk_labels_read_as_no_labels() -> None:
    """Objects come from clients: labels that are not a mapping are treated as none."""
    junk: Any = ["app", "web"]
    assert LabelSelector.parse("!app").matches(junk)
    assert not LabelSelector.parse("app").matches(junk)


# -- LabelSelector objects ---------------------------------------------------------------------

OBJECT_SELECTORS = [
    ({"matchLabels": {"app": "web"}}, "app=web"),
    ({"matchLabels": {"tier": "db", "app": "web"}}, "app=web,tier=db"),
    (
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["b", "a"]},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "team", "operator": "Exists", "values": []},
            ],
        },
        "app=web,!canary,env notin (prod),team,tier in (a,b)",
    ),
    ({}, ""),
    ({"matchLabels": None, "matchExpressions": None}, ""),
]


@pytest.mark.parametrize(("obj", "canonical"), OBJECT_SELECTORS, ids=repr)
def test_selector_object_converts_like_label_selector_as_selector(
    obj: dict[str, Any], canonical: str
) -> None:
    """metav1.LabelSelectorAsSelector: matchLabels become `=` terms, expressions map
    In/NotIn/Exists/DoesNotExist to their operators, all sorted by key."""
    assert str(LabelSelector.from_object(obj)) == canonical


def test_missing_selector_object_selects_nothing_and_empty_selects_everything() -> None:
    """A nil LabelSelector matches nothing (a controller without one adopts no pods); an
    empty one matches everything."""
    nothing = LabelSelector.from_object(None)
    assert not nothing.matches({"app": "web"})
    assert not nothing.matches({})
    assert not nothing.empty
    assert str(nothing) == ""
    everything = LabelSelector.from_object({})
    assert everything.matches({"app": "web"})
    assert everything.empty


def test_selector_object_matches_like_its_string() -> None:
    obj = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["api", "db"]}],
    }
    sel = LabelSelector.from_object(obj)
    assert sel == LabelSelector.parse(str(sel))
    assert sel.matches({"app": "web", "tier": "db"})
    assert not sel.matches({"app": "web", "tier": "cache"})
    assert not sel.matches({"tier": "db"})


BAD_OBJECTS = [
    ("not a mapping", "selector: must be an object"),
    ({"matchLabels": ["app"]}, "matchLabels: must be an object"),
    ({"matchLabels": {"app": 3}}, "matchLabels['app']: keys and values must be strings"),
    ({"matchLabels": {"-app": "web"}}, 'matchLabels: invalid label key "-app"'),
    ({"matchExpressions": {"key": "a"}}, "matchExpressions: must be a list"),
    ({"matchExpressions": ["a"]}, "matchExpressions[0]: must be an object"),
    ({"matchExpressions": [{"operator": "Exists"}]}, "matchExpressions[0].key: must be"),
    (
        {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]},
        'matchExpressions[0].operator: "Equals" is not a valid label selector operator',
    ),
    (
        {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
        "matchExpressions[0]: for 'in', 'notin' operators, values set can't be empty",
    ),
    (
        {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["b"]}]},
        "values set must be empty for exists and does not exist",
    ),
    (
        {"matchExpressions": [{"key": "a", "operator": "In", "values": "b"}]},
        "matchExpressions[0].values: must be a list of strings",
    ),
]


@pytest.mark.parametrize(("obj", "message"), BAD_OBJECTS, ids=repr)
def test_bad_selector_object_names_the_field(obj: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        LabelSelector.from_object(obj)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("obj", "shown"),
    [
        ({"matchLabels": {"app": "web"}}, "app=web"),
        (
            {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]},
            "tier notin (db)",
        ),
        ({}, "<none>"),
        (None, "<none>"),
        ({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, "<error>"),
    ],
    ids=repr,
)
def test_selector_string_is_what_selector_columns_show(obj: Any, shown: str) -> None:
    """metav1.FormatLabelSelector: `<none>` when nothing is selected by labels, `<error>`
    when the object does not convert."""
    assert selector_string(obj) == shown


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("app", True),
        ("app.kubernetes.io/name", True),
        ("node-role.kubernetes.io/control-plane", True),
        ("A_b.c-1", True),
        ("", False),
        ("-app", False),
        ("app-", False),
        ("a/b/c", False),
        ("UPPER.example.com/x", False),
        ("example.com/", False),
        ("x" * 63, True),
        ("x" * 64, False),
    ],
    ids=repr,
)
def test_label_keys_are_qualified_names(key: str, ok: bool) -> None:
    assert (not label_key_errors(key)) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [("", True), ("web", True), ("v1.2_3-x", True), ("-x", False), ("a b", False)],
    ids=repr,
)
def test_label_values(value: str, ok: bool) -> None:
    assert (not label_value_errors(value)) is ok


def test_requirement_new_rejects_an_unknown_operator() -> None:
    with pytest.raises(ValueError, match='unsupported operator "~"'):
        Requirement.new("a", "~", ("b",))


_SELECTOR_ALPHABET = "ab=!(),<> \tin01-./"


def test_random_label_selector_text_parses_or_raises_value_error() -> None:
    """Fuzz: any text either parses into a selector whose canonical string parses back to
    it, or fails with ValueError; nothing else escapes the parser."""
    rng = random.Random(5)
    parsed = 0
    for _ in range(3000):
        text = "".join(rng.choice(_SELECTOR_ALPHABET) for _ in range(rng.randint(0, 14)))
        try:
            sel = LabelSelector.parse(text)
        except ValueError:
            continue
        parsed += 1
        assert LabelSelector.parse(str(sel)) == sel, text
    assert parsed > 100  # the alphabet produces valid selectors too


# -- field selectors ---------------------------------------------------------------------------

VALID_FIELD_SELECTORS = [
    ("", [], ""),
    ("metadata.name=web", [("metadata.name", "=", "web")], "metadata.name=web"),
    ("metadata.name==web", [("metadata.name", "=", "web")], "metadata.name=web"),
    ("status.phase!=Running", [("status.phase", "!=", "Running")], "status.phase!=Running"),
    (
        "metadata.namespace=default,metadata.name=web",
        [("metadata.name", "=", "web"), ("metadata.namespace", "=", "default")],
        "metadata.name=web,metadata.namespace=default",
    ),
    (
        "involvedObject.namespace=",
        [("involvedObject.namespace", "=", "")],
        "involvedObject.namespace=",
    ),
    ("a=x\\,y", [("a", "=", "x,y")], "a=x\\,y"),
    ("a=x\\=y", [("a", "=", "x=y")], "a=x\\=y"),
    ("a=x\\\\y", [("a", "=", "x\\y")], "a=x\\\\y"),
    ("a=b,", [("a", "=", "b")], "a=b"),
    (",,a=b", [("a", "=", "b")], "a=b"),
]


@pytest.mark.parametrize(("text", "requirements", "canonical"), VALID_FIELD_SELECTORS, ids=repr)
def test_field_selector_parses(
    text: str, requirements: list[tuple[str, str, str]], canonical: str
) -> None:
    """fields.ParseSelector: terms sorted, `==` is `=`, values unescaped."""
    sel = FieldSelector.parse(text)
    assert sel.requirements == requirements
    assert str(sel) == canonical
    assert FieldSelector.parse(str(sel)) == sel


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("status.phase", "invalid selector: 'status.phase'; can't understand 'status.phase'"),
        ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
        ("a=b,c", "can't understand 'c'"),
        ("a=x,y=z=w", "unescaped character in value: ="),
        ("a!==b", "unescaped character in value: ="),  # splits at "!=", value "=b"
        ("a=\\q", "invalid field selector: invalid escape sequence: \\q"),
        ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
    ],
    ids=repr,
)
def test_invalid_field_selector_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        FieldSelector.parse(text)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "value", ["plain", "a,b", "a=b", "back\\slash", "\\,=", "", "trailing\\"], ids=repr
)
def test_escaped_values_round_trip(value: str) -> None:
    """fields.EscapeValue is the inverse of the parser's unescaping."""
    sel = FieldSelector.parse(f"metadata.name={escape_field_value(value)}")
    assert sel.requirements == [("metadata.name", "=", value)]


@pytest.mark.parametrize(
    ("text", "fields", "expected"),
    [
        ("", {}, True),
        ("metadata.name=web", {"metadata.name": "web"}, True),
        ("metadata.name=web", {"metadata.name": "db"}, False),
        ("metadata.name!=web", {"metadata.name": "db"}, True),
        ("spec.nodeName=", {}, True),  # a missing field is ""
        ("spec.nodeName!=", {}, False),
        ("spec.nodeName=n1", {}, False),
        ("spec.nodeName!=n1", {}, True),
        ("a=1,b=2", {"a": "1", "b": "2"}, True),
        ("a=1,b=2", {"a": "1", "b": "3"}, False),
    ],
    ids=repr,
)
def test_field_selector_matches(text: str, fields: dict[str, str], expected: bool) -> None:
    assert FieldSelector.parse(text).matches(fields) is expected


def test_field_selector_check_rejects_unsupported_fields() -> None:
    """kube-apiserver answers `field label not supported: <f>` for fields a kind does not
    index; supported ones pass."""
    FieldSelector.parse("spec.nodeName=n1,status.phase!=Succeeded").check(PODS)
    FieldSelector.parse("metadata.name=web").check(DEPLOYMENTS)
    with pytest.raises(ValueError, match=r"^field label not supported: spec\.replicas$"):
        FieldSelector.parse("spec.replicas=3").check(DEPLOYMENTS)
    with pytest.raises(ValueError, match=r"field label not supported: metadata\.namespace"):
        FieldSelector.parse("metadata.namespace=default").check(NODES)
    with pytest.raises(ValueError, match=r"field label not supported: spec\.nodeName"):
        FieldSelector.parse("spec.nodeName=n1").check(SERVICES)


def test_field_selector_empty() -> None:
    assert FieldSelector.parse("").empty
    assert FieldSelector.parse(",").empty
    assert not FieldSelector.parse("a=b").empty


def test_random_field_selector_text_parses_or_raises_value_error() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        text = "".join(rng.choice("ab=!,\\.x ") for _ in range(rng.randint(0, 12)))
        try:
            sel = FieldSelector.parse(text)
        except ValueError:
            continue
        assert FieldSelector.parse(str(sel)) == sel, text


# -- object fields -----------------------------------------------------------------------------


def test_pod_fields() -> None:
    pod = {
        "metadata": {"name": "web-1", "namespace": "default"},
        "spec": {
            "nodeName": "node-1",
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "serviceAccountName": "default",
            "hostNetwork": True,
        },
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.9",
            "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}],
            "nominatedNodeName": "node-2",
        },
    }
    assert object_fields(PODS, pod) == {
        "metadata.name": "web-1",
        "metadata.namespace": "default",
        "spec.nodeName": "node-1",
        "spec.restartPolicy": "Always",
        "spec.schedulerName": "default-scheduler",
        "spec.serviceAccountName": "default",
        "spec.hostNetwork": "true",
        "status.phase": "Running",
        "status.podIP": "10.0.0.5",  # the first of podIPs, as kube-apiserver reads it
        "status.nominatedNodeName": "node-2",
    }


def test_unscheduled_pod_fields_are_zero_values() -> None:
    """An unset field reads as Go's zero value, so `spec.nodeName=` lists pending pods."""
    pod = {"metadata": {"name": "p", "namespace": "default"}, "spec": {}, "status": {}}
    fields = object_fields(PODS, pod)
    assert fields["spec.nodeName"] == ""
    assert fields["spec.hostNetwork"] == "false"
    assert fields["status.podIP"] == ""
    assert FieldSelector.parse("spec.nodeName=").matches(fields)


def test_event_fields_and_a_node_event_matching_an_empty_namespace() -> None:
    """kubectl describe node lists events with `involvedObject.namespace=`; a node event has
    no namespace in its involvedObject and must match (kubectl-api.md §4)."""
    event = {
        "metadata": {"name": "n1.17a", "namespace": "default"},
        "involvedObject": {"kind": "Node", "name": "n1", "uid": "u-1"},
        "reason": "NodeReady",
        "source": {"component": "kubelet", "host": "n1"},
        "type": "Normal",
    }
    fields = object_fields(EVENTS, event)
    assert fields == {
        "metadata.name": "n1.17a",
        "metadata.namespace": "default",
        "involvedObject.kind": "Node",
        "involvedObject.namespace": "",
        "involvedObject.name": "n1",
        "involvedObject.uid": "u-1",
        "involvedObject.apiVersion": "",
        "involvedObject.resourceVersion": "",
        "involvedObject.fieldPath": "",
        "reason": "NodeReady",
        "reportingComponent": "",
        "source": "kubelet",
        "type": "Normal",
    }
    describe = FieldSelector.parse(
        "involvedObject.kind=Node,involvedObject.name=n1,involvedObject.namespace=,"
        "involvedObject.uid=u-1"
    )
    describe.check(EVENTS)
    assert describe.matches(fields)


def test_event_source_falls_back_to_the_reporting_component() -> None:
    event = {"metadata": {"name": "e"}, "reportingComponent": "scheduler"}
    fields = object_fields(EVENTS, event)
    assert fields["source"] == "scheduler"
    assert fields["reportingComponent"] == "scheduler"


@pytest.mark.parametrize(
    ("res", "obj", "expected"),
    [
        (NODES, {"metadata": {"name": "n1"}, "spec": {"unschedulable": True}}, "true"),
        (NODES, {"metadata": {"name": "n1"}, "spec": {}}, "false"),
    ],
    ids=["cordoned", "schedulable"],
)
def test_node_unschedulable_field(res: Any, obj: dict[str, Any], expected: str) -> None:
    assert object_fields(res, obj) == {"metadata.name": "n1", "spec.unschedulable": expected}


def test_namespace_and_replicaset_fields() -> None:
    ns = {"metadata": {"name": "team-a"}, "status": {"phase": "Terminating"}}
    assert object_fields(NAMESPACES, ns) == {
        "metadata.name": "team-a",
        "status.phase": "Terminating",
        "name": "team-a",
    }
    rs = {"metadata": {"name": "web-6d", "namespace": "default"}, "status": {"replicas": 3}}
    assert object_fields(REPLICASETS, rs)["status.replicas"] == "3"
    assert object_fields(REPLICASETS, {"metadata": {"name": "x"}})["status.replicas"] == "0"


def test_services_and_configmaps_have_only_metadata_fields() -> None:
    svc = {"metadata": {"name": "web", "namespace": "default"}, "spec": {"type": "NodePort"}}
    assert object_fields(SERVICES, svc) == {
        "metadata.name": "web",
        "metadata.namespace": "default",
    }
    assert supported_fields(CONFIGMAPS) == {"metadata.name", "metadata.namespace"}


@pytest.mark.parametrize("res", RESOURCES, ids=lambda r: r.kind)
def test_object_fields_cover_exactly_the_supported_fields(res: Any) -> None:
    """Every supported field has a value on every object (even an empty or junk one), and
    nothing else does: what `check` accepts is what `matches` can see."""
    for obj in ({}, {"metadata": "junk", "spec": 3, "status": [], "involvedObject": None}):
        fields = object_fields(res, obj)
        assert set(fields) == supported_fields(res)
        assert all(isinstance(v, str) for v in fields.values())
