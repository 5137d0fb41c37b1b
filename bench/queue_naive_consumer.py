"""The reference architecture's naive Redis Streams consumer: XREADGROUP COUNT 10, one XACK
per message, one process. The baseline of bench/queue_bench.py.

    python bench/queue_naive_consumer.py REDIS_URL STREAM GROUP
"""

from __future__ import annotations

import json
import sys
import time

import redis


def main(url: str, stream: str, group: str) -> None:
    r = redis.Redis.from_url(url)
    try:
        r.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError:
        pass
    while True:
        resp = r.xreadgroup(group, "naive-0", {stream: ">"}, count=10, block=1000)
        for _stream, entries in resp or []:
            for eid, fields in entries:
                payload = json.loads(fields[b"payload"])
                if fields[b"method"] == b"lat":
                    r.rpush("lat", time.time() - payload["t"])
                r.xack(stream, group, eid)


if __name__ == "__main__":
    main(*sys.argv[1:4])
