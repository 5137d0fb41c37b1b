"""``python -m tandem run MODULE:APP [METHOD]`` (one-shot App calls) and the bench plot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

APP = textwrap.dedent(
    """
    import tandem

    app = tandem.App("runsvc")
    started = []

    @app.on_startup
    def up():
        started.append(1)

    @app.handler("echo")
    def echo(payload):
        print("stray output goes to stderr")
        return {"echo": payload, "started": len(started)}

    @app.handler("boom")
    def boom(payload):
        raise ValueError("boom went the handler")
    """
)


def _run(
    tmp_path: Path, *args: str, stdin: bytes = b"null", **env: str
) -> subprocess.CompletedProcess[bytes]:
    (tmp_path / "runsvc.py").write_text(APP)
    return subprocess.run(
        [sys.executable, "-m", "tandem", "run", *args],
        input=stdin,
        capture_output=True,
        cwd=tmp_path,
        env={**os.environ, **env},
        timeout=30,
        check=False,
    )


def test_runs_one_call_with_startup_hooks(tmp_path: Path) -> None:
    p = _run(tmp_path, "runsvc:app", "echo", stdin=b'{"n": 1}')
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"echo": {"n": 1}, "started": 1}
    assert b"stray output" in p.stderr


def test_method_comes_from_tandem_method(tmp_path: Path) -> None:
    p = _run(tmp_path, "runsvc:app", stdin=b"[1]", TANDEM_METHOD="echo")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["echo"] == [1]


@pytest.mark.parametrize(
    ("method", "kind", "words"),
    [("boom", "remote", "boom went the handler"), ("nope", "bad_request", "no handler 'nope'")],
)
def test_errors_are_structured_on_stdout(
    tmp_path: Path, method: str, kind: str, words: str
) -> None:
    p = _run(tmp_path, "runsvc:app", method)
    assert p.returncode == 1
    err = json.loads(p.stdout)["error"]
    assert err["kind"] == kind
    assert words in err["message"]


def test_bad_app_or_no_method_exits_2(tmp_path: Path) -> None:
    p = _run(tmp_path, "nosuchmod:app", "echo")
    assert p.returncode == 2
    assert b"cannot import module 'nosuchmod'" in p.stderr
    env = {k: v for k, v in os.environ.items() if k != "TANDEM_METHOD"}
    (tmp_path / "runsvc.py").write_text(APP)
    p2 = subprocess.run(
        [sys.executable, "-m", "tandem", "run", "runsvc:app"],
        capture_output=True,
        cwd=tmp_path,
        env=env,
        timeout=30,
        check=False,
    )
    assert p2.returncode == 2
    assert b"no METHOD given" in p2.stderr


def test_bench_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    run = {"concurrency": 1, "p50_us": 100.0, "p99_us": 300.0, "throughput_per_s": 900.0}
    result = {
        "app": "a:app",
        "method": "echo",
        "payload_bytes": 100,
        "concurrency": [1],
        "transports": [{"transport": t, "runs": [run]} for t in ("pool", "grpc")],
        "recommendation": {"transport": "process"},
    }
    out = tmp_path / "b.png"
    p = subprocess.run(
        [sys.executable, "-m", "tandem._benchplot", str(out)],
        input=json.dumps(result).encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = subprocess.run(
        [sys.executable, "-m", "tandem._benchplot", str(out)],
        input=b"{}",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert b"not a tandem bench --all --json object" in bad.stderr
