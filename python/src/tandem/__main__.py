"""``python -m tandem VERB MODULE:APP [options]``: serve an App over a transport.

Verbs map one-to-one onto each transport module's ``main(argv)``:

=========  ==================  ============================================
verb       module              what it does
=========  ==================  ============================================
worker     tandem.worker       a persistent pool worker (started by Rust)
plugin     tandem.plugin       a go-plugin plugin (started by its host)
serve      tandem.serve        the multi-process gRPC server
consume    tandem.consume      Redis Streams consumer processes
run        tandem.run          one call of an App method, one-shot (script contract)
=========  ==================  ============================================
"""

from __future__ import annotations

import importlib
import sys

from . import _logging

VERBS = {
    "worker": ("tandem.worker", "a persistent pool worker, started by tandem::process::Pool"),
    "plugin": ("tandem.plugin", "a go-plugin plugin, started by its host"),
    "serve": ("tandem.serve", "the multi-process gRPC server"),
    "consume": ("tandem.consume", "Redis Streams consumer processes"),
    "run": ("tandem.run", "one call of an App method, one-shot (payload on stdin)"),
}


def _usage() -> str:
    lines = ["usage: python -m tandem VERB MODULE:APP [options]", "", "verbs:"]
    lines += [f"  {verb:<8} {desc}" for verb, (_, desc) in VERBS.items()]
    lines.append("")
    lines.append("python -m tandem VERB --help shows a verb's options")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatches to the verb's module and returns its exit code."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        sys.stderr.write(_usage() + "\n")
        return 0 if args else 2
    verb, rest = args[0], args[1:]
    if verb not in VERBS:
        sys.stderr.write(f"tandem: unknown verb {verb!r}\n\n{_usage()}\n")
        return 2
    module_name, _ = VERBS[verb]
    _logging.configure("hclog" if verb == "plugin" else "text")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        sys.stderr.write(f"tandem: {verb} is not available in this install: {exc}\n")
        return 2
    code: int = module.main(rest)
    return code


if __name__ == "__main__":
    sys.exit(main())
