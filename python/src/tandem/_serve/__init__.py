"""Internals of ``tandem.serve``: supervisor (parent), worker (one gRPC server per process),
the services (generic call, inference, health) and the dynamic batcher."""
