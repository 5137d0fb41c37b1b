from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PredictRequest(_message.Message):
    __slots__ = ("model_name", "input_data", "parameters")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    INPUT_DATA_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    input_data: bytes
    parameters: _containers.ScalarMap[str, str]
    def __init__(self, model_name: _Optional[str] = ..., input_data: _Optional[bytes] = ..., parameters: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("success", "output_data", "confidence", "latency_ms", "error")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DATA_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    success: bool
    output_data: bytes
    confidence: float
    latency_ms: int
    error: str
    def __init__(self, success: _Optional[bool] = ..., output_data: _Optional[bytes] = ..., confidence: _Optional[float] = ..., latency_ms: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class BatchPredictRequest(_message.Message):
    __slots__ = ("model_name", "inputs")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    inputs: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, model_name: _Optional[str] = ..., inputs: _Optional[_Iterable[bytes]] = ...) -> None: ...

class BatchPredictResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[PredictResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[PredictResponse, _Mapping]]] = ...) -> None: ...

class PredictChunk(_message.Message):
    __slots__ = ("data", "is_final")
    DATA_FIELD_NUMBER: _ClassVar[int]
    IS_FINAL_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    is_final: bool
    def __init__(self, data: _Optional[bytes] = ..., is_final: _Optional[bool] = ...) -> None: ...
