"""Failure kinds and the exit status each one maps to.

Every failure the harness can diagnose is raised as a HarnessError subclass;
the CLI prints its message on one line and exits with its status, so a CI job
or a script can tell a kernel regression from a broken set-up.
"""

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    TESTS_FAILED = 1
    BAD_INPUT = 2
    PATCH_FAILED = 3
    CONFIG_FAILED = 4
    BUILD_FAILED = 5
    INFRA_FAILED = 6
    MISSING_TOOL = 7
    BISECT_INCONCLUSIVE = 8     # skipped commits hide the first bad one
    INTERNAL_ERROR = 9          # a harness bug: the traceback is in a log file
    INTERRUPTED = 130


class HarnessError(Exception):
    """A failure the harness diagnosed; its class says which status it exits with."""
    status = ExitStatus.INFRA_FAILED


def _kind(name: str, status: ExitStatus, doc: str) -> type[HarnessError]:
    return type(name, (HarnessError,), {"status": status, "__doc__": doc, "__module__": __name__})


# The failure kinds: each its own exit status.
BadInput = _kind("BadInput", ExitStatus.BAD_INPUT, "What the user gave cannot be used.")
PatchError = _kind("PatchError", ExitStatus.PATCH_FAILED, "A patch of the series does not apply.")
ConfigError = _kind("ConfigError", ExitStatus.CONFIG_FAILED, "The .config lost a requested option.")
BuildError = _kind("BuildError", ExitStatus.BUILD_FAILED, "The kernel or a guest program fails.")
InfraError = _kind("InfraError", ExitStatus.INFRA_FAILED, "The host failed: apt, QEMU, the VM.")
MissingTool = _kind("MissingTool", ExitStatus.MISSING_TOOL, "A host program is not installed.")
