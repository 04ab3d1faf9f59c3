#!/usr/bin/env python3
"""Runs a program on a pseudo-terminal, so that wine gives it a console,
and drives it like a person: waits for text, types keys. For
scripts/wine-smoke.

    console.py LOG STEP... -- PROGRAM ARG...

Each STEP is `expect:TEXT` (wait until the output after the last match
holds TEXT, 60 s at most) or `send:KEYS` (type them); both understand \\r, \\x1b and the like.
After the last step the program's output is read to its end. All output
goes to LOG. The exit code is the program's, or 124 when it timed out.
"""
import codecs
import os
import pty
import select
import sys
import time

DEADLINE = 60.0


def main():
    log, args = sys.argv[1], sys.argv[2:]
    split = args.index("--")
    steps, program = args[:split], args[split + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(program[0], program)
    out = bytearray()

    def read(until):
        """Reads until `until(out)` holds or the deadline; False on EOF or time-out."""
        end = time.monotonic() + DEADLINE
        while not until(out):
            left = end - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the program closed the terminal
                return False
            if not chunk:
                return False
            out.extend(chunk)
        return True

    code = 0
    seen = 0  # where the last expected text ended
    for step in steps:
        kind, _, text = step.partition(":")
        if kind == "expect":
            want = codecs.decode(text, "unicode_escape").encode("latin-1")
            if not read(lambda b: b.find(want, seen) >= 0):
                sys.stderr.write(f"console.py: never saw {text!r}\n")
                code = 124
                break
            seen = out.find(want, seen) + len(want)
        elif kind == "send":
            os.write(fd, codecs.decode(text, "unicode_escape").encode("latin-1"))
        else:
            sys.stderr.write(f"console.py: unknown step {step!r}\n")
            code = 2
            break
    if code == 0:
        read(lambda b: False)  # to the end of the output (or the deadline)
    with open(log, "wb") as f:
        f.write(out)
    if code:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        sys.exit(code)
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    sys.exit(124)


main()
