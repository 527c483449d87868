// Intentionally empty: CLVSCPU is header-only (see include/clvs_cpu.h); SwiftPM needs one source.
