import Foundation
import Glibc
import Logging
import LVSControl
import LVSCore
import LVSDataPlane
import LVSModel
import LVSVRRP
import Synchronization
import Testing
@testable import LVSDaemon

/// `VRRPService.reload`: a reload is applied on the service thread, the caller gets its summary,
/// and a pair on the fake wire re-elects through the protocol only when the priorities say so.
@Suite(.serialized) struct VRRPServiceReloadTests {
    typealias Pair = VRRPServiceTests

    @Test func theSameConfigurationChangesNothingAndARaisedBackupTakesOver() throws {
        let wire = FakeVRRPWire()
        let clock = FakeVRRPClock(1_000_000_000)
        let a = Pair.node("a", address: "10.0.0.1", priority: 150, master: true, wire: wire, clock: clock)
        let b = Pair.node("b", address: "10.0.0.2", priority: 100, master: false, wire: wire, clock: clock)
        try a.service.start()
        try b.service.start()
        defer { a.service.stop(); b.service.stop() }
        #expect(Pair.run(clock, seconds: 8) { Pair.state(a) == .master && Pair.state(b) == .backup })
        let transitions = (a.service.status.instances[0].transitions, b.service.status.instances[0].transitions)
        let announced = a.log.announcements.load(ordering: .relaxed)

        // Config management in a loop: the same file ten times on both.
        for _ in 0..<10 {
            for n in [a, b] {
                let same = n.service.configuration
                #expect(try n.service.reload(same).get().description == "VRRP: unchanged")
            }
        }
        #expect(a.service.status.instances[0].transitions == transitions.0)
        #expect(b.service.status.instances[0].transitions == transitions.1)
        #expect(a.log.announcements.load(ordering: .relaxed) == announced)

        // The backup's priority raised above the master's: it preempts after its down interval.
        let raised = Pair.settings(priority: 200, master: false)
        #expect(try b.service.reload(raised).get().description == "VRRP: 1 instance kept (1 changed), 0 added, 0 removed")
        #expect(Pair.state(b) == .backup)
        #expect(Pair.run(clock, seconds: 6) { Pair.state(b) == .master && Pair.state(a) == .backup })
        #expect(b.log.ownedNow == [Pair.vip] && a.log.ownedNow.isEmpty)
        #expect(b.service.status.instances[0].configuredPriority == 200)
    }

    @Test func aReloadAddsAnInstanceAndSetsTheManagedAddressesFirst() throws {
        let wire = FakeVRRPWire()
        let clock = FakeVRRPClock(1_000_000_000)
        let a = Pair.node("a", address: "10.0.0.1", priority: 150, master: true, wire: wire, clock: clock)
        let managed = Mutex<[Set<IPAddress>]>([])
        var hooks = a.log.hooks
        hooks.setManaged = { addresses in managed.withLock { $0.append(addresses) } }
        let service = VRRPService(configuration: Pair.settings(priority: 150, master: true), transport: a.transport, hooks: hooks,
                                  logger: Logger(label: "test-a"), clock: { clock.now },
                                  readInterface: { _ in VRRPInterfaceState(up: true, ipv4: IPAddress("10.0.0.1")!, ipv6LinkLocal: nil) })
        try service.start()
        defer { service.stop() }
        #expect(Pair.run(clock, seconds: 8) { service.status.instances.first?.state == .master })
        var two = Pair.settings(priority: 150, master: true)
        var second = two.instances[0]
        second.name = "VI_2"
        second.virtualRouterID = 52
        let vip2 = IPAddress("10.0.0.200")!
        second.virtualAddresses = [VRRPAddress(address: vip2, prefixLength: 32)]
        two.instances.append(second)
        #expect(try service.reload(two).get().description == "VRRP: 1 instance kept (0 changed), 1 added, 0 removed")
        #expect(managed.withLock { $0 } == [[Pair.vip, vip2]])
        #expect(a.log.ownedNow == [Pair.vip])   // VI_2 starts BACKUP
        #expect(Pair.run(clock, seconds: 6) { service.status.instances.count == 2 && service.status.instances[1].state == .master })
        #expect(a.log.ownedNow == [Pair.vip, vip2])
    }
}

/// Issue 15 follow-up: a reload moves the director's managed addresses and ownership (engine
/// and data-plane programs, as on xdp and tc) without a blip for an address that stays owned.
@Suite(.enabled(if: geteuid() == 0, "root: lvsd's start-up checks it, the director's packet socket"))
struct VRRPReloadOwnershipTests {
    @Test func aVIPAddedByAReloadIsNotOwnedUntilTakenAndARemovedOneIsOwnedAgain() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let (daemon, lvsd, p) = try await OwnershipRecordingPlane.startLVSD(socket: dir.path + "/lvsd.sock")
        let director = try #require(daemon.director)
        let vip = Lab.vip.address, added = IPAddress("192.168.1.101")!
        let clock = FakeVRRPClock(1_000_000_000)
        var owner = VRRPInstanceSettings(name: "VI_1", interface: "eth0", virtualRouterID: 51)
        owner.priority = 255
        owner.initialMaster = true
        owner.gratuitous.masterDelay = 0
        owner.virtualAddresses = [VRRPAddress(address: vip, prefixLength: 32)]
        var configuration = VRRPConfiguration()
        configuration.instances = [owner]
        try director.setManagedAddresses(LVSD.vrrpAddresses(configuration))
        let hooks = VRRPHooks(
            setOwned: { _, addresses, owned in try? director.setOwned(addresses.map(\.address), owned) },
            announce: { _, _ in }, runScript: { _, _ in }, checkScript: { _ in true }, syncRole: { _, _ in },
            setManaged: { addresses in try? director.setManagedAddresses(addresses) })
        let service = VRRPService(configuration: configuration, transport: FakeVRRPTransport(name: "a", wire: FakeVRRPWire()),
                                  hooks: hooks, logger: Lab.logger, clock: { clock.now },
                                  readInterface: { _ in VRRPInterfaceState(up: true, ipv4: IPAddress("192.168.1.2")!, ipv6LinkLocal: nil) })
        try service.start()   // the owner is MASTER at once
        #expect(p.notOwned.last == [])
        let before = p.notOwned.count

        // A second VIP on the MASTER: managed (not owned) first, then taken; the first never leaves.
        var two = configuration
        two.instances[0].virtualAddresses.append(VRRPAddress(address: added, prefixLength: 32))
        #expect(try service.reload(two).get().changed == ["VI_1"])
        let during = Array(p.notOwned[before...])
        #expect(during.allSatisfy { !$0.contains(vip) })
        #expect(during.first == [added] && p.notOwned.last == [])
        #expect(director.engine.owns(added) && director.engine.owns(vip))

        // The first VIP no longer under VRRP: back to normal (owned) handling, not released.
        var only = two
        only.instances[0].virtualAddresses.removeFirst()
        #expect(try service.reload(only).get().changed == ["VI_1"])
        #expect(director.engine.managedVIPs == [added])
        #expect(director.engine.owns(vip) && p.notOwned.last == [])
        service.stop()
        await lvsd.shutdown()
    }
}
