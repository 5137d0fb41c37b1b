"""The public surface is exactly __all__, and importing tandem stays standard-library only."""

from __future__ import annotations

import subprocess
import sys

import tandem


def test_public_surface_is_all() -> None:
    public = {n for n in dir(tandem) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(tandem, n)).__name__ == "module"}
    assert public - modules == set(tandem.__all__)
    for name in tandem.__all__:
        assert getattr(tandem, name).__module__ == "tandem", name


def test_import_pulls_in_nothing_heavy() -> None:
    code = (
        "import sys, tandem; "
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('msgpack', 'grpc', 'redis', 'prometheus_client')]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
