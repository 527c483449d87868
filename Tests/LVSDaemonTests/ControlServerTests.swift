import Foundation
import Glibc
import LVSControl
import LVSCore
import Synchronization
import Testing
@testable import LVSDaemon
import LVSModel

/// The control socket over a Unix socket in a temporary directory (the director needs root for
/// its neighbour sender; the server answers root clients only).
@Suite(.enabled(if: geteuid() == 0, "root: the director's packet socket, SO_PEERCRED root"))
struct ControlServerTests {
    /// A control server on a fresh director; `body` gets it and its socket path; all removed after.
    func withServer(_ body: (ControlServer, String, Director) throws -> Void) throws {
        let dir = TempDir()
        defer { dir.remove() }
        let director = try Director(engine: Lab.engine(seeded: false), logger: Lab.logger)
        let changes = Counter()
        let server = ControlServer(path: dir.path + "/ctl/lvsd.sock", director: director, logger: Lab.logger) { changes.add() }
        director.serverCounters = [server.counters] // as lvsd's start-up does
        try server.start()
        defer { server.stop() }
        try body(server, server.path, director)
    }

    final class Counter: Sendable {
        private let n = Atomic<Int>(0)
        func add() { n.wrappingAdd(1, ordering: .relaxed) }
        var value: Int { n.load(ordering: .relaxed) }
    }

    @Test func aRequestIsAnsweredAndChangesTheEngine() throws {
        try withServer { server, path, director in
            // Mode 0600 in a 0700 directory.
            var st = stat()
            #expect(stat(path, &st) == 0 && st.st_mode & 0o777 == 0o600)
            let client = try #require(ControlClient(path: path))
            #expect(client.request(.addService(Lab.vip, ServiceOptions(scheduler: "rr"))) == .ok)
            #expect(client.request(.addService(Lab.vip, ServiceOptions(scheduler: "rr"))) == .failed(.serviceExists))
            #expect(client.request(.addDestination(Lab.vip, DestinationOptions(address: Lab.rs1, port: 80))) == .ok)
            guard case let .snapshot(s)? = client.request(.snapshot) else { Issue.record("no snapshot"); return }
            #expect(s.services.count == 1 && s.services.first?.destinations.first?.options.address == Lab.rs1)
            #expect(director.engine.snapshot().services.count == 1)
            guard case let .text(status)? = client.request(.status) else { Issue.record("no status"); return }
            #expect(status.contains("control socket: 1 client(s) now"))
        }
    }

    @Test func aSilentClientDoesNotHoldUpAnother() throws {
        try withServer { _, path, _ in
            let silent = try #require(ControlClient(path: path))
            #expect(silent.send(raw: Array(#"{"snap"#.utf8))) // half a request, then nothing
            let other = try #require(ControlClient(path: path, timeoutSeconds: 5))
            guard case .snapshot? = other.request(.snapshot) else { Issue.record("the second client got no answer"); return }
            withExtendedLifetime(silent) {}
        }
    }

    /// A request of another control-protocol version (or of none, as before versions) is answered
    /// with lvsd's version and the one it got, and the engine is left alone.
    @Test func anotherProtocolVersionIsAnsweredWithLvsdsOwn() throws {
        try withServer { _, path, director in
            let client = try #require(ControlClient(path: path))
            let requests: [(String, Int)] = [
                (#"{"request":"clear","version":2}"#, 2),
                (#"{"clear":{}}"#, 0),
            ]
            for (request, version) in requests {
                #expect(client.send(raw: Array((request + "\n").utf8)))
                let line = try #require(client.readLine())
                #expect(String(decoding: line, as: UTF8.self) == #"{"answer":"versionMismatch","requested":\#(version),"version":\#(ControlProtocol.version)}"#)
            }
            #expect(client.request(.addService(Lab.vip, ServiceOptions(scheduler: "rr"))) == .ok)
            #expect(client.send(raw: Array((#"{"request":"clear","version":2}"# + "\n").utf8)))
            _ = client.readLine()
            #expect(director.engine.snapshot().services.count == 1) // the clear of version 2 was not run
        }
    }

    @Test func protocolErrorsAreAnsweredNotFatal() throws {
        try withServer { server, path, _ in
            let client = try #require(ControlClient(path: path))
            #expect(client.send(raw: Array("this is not json\n".utf8)))
            let line = try #require(client.readLine())
            let answer = try JSONDecoder().decode(ControlResponse.self, from: Data(line))
            guard case let .text(t) = answer else { Issue.record("not a text answer: \(answer)"); return }
            #expect(t.hasPrefix("lvsd: malformed control request"))
            // The connection still serves.
            guard case .snapshot? = client.request(.snapshot) else { Issue.record("no answer after the error"); return }
            // Longer than the limit without a newline: refused, counted, closed.
            let big = ControlClient(path: path)!
            let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 64 << 10)
            var sent = 0
            while sent <= ServerLimits.control.maxRequestBytes, big.send(raw: chunk) { sent += chunk.count }
            let refusal = try #require(big.readLine())
            #expect(String(decoding: refusal, as: UTF8.self).contains("longer than"))
            #expect(Lab.waitUntil { server.counters.oversized.load(ordering: .relaxed) == 1 })
        }
    }
}
