"""The argument parser every command uses: a bad flag is one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import math
import re
import sys


class Terminated(BaseException):
    """SIGTERM, turned into an exception so that the atomic writes clean up as after Ctrl-C. ``kept`` says what of
    the interrupted command is kept (a command that keeps something sets it on the way out)."""

    kept = "nothing of this run was saved"


def whole_number(text: str) -> int:
    """A command line's integer: ASCII digits only (Python's ``int`` reads '١٢' and '１２' as 12)."""
    if not text.isascii():
        raise argparse.ArgumentTypeError(f"{text!r} is not written in ASCII digits; allowed: an integer such as 12")
    return int(text)


def real_number(text: str) -> float:
    """A command line's number: ASCII only, and one a float holds as typed ('1e-400' is not 0.0, '1e400' not inf)."""
    if not text.isascii():
        raise argparse.ArgumentTypeError(f"{text!r} is not written in ASCII digits; allowed: a number such as 0.01")
    value = float(text)
    mantissa = re.split("[eE]", text, maxsplit=1)[0]
    if value == 0 and re.search("[1-9]", mantissa):
        raise argparse.ArgumentTypeError(f"{text!r} is too small for a float (it would be read as 0.0); allowed: 0, or "
                                         "a magnitude of at least 5e-324")  # fmt: skip
    if math.isinf(value) and re.search("[0-9]", text):
        raise argparse.ArgumentTypeError(f"{text!r} is too large for a float (it would be read as {value}); allowed: "
                                         "a magnitude of at most 1.7976931348623157e308")  # fmt: skip
    return value


def _allowed(action: argparse.Action | None) -> str:
    """What a flag accepts, in words: its choices, its type, else its help text."""
    if action is None:
        return "a value"
    if action.choices:
        return ", ".join(map(str, action.choices))
    return {int: "an integer", float: "a number"}.get(action.type) or action.help or "a value"


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` states each flag's default once: argparse's "(default: X)", unless the help text already says it
    or there is none to state (None, an off switch)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        nothing = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if "default" in text or nothing or not action.option_strings:  # 0 is a default to state; False is not
            return text
        return super()._get_help_string(action)


class RawDefaultsFormatter(argparse.RawDescriptionHelpFormatter, DefaultsFormatter):
    """As ``DefaultsFormatter``, keeping the description's own line breaks (a module docstring)."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line with exit code 2, states each flag's default once, and reads a
    number as typed: ASCII digits only, never silently rounded to 0 or to infinity."""

    def __init__(self, *args, formatter_class=DefaultsFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)
        self.register("type", int, whole_number)  # type=int and type=float read ASCII numbers, as typed
        self.register("type", float, real_number)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    def parse_known_args(self, args=None, namespace=None):
        """As argparse's, but ``--flag=--`` is refused by name (argparse would silently read it as an empty list)."""
        for token in sys.argv[1:] if args is None else args:
            if token == "--":
                break
            flag, eq, value = token.partition("=")
            if eq and value == "--" and flag.startswith("-"):
                action = next((a for a in self._actions if flag in a.option_strings), None)
                allowed = _allowed(action)
                self.error(f"argument {flag}: '--' is not a value (it ends the options); allowed: {allowed}")
        return super().parse_known_args(args, namespace)


def exit_status(stop: SystemExit) -> int:
    """The exit status a caught SystemExit stands for (argparse's: 0 after --help, 2 after a bad flag)."""
    if stop.code is None or isinstance(stop.code, int):
        return stop.code or 0
    print(stop.code, file=sys.stderr)  # a message, as Python itself would print it
    return 1


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None, body, errors=(ValueError, OSError)) -> int:
    """Parse ``argv`` and call ``body(args)``; a bad flag or one of ``errors`` is one line on stderr and exit 2."""
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as stop:  # --help, or a bad flag already reported in one line
        return exit_status(stop)
    try:
        return body(args)
    except errors as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
