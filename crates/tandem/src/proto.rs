//! Generated gRPC contracts from `proto/` (prost + tonic).
#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

/// The generic call service (`tandem.v1.Call`).
pub mod call {
    tonic::include_proto!("tandem.v1");
}

/// The `adapter.ExternalAdapter` contract.
pub mod adapter {
    tonic::include_proto!("adapter");
}

/// The `inference.InferenceService` contract.
pub mod inference {
    tonic::include_proto!("inference");
}

/// go-plugin's internal services (`plugin.GRPCController`, `GRPCStdio`, `GRPCBroker`).
pub mod goplugin {
    tonic::include_proto!("plugin");
}
