"""The architectures the harness builds, boots and tests: one record each.

Everything that differs between them lives here (the kernel's ARCH and image,
the cross compiler, QEMU, the Debian architecture of a guest root); the
phases ask the record and never test an architecture's name themselves.
"""

import platform
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BadInput, MissingTool
from harness.tools import SETUP_TARGET, require


@dataclass(frozen=True)
class Arch:
    name: str                 # what --arch takes: the kernel's and Debian's name
    kernel_arch: str          # make ARCH=
    machine: str              # uname -m in the guest
    debian: str               # the Debian architecture of its packages
    image: str                # the bootable image, relative to the build directory
    image_target: str         # the make target that builds it
    cross_prefix: str         # CROSS_COMPILE= on a host of another architecture
    qemu: str                 # the QEMU system emulator vng runs (its package: tools.PACKAGE_OF)
    qemu_machine: str         # what the guest runs on, for the manifest
    # Under TCG the guest is told the host's TSC rate (qemu.tcg_clock_args).
    tsc_hint: bool = False
    # A QEMU CPU model instead of vng's default for a foreign guest.
    qemu_cpu: str | None = None
    # The cross compiler's static libc (its own package): the guest programs
    # are static, and without it every one fails to link.
    cross_libc: str = ""
    cross_libc_package: str = ""

    @property
    def native(self) -> bool:
        """Whether the host runs this architecture: its own compiler, its own
        root filesystem for the guest, and KVM if the host has it."""
        return platform.machine() == self.machine

    @property
    def prefix(self) -> str:
        return "" if self.native else self.cross_prefix

    @property
    def gcc(self) -> str:
        return f"{self.prefix}gcc"

    def require_compiler(self) -> None:
        """MissingTool unless this architecture's guest programs can be built."""
        require(self.gcc)
        if not self.native and self.cross_libc and not Path(self.cross_libc).exists():
            raise MissingTool(f"{self.cross_libc} not found; install {self.cross_libc_package} "
                              f"or run 'make {SETUP_TARGET.get(self.gcc, 'setup')}'")

    @property
    def fragment(self) -> str:
        """kernel-config/<name>.config: what this architecture needs to boot."""
        return self.name


X86_64 = Arch("x86_64", "x86", "x86_64", "amd64", "arch/x86/boot/bzImage", "bzImage",
              "x86_64-linux-gnu-", "qemu-system-x86_64",
              "q35 -cpu max under TCG, pc -cpu host under KVM", tsc_hint=True)
# vng starts a foreign arm64 guest as -M virt -cpu cortex-a57 under TCG. The
# A57 (ARMv8.0) has no hardware access flag: every first access to an old PTE
# (all of a fork child's) takes a fault, which the RWP tests that count
# faults cannot tell from a spurious one. The A76 (ARMv8.2) updates the access
# and dirty bits in hardware (FEAT_HAFDBS), as x86 does.
ARM64 = Arch("arm64", "arm64", "aarch64", "arm64", "arch/arm64/boot/Image", "Image",
             "aarch64-linux-gnu-", "qemu-system-aarch64", "virt, cortex-a76",
             qemu_cpu="cortex-a76",
             cross_libc="/usr/aarch64-linux-gnu/lib/libc.a",
             cross_libc_package="libc6-dev-arm64-cross")

ARCHES = {a.name: a for a in (X86_64, ARM64)}
DEFAULT = X86_64.name


def get(name: str) -> Arch:
    try:
        return ARCHES[name]
    except KeyError:
        raise BadInput(f"--arch must be one of {', '.join(ARCHES)}, got '{name}'") from None
