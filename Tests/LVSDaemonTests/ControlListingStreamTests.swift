import Foundation
import Glibc
import IPVSAdm
import LVSControl
import LVSCore
import Synchronization
import Testing
@testable import LVSDaemon
import LVSModel

/// `lvsadm -Lnc` through the real control server on a table of 100 k connections: the answer is
/// streamed with bounded bytes queued, is complete and in listing order, and a client that goes
/// away mid-listing stops the walk.
@Suite(.enabled(if: geteuid() == 0, "root: the director's packet socket, SO_PEERCRED root"))
struct ControlListingStreamTests {
    static let flows = 100_000

    /// A client's SYN or ACK from 10.(i >> 16).(i >> 8).i to the lab's VIP (checksum set).
    static func segment(client i: Int, flags: UInt8) -> [UInt8] {
        var frame = Lab.segment(port: UInt16(1024 + i % 60_000), flags: flags)
        let ipStart = 14, sourceOffset = 12, checksumOffset = 10, headerBytes = 20
        let source: [UInt8] = [10, UInt8((i >> 16) & 0xFF), UInt8((i >> 8) & 0xFF), UInt8(i & 0xFF)]
        frame.replaceSubrange((ipStart + sourceOffset)..<(ipStart + sourceOffset + 4), with: source)
        frame[ipStart + checksumOffset] = 0
        frame[ipStart + checksumOffset + 1] = 0
        let cs = frame.withUnsafeBytes { InternetChecksum.finish(InternetChecksum.sum($0.baseAddress! + ipStart, count: headerBytes)) }
        frame[ipStart + checksumOffset] = UInt8(cs >> 8)
        frame[ipStart + checksumOffset + 1] = UInt8(cs & 0xFF)
        return frame
    }

    /// CLOCK_MONOTONIC in nanoseconds (the data plane's clock).
    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// A director whose worker 0 runs on its own thread (fills its table with `flows` established
    /// connections, then ticks every millisecond), a control server on it; all stopped after.
    func withFilledServer(_ body: (ControlServer, String, Director) throws -> Void) throws {
        let dir = TempDir()
        defer { dir.remove() }
        var cfg = EngineConfiguration()
        cfg.connectionCapacity = 1 << 18
        let engine = Engine(configuration: cfg)
        engine.setInterfaces(Lab.interfaces)
        try engine.addService(Lab.vip, ServiceOptions(scheduler: "rr"))
        try engine.addDestination(Lab.vip, DestinationOptions(address: Lab.rs1, port: 80))
        engine.setNeighbour(Lab.rs1, mac: Lab.rs1MAC, interface: Lab.interface)
        let director = try Director(engine: engine, logger: Lab.logger)
        let worker = director.makeWorker(0)
        let stop = Atomic<Bool>(false), filled = Atomic<Bool>(false)
        let finished = DispatchSemaphore(value: 0)
        let thread = Thread {
            defer { finished.signal() }
            for i in 0..<Self.flows {
                for flags in [Lab.syn, Lab.ack] {
                    var frame = Self.segment(client: i, flags: flags)
                    _ = frame.withUnsafeMutableBytes { worker.process($0, interface: Lab.interface, now: Self.now()) }
                }
            }
            filled.store(true, ordering: .releasing)
            while !stop.load(ordering: .relaxed) {
                worker.tick(now: Self.now())
                usleep(1000)
            }
        }
        thread.start()
        defer {
            stop.store(true, ordering: .relaxed)
            _ = finished.wait(timeout: .now() + 30)
        }
        #expect(Lab.waitUntil(seconds: 120) { filled.load(ordering: .acquiring) })
        let server = ControlServer(path: dir.path + "/ctl/lvsd.sock", director: director, logger: Lab.logger) {}
        try server.start()
        defer { server.stop() }
        try body(server, server.path, director)
    }

    /// Reads the rest of one answer line, `pause` µs between reads of at most 16 KiB (a slow reader).
    static func readAnswer(_ client: ControlClient, pause: UInt32) -> [UInt8]? {
        var line: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        while line.last != UInt8(ascii: "\n") {
            let n = chunk.withUnsafeMutableBytes { recv(client.fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return nil }
            line += chunk[..<n]
            if pause > 0 { usleep(pause) }
        }
        return Array(line.dropLast())
    }

    @Test func aBigListingIsStreamedWithBoundedBytesQueued() throws {
        try withFilledServer { server, path, director in
            let client = try #require(ControlClient(path: path, timeoutSeconds: 60))
            #expect(client.send(raw: Array("\(ControlProtocol.connectionsRequestLine)\n".utf8)))
            let line = try #require(Self.readAnswer(client, pause: 500))
            let listed = try #require(ConnectionListDecoding.connections(line))
            #expect(listed.count == Self.flows)
            // Listing order as the director's own walk gives it.
            guard case .connections(let direct) = director.execute(.connections) else { Issue.record("no listing"); return }
            #expect(listed.map { "\($0.clientAddress):\($0.clientPort)" } == direct.map { "\($0.clientAddress):\($0.clientPort)" })
            // Some 7 MB went out; never more than two chunks and an entry were held at once.
            let bound = 2 * ControlServer.listingChunkBytes + ControlServer.listingChunkSlack
            #expect(line.count > 4 * bound)
            let peak = server.listingPeakQueuedBytes.load(ordering: .relaxed)
            #expect(peak > 0 && peak <= bound, "peak \(peak) bytes queued")
        }
    }

    @Test func aClientThatLeavesMidListingStopsItAndTheNextListingIsWhole() throws {
        try withFilledServer { _, path, _ in
            for _ in 0..<3 {
                let leaver = try #require(ControlClient(path: path))
                #expect(leaver.send(raw: Array("\(ControlProtocol.connectionsRequestLine)\n".utf8)))
                var first = [UInt8](repeating: 0, count: 1024)
                #expect(first.withUnsafeMutableBytes { recv(leaver.fd, $0.baseAddress, $0.count, 0) } > 0)
            } // closed here, mid-answer
            let client = try #require(ControlClient(path: path, timeoutSeconds: 60))
            #expect(client.send(raw: Array("\(ControlProtocol.connectionsRequestLine)\n".utf8)))
            let line = try #require(Self.readAnswer(client, pause: 0))
            #expect(ConnectionListDecoding.connections(line)?.count == Self.flows)
        }
    }
}
