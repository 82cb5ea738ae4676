"""``python -m mixology COMMAND``: one module per domain adds its commands.

- ``verify.py``: verify, list, mutants (the spec);
- ``bench.py``: bench, history, gpu-check (benchmarks and kernels);
- ``lab.py``: train, compare, sample, report, circuits, explain, app (the lab).

Misuse is one line on stderr and exit 2, for every command alike: a command raises
``ValueError`` (its own checks, or the library's on the user's input) and :func:`main` prints
``mixology COMMAND: error: <first line>``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from mixology.cli import bench, lab, verify
from mixology.verify import stack


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mixology",
        description="Property-based verification of token mixers and transformer building "
                    "blocks: every op's einops reference, its optimized implementations and "
                    "your own kernels, checked against a spec of properties.",
        epilog="Run `mixology COMMAND --help` for a command's options. Examples: "
               "`mixology verify --op rms_norm`, `mixology verify --candidate "
               "rms_norm=pkg.mod:my_rms_norm`, `mixology verify -n 2`.")
    sub = p.add_subparsers(dest="command", required=True)
    for domain in (verify, bench, lab):
        domain.add_commands(sub)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args._start = time.perf_counter()
    try:
        return stack.call(args.func, args)  # mixology.verify.stack: no frame-chunk churn
    except ValueError as e:
        lines = str(e).strip().splitlines() or [type(e).__name__]
        print(f"mixology {args.command}: error: {lines[0]}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader left (`mixology list | head`): stop quietly, as a filter should; point
        # stdout at devnull so that the interpreter's final flush does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a writer killed by the pipe
