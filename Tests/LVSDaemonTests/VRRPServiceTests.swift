import Foundation
import Logging
import LVSModel
import LVSVRRP
import Synchronization
import Testing
@testable import LVSDaemon

/// An in-memory segment: what one transport sends, the others receive (hop limit 255).
final class FakeVRRPWire: Sendable {
    let queues = Mutex<[String: [VRRPReceived]]>([:])
    func deliver(from sender: String, interface: String, source: IPAddress, destination: IPAddress, message: [UInt8]) {
        queues.withLock { q in
            for name in q.keys where name != sender {
                q[name]!.append(VRRPReceived(interface: interface, source: source, destination: destination, hopLimit: 255, payload: message))
            }
        }
    }
    func attach(_ name: String) { queues.withLock { $0[name] = [] } }
    func inject(to name: String, _ packet: VRRPReceived) { queues.withLock { $0[name, default: []].append(packet) } }
}

final class FakeVRRPTransport: VRRPTransport, @unchecked Sendable {
    let name: String
    let wire: FakeVRRPWire
    let cut = Atomic<Bool>(false)
    let sent = Atomic<Int>(0)
    init(name: String, wire: FakeVRRPWire) { self.name = name; self.wire = wire; wire.attach(name) }
    func join(interface: String, group: IPAddress) throws {}
    func send(interface: String, source: IPAddress, destination: IPAddress, message: [UInt8]) throws {
        sent.add(1, ordering: .relaxed)
        if !cut.load(ordering: .relaxed) { wire.deliver(from: name, interface: interface, source: source, destination: destination, message: message) }
    }
    func receive(timeoutMilliseconds: Int32) -> [VRRPReceived] {
        usleep(500)
        return wire.queues.withLock { q in defer { q[name] = [] }; return q[name] ?? [] }
    }
    func close() {}
}

/// A clock the test moves by hand, shared by the services under test.
final class FakeVRRPClock: Sendable {
    let nanoseconds: Atomic<UInt64>
    init(_ start: UInt64) { nanoseconds = Atomic(start) }
    var now: UInt64 { nanoseconds.load(ordering: .relaxed) }
    func advance(_ n: UInt64) { nanoseconds.add(n, ordering: .relaxed) }
}

/// Records what the service asked lvsd to do.
final class VRRPHookLog: Sendable {
    let owned = Mutex<Set<IPAddress>>([])
    let announcements = Atomic<Int>(0)
    let notifications = Mutex<[String]>([])
    var hooks: VRRPHooks {
        VRRPHooks(
            setOwned: { _, addresses, owned in self.owned.withLock { s in for a in addresses { if owned { s.insert(a.address) } else { s.remove(a.address) } } } },
            announce: { addresses, count in self.announcements.add(addresses.count * count, ordering: .relaxed) },
            runScript: { command, arguments in self.notifications.withLock { $0.append(([command.command] + arguments).joined(separator: " ")) } },
            checkScript: { _ in true },
            syncRole: { _, _ in })
    }
    var ownedNow: Set<IPAddress> { owned.withLock { $0 } }
}

@Suite(.serialized) struct VRRPServiceTests {
    static let vip = IPAddress("10.0.0.100")!

    static func settings(priority: UInt8, master: Bool) -> VRRPConfiguration {
        var i = VRRPInstanceSettings(name: "VI_1", interface: "eth0", virtualRouterID: 51)
        i.priority = priority
        i.initialMaster = master
        i.virtualAddresses = [VRRPAddress(address: vip, prefixLength: 32)]
        i.authPassword = Array("secret".utf8)
        i.gratuitous.masterDelay = 0
        i.notify.any = VRRPScriptCommand(command: "/notify")
        var c = VRRPConfiguration()
        c.instances = [i]
        return c
    }

    /// A director: a service on the fake wire, its own fake clock and its own interface address.
    struct Node {
        let service: VRRPService
        let transport: FakeVRRPTransport
        let log: VRRPHookLog
    }

    static func node(_ name: String, address: String, priority: UInt8, master: Bool, wire: FakeVRRPWire, clock: FakeVRRPClock) -> Node {
        let transport = FakeVRRPTransport(name: name, wire: wire)
        let log = VRRPHookLog()
        let ip = IPAddress(address)!
        let service = VRRPService(configuration: settings(priority: priority, master: master), transport: transport, hooks: log.hooks,
                                  logger: Logger(label: "test-\(name)"),
                                  clock: { clock.now },
                                  readInterface: { _ in VRRPInterfaceState(up: true, ipv4: ip, ipv6LinkLocal: nil) })
        return Node(service: service, transport: transport, log: log)
    }

    /// Advances the shared fake clock in 10 ms steps (real time: a little) until `done` or `limit`.
    static func run(_ clock: FakeVRRPClock, seconds limit: Double, until done: () -> Bool) -> Bool {
        let steps = Int(limit * 100)
        for _ in 0..<steps {
            if done() { return true }
            clock.advance(10_000_000)
            usleep(1_500)
        }
        return done()
    }

    static func state(_ n: Node) -> VRRPState? { n.service.status.instances.first?.state }

    @Test func theHigherPriorityBecomesMasterOwnsTheVIPAndHandsItOverAtStop() throws {
        let wire = FakeVRRPWire()
        let clock = FakeVRRPClock(1_000_000_000)
        let a = Self.node("a", address: "10.0.0.1", priority: 150, master: true, wire: wire, clock: clock)
        let b = Self.node("b", address: "10.0.0.2", priority: 100, master: false, wire: wire, clock: clock)
        try a.service.start()
        try b.service.start()
        defer { b.service.stop() }
        #expect(Self.run(clock, seconds: 8) { Self.state(a) == .master && Self.state(b) == .backup })
        #expect(a.log.ownedNow == [Self.vip])
        #expect(b.log.ownedNow.isEmpty)
        #expect(a.log.announcements.load(ordering: .relaxed) > 0)
        #expect(a.service.statusLines.first?.hasPrefix("vrrp instance VI_1 state MASTER priority 150 effective 150 vrid 51 interface eth0") == true)
        #expect(b.service.statusLines.first?.contains("state BACKUP") == true)
        // A graceful stop: priority 0, the backup takes over after its skew time, not 3 intervals.
        let stoppedAt = clock.now
        a.service.stop()
        #expect(a.log.ownedNow.isEmpty)
        #expect(Self.run(clock, seconds: 3) { Self.state(b) == .master })
        let takeover = clock.now - stoppedAt
        #expect(takeover < 1_500_000_000, "took \(takeover) ns")
        #expect(b.log.ownedNow == [Self.vip])
        #expect(b.log.notifications.withLock { $0 }.contains { $0.hasPrefix("/notify INSTANCE VI_1 MASTER") })
    }

    @Test func hostileAdvertsAreCountedAndChangeNothing() throws {
        let wire = FakeVRRPWire()
        let clock = FakeVRRPClock(1_000_000_000)
        let a = Self.node("a", address: "10.0.0.1", priority: 150, master: true, wire: wire, clock: clock)
        try a.service.start()
        defer { a.service.stop() }
        #expect(Self.run(clock, seconds: 8) { Self.state(a) == .master })
        // A forged advert with priority 255 from off the link (TTL 64), and garbage.
        var forged = [UInt8](repeating: 0, count: 20)
        forged[0] = 0x21; forged[1] = 51; forged[2] = 255; forged[3] = 1
        wire.inject(to: "a", VRRPReceived(interface: "eth0", source: IPAddress("10.0.0.66")!, destination: IPAddress("224.0.0.18")!, hopLimit: 64, payload: forged))
        for n in 0..<200 {
            let junk = (0..<(n % 40)).map { _ in UInt8.random(in: 0...255) }
            wire.inject(to: "a", VRRPReceived(interface: "eth0", source: IPAddress("10.0.0.66")!, destination: IPAddress("224.0.0.18")!, hopLimit: 255, payload: junk))
        }
        #expect(Self.run(clock, seconds: 2) { (a.service.status.rejections.values.reduce(0, +)) >= 201 })
        #expect(Self.state(a) == .master)
        #expect(a.log.ownedNow == [Self.vip])
        #expect((a.service.status.rejections[.hopLimit] ?? 0) >= 1)
        #expect(a.service.statusLines.last?.hasPrefix("vrrp adverts ignored: ") == true)
    }
}
