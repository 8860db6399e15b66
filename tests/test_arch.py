"""--arch: what differs between x86_64 and arm64, checked without a build or a VM."""

import argparse
import platform
from pathlib import Path

import pytest

from harness import arch, bisect, cli, requests
from harness.errors import BadInput, ExitStatus, InfraError, MissingTool
from harness.fetch import guestroot
from harness.fetch.apt import PrivateApt
from harness.kernel import build, kconfig
from harness.tools import require
from harness.vm import qemu

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64",
                                reason="written for an x86_64 host cross-building arm64")


def test_an_unknown_architecture_is_bad_input():
    with pytest.raises(BadInput, match="--arch must be one of x86_64, arm64"):
        arch.get("sparc")
    with pytest.raises(SystemExit) as e:
        cli.main(["config", "--arch", "sparc"])
    assert e.value.code == ExitStatus.BAD_INPUT


def test_each_architecture_takes_its_own_boot_fragment():
    x86 = kconfig.requested([], arch_fragment="x86_64")
    arm = kconfig.requested([], arch_fragment="arm64")
    assert x86.entries["CONFIG_SERIAL_8250_CONSOLE"] == "y" and "CONFIG_ACPI" in x86.entries
    assert "CONFIG_SERIAL_8250_CONSOLE" not in arm.entries and "CONFIG_ACPI" not in arm.entries
    assert arm.entries["CONFIG_SERIAL_AMBA_PL011_CONSOLE"] == "y"
    # The test fragments are the same for both.
    for name in ("CONFIG_USERFAULTFD_RWP", "CONFIG_LKDTM", "CONFIG_NUMA_EMU", "CONFIG_ZRAM"):
        assert x86.entries[name] == arm.entries[name] == "y"
    assert arm.origin["CONFIG_SERIAL_AMBA_PL011"] == "arm64.config"


def _breq(tmp_path, a):
    from harness.fetch.source import KernelSource
    src = KernelSource(tmp_path, "7.3.4", "debian", "linux-source-7.3 7.3.4-1", immutable=True)
    return build.BuildRequest(src, tmp_path, arch=a)


def test_an_arm64_build_is_cross_compiled_into_its_own_directory(tmp_path, cache_dir,
                                                                  monkeypatch):
    seen = []
    monkeypatch.setattr(build, "run_logged",
                        lambda argv, log, env=None: seen.append([str(a) for a in argv]) or 0)
    monkeypatch.setattr(build.shutil, "which", lambda prog: f"/usr/bin/{prog}")
    arm, x86 = _breq(tmp_path, arch.ARM64), _breq(tmp_path, arch.X86_64)
    build._make(arm, tmp_path, tmp_path / "log", "Image")
    build._make(x86, tmp_path, tmp_path / "log", "bzImage")
    assert "ARCH=arm64" in seen[0] and "CROSS_COMPILE=aarch64-linux-gnu-" in seen[0]
    assert "CC=ccache aarch64-linux-gnu-gcc" in seen[0] and "CC=ccache gcc" in seen[1]
    assert not any(a.startswith(("ARCH=", "CROSS_COMPILE=")) for a in seen[1])
    assert build._outputs(tmp_path, arch.ARM64)[0] == tmp_path / "arch/arm64/boot/Image"


def test_the_architecture_is_part_of_the_build_directory_key(tmp_path, cache_dir, monkeypatch):
    # The same requested config on both: only the architecture tells them apart.
    same = kconfig.requested([])
    monkeypatch.setattr(build.BuildRequest, "requested_config", lambda self: same)
    arm, x86 = _breq(tmp_path, arch.ARM64), _breq(tmp_path, arch.X86_64)
    assert arm.build_dir() != x86.build_dir()
    assert x86.build_dir() == _breq(tmp_path, arch.X86_64).build_dir()


def test_a_missing_cross_libc_is_a_missing_tool(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda prog: f"/usr/bin/{prog}")
    fake = arch.Arch(**{**arch.ARM64.__dict__, "cross_libc": "/nonexistent/libc.a"})
    with pytest.raises(MissingTool, match="libc6-dev-arm64-cross.*'make setup-arm64'"):
        fake.require_compiler()


def test_an_offline_run_never_fetches_a_guest_root(cache_dir):
    from harness import pipeline
    from harness.kernel.build import BuildResult
    bres = BuildResult(Path("b"), Path("b/Image"), Path("h"), Path("c"), Path("l"), "7.3.4",
                       False, arch=arch.ARM64)
    with pytest.raises(BadInput, match="no arm64 guest root in the cache"):
        pipeline.vm_request(requests.RunRequest(offline=True), bres, None)


def test_a_bisection_keeps_one_build_directory_per_architecture(tmp_path):
    assert bisect.build_dir(tmp_path) == tmp_path / ".rwp-build"
    assert bisect.build_dir(tmp_path, arch.ARM64) == tmp_path / ".rwp-build-arm64"


def test_an_arm64_guest_boots_under_tcg_on_its_own_root(tmp_path):
    req = qemu.VMRequest(tmp_path / "Image", arch=arch.ARM64, root=tmp_path / "root",
                         rodirs=((guestroot.PROGRAMS_MOUNT, tmp_path / "staged"),))
    assert qemu.choose_accel(req) == "tcg"      # no KVM probe for a foreign guest
    argv = qemu.vng_argv(req, "tcg")
    i = argv.index("--arch")
    assert argv[i + 1] == "arm64"
    assert argv[argv.index("--root") + 1] == str(tmp_path / "root")
    assert f"--rodir={guestroot.PROGRAMS_MOUNT}={tmp_path / 'staged'}" in argv
    assert "--disable-microvm" not in argv      # an x86-only option of vng
    assert not any(a.startswith("tsc_early_khz=") for a in argv)


def test_kvm_is_refused_for_a_foreign_guest():
    args = argparse.Namespace(arch="arm64", accel="kvm")
    with pytest.raises(BadInput, match="KVM cannot run an arm64 guest"):
        requests.from_args(args)


def test_a_prebuilt_image_is_x86_64_only():
    args = argparse.Namespace(arch="arm64", kernel_image="debian")
    with pytest.raises(BadInput, match="another --arch needs a build"):
        requests.from_args(args)


def test_a_missing_cross_compiler_names_its_make_target(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda prog: None)
    with pytest.raises(MissingTool, match=r"gcc-aarch64-linux-gnu.*'make setup-arm64'"):
        require("aarch64-linux-gnu-gcc")


def test_the_arm64_apt_reads_only_its_own_status_and_arch(tmp_path):
    apt = PrivateApt(tmp_path, suites=("trixie",), arch="arm64", mirror="http://mirror/debian")
    apt.prepare()
    opts = apt.options()
    assert f"Dir::State::status={tmp_path / 'status'}" in opts
    assert "APT::Architecture=arm64" in opts and "APT::Architectures=arm64" in opts
    assert (tmp_path / "status").read_text() == ""
    assert "[arch=arm64" in (tmp_path / "sources.list").read_text()
    host = PrivateApt(tmp_path / "host", mirror="http://mirror/debian")
    assert not any("Architecture" in o or "status" in o for o in host.options())


# A miniature archive: alternatives, a virtual package, and what is left out.
_ARCHIVE = {
    "python3": {"Version": "3.13.5-1", "Depends": "python3.13 (>= 3.13.5), libc6"},
    "python3.13": {"Version": "3.13.5-2", "Pre-Depends": "libc6 (>= 2.38)",
                   "Depends": "mawk | awk, debconf (>= 0.5) | debconf-2.0, tzdata"},
    "libc6": {"Version": "2.41-12", "Depends": "libgcc-s1"},
    "libgcc-s1": {"Version": "14.2.0-19"},
    "original-awk": {"Version": "2012-12-20-9"},
    "bash": {"Version": "5.2.37-2", "Depends": "base-files (>= 2.1.12), debianutils:any"},
    "base-files": {"Version": "13.8"},
    "debianutils": {"Version": "5.23.2", "Depends": "libc6"},
}


def _stanza(name):
    s = _ARCHIVE.get(name)
    return None if s is None else {"Package": name, **s}


def test_the_root_is_the_dependency_closure_of_its_seeds():
    providers = {"awk": ["original-awk"]}
    got = guestroot.resolve(["bash", "python3"], _stanza, lambda n: providers.get(n, []))
    assert got == {"bash": "5.2.37-2", "base-files": "13.8", "debianutils": "5.23.2",
                   "libc6": "2.41-12", "libgcc-s1": "14.2.0-19", "python3": "3.13.5-1",
                   "python3.13": "3.13.5-2", "original-awk": "2012-12-20-9"}
    # mawk is not in the archive: its alternative's provider stood in; debconf
    # and tzdata are left out, as a real install's maintainer scripts need them.
    assert "debconf" not in got and "tzdata" not in got


def test_a_dependency_nobody_provides_is_an_infrastructure_error():
    with pytest.raises(InfraError, match="no package nosuch"):
        guestroot.resolve(["nosuch"], _stanza, lambda n: [])


def test_apt_cache_show_output_is_read_as_one_stanza():
    text = ("Package: bash\nVersion: 5.2.37-2\nDepends: base-files (>= 2.1.12),\n"
            " debianutils (>= 5.6-0.1)\nDescription: GNU shell\n\nPackage: bash\nVersion: 5.1\n")
    stanza = guestroot.parse_stanza(text)
    assert stanza["Version"] == "5.2.37-2"
    assert guestroot.dependencies(stanza) == [["base-files"], ["debianutils"]]
    assert guestroot.parse_stanza("N: Unable to locate package x\n") is None


def _fake_root(root: Path, machine: int = 0xB7) -> Path:
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/sbin").mkdir(parents=True)
    (root / "bin").symlink_to("usr/bin")
    elf = b"\x7fELF" + bytes(14) + machine.to_bytes(2, "little")
    for c in guestroot.COMMANDS:
        (root / "usr/bin" / c).write_bytes(elf)
    return root


def test_a_root_is_checked_for_every_command_and_its_architecture(tmp_path):
    root = _fake_root(tmp_path / "ok")
    (root / "usr/bin/sh").unlink()
    (root / "usr/bin/sh").symlink_to("/bin/bash")      # absolute: inside the root
    guestroot._check(root, arch.ARM64)
    (root / "usr/bin/su").unlink()
    with pytest.raises(InfraError, match="lacks su"):
        guestroot._check(root, arch.ARM64)
    x86 = _fake_root(tmp_path / "x86", machine=0x3E)
    with pytest.raises(InfraError, match="not an aarch64 program"):
        guestroot._check(x86, arch.ARM64)


def test_a_torn_root_is_not_used(tmp_path, cache_dir):
    dest = guestroot.root_dir(arch.ARM64)
    dest.mkdir(parents=True)
    (dest / guestroot.MANIFEST).write_text('{"bash": "5.2"}\n')
    assert guestroot._read(dest, arch.ARM64) is None        # no marker: unfinished
    (dest / guestroot.MARKER).write_text("ok\n")
    assert guestroot._read(dest, arch.ARM64).packages == {"bash": "5.2"}
    (dest / guestroot.MANIFEST).write_text('{"bash": ')
    assert guestroot._read(dest, arch.ARM64) is None


def test_offline_without_a_root_is_bad_input(cache_dir):
    with pytest.raises(BadInput, match="no arm64 guest root in the cache"):
        guestroot.ensure(arch.ARM64, offline=True)
