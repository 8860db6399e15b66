"""Kernel coverage of a run (--coverage): which lines of the RWP code the suite
executed, and of a patch series' changes. A layer beside report/: it reads a
build directory, the guest's gcov counters and the source, never a front end."""
