"""--kernel-image without a VM: the request, the user's image, and what the
kernel's own config turns into skips."""

import subprocess
import sys

import pytest

from harness import pipeline
from harness.errors import BadInput, ExitStatus
from harness.fetch import prebuilt, source
from harness.kernel import build, kconfig


def rwp(*args):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                          text=True, timeout=60)


def _image(tmp_path, release=b"7.3.4+deb13-amd64"):
    img = tmp_path / "vmlinuz"
    img.write_bytes(b"\0" * 512 + release + b" (debian-kernel@lists.debian.org) #1 SMP" + b"\0" * 64)
    return img


def test_a_user_image_gives_its_release_and_the_config_beside_it(tmp_path):
    img = _image(tmp_path)
    (tmp_path / "config").write_text("CONFIG_USERFAULTFD=y\n")
    pre = prebuilt.user_image(img)
    assert (pre.release, pre.version, pre.config) == ("7.3.4+deb13-amd64", "7.3.4",
                                                      tmp_path / "config")
    (tmp_path / "junk").write_bytes(b"not a kernel")
    with pytest.raises(BadInput, match="does not look like a kernel image"):
        prebuilt.user_image(tmp_path / "junk")
    with pytest.raises(BadInput, match="holds no modules.order"):
        prebuilt.user_image(img, tmp_path / "nomods")


def test_what_the_kernels_config_lacks_becomes_skips_naming_the_option(tmp_path):
    img = _image(tmp_path)
    config = tmp_path / "config"
    want = kconfig.requested([])
    lines = [f"{n}={v}" for n, v in want.entries.items() if v in ("y", "m") and n != "CONFIG_NUMA"]
    config.write_text("\n".join(lines).replace("CONFIG_ZRAM=y", "CONFIG_ZRAM=m")
                      + "\n# CONFIG_NUMA is not set\n")
    pre = prebuilt.user_image(img)
    src = source.KernelSource(tmp_path, pre.version, pre.origin, pre.identity, True)
    skips = pipeline.config_skips(build.BuildRequest(src, tmp_path, prebuilt=pre))
    reasons = {pat: why for pat, why in skips}
    assert "swap" not in reasons                   # CONFIG_ZRAM=m is there, as a module
    assert reasons["numa"] == f"the kernel's config lacks CONFIG_NUMA ({config})"
    assert "" not in reasons and len(set(reasons.values())) == 1   # only CONFIG_NUMA lacks
    config.write_text("CONFIG_ZRAM=m\n")
    reasons = dict(pipeline.config_skips(build.BuildRequest(src, tmp_path, prebuilt=pre)))
    assert "CONFIG_USERFAULTFD" in reasons[""]     # an every-test option: all tests skip


@pytest.mark.parametrize("args,fragment", [
    (["--kernel-image", "debian", "--patches", "x.patch"], "takes no --patches"),
    (["--kernel-image", "debian", "--coverage"], "takes no"),
    (["--kernel-modules", "/tmp"], "goes with --kernel-image PATH"),
    (["--kernel-image", "/nonexistent/vmlinuz"], "is not a file"),
])
def test_bad_prebuilt_requests_are_one_line_errors(args, fragment, cache_dir):
    res = rwp("run", *args)
    assert res.returncode == ExitStatus.BAD_INPUT, res.stderr
    assert "Traceback" not in res.stderr and fragment in res.stderr
