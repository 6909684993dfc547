"""The data-driven file format and its rewrite mode (controlplane.raft.rafttest.datadriven)."""

from __future__ import annotations

import pytest

from controlplane.raft.rafttest.datadriven import (
    Block,
    CmdArg,
    ParseError,
    parse,
    parse_line,
    run,
)

TEXT = """\
# a comment
echo a b=1 c=(1, 2 3)
----
a b=1 c=(1, 2, 3)

multi x
input line 1
input line 2
----
----
x

blank above
----
----

empty
----
"""


def echo(b: Block) -> str:
    """Handler: echo the arguments, or the input lines, or nothing."""
    if b.cmd == "echo":
        return " ".join(str(a) for a in b.args)
    if b.cmd == "multi":
        return f"{b.args[0].key}\n\nblank above"
    return ""


@pytest.mark.parametrize(
    ("line", "want"),
    [
        ("cmd", ("cmd", ())),
        ("cmd 1 2", ("cmd", (CmdArg("1"), CmdArg("2")))),
        ("cmd k=v", ("cmd", (CmdArg("k", ("v",)),))),
        ("cmd k=(1,2)", ("cmd", (CmdArg("k", ("1", "2")),))),
        ("cmd k=(1 2, 3)", ("cmd", (CmdArg("k", ("1", "2", "3")),))),
        ("cmd k=()", ("cmd", (CmdArg("k", ()),))),
    ],
    ids=["bare", "positional", "key-value", "tuple-commas", "tuple-spaces", "empty-tuple"],
)
def test_parse_line(line: str, want: tuple[str, tuple[CmdArg, ...]]) -> None:
    """Arguments are `key`, `key=value` or `key=(v1, v2 v3)`."""
    assert parse_line(line) == want


def test_parse_blocks() -> None:
    """Blocks carry command, arguments, input and expected output (double separators
    allow blank lines in the output)."""
    blocks = parse(TEXT, "t.txt")
    assert [(b.cmd, b.pos) for b in blocks] == [("echo", "t.txt:2"), ("multi", "t.txt:6"),
                                                ("empty", "t.txt:17")]  # fmt: skip
    assert blocks[1].input == "input line 1\ninput line 2\n"
    assert blocks[1].expected == "x\n\nblank above\n"
    assert blocks[2].expected == ""


def test_run_passes_and_rewrite_is_identity() -> None:
    """Matching output passes, and rewriting a passing file changes nothing."""
    assert run(TEXT, echo, name="t.txt") == (TEXT, None)
    assert run(TEXT, echo, name="t.txt", rewrite=True) == (TEXT, None)


def test_run_reports_first_mismatch() -> None:
    """A mismatch names the file, line and command, with both outputs."""
    _, mismatch = run(TEXT.replace("a b=1 c=(1, 2, 3)", "stale"), echo, name="t.txt")
    assert mismatch is not None
    assert str(mismatch).startswith("t.txt:2: output of 'echo' differs")
    assert mismatch.actual == "a b=1 c=(1, 2, 3)\n"


def test_rewrite_replaces_outputs() -> None:
    """Rewrite mode regenerates every output, switching to double separators when needed."""
    text = "echo z\n----\nstale\n\nmulti y\n----\nstale\n"
    new, _ = run(text, echo, rewrite=True)
    assert new == "echo z\n----\nz\n\nmulti y\n----\n----\ny\n\nblank above\n----\n----\n"
    assert run(new, echo) == (new, None)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("cmd\n", "without '----'"),
        ("cmd\n\n----\n", "blank line before"),
        ("cmd\n----\n----\nout\n", "not closed"),
        ("cmd k=(1\n----\n", "unbalanced"),
    ],
    ids=["no-separator", "blank-in-input", "unclosed-double", "unbalanced-parens"],
)
def test_parse_errors(text: str, error: str) -> None:
    """Malformed files fail with the position and the problem."""
    with pytest.raises(ParseError, match=error):
        parse(text, "bad.txt")
