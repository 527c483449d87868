import Glibc
import LVSSystem

/// Errors of the packet I/O layer; each names what failed so it can be logged as is.
public enum DataPlaneError: Error, CustomStringConvertible, Equatable {
    case noSuchInterface(String)
    case system(call: String, errno: Int32, context: String)
    case invalidConfiguration(String)
    case commandFailed(command: String, status: Int32, output: String)

    public var description: String {
        switch self {
        case .noSuchInterface(let name):
            return "interface '\(name)' does not exist in this network namespace"
        case .system(let call, let err, let context):
            return "\(call) failed for \(context): \(String(cString: strerror(err))) (errno \(err))"
        case .invalidConfiguration(let text):
            return "invalid data-plane configuration: \(text)"
        case .commandFailed(let command, let status, let output):
            let trimmed = output.split(separator: "\n").joined(separator: " | ")
            return "\(command) exited with status \(status): \(trimmed)"
        }
    }

    /// A failed system call (LVSSystem's `syscall`), for `context` ("packet socket on 'eth0'").
    public init(_ error: SystemError, context: String) {
        self = .system(call: error.call, errno: error.errno, context: context)
    }

    /// Runs `body`, turning the `SystemError` of a failed call into `.system` for `context`.
    @discardableResult
    static func context<T>(_ context: @autoclosure () -> String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as SystemError {
            throw DataPlaneError(error, context: context())
        }
    }
}

/// Monotonic clock in nanoseconds (the `now` given to processors).
@inline(__always) public func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}
