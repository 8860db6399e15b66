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
    status = ExitStatus.INFRA_FAILED


class BadInput(HarnessError):
    status = ExitStatus.BAD_INPUT


class PatchError(HarnessError):
    status = ExitStatus.PATCH_FAILED


class ConfigError(HarnessError):
    status = ExitStatus.CONFIG_FAILED


class BuildError(HarnessError):
    status = ExitStatus.BUILD_FAILED


class InfraError(HarnessError):
    status = ExitStatus.INFRA_FAILED


class MissingTool(HarnessError):
    status = ExitStatus.MISSING_TOOL
