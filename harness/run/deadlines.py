"""Per-test deadlines that scale with the guest's measured speed.

The guest's capability probe times a fixed, kernel-heavy calibration
(guest/harness/caps.py: page faults, zeroing and freeing of 64 MiB). REFERENCE_S
is that time on the default kernel under TCG on the 2-core machines the
default deadline was tuned on. A guest that takes longer (a debug kernel,
another architecture under TCG, a loaded host) gets its default and per-test
deadlines multiplied by the ratio; a faster one keeps them. A deadline the user
gave (--test-timeout) is used as given.
"""

# Measured 2026-12: 1.3-1.5 s on the default 7.3.4 kernel under TCG, 2 host cores, idle.
REFERENCE_S = 1.5
MAX_SCALE = 10.0


def scale(capabilities: dict) -> float:
    """The factor for the default deadlines of a guest with these capabilities."""
    measured = capabilities.get("calibration_s")
    if isinstance(measured, bool) or not isinstance(measured, (int, float)) or measured <= 0:
        return 1.0
    return round(min(MAX_SCALE, max(1.0, measured / REFERENCE_S)), 2)
