import Foundation
import Glibc
import LVSControl
import LVSCore
import LVSDataPlane
import Testing
@testable import LVSDaemon
import LVSModel

/// A backend that records what start-up and shut-down do to it.
final class RecordingDataPlane: DataPlaneBackend {
    let kindName = "recording"
    let workerCount = 1
    var started = false, stopped = false
    let worker: ShardWorker
    init(worker: ShardWorker) { self.worker = worker }
    func start() throws { started = true }
    func stop() { stopped = true }
    var statusLines: [String] { ["data plane: recording", "workers: 1"] }
}

/// lvsd's start-up steps with an injected data plane (no packet I/O): the director forwards a
/// frame once a service is added through the control socket, and a failing step undoes the
/// earlier ones.
@Suite(.enabled(if: geteuid() == 0, "root: lvsd's start-up checks it, the director's packet socket"))
struct DaemonStartupTests {
    static func options(socket: String) -> DaemonOptions {
        var o = DaemonOptions()
        o.interfaces = ["lo"] // looked up only; the injected data plane opens nothing on it
        o.socket = socket
        o.noKernelGuard = true
        o.maxConnections = 1024
        return o
    }

    @Test func theDirectorForwardsAFrameAfterAServiceIsAddedByTheControlPath() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let daemon = LVSD(options: Self.options(socket: dir.path + "/lvsd.sock"), logger: Lab.logger)
        var plane: InMemoryDataPlane<ShardWorker>?
        daemon.dataPlaneFactory = { director in
            let p = InMemoryDataPlane(processor: director.makeWorker(0), interfaces: [Lab.interface])
            plane = p
            return p
        }
        let service = try await daemon.start()
        // The lab's interface instead of lo's (frames are fed in memory).
        daemon.engine.setInterfaces(Lab.interfaces)
        let client = try #require(ControlClient(path: dir.path + "/lvsd.sock"))
        #expect(client.request(.addService(Lab.vip, ServiceOptions(scheduler: "rr"))) == .ok)
        #expect(client.request(.addDestination(Lab.vip, DestinationOptions(address: Lab.rs1, port: 80))) == .ok)
        daemon.engine.setNeighbour(Lab.rs1, mac: Lab.rs1MAC, interface: Lab.interface) // as ARP would
        let p = try #require(plane)
        #expect(p.feed(Lab.segment(port: 40000, flags: Lab.syn), interface: Lab.interface) == .forward(interface: Lab.interface))
        let out = p.takeTransmitted()
        #expect(out.count == 1)
        #expect(Array(out.first?.bytes.prefix(6) ?? []) == Lab.bytes(Lab.rs1MAC))
        guard case let .text(status)? = client.request(.status) else { Issue.record("no status"); return }
        #expect(status.contains("data plane: in-memory"))
        await service.shutdown()
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/lvsd.sock"))
    }

    @Test func aFailingStepUndoesTheEarlierOnes() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        // The control socket cannot be bound (its path is longer than sun_path): the last step fails.
        let long = dir.path + "/" + String(repeating: "s", count: 120) + ".sock"
        let daemon = LVSD(options: Self.options(socket: long), logger: Lab.logger)
        var plane: RecordingDataPlane?
        daemon.dataPlaneFactory = { director in
            let p = RecordingDataPlane(worker: director.makeWorker(0))
            plane = p
            return p
        }
        await #expect(throws: ServerError.self) { _ = try await daemon.start() }
        let p = try #require(plane)
        #expect(p.started && p.stopped)
        // A failure before the data plane: nothing was opened, so nothing to undo.
        var bad = Self.options(socket: dir.path + "/x.sock")
        bad.maxConnections = 0
        let early = LVSD(options: bad, logger: Lab.logger)
        var opened = false
        early.dataPlaneFactory = { director in opened = true; return RecordingDataPlane(worker: director.makeWorker(0)) }
        await #expect(throws: ServerError.self) { _ = try await early.start() }
        #expect(!opened)
    }

    @Test func undoStepsRunInReverseUnlessDisarmed() {
        var order: [Int] = []
        let undo = StartupUndo()
        for i in 1...3 { undo.add { order.append(i) } }
        undo.run()
        undo.run() // once only
        #expect(order == [3, 2, 1])
        let done = StartupUndo()
        done.add { order.append(9) }
        done.disarm()
        done.run()
        #expect(order == [3, 2, 1])
    }
}
