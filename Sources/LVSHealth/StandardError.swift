// Glibc declares `stderr` as a mutable C global (`extern FILE *stderr;`), which Swift 6 will not
// read without an annotation: this file alone imports Glibc with @preconcurrency, to read it once.
@preconcurrency import Glibc

/// The process's standard error, for `HealthMonitor.stderrLog`. Safe to share: nothing in lvsd
/// assigns the C global it was read from, so the pointer is constant for the life of the
/// process, and stdio locks the FILE itself.
nonisolated(unsafe) let standardError: UnsafeMutablePointer<FILE> = stderr
