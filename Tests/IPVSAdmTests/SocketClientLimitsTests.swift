import Foundation
import Glibc
import Testing
import LVSTestSupport
@testable import IPVSAdm
import LVSModel

/// The socket client against lvsd's server limits: an idle connection closed by lvsd (its read
/// timeout), and a refusal (too many clients) sent as text.
@Suite struct SocketClientLimitsTests {
    /// A Unix socket server on a temporary path: connection i gets `answers[i]` for its first
    /// request, then is closed by the server; `closed` is signalled after each close.
    final class OneShotServer: Sendable {
        let path = NSTemporaryDirectory() + "lvsadm-limits-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let fd: Int32
        let closed = DispatchSemaphore(value: 0)

        convenience init(answers: [ControlResponse]) {
            self.init(lines: answers.map { Array(try! JSONEncoder().encode($0)) + [0x0A] })
        }

        /// Connection i gets the bytes `lines[i]` (a whole answer line with its newline).
        init(lines: [[UInt8]]) {
            unlink(path)
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &addr.sun_path) { raw in
                for (i, b) in path.utf8.enumerated() { raw[i] = b }
            }
            _ = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            listen(fd, 4)
            let listener = fd, done = closed
            Thread {
                for out in lines {
                    let conn = accept(listener, nil, nil)
                    guard conn >= 0 else { return }
                    var buf = [UInt8](repeating: 0, count: 4096)
                    var got: [UInt8] = []
                    while !got.contains(0x0A) {
                        let n = buf.withUnsafeMutableBytes { recv(conn, $0.baseAddress, $0.count, 0) }
                        if n <= 0 { break }
                        got += buf[..<n]
                    }
                    _ = out.withUnsafeBytes { send(conn, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    close(conn)
                    done.signal()
                }
            }.start()
        }

        deinit {
            close(fd)
            unlink(path)
        }
    }

    static let table = TableSnapshot(services: [ServiceSnapshot(key: ServiceKey(proto: .tcp, address: IPAddress("10.0.0.1")!, port: 80),
                                                                options: ServiceOptions(scheduler: "rr"))])

    @Test func aConnectionLvsdClosedWhileIdleIsOpenedAnew() {
        let server = OneShotServer(answers: [.snapshot(Self.table), .snapshot(Self.table)])
        let client = SocketControlClient(path: server.path)
        let first = adm("-Ln", client)
        #expect(first.code == 0)
        // lvsd's read timeout closes the idle connection; the next request must not fail on it.
        #expect(server.closed.wait(timeout: .now() + 10) == .success)
        let second = adm("-Ln", client)
        #expect(second.err == "")
        #expect(second.code == 0)
        #expect(second.out.hasSuffix("TCP  10.0.0.1:80 rr\n"))
    }

    @Test func aRefusalIsShownAsLvsdWroteIt() {
        let server = OneShotServer(answers: [.text("lvsd: too many control clients (16 at once); try again later\n")])
        let r = adm("-Ln", SocketControlClient(path: server.path), program: "lvsadm")
        #expect(r.err == "lvsadm: lvsd: too many control clients (16 at once); try again later\n")
        #expect(r.code == 2)
    }
}
