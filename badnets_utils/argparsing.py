"""The argument parser every command uses: a bad flag is one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import sys


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line with exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None, body, errors=(ValueError, OSError)) -> int:
    """Parse ``argv`` and call ``body(args)``; a bad flag or one of ``errors`` is one line on stderr and exit 2."""
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as stop:  # --help, or a bad flag already reported in one line
        return int(stop.code or 0)
    try:
        return body(args)
    except errors as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
