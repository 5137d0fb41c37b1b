"""The naive design the grpc benchmark compares against: one grpcio process, a
``ThreadPoolExecutor(max_workers=10)``, the model called once per request.

    python bench/grpc_naive_server.py --port 50061 [--model risk|risk_mlp|risk_seq]

It serves one bundled model (``--model``, default ``risk``) whatever ``model_name`` a request
names, and leaves the BLAS thread settings to the environment, as a plain server would.
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from tandem._proto import inference_pb2, inference_pb2_grpc
from tandem.models import BUNDLED, Model

log = logging.getLogger("bench.naive")


class Naive(inference_pb2_grpc.InferenceServiceServicer):  # type: ignore[misc]
    def __init__(self, model: Model) -> None:
        self.model = model
        self.model.load()
        self.model.warm()

    def Predict(self, request: Any, context: Any) -> Any:
        started = time.monotonic()
        value = self.model.prepare(request.input_data, request.parameters)
        (output,) = self.model.predict_batch([value])
        data, confidence = self.model.encode(output)
        return inference_pb2.PredictResponse(
            success=True,
            output_data=data,
            confidence=confidence,
            latency_ms=int((time.monotonic() - started) * 1000),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", choices=sorted(BUNDLED), default="risk")
    args = parser.parse_args()
    server = grpc.server(ThreadPoolExecutor(max_workers=10))
    inference_pb2_grpc.add_InferenceServiceServicer_to_server(Naive(BUNDLED[args.model]()), server)
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    signal.signal(signal.SIGTERM, lambda *_: server.stop(1))
    server.wait_for_termination()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
