"""The suite from a shell: ``python core.py asr FILE | live FILE | chat TEXT | tts TEXT -o OUT | voice IN -o OUT |
agent IN... --out OUT | embed TEXT | health`` (``python core_cli.py ...`` works the same)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core import WAV_HEADER_BYTES, Core, SuiteError, wav_rate

AGENT_OPTIONS = ("system", "style", "language", "speed", "out")


def main(argv: list[str] | None = None) -> int:
    """``python core.py COMMAND ...``: see the module docstring and ``--help``."""
    parser = argparse.ArgumentParser(prog="core.py", description="Call the suite's services.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, about, positional, options in (
        ("asr", "transcribe an audio file", "file", ()),
        ("live", "stream a 16-bit mono WAV as if spoken; print partials and finals", "file", ("language", "speed")),
        ("chat", "ask the LLM (streams the answer)", "text", ("system",)),
        ("tts", "speak a text into a WAV file (-o, default out.wav)", "text", ("output", "style")),
        ("voice", "answer a spoken question in speech (-o, default reply.wav)", "file", ("output", "system", "style")),
        ("agent", "a spoken conversation with the voice agent: one turn per WAV", "files", AGENT_OPTIONS),
        ("embed", "print a text's vector length and first values", "text", ()),
        ("health", "every service's /health", None, ()),
    ):
        command = commands.add_parser(name, help=about)
        if positional:
            command.add_argument(positional, nargs="+" if positional == "files" else None)
        for option in options:
            flags = ["-o", "--output"] if option == "output" else [f"--{option}"]
            command.add_argument(*flags, type=float if option == "speed" else str)
    args = parser.parse_args(argv)
    try:
        with Core() as suite:
            if args.command == "asr":
                print(suite.asr.transcribe(args.file))
            elif args.command == "live":
                for event in suite.asr.transcribe_live(args.file, args.language, args.speed or 1.0):
                    if "partial_text" in event:
                        print(f"\r… {event['partial_text']}"[-100:], end="", flush=True)
                    elif event.get("final"):
                        print(f"\r[{event['start']:6.2f}-{event['end']:6.2f}] {event['text']}\x1b[K")
            elif args.command == "chat":
                for piece in suite.llm.chat_stream(args.text, system=args.system):
                    print(piece, end="", flush=True)
                print()
            elif args.command == "tts":
                wav = suite.tts.synthesize(args.text, style=args.style, save_to=args.output or "out.wav")
                print(f"{args.output or 'out.wav'}: {(len(wav) - WAV_HEADER_BYTES) / 2 / wav_rate(wav):.2f} s")
            elif args.command == "voice":
                reply = suite.voice_chat(args.file, system=args.system, style=args.style)
                Path(args.output or "reply.wav").write_bytes(reply.audio)
                print(f"heard: {reply.heard}\nreply: {reply.reply}")
                print(f"first audio after {reply.first_audio_s:.2f} s, reply text done after {reply.reply_s:.2f} s,"
                      f" all audio after {reply.total_s:.2f} s")  # fmt: skip
            elif args.command == "agent":
                agent(suite, args)
            elif args.command == "embed":
                vector = suite.embedding.embed(args.text)
                print(len(vector), [round(x, 4) for x in vector[:5]])
            else:
                print(json.dumps(suite.health(), ensure_ascii=False, indent=2))
    except SuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def agent(suite: Core, args: argparse.Namespace) -> None:
    """Each file a turn of one conversation; each reply's speech to ``--out`` (``reply.wav``, ``reply-2.wav``...)."""
    out = Path(args.out or "reply.wav")
    with suite.agent(instructions=args.system, voice=args.style, language=args.language) as talk:
        for number, file in enumerate(args.files, 1):
            reply = talk.say(file, speed=1.0 if args.speed is None else args.speed)
            path = out if number == 1 else out.with_name(f"{out.stem}-{number}{out.suffix}")
            if reply.audio:
                path.write_bytes(reply.audio)
            first = "no audio" if reply.first_audio_s is None else f"first audio after {reply.first_audio_s:.2f} s"
            print(f"heard: {reply.heard}\nreply: {reply.reply}\n({reply.status}; {first}; {path})")


if __name__ == "__main__":
    raise SystemExit(main())
