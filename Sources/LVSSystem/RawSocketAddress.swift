import Glibc

/// A socket address for bind(2), connect(2) and sendto(2), built from Swift values (the C
/// structs; NIO's `SocketAddress` is another type): the one place that fills `sockaddr_un`,
/// `sockaddr_in` and `sockaddr_in6` and rebinds them to `sockaddr`.
public enum RawSocketAddress: Sendable {
    case unix(sockaddr_un)
    case ipv4(sockaddr_in)
    case ipv6(sockaddr_in6)

    /// AF_UNIX at `path`; nil when the path (with its NUL) does not fit in `sun_path`.
    public static func unix(path: String) -> RawSocketAddress? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return .unix(address)
    }

    /// AF_INET: `address` and `port` in host byte order.
    public static func ipv4(address: UInt32, port: UInt16) -> RawSocketAddress {
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = port.bigEndian
        sa.sin_addr.s_addr = address.bigEndian
        return .ipv4(sa)
    }

    /// AF_INET6: `address` (16 bytes, network order) and `port` in host byte order.
    public static func ipv6(address: in6_addr, port: UInt16) -> RawSocketAddress {
        var sa = sockaddr_in6()
        sa.sin6_family = sa_family_t(AF_INET6)
        sa.sin6_port = port.bigEndian
        sa.sin6_addr = address
        return .ipv6(sa)
    }

    /// The address family (AF_UNIX, AF_INET, AF_INET6), for socket(2).
    public var family: Int32 {
        switch self {
        case .unix: AF_UNIX
        case .ipv4: AF_INET
        case .ipv6: AF_INET6
        }
    }

    /// Calls `body` with the address as a `sockaddr` pointer and its length.
    public func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) rethrows -> R {
        switch self {
        case .unix(var sa): return try Self.rebound(&sa, body)
        case .ipv4(var sa): return try Self.rebound(&sa, body)
        case .ipv6(var sa): return try Self.rebound(&sa, body)
        }
    }

    private static func rebound<A, R>(_ sa: inout A, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) rethrows -> R {
        try withUnsafePointer(to: &sa) {
            try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, socklen_t(MemoryLayout<A>.size)) }
        }
    }
}

/// Socket setup through `syscall`: each throws a `SystemError` naming the call (and the option).
public enum SocketSetup {
    /// socket(2) with SOCK_CLOEXEC added to `type`.
    public static func open(family: Int32, type: Int32, protocol proto: Int32 = 0, name: @autoclosure () -> String = "socket") throws -> Int32 {
        try syscall(name()) { Glibc.socket(family, type | Int32(SOCK_CLOEXEC.rawValue), proto) }
    }

    /// bind(2) to `address`.
    public static func bind(_ fd: Int32, to address: RawSocketAddress) throws {
        try syscall("bind") { address.withSockaddr { Glibc.bind(fd, $0, $1) } }
    }

    /// connect(2) to `address`.
    public static func connect(_ fd: Int32, to address: RawSocketAddress) throws {
        try syscall("connect") { address.withSockaddr { Glibc.connect(fd, $0, $1) } }
    }

    /// listen(2) with `backlog`.
    public static func listen(_ fd: Int32, backlog: Int32) throws {
        try syscall("listen") { Glibc.listen(fd, backlog) }
    }

    /// setsockopt(2) of `value` (an Int32, a struct such as `ip_mreqn` or `timeval`), named
    /// "setsockopt(NAME)" in the error.
    public static func setOption<T: BitwiseCopyable>(_ fd: Int32, _ level: Int32, _ option: Int32, _ value: T, name: @autoclosure () -> String) throws {
        try syscall("setsockopt(\(name()))") {
            withUnsafeBytes(of: value) { setsockopt(fd, level, option, $0.baseAddress, socklen_t($0.count)) }
        }
    }

    /// setsockopt(2) of a NUL-terminated string (SO_BINDTODEVICE).
    public static func setOption(_ fd: Int32, _ level: Int32, _ option: Int32, string: String, name: @autoclosure () -> String) throws {
        try syscall("setsockopt(\(name()))") {
            string.withCString { setsockopt(fd, level, option, $0, socklen_t(strlen($0) + 1)) }
        }
    }
}
