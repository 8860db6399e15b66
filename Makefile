# rwp-harness: `make check` runs the RWP suite on a freshly built kernel,
# `make test` runs the harness's own tests. Both set everything up first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HARNESS := $(BIN)/rwp-harness
ARGS ?=

# What the harness calls on the host. kmod: virtme-ng runs depmod;
# rsync: headers_install; busybox: virtme-ng's initramfs when it needs one;
# lcov: genhtml, the HTML of --coverage; file: virtme-ng reads a kernel
# image's version and the linking of its init with it.
DEB_PACKAGES := qemu-system-x86 gcc libc6-dev make flex bison bc libelf-dev libssl-dev \
	cpio rsync kmod ccache git xz-utils busybox-static python3-venv lcov file

# An arm64 guest: the cross compiler (its static libc too), QEMU's arm
# emulators. Not in setup: only a run with --arch arm64 (and make test's
# arm64 end-to-end test) needs them.
ARM64_DEB_PACKAGES := gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-system-arm
# make check ARGS="--arch arm64" sets up arm64 first.
ARCH_SETUP := $(if $(findstring arm64,$(ARGS)),setup-arm64)

.PHONY: setup setup-arm64 debs kernel check test bench clean distclean

setup: debs $(VENV)/.installed

setup-arm64: setup
	@$(MAKE) --no-print-directory debs DEB_PACKAGES="$(ARM64_DEB_PACKAGES)"

debs:
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,coverage]'
	touch $@

kernel: setup $(ARCH_SETUP)
	$(HARNESS) build $(ARGS)

check: setup $(ARCH_SETUP)
	$(HARNESS) check $(ARGS)

# The tests include one end-to-end run on an arm64 kernel.
test: setup setup-arm64
	$(BIN)/pytest -ra $(ARGS)

# Figures, not pass/fail: cold and warm loops beside their baselines, and the
# RWP micro-benchmarks. The virtme-ng baseline build alone takes ~18 min on
# 2 cores; ARGS=--skip-baseline leaves it out.
bench: setup setup-arm64 $(VENV)/.bench-installed
	$(BIN)/python -m harness.bench $(ARGS)

$(VENV)/.bench-installed: pyproject.toml
	$(BIN)/pip install -q -e '.[test,coverage,bench]'
	touch $@

clean:
	rm -rf rwp-results .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) *.egg-info
