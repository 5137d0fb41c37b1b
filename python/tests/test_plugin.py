"""``python -m tandem plugin`` run as a subprocess with the environment a go-plugin host sets.

The real Go host tests live in ``interop/go/hosttest``; these check the same behaviour from
Python, plus what a Go host cannot observe (fds, signals, parent death).
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from plugin_support import APPS, host_env, pid_gone, plugin, read_line, spawn, wait_exit, wait_until

from tandem._plugin import tls
from tandem._plugin.handshake import NOT_A_PLUGIN_MESSAGE
from tandem._proto import (
    call_pb2,
    call_pb2_grpc,
    grpc_broker_pb2,
    grpc_broker_pb2_grpc,
    grpc_controller_pb2,
    grpc_controller_pb2_grpc,
    grpc_stdio_pb2_grpc,
)

pytestmark = pytest.mark.timeout(60)


def invoke(channel: grpc.Channel, method: str, payload: bytes, **kw: object) -> call_pb2.CallReply:
    stub = call_pb2_grpc.CallStub(channel)
    req = call_pb2.CallRequest(method=method, payload=payload, codec="json", **kw)  # type: ignore[arg-type]
    return stub.Invoke(req, timeout=10)


def test_handshake_line_is_the_only_stdout_even_with_import_time_prints() -> None:
    with plugin("noisy_app:app") as p:
        assert re.fullmatch(r"1\|1\|unix\|/[^|]+/plugin[^|/]+\|grpc\|\n", p.line), p.line
        assert os.path.exists(p.fields[3])
        # shut down, then everything the process ever wrote to stdout is the line
        with grpc.insecure_channel(p.target) as ch:
            grpc_controller_pb2_grpc.GRPCControllerStub(ch).Shutdown(
                grpc_controller_pb2.Empty(), timeout=5
            )
        assert wait_exit(p.proc) == 0
        assert p.proc.stdout is not None and p.proc.stdout.read() == b""
        assert p.proc.stderr is not None
        assert b"noise printed at import time" in p.proc.stderr.read()


def test_missing_or_wrong_cookie_prints_go_plugin_message_and_exits_1() -> None:
    for cookie in (None, "wrong"):
        env = host_env()
        env.pop("TANDEM_PLUGIN")
        if cookie:
            env["TANDEM_PLUGIN"] = cookie
        proc = spawn("noisy_app:app", env=env)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 1
        assert out == b""
        assert err.decode() == NOT_A_PLUGIN_MESSAGE


def test_custom_cookie_from_the_command_line() -> None:
    env = host_env(MY_COOKIE="yes")
    with plugin(
        "noisy_app:app", "--cookie-key", "MY_COOKIE", "--cookie-value", "yes", env=env
    ) as p:
        assert p.fields[:2] == ["1", "1"]


def test_health_serving_and_invoke_carries_deadline_and_trace() -> None:
    with plugin("noisy_app:app") as p, grpc.insecure_channel(p.target) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for service in ("plugin", ""):
            resp = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING
        reply = invoke(
            ch,
            "echo",
            b'{"a": 1}',
            traceparent="00-abc-def-01",
            metadata={"tenant": "t1"},
            idempotency_key="k-1",
        )
        got = json.loads(reply.ok.data)
        assert got["echo"] == {"a": 1}
        assert 0 < got["remaining"] <= 11  # grpc rounds the deadline up
        assert got["traceparent"] == "00-abc-def-01"
        assert got["metadata"] == {"tenant": "t1"}
        assert got["idempotency_key"] == "k-1"
        # traceparent as gRPC metadata when the field is empty
        stub = call_pb2_grpc.CallStub(ch)
        reply = stub.Invoke(
            call_pb2.CallRequest(method="echo", payload=b"1", codec="json"),
            metadata=(("traceparent", "00-from-metadata-01"),),
            timeout=10,
        )
        assert json.loads(reply.ok.data)["traceparent"] == "00-from-metadata-01"


def test_invoke_maps_errors_to_call_error() -> None:
    with plugin("noisy_app:app") as p, grpc.insecure_channel(p.target) as ch:
        err = invoke(ch, "boom", b'"k"').error
        assert (err.kind, err.type) == ("remote", "KeyError")
        assert "raise KeyError" in err.traceback
        err = invoke(ch, "missing", b"{}").error
        assert err.kind == "bad_request" and "missing" in err.message and "echo" in err.message
        err = invoke(ch, "echo", b"{not json").error
        assert err.kind == "bad_request" and "decode" in err.message


def test_handler_past_the_deadline_answers_timeout() -> None:
    with plugin("noisy_app:app") as p, grpc.insecure_channel(p.target) as ch:
        stub = call_pb2_grpc.CallStub(ch)
        future = stub.Invoke.future(
            call_pb2.CallRequest(method="slow", payload=b"5", codec="json"), timeout=1.0
        )
        # the plugin answers a typed timeout at the deadline; whichever side's clock fires
        # first decides whether the client sees that answer or its own DEADLINE_EXCEEDED
        try:
            err = future.result(timeout=10).error
            assert err.kind == "timeout" and "slow" in err.message and "deadline" in err.message
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # the plugin is still healthy and answers the next call
        assert json.loads(invoke(ch, "echo", b"1").ok.data)["echo"] == 1


def test_stdio_streams_prints_after_the_handshake() -> None:
    with plugin("noisy_app:app") as p, grpc.insecure_channel(p.target) as ch:
        stream = grpc_stdio_pb2_grpc.GRPCStdioStub(ch).StreamStdio(empty_pb2.Empty(), timeout=20)
        invoke(ch, "echo", b'"hello"')
        seen = {1: b"", 2: b""}
        for chunk in stream:
            seen[chunk.channel] += chunk.data
            if b"handler stdout hello\n" in seen[1] and b"handler stderr hello\n" in seen[2]:
                break
        stream.cancel()
        assert b"handler stdout hello\n" in seen[1]
        assert b"handler stderr hello\n" in seen[2]


def test_shutdown_exits_zero_and_removes_the_socket() -> None:
    with plugin("noisy_app:app") as p:
        path = p.fields[3]
        with grpc.insecure_channel(p.target) as ch:
            grpc_controller_pb2_grpc.GRPCControllerStub(ch).Shutdown(
                grpc_controller_pb2.Empty(), timeout=5
            )
        assert wait_exit(p.proc) == 0
        assert not os.path.exists(path)


def test_sigint_is_ignored_and_sigterm_exits_cleanly() -> None:
    with plugin("noisy_app:app") as p:
        path = p.fields[3]
        p.proc.send_signal(signal.SIGINT)
        with grpc.insecure_channel(p.target) as ch:
            # still serving after SIGINT
            resp = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service="plugin"), timeout=5
            )
            assert resp.status == health_pb2.HealthCheckResponse.SERVING
        assert p.proc.poll() is None
        p.proc.send_signal(signal.SIGTERM)
        assert wait_exit(p.proc) == 0
        assert not os.path.exists(path)


def test_plugin_exits_when_its_host_dies(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    host = (
        "import subprocess, sys\n"
        "p = subprocess.Popen(sys.argv[2:])\n"
        "open(sys.argv[1], 'w').write(str(p.pid))\n"
        "p.wait()\n"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            host,
            str(pidfile),
            sys.executable,
            "-m",
            "tandem",
            "plugin",
            "noisy_app:app",
        ],
        env=host_env(),
        cwd=APPS,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        read_line(proc)
        pid = int(pidfile.read_text())
        proc.kill()  # the host dies without calling Shutdown
        proc.wait()
        wait_until(lambda: pid_gone(pid), 10, f"plugin pid {pid} to exit after its host died")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def test_version_negotiation_picks_the_highest_common() -> None:
    env = host_env(PLUGIN_PROTOCOL_VERSIONS="1,x,3,2")
    with plugin("noisy_app:app", "--versions", "2,3,4", env=env) as p:
        assert p.fields[1] == "3"
    env = host_env()
    env.pop("PLUGIN_PROTOCOL_VERSIONS")
    with plugin("noisy_app:app", "--versions", "2,5", env=env) as p:
        assert p.fields[1] == "5"


def test_no_common_version_exits_1_with_an_hclog_error() -> None:
    proc = spawn("noisy_app:app", "--versions", "1,2", env=host_env(PLUGIN_PROTOCOL_VERSIONS="3,4"))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert out == b""
    records = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    errors = [r for r in records if r["@level"] == "error"]
    assert errors and "no common plugin protocol version" in errors[0]["@message"]
    assert "[3, 4]" in errors[0]["@message"] and "[1, 2]" in errors[0]["@message"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", errors[0]["@timestamp"])


def test_multiplex_asked_adds_false_as_seventh_field() -> None:
    with plugin("noisy_app:app", env=host_env(PLUGIN_MULTIPLEX_GRPC="true")) as p:
        assert p.fields[4:] == ["grpc", "", "false"]


def test_unix_socket_dir_and_group(tmp_path: Path) -> None:
    env = host_env(PLUGIN_UNIX_SOCKET_DIR=str(tmp_path), PLUGIN_UNIX_SOCKET_GROUP=str(os.getgid()))
    with plugin("noisy_app:app", env=env) as p:
        path = Path(p.fields[3])
        assert path.parent == tmp_path and path.name.startswith("plugin")
        assert path.stat().st_mode & 0o777 == 0o660
        assert path.stat().st_gid == os.getgid()


def test_unknown_socket_group_fails_clearly() -> None:
    proc = spawn("noisy_app:app", env=host_env(PLUGIN_UNIX_SOCKET_GROUP="no-such-group-xyz"))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and out == b""
    assert b"no-such-group-xyz" in err and b"PLUGIN_UNIX_SOCKET_GROUP" in err


def test_tcp_within_the_port_range() -> None:
    env = host_env(PLUGIN_MIN_PORT="20000", PLUGIN_MAX_PORT="25000")
    with plugin("noisy_app:app", "--network", "tcp", env=env) as p:
        assert p.fields[2] == "tcp"
        host, port = p.fields[3].rsplit(":", 1)
        assert host == "127.0.0.1" and 20000 <= int(port) <= 25000
        with grpc.insecure_channel(p.target) as ch:
            assert json.loads(invoke(ch, "echo", b"2").ok.data)["echo"] == 2


def test_broker_stream_is_held_and_knocks_are_refused() -> None:
    with plugin("noisy_app:app") as p, grpc.insecure_channel(p.target) as ch:
        knock = grpc_broker_pb2.ConnInfo(
            service_id=7, knock=grpc_broker_pb2.ConnInfo.Knock(knock=True)
        )
        replies = grpc_broker_pb2_grpc.GRPCBrokerStub(ch).StartStream(iter([knock]), timeout=10)
        first = next(replies)
        assert first.service_id == 7 and first.knock.knock and not first.knock.ack
        assert "brokered" in first.knock.error


def _mtls_channel(p_target: str, server_der: bytes, client: tls.Certificate | None) -> grpc.Channel:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    server_pem = x509.load_der_x509_certificate(server_der).public_bytes(serialization.Encoding.PEM)
    creds = grpc.ssl_channel_credentials(
        root_certificates=server_pem,
        private_key=client.key_pem if client else None,
        certificate_chain=client.cert_pem if client else None,
    )
    return grpc.secure_channel(
        p_target, creds, options=[("grpc.ssl_target_name_override", "localhost")]
    )


def test_automtls_presents_a_localhost_cert_and_requires_the_host_cert() -> None:
    from cryptography import x509

    host_cert = tls.generate_certificate()
    stranger = tls.generate_certificate()
    env = host_env(PLUGIN_CLIENT_CERT=host_cert.cert_pem.decode())
    with plugin("noisy_app:app", env=env) as p:
        field = p.fields[5]
        assert field and not field.endswith("=")
        der = base64.b64decode(field + "=" * (-len(field) % 4))
        cert = x509.load_der_x509_certificate(der)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == ["localhost"]
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        with _mtls_channel(p.target, der, host_cert) as ch:
            assert json.loads(invoke(ch, "echo", b"3").ok.data)["echo"] == 3
        for client in (None, stranger):
            with _mtls_channel(p.target, der, client) as ch:
                with pytest.raises(grpc.RpcError) as info:
                    invoke(ch, "echo", b"4")
                assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        # plaintext is refused too
        with grpc.insecure_channel(p.target) as ch, pytest.raises(grpc.RpcError):
            invoke(ch, "echo", b"5")


def test_automtls_relay_carries_large_messages_and_many_calls() -> None:
    # megabytes fill the relay's socket buffers (flow control pauses and resumes reading);
    # many calls on one connection reuse it
    host_cert = tls.generate_certificate()
    env = host_env(PLUGIN_CLIENT_CERT=host_cert.cert_pem.decode())
    big = bytes(range(256)) * (12 * 1024)  # 3 MiB
    with plugin("noisy_app:app", env=env) as p:
        der = base64.b64decode(p.fields[5] + "=" * (-len(p.fields[5]) % 4))
        with _mtls_channel(p.target, der, host_cert) as ch:
            stub = call_pb2_grpc.CallStub(ch)
            for payload in (big, b"small", big):
                req = call_pb2.CallRequest(method="raw_echo", payload=payload, codec="raw")
                reply = stub.Invoke(req, timeout=20)
                assert reply.ok.data == payload and reply.ok.codec == "raw"
            for i in range(50):
                req = call_pb2.CallRequest(method="raw_echo", payload=b"%d" % i, codec="raw")
                assert stub.Invoke(req, timeout=10).ok.data == b"%d" % i


def test_bad_client_cert_pem_fails_before_the_handshake() -> None:
    proc = spawn("noisy_app:app", env=host_env(PLUGIN_CLIENT_CERT="not a pem"))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and out == b""
    assert b"PLUGIN_CLIENT_CERT" in err


def test_bad_app_spec_fails_before_the_handshake() -> None:
    proc = spawn("no_such_module:app")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and out == b""
    assert b"no_such_module" in err


def test_each_start_gets_a_fresh_socket() -> None:
    with plugin("noisy_app:app") as a, plugin("noisy_app:app") as b:
        assert a.fields[3] != b.fields[3]


def test_failing_startup_hook_exits_1_with_an_error_record_and_no_handshake() -> None:
    proc = spawn("bad_startup_app:app")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and out == b""
    records = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    errors = [r for r in records if r["@level"] == "error"]
    assert errors, err
    assert "FileNotFoundError" in errors[0]["@message"]
    assert "model.bin is missing" in errors[0]["@message"]
    assert "Traceback" in errors[0]["error"]


def test_unknown_codec_is_a_bad_request() -> None:
    with plugin("noisy_app:app") as p, grpc.insecure_channel(p.target) as ch:
        stub = call_pb2_grpc.CallStub(ch)
        reply = stub.Invoke(
            call_pb2.CallRequest(method="echo", payload=b"1", codec="xml"), timeout=10
        )
        assert reply.error.kind == "bad_request" and "xml" in reply.error.message


def test_bad_versions_flag_and_inverted_port_range_fail_clearly() -> None:
    proc = spawn("noisy_app:app", "--versions", "one")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and out == b"" and b"--versions must be numbers" in err
    env = host_env(PLUGIN_MIN_PORT="30000", PLUGIN_MAX_PORT="20000")
    proc = spawn("noisy_app:app", "--network", "tcp", env=env)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and out == b""
    assert b"PLUGIN_MIN_PORT (30000) is greater than PLUGIN_MAX_PORT (20000)" in err
