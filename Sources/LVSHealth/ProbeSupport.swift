import Glibc
import LVSSystem
import Dispatch
import LVSModel
import KeepalivedConfig

/// Everything one check attempt needs, resolved from the checker, its real server and its VS.
public struct ProbeTarget: Sendable, Hashable {
    public var kind: CheckerKind
    public var address: IPAddress
    public var port: UInt16
    public var bindTo: IPAddress?
    public var bindPort: UInt16?
    public var fwmark: UInt32 = 0
    public var connectTimeout: Duration
    /// HTTP_GET: the URL checked by this attempt.
    public var url: KeepalivedURL?
    /// HTTP_GET: the Host header (nil: `ip:port`).
    public var virtualhost: String?
    public var httpProtocol = "1.0"
    /// SSL_GET with `enable_sni`: the TLS server name.
    public var serverName: String?
    /// MISC_CHECK.
    public var command: String?
    public var commandTimeout: Duration = .seconds(60)
    public var dynamic = false
    /// MISC_CHECK: who runs the script (nil: lvsd's own user).
    public var runAs: ScriptIdentity?

    public init(kind: CheckerKind, address: IPAddress, port: UInt16, connectTimeout: Duration = .seconds(5)) {
        self.kind = kind
        self.address = address
        self.port = port
        self.connectTimeout = connectTimeout
    }
}

/// The outcome of one check attempt.
public enum ProbeResult: Sendable, Equatable {
    case success
    /// MISC_CHECK with misc_dynamic: success, and the real server's weight becomes this value.
    case successWithWeight(Int32)
    case failure(String)

    public var isSuccess: Bool {
        if case .failure = self { return false }
        return true
    }
}

/// The real probes: plain sockets (non-blocking connect + poll) and /bin/sh for MISC_CHECK.
/// Each socket attempt runs on its own dispatch thread so a hung server never holds up the
/// cooperative pool or the other checkers; a MISC_CHECK script is awaited (`ScriptRunner`).
public enum HealthProbes {
    public static func run(_ target: ProbeTarget) async -> ProbeResult {
        switch target.kind {
        case .misc: return await misc(target)
        case .unsupported: return .success
        case .tcp, .http, .ssl:
            return await withCheckedContinuation { (cont: CheckedContinuation<ProbeResult, Never>) in
                DispatchQueue.global().async { cont.resume(returning: runBlocking(target)) }
            }
        }
    }

    /// The socket probes (blocking).
    static func runBlocking(_ t: ProbeTarget) -> ProbeResult {
        switch t.kind {
        case .tcp: return tcp(t)
        case .http: return http(t)
        case .ssl: return ssl(t)
        case .misc, .unsupported: return .success
        }
    }

    static func milliseconds(_ d: Duration) -> Int32 {
        let (s, a) = d.components
        let ms = s * 1000 + a / 1_000_000_000_000_000
        return Int32(clamping: max(ms, 1))
    }

    static func errorText(_ e: Int32) -> String { String(cString: strerror(e)) }

    /// The reason a probe gives for a failed call: "call: strerror" (keepalived's wording).
    static func reason(_ error: SystemError) -> String { "\(error.call): \(error.message)" }

    /// Connects within the connect timeout; returns the socket or the reason.
    static func connect(_ t: ProbeTarget) -> (fd: Int32, error: String?) {
        guard t.port != 0 else { return (-1, "no port to connect to (set connect_port)") }
        let v4 = t.address.isIPv4
        let fd: Int32
        do {
            fd = try syscall("socket") {
                socket(v4 ? AF_INET : AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            }
        } catch {
            return (-1, reason(error as! SystemError))
        }
        do {
            if t.fwmark != 0 {
                // As keepalived: a mark that cannot be set (no CAP_NET_ADMIN) is not a probe failure.
                var mark = t.fwmark
                _ = try? syscall("setsockopt(SO_MARK)") { setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, socklen_t(MemoryLayout<UInt32>.size)) }
            }
            if t.bindTo != nil || t.bindPort != nil {
                let local = t.bindTo ?? (v4 ? .ipv4Zero : .zero)
                try syscall("bind") { withSockaddr(local, t.bindPort ?? 0) { bind(fd, $0, $1) } }
            }
            try connectWithin(fd, t)
            return (fd, nil)
        } catch let error as SystemError {
            close(fd)
            return (-1, reason(error))
        } catch {
            close(fd)
            return (-1, "connect: timeout")
        }
    }

    /// The connect timeout ran out.
    struct ConnectTimeout: Error {}

    /// A non-blocking connect, waited for up to the connect timeout. A connect interrupted and
    /// made again reports EALREADY (still under way) or EISCONN (done).
    private static func connectWithin(_ fd: Int32, _ t: ProbeTarget) throws {
        do {
            try syscall("connect") { withSockaddr(t.address, t.port) { Glibc.connect(fd, $0, $1) } }
            return
        } catch let e as SystemError where e.errno == EISCONN {
            return
        } catch let e as SystemError where e.errno == EINPROGRESS || e.errno == EALREADY {
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let n = try syscall("connect") { poll(&p, 1, milliseconds(t.connectTimeout)) }
            if n == 0 { throw ConnectTimeout() }
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            try syscall("connect") { getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) }
            if err != 0 { throw SystemError(call: "connect", errno: err) }
        }
    }

    static func withSockaddr<R>(_ a: IPAddress, _ port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        if a.isIPv4 {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = port.bigEndian
            sa.sin_addr.s_addr = a.ipv4Value.bigEndian
            return withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        var sa = sockaddr_in6()
        sa.sin6_family = sa_family_t(AF_INET6)
        sa.sin6_port = port.bigEndian
        withUnsafeMutableBytes(of: &sa.sin6_addr) { a.store(to: $0.baseAddress!) }
        return withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
    }
}
