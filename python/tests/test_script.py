"""tandem.script: the one-shot script contract, in-process and as a real subprocess."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import tandem
from tandem import Context
from tandem.script import run


def _run(fn: Any, data: bytes, codec: str = "json") -> tuple[int, bytes]:
    out = io.BytesIO()
    code = run(fn, stdin=io.BytesIO(data), stdout=out, codec=codec)
    return code, out.getvalue()


def test_success_writes_only_the_result() -> None:
    def main(data: Any) -> Any:
        print("stray")
        return {"double": data["n"] * 2}

    code, out = _run(main, b'{"n": 21}')
    assert code == 0
    assert json.loads(out) == {"double": 42}


def test_ctx_is_passed_when_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_METHOD", "score")
    monkeypatch.setenv("TANDEM_TIMEOUT_S", "5")
    monkeypatch.setenv("TRACEPARENT", "00-abc-def-01")

    def main(data: Any, ctx: Context) -> Any:
        return [ctx.method, ctx.traceparent, ctx.transport, ctx.deadline is not None]

    code, out = _run(main, b"null")
    assert code == 0
    assert json.loads(out) == ["score", "00-abc-def-01", "script", True]


def test_exception_becomes_a_structured_error() -> None:
    def main(data: Any) -> Any:
        raise KeyError("missing")

    code, out = _run(main, b"{}")
    assert code == 1
    err = json.loads(out)["error"]
    assert err["kind"] == "remote"
    assert err["type"] == "KeyError"
    assert "missing" in err["message"]
    assert "raise KeyError" in err["traceback"]


def test_undecodable_input_is_bad_request() -> None:
    code, out = _run(lambda d: d, b"{nope")
    assert code == 1
    err = json.loads(out)["error"]
    assert err["kind"] == "bad_request"
    assert "cannot decode" in err["message"]


def test_msgpack_round_trip() -> None:
    import msgpack

    code, out = _run(lambda d: {"got": d}, msgpack.packb([1, "a"]), codec="msgpack")
    assert code == 0
    assert msgpack.unpackb(out) == {"got": [1, "a"]}


def test_async_main_is_awaited() -> None:
    async def main(data: Any) -> Any:
        return data + 1

    assert _run(main, b"1") == (0, b"2")


def test_decorator_returns_the_function_when_imported() -> None:
    def main(data: Any) -> Any:
        return data

    assert tandem.script(main) is main


def _run_file(tmp_path: Path, source: str, data: bytes) -> subprocess.CompletedProcess[bytes]:
    path = tmp_path / "s.py"
    path.write_text(textwrap.dedent(source))
    return subprocess.run([sys.executable, str(path)], input=data, capture_output=True, timeout=30)


def test_script_file_runs_as_a_subprocess(tmp_path: Path) -> None:
    source = """
        import tandem

        @tandem.script
        def main(data):
            print("noise")
            return {"sum": sum(data)}
    """
    proc = _run_file(tmp_path, source, b"[1, 2, 3]")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"sum": 6}
    assert b"noise" in proc.stderr


def test_ctx_is_passed_to_methods_and_varargs() -> None:
    class Job:
        def main(self, data: Any, ctx: Context) -> Any:
            return ctx.transport

    def star(*args: Any) -> Any:
        return len(args)

    assert _run(Job().main, b"1") == (0, b'"script"')
    assert _run(star, b"1") == (0, b"2")
    assert _run(lambda d: d, b"[1]") == (0, b"[1]")


def test_a_script_imports_only_what_it_needs(tmp_path: Path) -> None:
    # A one-shot script pays for every module imported at start-up: on the success path of a
    # `main(data)` script, nothing beyond json (which a bare script imports too) may load.
    source = """
        import sys
        import tandem

        @tandem.script
        def main(data):
            heavy = ("typing", "logging", "inspect", "asyncio", "dataclasses",
                     "traceback", "contextlib", "tandem.app", "tandem.errors")
            return sorted(m for m in heavy if m in sys.modules)
    """
    proc = _run_file(tmp_path, source, b"0")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_error_path_still_reports_the_traceback(tmp_path: Path) -> None:
    source = (
        "import tandem\n\n@tandem.script\ndef main(data):\n    raise ValueError('bad ' + data)\n"
    )
    proc = _run_file(tmp_path, source, b'"input"')
    assert proc.returncode == 1
    err = json.loads(proc.stdout)["error"]
    assert (err["kind"], err["type"], err["message"]) == ("remote", "ValueError", "bad input")
    assert "raise ValueError" in err["traceback"]
    assert b"script main failed: ValueError: bad input" in proc.stderr


def test_lazy_names_resolve_in_any_import_order() -> None:
    code = (
        "import tandem.script, tandem.errors, tandem; "
        "from tandem import metrics; "
        "assert callable(tandem.script) and tandem.script.__module__ == 'tandem'; "
        "assert tandem.Remote is tandem.errors.Remote and tandem.App.__module__ == 'tandem'; "
        "assert 'Context' in dir(tandem)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
