import CLVSShim
import Foundation
import Glibc
import LVSControl
import LVSCore
import Logging

/// The root-only Unix control socket: one JSON request per line, one JSON response per line.
final class ControlServer: @unchecked Sendable {
    let path: String
    let director: Director
    let logger: Logger
    let onChange: () -> Void
    private var listener: Int32 = -1
    /// Set by lvsd: re-reads the configuration file (the `.reload` request and SIGHUP).
    var reload: (@Sendable () async -> String)?
    private var thread: Thread?

    init(path: String, director: Director, logger: Logger, onChange: @escaping () -> Void) {
        self.path = path
        self.director = director
        self.logger = logger
        self.onChange = onChange
    }

    /// Binds the socket (mode 0600 in a 0700 directory) and starts accepting.
    func start() throws {
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) }
        unlink(path)
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw ServerError("socket: \(String(cString: strerror(errno)))") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw ServerError("control socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        let oldMask = umask(0o177)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        umask(oldMask)
        guard rc == 0 else { throw ServerError("cannot bind control socket \(path): \(String(cString: strerror(errno)))") }
        chmod(path, 0o600)
        guard listen(listener, 16) == 0 else { throw ServerError("listen \(path): \(String(cString: strerror(errno)))") }
        let t = Thread { [self] in acceptLoop() }
        t.name = "lvsd-control"
        thread = t
        t.start()
    }

    func stop() {
        if listener >= 0 { shutdown(listener, Int32(SHUT_RDWR)); close(listener); listener = -1 }
        unlink(path)
    }

    private func acceptLoop() {
        while true {
            let fd = clvs_accept_cloexec(listener)
            if fd < 0 {
                if errno == EINTR { continue }
                return
            }
            serve(fd)
            close(fd)
        }
    }

    private func serve(_ fd: Int32) {
        // Root-only: check the peer's credentials.
        if clvs_peer_uid(fd) != 0 {
            _ = writeLine(fd, try! JSONEncoder().encode(ControlResponse.text("permission denied: lvsd accepts root only\n")))
            return
        }
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { return }
            buffer.append(contentsOf: chunk[0..<n])
            while let nl = buffer.firstIndex(of: 10) {
                let line = Array(buffer[..<nl])
                buffer.removeSubrange(...nl)
                let response: ControlResponse
                do {
                    let request = try JSONDecoder().decode(ControlRequest.self, from: Data(line))
                    if case .reload = request {
                        response = .text(runReload())
                    } else {
                        response = director.execute(request)
                        if case .ok = response, request.changesConfiguration { onChange() }
                    }
                } catch {
                    response = .text("lvsd: malformed control request: \(error)\n")
                }
                guard let out = try? JSONEncoder().encode(response), writeLine(fd, out) else { return }
            }
            if buffer.count > 16 << 20 { return }
        }
    }

    /// Called by the health monitor's backend when services changed.
    func notifyChange() { onChange() }

    /// Runs the async reload from this (plain) thread and waits for it.
    private func runReload() -> String {
        guard let reload else { return "lvsd: reload is not available\n" }
        let box = ResultBox()
        let done = DispatchSemaphore(value: 0)
        Task {
            box.text = await reload()
            done.signal()
        }
        done.wait()
        return box.text
    }

    private func writeLine(_ fd: Int32, _ data: Data) -> Bool {
        var bytes = [UInt8](data)
        bytes.append(10)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return false }
            off += n
        }
        return true
    }
}

struct ServerError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

extension ControlRequest {
    var changesConfiguration: Bool {
        switch self {
        case .addService, .editService, .deleteService, .clear, .addDestination, .editDestination, .deleteDestination: return true
        default: return false
        }
    }
}

final class ResultBox: @unchecked Sendable { var text = "" }
