"""The multi-process gRPC server against a real grpcio client: statuses, Call, health, limits."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from serve_helpers import NOT_SERVING, SERVING, Server, invoke, predict, wait_until

from tandem._proto import inference_pb2, inference_pb2_grpc
from tandem.models import RiskSeqModel

pytestmark = pytest.mark.timeout(90)

HIGH = {
    "amount": 950,
    "merchant_category": "crypto",
    "country_mismatch": True,
    "hour": 3,
    "velocity_1h": 6,
    "card_age_days": 2,
}
LOW = {
    "amount": 18,
    "merchant_category": "grocery",
    "card_present": True,
    "hour": 14,
    "card_age_days": 1500,
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path, "--grace", "5", "--drain-delay", "0", "--max-message-bytes", "1048576")
    srv.open_gate("load")
    try:
        srv.wait_serving()
        yield srv
    finally:
        srv.close()


def test_predict_scores_a_payment(server: Server) -> None:
    reply, call = predict(server.channel(), "risk", json.dumps(HIGH).encode())
    out = json.loads(reply.output_data)
    assert reply.success and out["decision"] in ("review", "decline")
    assert reply.confidence == pytest.approx(out["confidence"], abs=1e-6)
    trailers = dict(call.trailing_metadata())
    assert int(trailers["tandem-batch-size"]) >= 1 and "tandem-worker-pid" in trailers


def test_unknown_model_is_not_found(server: Server) -> None:
    with pytest.raises(grpc.RpcError) as err:
        predict(server.channel(), "nope", b"{}")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "'nope' is not served" in err.value.details() and "risk" in err.value.details()


def test_undecodable_input_is_invalid_argument(server: Server) -> None:
    ch = server.channel()
    with pytest.raises(grpc.RpcError) as err:
        predict(ch, "risk", b"\xff not json")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not JSON" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        predict(ch, "risk", json.dumps({"amount": 3, "merchant_category": "casino"}).encode())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'casino' is unknown" in err.value.details() and "grocery" in err.value.details()
    assert ("tandem-error-kind", "bad_request") in err.value.trailing_metadata()


def test_model_failure_is_internal(server: Server) -> None:
    with pytest.raises(grpc.RpcError) as err:
        predict(server.channel(), "broken", b"{}")
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert "weights corrupted" in err.value.details()


def test_full_queue_is_resource_exhausted(server: Server) -> None:
    ch = server.channel()
    with ThreadPoolExecutor(12) as pool:
        # One input computes (blocked on its gate), one waits, the other ten find the queue full.
        calls = [pool.submit(predict, ch, "tiny", str(i).encode(), 30) for i in range(12)]
        wait_until(lambda: sum(c.done() for c in calls) >= 10, 30, "ten calls refused")
        refused = [c.exception() for c in calls if c.done()]
        for exc in refused:
            assert isinstance(exc, grpc.RpcError)
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "queue full (" in exc.details() and "limit 1," in exc.details()
        server.open_gate("tiny")
        outcomes = [c.exception(30) for c in calls]
        # the computing and the waiting input (only one if all came before the first started)
        assert sum(e is None for e in outcomes) in (1, 2)


def test_expired_request_is_dropped_before_compute(server: Server) -> None:
    ch = server.channel()
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(predict, ch, "gated", b'"first"', 20)
        wait_until(
            lambda: json.loads(invoke(ch, "seen", b"null").ok.data) == ["first"],
            10,
            "first input computing",
        )
        with pytest.raises(grpc.RpcError) as err:
            predict(ch, "gated", b'"late"', timeout=0.3)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        server.open_gate("compute")
        assert first.result(20)[0].success
    # The late input was dropped, never computed.
    wait_until(lambda: predict(ch, "gated", b'"after"')[0].success, 10, "gated model free")
    assert json.loads(invoke(ch, "seen", b"null").ok.data) == ["first", "after"]


def test_call_sees_client_deadline_and_trace(server: Server) -> None:
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    reply = invoke(
        server.channel(),
        "echo",
        b'{"x": 1}',
        timeout=5.0,
        metadata=(("traceparent", tp),),
        idempotency_key="k1",
    )
    out = json.loads(reply.ok.data)
    assert reply.ok.codec == "json" and out["payload"] == {"x": 1}
    # The client gave 5 s; the handler sees what is left. gRPC core reads a cached clock, so the
    # server's time_remaining() can run a few ms ahead of the client's (5.0085 s seen in CI).
    assert 2.0 < out["remaining"] <= 5.05
    assert out["traceparent"] == tp
    reply = invoke(server.channel(), "echo", b"{}", traceparent="00-aa-bb-01", metadata=None)
    assert json.loads(reply.ok.data)["traceparent"] == "00-aa-bb-01"


def test_call_remote_error_and_bad_request(server: Server) -> None:
    ch = server.channel()
    err = invoke(ch, "boom", b"{}").error
    assert (err.kind, err.type) == ("remote", "KeyError")
    assert "no such account" in err.message and "Traceback" in err.traceback
    err = invoke(ch, "missing", b"{}").error
    assert err.kind == "bad_request" and "no handler 'missing'" in err.message
    err = invoke(ch, "echo", b"{not json").error
    assert err.kind == "bad_request" and "does not decode" in err.message


def test_oversized_message_is_resource_exhausted(server: Server) -> None:
    big = b'"' + b"x" * (2 * 1024 * 1024) + b'"'
    ch = server.channel(**{"grpc.max_send_message_length": 8 * 1024 * 1024})
    with pytest.raises(grpc.RpcError) as err:
        predict(ch, "risk", big)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in err.value.details()


def test_batch_predict_reports_each_item(server: Server) -> None:
    stub = inference_pb2_grpc.InferenceServiceStub(server.channel())
    inputs = [json.dumps(LOW).encode(), b"oops", json.dumps(HIGH).encode()]
    reply = stub.BatchPredict(
        inference_pb2.BatchPredictRequest(model_name="risk", inputs=inputs), timeout=10
    )
    ok_low, bad, ok_high = reply.results
    assert ok_low.success and ok_high.success and not bad.success
    assert bad.error.startswith("bad_request:") and "not JSON" in bad.error
    assert json.loads(ok_high.output_data)["risk"] > json.loads(ok_low.output_data)["risk"]


def test_risk_mlp_is_served_batched_with_one_blas_thread(server: Server) -> None:
    ch = server.channel()
    inputs = [LOW, HIGH] * 16
    with ThreadPoolExecutor(len(inputs)) as pool:
        replies = list(pool.map(lambda p: predict(ch, "risk_mlp", json.dumps(p).encode()), inputs))
    outs = [json.loads(reply.output_data) for reply, _ in replies]
    assert all(o["model"] == "risk_mlp" for o in outs)
    assert [o["decision"] for o in outs] == ["approve", "decline"] * 16
    sizes = [int(dict(call.trailing_metadata())["tandem-batch-size"]) for _, call in replies]
    assert all(s >= 1 for s in sizes)
    stub = inference_pb2_grpc.InferenceServiceStub(ch)
    batch = stub.BatchPredict(
        inference_pb2.BatchPredictRequest(
            model_name="risk_mlp", inputs=[json.dumps(LOW).encode(), json.dumps(HIGH).encode()]
        ),
        timeout=10,
    )
    assert [json.loads(r.output_data)["risk"] for r in batch.results] == pytest.approx(
        [outs[0]["risk"], outs[1]["risk"]], abs=1e-5
    )
    with pytest.raises(grpc.RpcError) as err:
        predict(ch, "risk_mlp", json.dumps({"amount": -3, "merchant_category": "fuel"}).encode())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "risk_mlp model: payment.amount must be >= 0" in err.value.details()
    env = json.loads(invoke(ch, "blas", b"null").ok.data)
    assert env["numpy"] is True
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        assert env[var] == os.environ.get(var, "1")


def test_risk_seq_scores_payments_with_their_history_batched(server: Server) -> None:
    ch = server.channel()
    values = RiskSeqModel.examples(24)
    with ThreadPoolExecutor(len(values)) as pool:
        replies = list(pool.map(lambda v: predict(ch, "risk_seq", json.dumps(v).encode()), values))
    outs = [json.loads(reply.output_data) for reply, _ in replies]
    assert all(o["model"] == "risk_seq" and 0.0 < o["risk"] < 1.0 for o in outs)
    local = RiskSeqModel()
    local.load()
    expected = local.predict_batch([local.prepare(json.dumps(v).encode(), {}) for v in values])
    assert [o["risk"] for o in outs] == pytest.approx([e["risk"] for e in expected], abs=1e-5)
    listed, _ = predict(ch, "risk_seq", json.dumps(values[:3]).encode())
    assert [o["risk"] for o in json.loads(listed.output_data)] == pytest.approx(
        [o["risk"] for o in outs[:3]], abs=1e-5
    )
    bad = {**values[0], "history": {**values[0]["history"], "minutes_ago": [9, 2]}}
    with pytest.raises(grpc.RpcError) as err:
        predict(ch, "risk_seq", json.dumps(bad).encode())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "risk_seq model: history.minutes_ago has 2 values but" in err.value.details()


def test_stream_predict_yields_contributions_then_total(server: Server) -> None:
    stub = inference_pb2_grpc.InferenceServiceStub(server.channel())
    chunks = list(
        stub.StreamPredict(
            inference_pb2.PredictRequest(model_name="risk", input_data=json.dumps(HIGH).encode()),
            timeout=10,
        )
    )
    *parts, final = [json.loads(c.data) for c in chunks]
    assert [c.is_final for c in chunks] == [False] * len(parts) + [True]
    assert all("contribution" in p for p in parts)
    assert sum(p["contribution"] for p in parts) + final["bias"] == pytest.approx(
        final["logit"], abs=1e-4
    )


def test_gzip_requests_are_accepted(server: Server) -> None:
    stub = inference_pb2_grpc.InferenceServiceStub(server.channel())
    reply = stub.Predict(
        inference_pb2.PredictRequest(model_name="risk", input_data=json.dumps(LOW).encode()),
        timeout=10,
        compression=grpc.Compression.Gzip,
    )
    assert json.loads(reply.output_data)["decision"] == "approve"


def test_health_services_and_reflection(server: Server) -> None:
    ch = server.channel()
    for service in ("", "tandem.v1.Call", "inference.InferenceService"):
        assert server.health(ch, service) == SERVING
    assert server.health(ch, "nope") is None
    stub = reflection_pb2_grpc.ServerReflectionStub(ch)
    reply = next(
        iter(
            stub.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
            )
        )
    )
    names = {s.name for s in reply.list_services_response.service}
    assert {"tandem.v1.Call", "inference.InferenceService", "grpc.health.v1.Health"} <= names


def test_not_serving_while_a_model_loads(tmp_path: Path) -> None:
    srv = Server(tmp_path, "--drain-delay", "0")
    try:
        ch = srv.channel()
        wait_until(lambda: srv.health(ch) is not None, 30, "server answering")
        assert srv.health(ch, "inference.InferenceService") == NOT_SERVING
        with pytest.raises(grpc.RpcError) as err:
            predict(ch, "slow_load", b"1")
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        srv.open_gate("load")
        wait_until(lambda: srv.health(ch) == SERVING, 30, "SERVING after load")
        assert predict(ch, "slow_load", b"1")[0].success
        assert srv.stop() == 0
    finally:
        srv.close()


def test_sigterm_drains_inflight_calls(tmp_path: Path) -> None:
    srv = Server(tmp_path, "--drain-delay", "3", "--grace", "20")
    srv.open_gate("load")
    try:
        srv.wait_serving()
        ch = srv.channel()
        watch = health_pb2_grpc.HealthStub(ch).Watch(
            health_pb2.HealthCheckRequest(service="inference.InferenceService"), timeout=60
        )
        assert next(watch).status == SERVING
        with ThreadPoolExecutor(2) as pool:
            calls = [pool.submit(predict, ch, "gated", f'"{i}"'.encode(), 30) for i in range(2)]
            wait_until(lambda: json.loads(invoke(ch, "seen", b"null").ok.data), 10, "computing")
            srv.proc.send_signal(15)
            wait_until(lambda: srv.health(ch) == NOT_SERVING, 10, "NOT_SERVING while draining")
            # The Watch stream reports the drain and ends, so it does not hold the shutdown.
            assert [r.status for r in watch] == [NOT_SERVING]
            srv.open_gate("compute")
            assert all(c.result(30)[0].success for c in calls)
        assert srv.proc.wait(30) == 0
        assert "draining" in srv.logs()
    finally:
        srv.close()


def test_frequent_client_pings_get_no_goaway(server: Server) -> None:
    # tonic clients ping often (http2_keep_alive_interval, keep_alive_while_idle, BDP pings);
    # a default grpcio server answers that with GOAWAY too_many_pings and the channel drops.
    states: list[grpc.ChannelConnectivity] = []
    ch = server.channel(
        **{
            "grpc.keepalive_time_ms": 200,
            "grpc.keepalive_permit_without_calls": 1,
            "grpc.http2.max_pings_without_data": 0,
        }
    )
    ch.subscribe(states.append, try_to_connect=True)
    assert server.health(ch) == SERVING
    time.sleep(3.0)  # not a readiness wait: the idle period in which the client pings ~15 times
    assert states[-1] == grpc.ChannelConnectivity.READY, states
    assert states.count(grpc.ChannelConnectivity.READY) == 1, states
    ch.unsubscribe(states.append)


def test_sigterm_during_a_stuck_model_load_exits(tmp_path: Path) -> None:
    srv = Server(tmp_path, "--drain-delay", "0", "--grace", "1")
    try:
        ch = srv.channel()
        wait_until(lambda: srv.health(ch) == NOT_SERVING, 30, "server answering, model loading")
        assert srv.stop(timeout=20) == 0  # the load thread never finishes; the worker exits
        assert "killing them" not in srv.logs()
    finally:
        srv.close()


def test_batch_larger_than_the_queue_is_resource_exhausted(server: Server) -> None:
    stub = inference_pb2_grpc.InferenceServiceStub(server.channel())
    with pytest.raises(grpc.RpcError) as err:
        stub.BatchPredict(
            inference_pb2.BatchPredictRequest(model_name="tiny", inputs=[b"1", b"2", b"3"]),
            timeout=10,
        )
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "queue full" in err.value.details() and "3 more asked" in err.value.details()


def test_stream_predict_rejects_bad_input(server: Server) -> None:
    stub = inference_pb2_grpc.InferenceServiceStub(server.channel())
    with pytest.raises(grpc.RpcError) as err:
        list(
            stub.StreamPredict(
                inference_pb2.PredictRequest(model_name="risk", input_data=b'{"amount": 1}'),
                timeout=10,
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "merchant_category" in err.value.details()
