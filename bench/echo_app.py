"""The app the pool benchmark serves: one echo handler."""

import tandem

app = tandem.App("bench")


@app.handler("echo")
def echo(payload: object) -> object:
    return payload
