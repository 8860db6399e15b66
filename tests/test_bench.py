"""The bench report's arithmetic and layout, on made-up figures."""

from harness import bench


FIGURES = [
    {"name": "fault_round_trip_median", "method": "rwp", "value": 20.0, "unit": "us"},
    {"name": "fault_round_trip_median", "method": "uffd_wp", "value": 30.0, "unit": "us"},
    {"name": "fault_round_trip_median", "method": "mprotect_sigsegv", "value": 10.0, "unit": "us"},
    {"name": "scan_throughput", "method": "rwp", "value": 4.0, "unit": "GiB/s"},
    {"name": "scan_throughput", "method": "page_idle", "value": None,
     "unavailable": "No such file or directory"},
]


def test_micro_ratios_are_over_rwp():
    ratios = bench.micro_ratios(FIGURES)
    assert ratios["fault_round_trip_median"] == {"uffd_wp": 1.5, "mprotect_sigsegv": 0.5}
    assert ratios["scan_throughput"] == {"page_idle": None}


def test_markdown_has_every_row_and_says_tcg_ratios_only():
    doc = {"rows": {
        "cold": {"seconds": 250.0, "objects": 1100, "baseline_seconds": 1080.0,
                 "baseline_objects": 5000, "ratio": 4.32},
        "rebuild": {"seconds": 30.0},
        "warm": {"seconds": 120.0, "tests": 190, "guest_test_seconds": 90.0,
                 "boot_seconds": 5.0, "ratio": 1.26, "timings": {}},
        "micro": {"accel": "tcg", "figures": FIGURES, "ratios": bench.micro_ratios(FIGURES)},
        "arm64": {"seconds": 500.0, "objects": 814, "boot_seconds": 19.0,
                  "baseline_seconds": 400.0, "baseline_objects": 1276,
                  "baseline_boot_seconds": 9.5, "ratio": 1.25, "boot_ratio": 2.0},
    }}
    text = bench.markdown(doc)
    assert "| cold | 250.0 s, 1100 objects | 1080.0 s, 5000 objects | 4.32x |" in text
    assert "| arm64 cold build | 500.0 s, 814 objects | x86_64: 400.0 s, 1276 objects | 1.25x |" \
        in text
    assert "| arm64 boot | 19.0 s | x86_64: 9.5 s | 2.0x |" in text
    assert "| warm | 120.0 s (190 tests) | 90.0 s guest + 5.0 s boot | 1.26x |" in text
    assert "only the ratios mean anything" in text
    assert "| fault_round_trip_median | uffd_wp | 30.0 | us | 1.5 |" in text
    assert "n/a: No such file or directory" in text
    assert bench.ratios_text(doc) == "cold: 4.32x, warm: 1.26x"


def test_unknown_row_is_bad_input(capsys):
    assert bench.main(["--rows", "nosuch"]) == 2
    assert "unknown bench rows" in capsys.readouterr().err


def test_an_unmeasured_baseline_is_said_not_hidden():
    doc = {"rows": {"overhead": {"tests": 111, "harness_seconds": 64.8, "harness_per_test": 0.584,
                                 "unmeasured": "bare vng run did not end within 600s"}}}
    text = bench.markdown(doc)
    assert "| overhead | 0.584 s/test | not measured: bare vng run did not end within 600s |" \
        in text
    assert bench.ratios_text(doc) == ""


def test_the_debug_row_stands_beside_the_default_kernel():
    doc = {"rows": {"debug": {
        "build_seconds": 1200.0, "objects": 1300, "default_build_seconds": 450.0,
        "build_ratio": 2.67, "suite_seconds": 300.0, "check_seconds": 330.0,
        "default_suite_seconds": 100.0, "suite_ratio": 3.0, "deadline_scale": 2.5,
        "calibration_s": 3.7, "counts": {"pass": 390, "fail": 0, "error": 0, "skip": 3,
                                         "xfail": 17}}}}
    text = bench.markdown(doc)
    assert ("| debug | build 1200.0 s (1300 objects); suite 300.0 s, 390 pass, 0 fail, 0 error, "
            "17 xfail, 3 skip; deadlines x2.5 | default kernel: build 450.0 s, suite 100.0 s | "
            "build 2.67x, suite 3.0x |") in text
    assert bench.ratios_text(doc) == "debug build: 2.67x, debug suite: 3.0x"


def test_the_coverage_and_mutate_rows_stand_beside_their_baselines():
    doc = {"rows": {
        "coverage": {"seconds": 130.0, "build_seconds": 54.0, "tests_seconds": 96.0,
                     "coverage_seconds": 4.8, "default_tests_seconds": 80.0, "tests_ratio": 1.2,
                     "check_ratio": 1.4, "rwp_lines": "195/219", "rwp_percent": 89.0},
        "mutate": {"seconds": 40.0, "control_seconds": 13.0, "tests": 3,
                   "per_mutant": {"bench-killed": {"verdict": "killed", "seconds": 14.0},
                                  "bench-equivalent": {"verdict": "survived", "seconds": 14.0}},
                   "seconds_per_mutant": 14.0, "ratio_to_control": 1.08}}}
    text = bench.markdown(doc)
    assert ("| coverage | build 54.0 s; suite 96.0 s + coverage phase 4.8 s; RWP lines 195/219 "
            "| warm check: suite 80.0 s | suite 1.2x, check 1.4x |") in text
    assert ("| mutate | 14.0 s per mutant (3 tests): bench-killed killed 14.0 s; bench-equivalent "
            "survived 14.0 s | control 13.0 s | 1.08x |") in text
    assert bench.ratios_text(doc) == "coverage suite: 1.2x, mutant/control: 1.08x"
