"""Internals of :mod:`tandem.plugin`: handshake, TLS, stdio capture and the gRPC services."""
