"""Data-driven test files, after cockroachdb/datadriven as etcd-io/raft uses it.

A file is a sequence of blocks separated by blank lines; `#` lines between blocks are
comments:

    # what the next block shows
    command arg key=value key=(v1, v2)
    optional input lines (the interaction environment runs each as one more command)
    ----
    expected output

The expected output ends at the first blank line. Output that itself contains blank lines
is written between double separators:

    command
    ----
    ----
    output with

    a blank line
    ----
    ----

Arguments are `key`, `key=value` or `key=(v1, v2 v3)` (values split on commas and
whitespace). A directive line ending in a backslash continues on the next line.

This module only parses and rewrites text: reading and writing files is the caller's job,
so the Raft core (and this test kit) stays free of I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

SEPARATOR = "----"


class ParseError(ValueError):
    """The test file is malformed; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class CmdArg:
    """One argument of a directive: `key`, `key=value` or `key=(v1, v2)`."""

    key: str
    vals: tuple[str, ...] = ()

    def __str__(self) -> str:
        if not self.vals:
            return self.key
        if len(self.vals) == 1:
            return f"{self.key}={self.vals[0]}"
        return f"{self.key}=({', '.join(self.vals)})"


@dataclass(frozen=True, slots=True)
class Block:
    """One directive with its input and the output the file expects."""

    pos: str  # "name:line" of the directive, for error messages
    cmd: str
    args: tuple[CmdArg, ...]
    input: str
    expected: str  # with a trailing newline unless empty
    directive: tuple[str, ...]  # the directive and input lines, verbatim, for rewriting


@dataclass(frozen=True, slots=True)
class Mismatch:
    block: Block
    actual: str

    def __str__(self) -> str:
        return (
            f"{self.block.pos}: output of {self.block.cmd!r} differs\n"
            f"--- expected\n{self.block.expected}--- actual\n{self.actual}"
        )


def _tokens(line: str, pos: str) -> list[str]:
    """Whitespace-separated tokens; a parenthesised value may contain whitespace."""
    tokens: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in line:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ParseError(f"{pos}: unbalanced parentheses in {line!r}")
        if ch.isspace() and depth == 0:
            if cur:
                tokens.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
    if depth:
        raise ParseError(f"{pos}: unbalanced parentheses in {line!r}")
    if cur:
        tokens.append("".join(cur))
    return tokens


def parse_line(line: str, pos: str = "<line>") -> tuple[str, tuple[CmdArg, ...]]:
    """Split `command arg key=value key=(a, b)` into the command and its arguments."""
    tokens = _tokens(line, pos)
    if not tokens:
        raise ParseError(f"{pos}: empty directive")
    args: list[CmdArg] = []
    for tok in tokens[1:]:
        key, eq, val = tok.partition("=")
        if not eq:
            args.append(CmdArg(key))
        elif val.startswith("(") and val.endswith(")"):
            vals = tuple(v for v in val[1:-1].replace(",", " ").split() if v)
            args.append(CmdArg(key, vals))
        elif "(" in val or ")" in val:
            raise ParseError(f"{pos}: unbalanced parentheses in {tok!r}")
        else:
            args.append(CmdArg(key, (val,)))
    return tokens[0], tuple(args)


# A parsed file: verbatim lines (comments, blank lines) interleaved with blocks.
_Segment = str | Block


def parse(text: str, name: str = "<text>") -> list[Block]:
    """The blocks of a data-driven file, in order."""
    return [s for s in _parse(text, name) if isinstance(s, Block)]


def _parse(text: str, name: str) -> list[_Segment]:
    lines = text.splitlines()
    n = len(lines)
    segments: list[_Segment] = []
    i = 0
    while i < n:
        line = lines[i]
        if not line.strip() or line.lstrip().startswith("#"):
            segments.append(line)
            i += 1
            continue
        start = i
        pos = f"{name}:{start + 1}"
        # The directive, with backslash continuations.
        directive = line
        while directive.endswith("\\"):
            i += 1
            if i >= n:
                raise ParseError(f"{pos}: continuation at end of file")
            directive = directive[:-1] + " " + lines[i].strip()
        i += 1
        input_lines: list[str] = []
        while i < n and lines[i] != SEPARATOR:
            if not lines[i].strip():
                raise ParseError(f"{pos}: blank line before {SEPARATOR!r}")
            input_lines.append(lines[i])
            i += 1
        if i >= n:
            raise ParseError(f"{pos}: directive without {SEPARATOR!r}")
        verbatim = tuple(lines[start:i])
        i += 1  # the separator
        out: list[str] = []
        if i < n and lines[i] == SEPARATOR:
            i += 1
            while i < n and not (lines[i] == SEPARATOR and i + 1 < n and lines[i + 1] == SEPARATOR):
                out.append(lines[i])
                i += 1
            if i >= n:
                raise ParseError(f"{pos}: output not closed by a double {SEPARATOR!r}")
            i += 2
        else:
            while i < n and lines[i].strip():
                out.append(lines[i])
                i += 1
        cmd, args = parse_line(directive, pos)
        segments.append(
            Block(
                pos=pos,
                cmd=cmd,
                args=args,
                input="".join(f"{ln}\n" for ln in input_lines),
                expected="".join(f"{ln}\n" for ln in out),
                directive=verbatim,
            )
        )
    return segments


def format_output(output: str) -> str:
    """Normalise handler output: one trailing newline, none if empty."""
    return output.rstrip("\n") + "\n" if output.strip("\n") else ""


def _render_block(b: Block, output: str) -> list[str]:
    lines = [*b.directive, SEPARATOR]
    body = output.splitlines()
    if any(not ln.strip() for ln in body) or SEPARATOR in body:
        return [*lines, SEPARATOR, *body, SEPARATOR, SEPARATOR]
    return [*lines, *body]


Handler = Callable[[Block], str]


def run(
    text: str, handler: Handler, *, name: str = "<text>", rewrite: bool = False
) -> tuple[str, Mismatch | None]:
    """Run every block of `text` through `handler` and compare outputs.

    Without `rewrite`, stops at the first mismatch and returns it (later blocks depend on
    earlier state, so their output would not mean much). With `rewrite`, runs everything
    and returns the text with every expected output replaced by the actual one.
    """
    out_lines: list[str] = []
    for seg in _parse(text, name):
        if isinstance(seg, str):
            out_lines.append(seg)
            continue
        actual = format_output(handler(seg))
        if rewrite:
            out_lines.extend(_render_block(seg, actual))
        elif actual != seg.expected:
            return text, Mismatch(seg, actual)
    if not rewrite:
        return text, None
    return "\n".join(out_lines) + "\n", None
