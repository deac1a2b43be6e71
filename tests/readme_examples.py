#!/usr/bin/env python3
"""The README's console examples, run verbatim. Every ```console block of README.md (also
indented ones) is a sequence of `$ COMMAND` lines, each followed by the output it prints
(stdout and stderr together) up to the next `$ ` line; blank lines at the end of an output
only separate it from the next command. The commands run one after another, as a user
would type them, with bash in a fresh folder holding a copy of testdata/ and the remodel
under test first on PATH; what they print must equal the README's text except for timings
(a number followed by ms or s), which differ from run to run.

usage: readme_examples.py REMODEL README.md TESTDATA_DIR
"""

import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile

REMODEL, README, TESTDATA = (os.path.abspath(a) for a in sys.argv[1:4])

# timings only: "8.22 ms", "2.9 s", "0.6ms" (never other numbers)
TIMING = re.compile(r"\b\d+(?:\.\d+)?\s?(?:ms|s)\b")


def normalise(text):
    return TIMING.sub("<time>", text).rstrip("\n")


def examples(path):
    """[(line number, command, expected output)] of every console block, in order."""
    lines = open(path, encoding="utf-8").read().split("\n")
    out, i = [], 0
    while i < len(lines):
        m = re.match(r"^(\s*)```console\s*$", lines[i])
        if not m:
            i += 1
            continue
        indent, i = m.group(1), i + 1
        block = []
        while i < len(lines) and lines[i].strip() != "```":
            line = lines[i]
            block.append((i + 1, line[len(indent):] if line.startswith(indent) else line.lstrip()))
            i += 1
        cmd = None
        for lineno, line in block:
            if line.startswith("$ "):
                if cmd:
                    out.append(cmd)
                cmd = (lineno, line[2:], [])
            elif cmd:
                cmd[2].append(line)
        if cmd:
            out.append(cmd)
        i += 1
    return [(n, c, "\n".join(o).rstrip("\n")) for n, c, o in out]


def main():
    cases = examples(README)
    assert cases, "no console examples in README.md"
    failed = 0
    with tempfile.TemporaryDirectory() as d:
        shutil.copytree(TESTDATA, os.path.join(d, "testdata"), symlinks=True)
        env = dict(os.environ, PATH=os.path.dirname(REMODEL) + os.pathsep + os.environ.get("PATH", ""),
                   LC_ALL="C.UTF-8")
        for lineno, cmd, expected in cases:
            p = subprocess.run(["bash", "-c", cmd], cwd=d, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=600)
            got = p.stdout.decode("utf-8", "replace")
            if normalise(got) == normalise(expected):
                print(f"ok   README.md:{lineno}: $ {cmd}")
                continue
            failed += 1
            print(f"FAIL README.md:{lineno}: $ {cmd} (exit {p.returncode})")
            for line in difflib.unified_diff(normalise(expected).split("\n"), normalise(got).split("\n"),
                                             "README.md", "printed", lineterm=""):
                print("     " + line)
    print(f"{len(cases) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
