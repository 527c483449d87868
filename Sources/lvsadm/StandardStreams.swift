// Glibc declares `stdout` and `stderr` as mutable C globals (`extern FILE *stdout;`), which
// Swift 6 will not read without an annotation: this file alone imports Glibc with
// @preconcurrency, to read each of them once.
@preconcurrency import Glibc

/// lvsadm's standard output. Safe to share: lvsadm never assigns the C global it was read from,
/// so the pointer is constant for the life of the process, and stdio locks the FILE itself.
nonisolated(unsafe) let standardOutput: UnsafeMutablePointer<FILE> = stdout

/// lvsadm's standard error. Safe to share for the same reasons as `standardOutput`.
nonisolated(unsafe) let standardError: UnsafeMutablePointer<FILE> = stderr
