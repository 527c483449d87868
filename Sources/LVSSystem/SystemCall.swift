import Glibc

/// A failed system call: which call (with what it was called on, e.g. "setsockopt(SO_RCVBUF)")
/// and the errno it set. Thrown by `syscall`; callers add their own context around it.
public struct SystemError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The call that failed, as the caller named it.
    public let call: String
    /// The errno value the call reported.
    public let errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    /// strerror(3)'s text for `errno`.
    public var message: String { String(cString: strerror(errno)) }

    /// "call: message (errno N)".
    public var description: String { "\(call): \(message) (errno \(errno))" }
}

// The wrappers read errno right after the call returns, before anything else runs that could
// change it (the name is an autoclosure: it is built only on failure, after errno was read).
// EINTR means the call did nothing and may simply be made again.

/// Runs the system call `body` (which returns -1 and sets errno on failure, any other value on
/// success), again while it fails with EINTR, and returns its result; other failures throw a
/// `SystemError` naming `name`.
@inlinable @discardableResult
public func syscall<T: FixedWidthInteger & SignedInteger>(_ name: @autoclosure () -> String, _ body: () throws -> T) throws -> T {
    while true {
        let result = try body()
        if result != -1 { return result }
        let error = Glibc.errno
        if error == EINTR { continue }
        throw SystemError(call: name(), errno: error)
    }
}

/// `syscall` for C helpers that return 0 or more on success and -errno on failure (libbpf and
/// the CLVSXDP functions); errno itself is not read.
@inlinable @discardableResult
public func syscallNegatedErrno<T: FixedWidthInteger & SignedInteger>(_ name: @autoclosure () -> String, _ body: () throws -> T) throws -> T {
    while true {
        let result = try body()
        if result >= 0 { return result }
        if result == -T(EINTR) { continue }
        throw SystemError(call: name(), errno: Int32(truncatingIfNeeded: -result))
    }
}

/// `syscall` for mmap(2): MAP_FAILED (or nil) is the failure.
@inlinable
public func syscallMapping(_ name: @autoclosure () -> String, _ body: () throws -> UnsafeMutableRawPointer?) throws -> UnsafeMutableRawPointer {
    while true {
        let result = try body()
        if let result, result != MAP_FAILED { return result }
        let error = Glibc.errno
        if error == EINTR { continue }
        throw SystemError(call: name(), errno: error)
    }
}
