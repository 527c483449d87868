import Foundation
import Glibc
import LVSControl
import LVSCore
@testable import LVSDaemon
import Logging
import LVSModel
import LVSSystem
import LVSEngineTestSupport

/// The seed lab (LVSEngineTestSupport's `SeedLab`, shared with DataPlaneTests), with what only
/// the daemon's tests need.
typealias Lab = SeedLab

extension SeedLab {
    static let logger = Logger(label: "lvsd-test")

    /// Polls `condition` every 10 ms until it holds or `seconds` pass.
    static func waitUntil(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }
}

/// A temporary directory, removed with its content by `remove()`.
struct TempDir {
    let path: String
    init() {
        var template = Array("/tmp/lvsd-test-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// A control-socket client: one JSON line out, one JSON line back (SO_RCVTIMEO bounds each read).
final class ControlClient {
    let fd: Int32

    init?(path: String, timeoutSeconds: Int = 10) {
        guard let address = RawSocketAddress.unix(path: path),
              let fd = try? SocketSetup.open(family: AF_UNIX, type: Int32(SOCK_STREAM.rawValue)) else { return nil }
        self.fd = fd
        guard (try? SocketSetup.setOption(fd, SOL_SOCKET, SO_RCVTIMEO, timeval(tv_sec: timeoutSeconds, tv_usec: 0), name: "SO_RCVTIMEO")) != nil,
              (try? SocketSetup.connect(fd, to: address)) != nil else { close(fd); return nil }
    }

    deinit { close(fd) }

    func send(raw: [UInt8]) -> Bool {
        raw.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == raw.count
    }

    /// The next line (without its newline), nil on timeout or end of stream.
    func readLine() -> [UInt8]? {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let n = recv(fd, &byte, 1, 0)
            guard n == 1 else { return nil }
            if byte == UInt8(ascii: "\n") { return line }
            line.append(byte)
        }
    }

    func request(_ r: ControlRequest) -> ControlResponse? {
        guard let data = try? JSONEncoder().encode(r), send(raw: Array(data) + [UInt8(ascii: "\n")]),
              let line = readLine() else { return nil }
        return try? JSONDecoder().decode(ControlResponse.self, from: Data(line))
    }
}
