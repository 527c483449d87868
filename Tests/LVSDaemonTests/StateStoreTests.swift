import Foundation
import Glibc
import LVSCore
import LVSDataPlane
import Testing
@testable import LVSDaemon
import LVSEngineTestSupport
import LVSModel
import LVSSystem

/// The restart state on disk (issue 16): saved at a stop, loaded once at the next start and moved
/// aside; a file lvsd cannot read is refused with an error, moved aside, and lvsd starts empty.
@Suite struct StateStoreTests {
    static func busyEngine() -> (Engine, [ConnectionSnapshot]) {
        let e = Lab.engine()
        let shard = e.makeShard()
        for port: UInt16 in 41000..<41010 {
            _ = Lab.send(shard, port: port, flags: Lab.syn, at: Lab.second)
            _ = Lab.send(shard, port: port, flags: Lab.ack, at: Lab.second)
        }
        return (e, e.connections(now: Lab.second))
    }

    static func summary(_ list: [ConnectionSnapshot]) -> [String] {
        list.map { "\($0.clientAddress):\($0.clientPort) \($0.destinationAddress) \($0.state)" }.sorted()
    }

    /// A save that cannot rename its temporary file over the state file (here the state "file" is
    /// a directory) throws LVSSystem's error naming the call, removes the temporary file and
    /// leaves the old state as it was.
    @Test func aFailedReplaceLeavesNoTemporaryFileAndTheOldStateAsItWas() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.path + "/state"
        try FileManager.default.createDirectory(atPath: path + "/kept", withIntermediateDirectories: true)
        #expect(throws: SystemError.self) { try StateStore.replace(path, with: [1, 2, 3], temporary: path + ".tmp") }
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
        #expect(FileManager.default.fileExists(atPath: path + "/kept"))
        try StateStore.replace(dir.path + "/other", with: [1, 2, 3], temporary: dir.path + "/other.tmp")
        #expect(FileManager.default.contents(atPath: dir.path + "/other") == Data([1, 2, 3]))
    }

    @Test func savedStateIsLoadedOnceAndMovedAside() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.path + "/run/state" // the directory is made on save
        let (old, before) = Self.busyEngine()
        #expect(before.count == 10)
        #expect(StateStore.save(old, to: path, now: Lab.second, logger: Lab.logger) == 10)
        let new = Lab.engine()
        guard case .restored(let counts) = StateStore.load(new, from: path, now: 2 * Lab.second, logger: Lab.logger) else {
            Issue.record("not restored"); return
        }
        #expect(counts.connections == 10 && counts.dropped == 0)
        #expect(Self.summary(new.connections(now: 2 * Lab.second)) == Self.summary(before))
        #expect(!FileManager.default.fileExists(atPath: path) && FileManager.default.fileExists(atPath: path + StateStore.loadedSuffix))
        // A second start finds nothing to load.
        #expect(StateStore.load(Lab.engine(), from: path, now: 2 * Lab.second, logger: Lab.logger) == .none)
        // The restored connection forwards its next (non-SYN) packet to its real server.
        #expect(Lab.send(new.makeShard(), port: 41003, flags: Lab.ack, at: 3 * Lab.second) == .forward(interface: Lab.interface))
    }

    /// Truncated, corrupted, another version, not a state file at all, empty, unreadable (a
    /// directory): refused, moved to .refused, the engine left empty, never half loaded.
    @Test func unreadableFilesAreRefusedAndTheEngineStaysEmpty() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.path + "/state"
        let (old, _) = Self.busyEngine()
        let good = StateFile.encode(old.exportState(now: Lab.second))
        var corrupt = good
        corrupt[corrupt.count - 3] ^= 0x40
        var newer = good
        newer[StateFile.offsetVersion + 1] = UInt8(StateFile.currentVersion + 1)
        let cases: [(String, [UInt8])] = [("truncated", Array(good.prefix(good.count - 7))), ("header only", Array(good.prefix(10))),
                                          ("corrupt", corrupt), ("newer version", newer), ("garbage", Array("hello\n".utf8)), ("empty", [])]
        for (name, bytes) in cases {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let engine = Lab.engine()
            guard case .refused(let why) = StateStore.load(engine, from: path, now: 2 * Lab.second, logger: Lab.logger) else {
                Issue.record("\(name): not refused"); continue
            }
            #expect(!why.isEmpty)
            #expect(engine.connections(now: 2 * Lab.second).isEmpty, "\(name)")
            #expect(!FileManager.default.fileExists(atPath: path) && FileManager.default.fileExists(atPath: path + StateStore.refusedSuffix))
        }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        guard case .refused = StateStore.load(Lab.engine(), from: path, now: 2 * Lab.second, logger: Lab.logger) else {
            Issue.record("a directory was not refused"); return
        }
    }
}

/// A stop and a start of lvsd itself (root: its start-up checks it): the second lvsd, with the
/// same command line, starts with the first one's connections before its data plane forwards.
@Suite(.enabled(if: geteuid() == 0, "root: lvsd's start-up checks it"))
struct DaemonRestartTests {
    @Test func aRestartedDaemonKeepsItsConnections() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let rules = dir.path + "/rules"
        try "-A -t 192.168.1.100:80 -s rr\n-a -t 192.168.1.100:80 -r 192.168.1.31:80 -g -w 1\n".write(toFile: rules, atomically: true, encoding: .utf8)
        var o = DaemonStartupTests.options(socket: dir.path + "/lvsd.sock")
        o.config = rules
        func run(_ body: (LVSD, InMemoryDataPlane<ShardWorker>) -> Void) async throws {
            let daemon = LVSD(options: o, logger: Lab.logger)
            var plane: InMemoryDataPlane<ShardWorker>?
            daemon.dataPlaneFactory = { director in
                let p = InMemoryDataPlane(processor: director.makeWorker(0), interfaces: [Lab.interface])
                plane = p
                return p
            }
            let service = try await daemon.start()
            daemon.engine.setInterfaces(Lab.interfaces)
            daemon.engine.setNeighbour(Lab.rs1, mac: Lab.rs1MAC, interface: Lab.interface)
            body(daemon, try #require(plane))
            await service.shutdown()
        }
        var before: [String] = []
        try await run { daemon, plane in
            for port: UInt16 in 42000..<42005 {
                _ = plane.feed(Lab.segment(port: port, flags: Lab.syn), interface: Lab.interface)
                _ = plane.feed(Lab.segment(port: port, flags: Lab.ack), interface: Lab.interface)
            }
            before = daemon.engine.connections(now: monotonicNanoseconds()).map { "\($0.clientPort) \($0.destinationAddress) \($0.state)" }.sorted()
        }
        #expect(before.count == 5)
        #expect(FileManager.default.fileExists(atPath: o.statePath!))
        try await run { daemon, plane in
            let after = daemon.engine.connections(now: monotonicNanoseconds()).map { "\($0.clientPort) \($0.destinationAddress) \($0.state)" }.sorted()
            #expect(after == before)
            // A mid-stream ACK (not a SYN) of a connection of the first lvsd is forwarded.
            #expect(plane.feed(Lab.segment(port: 42002, flags: Lab.ack), interface: Lab.interface) == .forward(interface: Lab.interface))
        }
        #expect(FileManager.default.fileExists(atPath: o.statePath! + StateStore.loadedSuffix))
    }
}
