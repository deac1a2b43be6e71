"""What the Python test scripts share: counted cases, running remodel, and the one-line
error contract. Standard library only.

    from rmtest import Skip, Suite, one_error_line
    T = Suite("RM_X_ONLY")        # with RM_X_ONLY=text set, only cases whose name contains it run
    case = T.case

    @case("what the case checks")
    def _():
        rc, out, err = T.run(remodel, "info", path)
        ...

    T.finish()                    # prints the counts; exit status 1 when a case failed

A case fails on any exception (an assertion, a timeout, a crash of the test code itself),
which is reported on its line and does not stop the other cases; `raise Skip(why)` marks a
case that cannot run on this machine.
"""

import os
import subprocess
import sys


def varint(n):
    """n (>= 0) as a protobuf base-128 varint (wire bytes), for tests that write or find
    protobuf fields by hand."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


class Skip(Exception):
    """Raised by a case that cannot run here (a tool or package it needs is missing)."""


class Suite:
    def __init__(self, only_env=None):
        self.passed = self.failed = self.skipped = 0
        self.only = os.environ.get(only_env) if only_env else None

    def case(self, name):
        def wrap(fn):
            if self.only and self.only not in name:
                return fn
            try:
                fn()
            except Skip as e:
                self.skipped += 1
                print(f"skip {name}: {e}", flush=True)
            except Exception as e:  # noqa: BLE001 - any exception fails this case, not the run
                self.failed += 1
                print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            else:
                self.passed += 1
                print(f"ok   {name}", flush=True)
            return fn
        return wrap

    def finish(self):
        skipped = f", {self.skipped} skipped" if self.skipped else ""
        print(f"{self.passed} passed, {self.failed} failed{skipped}", flush=True)
        sys.exit(1 if self.failed else 0)

    @staticmethod
    def run(remodel, *args, timeout=120, cwd=None, env=None, preexec_fn=None, errors="strict", binary_stdout=False):
        """remodel's exit code, stdout and stderr as text (bytes that are not UTF-8 fail the
        case, or with errors="replace" are replaced; stdout stays bytes with binary_stdout).
        A run past timeout fails the case."""
        try:
            argv = [remodel, *(a if isinstance(a, (str, bytes, os.PathLike)) else str(a) for a in args)]
            p = subprocess.run(argv, capture_output=True, timeout=timeout, cwd=cwd, env=env,
                               preexec_fn=preexec_fn)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"remodel {' '.join(map(repr, args))} hung for {timeout} s") from None
        out = p.stdout if binary_stdout else p.stdout.decode("utf-8", errors)
        return p.returncode, out, p.stderr.decode("utf-8", errors)


def one_error_line(rc, out, err, *needles, empty_stdout=False):
    """The bad-input contract: exit 2, one line on stderr containing every needle (and,
    with empty_stdout, nothing on stdout)."""
    assert rc == 2, f"exit {rc}, expected 2 (stderr: {err!r})"
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    if empty_stdout:
        assert out in ("", b""), f"stdout not empty: {out!r}"
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"
