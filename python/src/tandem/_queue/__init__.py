"""Private parts of the Redis Streams consumer (``tandem.consume``).

``fields`` is the wire (task, reply and dead-letter entries), ``settings`` the options,
``scripts`` the Lua run inside Redis, ``consumer`` the per-process loop, ``lease`` the lease
extension thread, ``supervisor`` the multi-process parent.
"""
