"""Versions of the host tools a run depended on, for the run's manifest."""

import platform
from importlib import metadata

from harness.arch import X86_64, Arch
from harness.tools import capture


def _first_line(argv: list[str]) -> str:
    try:
        res = capture(argv)
    except OSError:
        return "not found"
    return (res.stdout.strip().splitlines() or ["?"])[0]


def describe(arch: Arch = X86_64) -> dict:
    try:
        vng = metadata.version("virtme-ng")
    except metadata.PackageNotFoundError:
        vng = "not installed"
    return {
        "kernel": platform.release(),
        "python": platform.python_version(),
        "compiler": _first_line([arch.gcc, "--version"]),
        "qemu": _first_line([arch.qemu, "--version"]),
        "virtme_ng": vng,
    }
