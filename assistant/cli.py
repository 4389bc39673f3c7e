"""Command line: ``assistant`` (chat), ``assistant index``, ``assistant ask``, ``assistant eval``.

Heavy libraries are imported inside the commands that need them, so ``--help``
is instant. Every :class:`AssistantError` becomes a message on stderr and a
non-zero exit code; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.config import DEFAULT_K, Config
from assistant.errors import AssistantError

EPILOG = """\
language models (--llm): local (the bundled SmolLM2-135M), llamacpp:PATH.gguf,
ollama:MODEL (OLLAMA_HOST), openai:MODEL (any OpenAI-compatible server: --llm-url)

environment: ASSISTANT_CORPUS, ASSISTANT_STORE, ASSISTANT_HOME, ASSISTANT_CHROMA_URL,
ASSISTANT_CHROMA_TOKEN, ASSISTANT_MAX_FILE_MB, ASSISTANT_EMBED_MODEL/_TOKENIZER,
ASSISTANT_LLM, ASSISTANT_LLM_URL, ASSISTANT_LLM_KEY (or OPENAI_API_KEY), OLLAMA_HOST
"""


def _defaults(sub: bool, value: object = None) -> dict[str, object]:
    """A subcommand's copy of a shared option must not reset what was given before the
    subcommand (``assistant --corpus X ask ...``): argparse applies the subparser's
    defaults last, so there they are left unset."""
    return {"default": argparse.SUPPRESS if sub else value}


def _common(p: argparse.ArgumentParser, sub: bool = False) -> None:
    p.add_argument("--corpus", metavar="DIR", help="folder of .txt/.md documents (default: seeds/)",
                   **_defaults(sub))
    p.add_argument("--store", metavar="DIR", help="where the index lives (default: per-user data)",
                   **_defaults(sub))
    p.add_argument("--chroma-url", metavar="URL", help="use a Chroma server, e.g. http://host:8000",
                   **_defaults(sub))
    p.add_argument("--collection", metavar="NAME",
                   help="Chroma collection (default: the corpus folder name + a hash of the "
                   "model and chunking; clients of one server share it by name)",
                   **_defaults(sub))
    p.add_argument("--wait", type=float, metavar="SECONDS",
                   help="wait this long for another process that is writing the index",
                   **_defaults(sub, 0.0))


def _llm_options(p: argparse.ArgumentParser, sub: bool = False) -> None:
    p.add_argument("--llm", metavar="SPEC",
                   help="a language model writes the answers, its citations checked: local, "
                   "llamacpp:PATH.gguf, ollama:MODEL or openai:MODEL (default: extractive)",
                   **_defaults(sub))
    p.add_argument("--llm-url", metavar="URL",
                   help="the model server's base URL (openai: e.g. http://host:8080/v1; "
                   "ollama: instead of OLLAMA_HOST)", **_defaults(sub))


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if not 1 <= n <= 100:
        raise argparse.ArgumentTypeError("must be between 1 and 100")
    return n


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="assistant",
        description="Ask questions about a folder of documents; every answer cites its passages.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version="%(prog)s 0.1.0")
    _common(parser)
    _llm_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("chat", help="open the chat (the default)")
    _common(p, sub=True)
    _llm_options(p, sub=True)

    p = sub.add_parser("index", help="build or refresh the index of the corpus")
    _common(p, sub=True)
    p.add_argument("--json", action="store_true", help="print the summary as JSON only")
    p.add_argument("--rebuild", action="store_true", help="discard the index and build it anew")

    p = sub.add_parser("ask", help="answer one question")
    _common(p, sub=True)
    p.add_argument("question", help="the question (quote it)")
    p.add_argument("--history", action="append", default=[], metavar="QUESTION",
                   help="an earlier question of the conversation (repeatable, oldest first)")
    p.add_argument("--k", type=_positive, default=DEFAULT_K, help="passages to retrieve")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    _llm_options(p, sub=True)

    p = sub.add_parser("eval", help="answer a JSONL file of questions; score them if gold is given")
    _common(p, sub=True)
    p.add_argument("file", type=Path, help="JSONL: {id, question, history?, answers?}")
    p.add_argument("--out", type=Path, metavar="RESULTS.jsonl", help="write one answer per line")
    p.add_argument("--k", type=_positive, default=DEFAULT_K, help="passages to retrieve")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    _llm_options(p, sub=True)
    return parser


def _config(args: argparse.Namespace) -> Config:
    return Config.resolve(
        corpus=args.corpus,
        store=args.store,
        chroma_url=args.chroma_url,
        collection=args.collection,
        k=getattr(args, "k", None),
    )


def _print_skipped(skipped: Sequence[tuple[str, str]], limit: int = 20) -> None:
    for source, reason in skipped[:limit]:
        print(f"skipped {source}: {reason}", file=sys.stderr)
    if len(skipped) > limit:
        print(f"… and {len(skipped) - limit} more files skipped", file=sys.stderr)


def cmd_index(args: argparse.Namespace) -> int:
    from assistant.config import make_embedder, max_file_bytes
    from assistant.progress import ProgressBar
    from index.build import build_index

    cfg = _config(args)
    bar = ProgressBar("Indexing")
    try:
        summary = build_index(
            cfg.corpus, cfg.store, make_embedder(),
            chroma_url=cfg.chroma_url, collection=cfg.collection, rebuild=args.rebuild,
            wait=args.wait, max_bytes=max_file_bytes(), progress=bar,
        )
    finally:
        bar.close()
    _print_skipped(summary.skipped)
    if args.json:
        print(json.dumps(summary.to_json()))
    else:
        print(summary.line())
    return 0


def _wrap(text: str, indent: str = "    ") -> str:
    return "\n".join(
        textwrap.fill(line, width=96, initial_indent=indent, subsequent_indent=indent)
        if line.strip() else ""
        for line in text.splitlines()
    )


def format_answer(answer: Any) -> str:
    """The short answer alone (when there is one), the answer, then each citation with its
    source, offsets and passage text."""
    from assistant.phrase import phrase_line
    from assistant.textsafe import printable

    line = phrase_line(answer)
    out = [printable(line), ""] if line else []
    out += [printable(answer.text), ""]
    if answer.searched:
        out += [f"(searched: {printable(answer.searched)})", ""]
    if answer.note:
        out += [f"Note: {printable(answer.note)}", ""]
    if answer.confidence_note():
        out += [answer.confidence_note(), ""]
    if answer.citations:
        out.append("Sources:")
        for c in answer.citations:
            out.append(f"  [{c.n}] {c.source}  chars {c.start}-{c.end}")
            out.append(_wrap(printable(c.text)))
            out.append("")
    elif answer.passages:
        out.append("Nearest passages (not evidence for an answer):")
        for p in answer.passages[:3]:
            out.append(f"  - {p.source}  chars {p.start}-{p.end}")
            out.append(_wrap(printable(p.text)))
            out.append("")
    if answer.left_out:  # last: a left-out sentence is never read as the answer
        out.append("Left out of the answer (the model wrote these; the passages do not "
                   "back them):")
        for c in answer.left_out:
            out.append(_wrap(f"- {printable(c.text)} ({c.marks()})"))
            out.append(_wrap(f"why: {printable(c.why())}", "      "))
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _llm_spec(args: argparse.Namespace) -> Any:
    from assistant.llm import resolve

    return resolve(getattr(args, "llm", None), getattr(args, "llm_url", None))


def _open_service(args: argparse.Namespace) -> Any:
    from assistant.progress import ProgressBar
    from assistant.service import Assistant

    spec = _llm_spec(args)
    bar = ProgressBar("Indexing")
    try:
        svc = Assistant.open(_config(args), progress=bar, wait=args.wait, llm=spec)
    finally:
        bar.close()
    if svc.last_refresh is not None:
        _print_skipped(svc.last_refresh.skipped)
    if svc.notice:
        print(f"note: {svc.notice}", file=sys.stderr)
    return svc


def cmd_ask(args: argparse.Namespace) -> int:
    from assistant.answer import validate_question

    validate_question(args.question)  # fail before loading anything
    svc = _open_service(args)
    stream = None
    if not args.json and svc.generator != "extractive" and sys.stdout.isatty():
        stream = _Stream()
    answer = svc.ask(args.question, history=args.history,
                     on_delta=stream.write if stream else None)
    if args.json:
        print(json.dumps(answer.to_json(), ensure_ascii=False))
    else:
        if stream is not None:
            stream.close()
        sys.stdout.write(format_answer(answer))
    return 0


class _Stream:
    """The model's draft on the terminal as it is written, before it is checked."""

    def __init__(self) -> None:
        self.started = False

    def write(self, delta: str) -> None:
        from assistant.textsafe import printable

        if not self.started:
            sys.stdout.write("Draft (checking follows):\n")
            self.started = True
        sys.stdout.write(printable(delta))
        sys.stdout.flush()

    def close(self) -> None:
        if self.started:
            sys.stdout.write("\n\nChecked answer:\n")


def cmd_eval(args: argparse.Namespace) -> int:
    from assistant.evaluate import print_summary, read_questions, run_eval

    items = read_questions(args.file)
    svc = _open_service(args)
    summary = run_eval(svc, items, out=args.out)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    elif summary:
        print_summary(summary)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from assistant.tui.app import run_chat

    return run_chat(_config(args), llm=_llm_spec(args))


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("ASSISTANT_LOG", "WARNING"),
                        format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("chromadb", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    parser = build_parser()
    args = parser.parse_args(argv)
    from assistant.llm import redact_logs  # after parsing: --help loads no model code

    redact_logs()
    handler = {"index": cmd_index, "ask": cmd_ask, "eval": cmd_eval}.get(
        args.command or "chat", cmd_chat
    )
    as_json = bool(getattr(args, "json", False))
    try:
        return handler(args)
    except AssistantError as exc:
        return _fail(exc.message, exc.hint, exc.exit_code, as_json)
    except KeyboardInterrupt:
        return _fail("interrupted", None, 130, as_json)
    except BrokenPipeError:
        return 0


def _fail(message: str, hint: str | None, code: int, as_json: bool) -> int:
    """An error as text on stderr; with ``--json`` also as one object on stdout, so a
    tool reading stdout gets ``{"error", "hint", "exit"}`` instead of nothing."""
    print(f"error: {message}" if code != 130 else message, file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)
    if as_json:
        print(json.dumps({"error": message, "hint": hint or "", "exit": code},
                         ensure_ascii=False))
    return code
