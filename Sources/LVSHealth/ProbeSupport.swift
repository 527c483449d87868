#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import CLVSTLS
import LVSModel
import Foundation
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
/// Each attempt runs on its own dispatch thread so a hung server never holds up the
/// cooperative pool or the other checkers.
public enum HealthProbes {
    public static func run(_ target: ProbeTarget) async -> ProbeResult {
        await withCheckedContinuation { (cont: CheckedContinuation<ProbeResult, Never>) in
            DispatchQueue.global().async { cont.resume(returning: runBlocking(target)) }
        }
    }

    static func runBlocking(_ t: ProbeTarget) -> ProbeResult {
        switch t.kind {
        case .tcp: return tcp(t)
        case .http: return http(t)
        case .ssl: return ssl(t)
        case .misc: return misc(t)
        case .unsupported: return .success
        }
    }

    static func milliseconds(_ d: Duration) -> Int32 {
        let (s, a) = d.components
        let ms = s * 1000 + a / 1_000_000_000_000_000
        return Int32(clamping: max(ms, 1))
    }

    static func errorText(_ e: Int32) -> String { String(cString: strerror(e)) }

    /// Connects within the connect timeout; returns the socket or the reason.
    static func connect(_ t: ProbeTarget) -> (fd: Int32, error: String?) {
        guard t.port != 0 else { return (-1, "no port to connect to (set connect_port)") }
        let v4 = t.address.isIPv4
        let fd = socket(v4 ? AF_INET : AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return (-1, "socket: \(errorText(errno))") }
        if t.fwmark != 0 {
            var mark = t.fwmark
            _ = setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, socklen_t(MemoryLayout<UInt32>.size))
        }
        if t.bindTo != nil || t.bindPort != nil {
            let local = t.bindTo ?? (v4 ? .ipv4Zero : .zero)
            let rc = withSockaddr(local, t.bindPort ?? 0) { bind(fd, $0, $1) }
            if rc != 0 { let e = errno; close(fd); return (-1, "bind: \(errorText(e))") }
        }
        let rc = withSockaddr(t.address, t.port) { Glibc.connect(fd, $0, $1) }
        if rc != 0 {
            let e = errno
            guard e == EINPROGRESS else { close(fd); return (-1, "connect: \(errorText(e))") }
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let n = poll(&p, 1, milliseconds(t.connectTimeout))
            if n == 0 { close(fd); return (-1, "connect: timeout") }
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
            if n < 0 || err != 0 { close(fd); return (-1, "connect: \(errorText(n < 0 ? errno : err))") }
        }
        return (fd, nil)
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

    static func tcp(_ t: ProbeTarget) -> ProbeResult {
        let (fd, err) = connect(t)
        if let err { return .failure(err) }
        close(fd)
        return .success
    }

    /// The HTTP_GET request of §2.6.
    static func request(_ t: ProbeTarget, path: String) -> String {
        let version = t.httpProtocol == "1.1" ? "1.1" : "1.0"
        var r = "GET \(path) HTTP/\(version)\r\nUser-Agent: KeepAliveClient\r\n"
        if t.httpProtocol != "1.0" { r += "Connection: close\r\n" }
        r += "Host: \(t.virtualhost ?? "\(t.address.bracketed):\(t.port)")\r\n\r\n"
        return r
    }

    static func http(_ t: ProbeTarget) -> ProbeResult {
        guard let url = t.url else { return .failure("no url") }
        let (fd, err) = connect(t)
        if let err { return .failure(err) }
        defer { close(fd) }
        let timeout = milliseconds(t.connectTimeout)
        var out = Array(request(t, path: url.path).utf8)[...]
        while !out.isEmpty {
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&p, 1, timeout) > 0 else { return .failure("write: timeout") }
            let n = out.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                return .failure("write: \(errorText(errno))")
            }
            out = out.dropFirst(n)
        }
        // Read until EOF, each wait bounded by connect_timeout (§1.9).
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while response.count < 8 << 20 {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, timeout) > 0 else { return .failure("read: timeout") }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                return .failure("read: \(errorText(errno))")
            }
            if n == 0 { break }
            response += chunk[0..<n]
        }
        return evaluate(response: response, url: url)
    }

    /// SSL_GET: HTTP_GET over TLS (OpenSSL), no certificate verification; SNI with `enable_sni`.
    static func ssl(_ t: ProbeTarget) -> ProbeResult {
        guard let url = t.url else { return .failure("no url") }
        let (fd, err) = connect(t)
        if let err { return .failure(err) }
        defer { close(fd) }
        let request = Array(request(t, path: url.path).utf8)
        var response = [UInt8](repeating: 0, count: 1 << 20)
        var error = [CChar](repeating: 0, count: 256)
        let n = request.withUnsafeBytes { req in
            response.withUnsafeMutableBytes { out in
                clvs_tls_fetch(fd, t.serverName ?? "", req.baseAddress, req.count, out.baseAddress, out.count,
                               milliseconds(t.connectTimeout), &error, error.count)
            }
        }
        guard n >= 0 else { return .failure(String(cString: error)) }
        return evaluate(response: Array(response[0..<n]), url: url)
    }

    /// Status and digest checks on a complete HTTP response (§2.6).
    static func evaluate(response: [UInt8], url: KeepalivedURL) -> ProbeResult {
        let sep: [UInt8] = [13, 10, 13, 10]
        guard response.count >= 4, let end = (0...(response.count - 4)).first(where: { Array(response[$0..<$0 + 4]) == sep }) else {
            return .failure("no data")
        }
        let header = String(decoding: response[0..<end], as: UTF8.self)
        var body = Array(response[(end + 4)...])
        let firstLine = header.split(separator: "\r\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        var status = 0
        if let space = firstLine.firstIndex(of: " ") {
            let rest = Array(firstLine[firstLine.index(after: space)...])
            if rest.count >= 4, rest[3] == " ", let v = Int(String(rest[0..<3])) { status = v }
        }
        guard url.accepts(status: status) else { return .failure("HTTP status \(status)") }
        if let digest = url.digest {
            for line in header.split(separator: "\r\n") {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2, parts[0].lowercased() == "content-length",
                   let n = Int(parts[1].trimmingCharacters(in: .whitespaces)), n >= 0, n < body.count {
                    body = Array(body[0..<n])
                }
            }
            let got = MD5.hex(body)
            guard got == digest else { return .failure("digest mismatch (got \(got))") }
        }
        return .success
    }

    /// MISC_CHECK: `/bin/sh -c COMMAND` in its own process group; exit 0 is up; with
    /// misc_dynamic 2…255 is up with weight exit−2. On timeout: SIGTERM, SIGKILL 2 s later.
    static func misc(_ t: ProbeTarget) -> ProbeResult {
        guard let command = t.command else { return .failure("no misc_path") }
        guard let pid = ProcessSpawner.spawn(command, newGroup: true, as: t.runAs) else { return .failure("cannot run \(command)") }
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(milliseconds(t.commandTimeout)) * 1_000_000
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { return .failure("waitpid: \(errorText(errno))") }
            if DispatchTime.now().uptimeNanoseconds >= deadline {
                kill(-pid, SIGTERM)
                var waited = 0
                while waitpid(pid, &status, WNOHANG) == 0 && waited < 200 { usleep(10_000); waited += 1 }
                if waited >= 200 { kill(-pid, SIGKILL); _ = waitpid(pid, &status, 0) }
                return .failure("timeout after \(t.commandTimeout)")
            }
            usleep(5_000)
        }
        // WIFEXITED / WEXITSTATUS
        guard status & 0x7F == 0 else { return .failure("killed by signal \(status & 0x7F)") }
        let code = (status >> 8) & 0xFF
        if code == 0 { return .success }
        if t.dynamic && code >= 2 { return .successWithWeight(Int32(code - 2)) }
        return .failure("exit status \(code)")
    }
}
