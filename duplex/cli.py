"""Command-line entry points: `duplex-chat` (live or offline sessions) and `duplex-test`.

Any user error (`duplex.errors.USER_ERRORS`) ends with one line naming the culprit and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from duplex.errors import USER_ERRORS, DuplexError

EXIT_BAD_INPUT = 2


def guarded(prog: str, main: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return main(args)
    except USER_ERRORS as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BaseExceptionGroup as group:  # a task group's one failure (a log on a full disk): still one line
        first = group.subgroup(lambda e: isinstance(e, DuplexError))
        if first is None:
            raise
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        print(f"{prog}: error: {first}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def chat_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="duplex-chat",
                                description="Full-duplex spoken conversation with a speech model.")
    p.add_argument("--config", type=Path, help="YAML config file (see --print-config)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. policy.vad=silero")
    p.add_argument("--input", type=Path,
                   help="offline: WAV the microphone hears from t=0 (- or a FIFO: a WAV stream, e.g. from sox)")
    p.add_argument("--output", type=Path, help="offline: WAV of exactly what the speaker plays")
    p.add_argument("--events", type=Path, help="write events as JSON lines here")
    p.add_argument("--realtime", action="store_true", help="offline: pace the session at wall-clock speed")
    p.add_argument("--quiet", action="store_true", help="offline: do not print the state timeline")
    p.add_argument("--print-config", action="store_true", help="print the effective config and exit")
    p.add_argument("--print-fsm", action="store_true",
                   help="print the controller as a Mermaid state diagram and exit")
    p.add_argument("--fsm-table", action="store_true",
                   help="print every (state, input) row as a Markdown table and exit")
    from duplex.live_cli import add_live_arguments
    from duplex.serve.remote_cli import add_server_arguments
    add_live_arguments(p)
    add_server_arguments(p)
    return p


def chat_main(argv: Sequence[str] | None = None) -> int:
    args = chat_parser().parse_args(argv)
    return guarded("duplex-chat", _chat, args)


def _chat(args: argparse.Namespace) -> int:
    if args.print_fsm or args.fsm_table:
        from states import TRANSITIONS
        from states.diagram import to_markdown, to_mermaid

        print(to_markdown(TRANSITIONS) if args.fsm_table else to_mermaid(TRANSITIONS), end="")
        return 0
    from duplex.config import dump_yaml, load_config

    cfg = load_config(args.config, sets=args.set)
    if args.print_config:
        print(dump_yaml(cfg), end="")
        return 0
    from duplex.paths import chat_outputs

    chat_outputs(args)  # paths first, then files: nothing is opened before every output is checked
    if args.server is not None:
        from duplex.serve.remote_cli import chat_remote

        return chat_remote(cfg, args)
    if args.input is None:
        if args.output is not None:
            raise DuplexError("--output needs --input (offline session)")
        from duplex.live_cli import run_live

        return run_live(cfg, args)
    import asyncio

    from duplex.session import DuplexSession, summary_of
    from duplex.timeline import print_timeline

    session = DuplexSession(config=cfg, input=args.input, output=args.output, events_path=args.events,
                            realtime=args.realtime)
    events = asyncio.run(session.play())
    if not args.quiet:
        print_timeline(events, summary_of(events))
    return 0


def main() -> None:
    sys.exit(chat_main())
