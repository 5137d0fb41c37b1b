"""One-shot echo without tandem: the bare spawn baseline (json in, json out)."""

import json
import sys

sys.stdout.write(json.dumps(json.loads(sys.stdin.read())))
