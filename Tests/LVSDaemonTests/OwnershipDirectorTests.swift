import Foundation
import Glibc
import LVSControl
import LVSCore
import LVSDataPlane
import Testing
@testable import LVSDaemon
import LVSModel

/// An in-memory data plane that records what VIP ownership the director hands to its programs.
final class OwnershipRecordingPlane: DataPlaneBackend {
    let frames: InMemoryDataPlane<ShardWorker>
    private(set) var notOwned: [Set<IPAddress>] = []
    init(worker: ShardWorker) { frames = InMemoryDataPlane(processor: worker, interfaces: [Lab.interface]) }
    let kindName = "in-memory"
    let workerCount = 1
    var filtersVIPTraffic: Bool { true }
    func start() throws {}
    func stop() {}
    func setNotOwned(_ addresses: Set<IPAddress>) throws { notOwned.append(addresses) }
    var statusLines: [String] { ["data plane: in-memory (recording VIP ownership)", "workers: 1"] }
}

extension OwnershipRecordingPlane {
    /// Starts an lvsd (the seed lab's options, control socket at `socket`) on a recording plane.
    static func startLVSD(socket: String) async throws -> (LVSD, DirectorService, OwnershipRecordingPlane) {
        let daemon = LVSD(options: DaemonStartupTests.options(socket: socket), logger: Lab.logger)
        var plane: OwnershipRecordingPlane?
        daemon.dataPlaneFactory = { director in
            let p = OwnershipRecordingPlane(worker: director.makeWorker(0))
            plane = p
            return p
        }
        let service = try await daemon.start()
        return (daemon, service, try #require(plane))
    }
}

/// Issue 15: the one call VRRP makes, `Director.setOwned` (and `setManagedAddresses`), changes the
/// engine and the data plane's programs together, in a running lvsd.
@Suite(.enabled(if: geteuid() == 0, "root: lvsd's start-up checks it, the director's packet socket"))
struct OwnershipDirectorTests {
    @Test func setOwnedDrivesTheEngineAndTheDataPlaneTogether() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let (daemon, service, p) = try await OwnershipRecordingPlane.startLVSD(socket: dir.path + "/lvsd.sock")
        daemon.engine.setInterfaces(Lab.interfaces)
        let client = try #require(ControlClient(path: dir.path + "/lvsd.sock"))
        #expect(client.request(.addService(Lab.vip, ServiceOptions(scheduler: "rr"))) == .ok)
        #expect(client.request(.addDestination(Lab.vip, DestinationOptions(address: Lab.rs1, port: 80))) == .ok)
        daemon.engine.setNeighbour(Lab.rs1, mac: Lab.rs1MAC, interface: Lab.interface)
        let director = try #require(daemon.director)
        let vip = Lab.vip.address

        // Under VRRP control: not owned until taken, in the engine and in the programs.
        try director.setManagedAddresses([vip])
        #expect(p.notOwned.last == [vip])
        #expect(p.frames.feed(Lab.segment(port: 40000, flags: Lab.syn), interface: Lab.interface) == .drop(.notOwned))
        #expect(p.frames.counters()[Lab.interface]?.dropReasons[.notOwned] == 1)
        #expect(director.engine.announcementFrames([vip]).isEmpty)

        try director.setOwned([vip], true)
        #expect(p.notOwned.last == [])
        #expect(p.frames.feed(Lab.segment(port: 40000, flags: Lab.syn), interface: Lab.interface) == .forward(interface: Lab.interface))
        #expect(director.engine.announcementFrames([vip]).count == 1)
        guard case let .text(status)? = client.request(.status) else { Issue.record("no status"); return }
        #expect(status.contains("VIPs under VRRP: owned 192.168.1.100; not owned none"))
        #expect(status.contains("dropped not-owned: 1"))

        // Given up again: the established connection waits, its frames are dropped.
        try director.setOwned([vip], false)
        #expect(p.notOwned.last == [vip])
        #expect(p.frames.feed(Lab.segment(port: 40000, flags: Lab.ack), interface: Lab.interface) == .drop(.notOwned))
        #expect(director.engine.connectionCount == 1)
        await service.shutdown()
    }
}
