"""A plugin app whose startup hook fails (python/tests/test_plugin.py)."""

import tandem

app = tandem.App("bad-startup")


@app.on_startup
def load_model() -> None:
    raise FileNotFoundError("model.bin is missing")
