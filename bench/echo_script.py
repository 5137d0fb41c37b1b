"""One-shot echo through the tandem script helper (stdin payload, stdout result)."""

import tandem


@tandem.script
def main(data: object) -> object:
    return data
