import CLVSShim
import Glibc
import LVSCore
@testable import LVSDaemon
import LVSModel
import LVSSystem
import Synchronization
import Testing

/// The tunnel route watcher driven by route notifications: netlink messages written into a
/// socketpair stand for the kernel's, a fake clock for time, a counting lookup for `ip route get`.
@Suite struct TunnelRouteNotificationTests {
    static let source = IPAddress("192.168.1.21")!
    static let second: UInt64 = 1_000_000_000
    static let start: UInt64 = 1000 * second
    static let rs2 = IPAddress("10.9.0.32")!

    /// A test's watcher and what it sees: the engine has two tunnel real servers (rs1, rs2).
    final class Rig: Sendable {
        let engine = Engine()
        let clock = Mutex(TunnelRouteNotificationTests.start)
        let lookups = Mutex(0)
        /// The MTU the lookup answers (a route change is a new MTU here).
        let mtu = Mutex(1500)
        /// recv fails once with ENOBUFS when set.
        let overflowNext = Mutex(false)
        /// recv fails with EIO (a socket of no more use) when set.
        let failNext = Mutex(false)
        let ends: (reader: Int32, writer: Int32)

        init() throws {
            var fds: [Int32] = [-1, -1]
            try syscall("socketpair") { socketpair(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0, &fds) }
            ends = (fds[0], fds[1])
            engine.setInterfaces(Lab.interfaces)
            try engine.addService(Lab.vip, ServiceOptions(scheduler: "rr"))
            for rs in [Lab.rs1, TunnelRouteNotificationTests.rs2] {
                try engine.addDestination(Lab.vip, DestinationOptions(address: rs, port: 80, method: .tunnel, tunnelType: .ipip))
            }
        }

        deinit { close(ends.writer) }

        /// A watcher reading the socketpair (it closes the reader), with a one-hour safety refresh.
        func watcher() -> TunnelRouteWatcher {
            let socket = RouteNotificationSocket(fd: ends.reader, closesFD: true) { [self] fd, buffer in
                if overflowNext.withLock({ let o = $0; $0 = false; return o }) {
                    throw SystemError(call: "recv", errno: ENOBUFS)
                }
                if failNext.withLock({ $0 }) { throw SystemError(call: "recv", errno: EIO) }
                return try RouteNotificationSocket.receiveNonBlocking(fd, buffer)
            }
            return TunnelRouteWatcher(engine: engine, logger: Lab.logger, refreshSeconds: 3600, notifications: socket,
                                      lookUpRoute: { [self] _, _ in
                                          lookups.withLock { $0 += 1 }
                                          return TunnelRoute(interface: Lab.interface, source: TunnelRouteNotificationTests.source,
                                                             mtu: mtu.withLock { $0 })
                                      },
                                      clock: { [self] in clock.withLock { $0 } })
        }

        /// Writes one datagram holding a netlink message of each type.
        func notify(_ types: [UInt16]) {
            let bytes = types.flatMap { TunnelRouteNotificationTests.message($0) }
            let sent = bytes.withUnsafeBytes { send(ends.writer, $0.baseAddress, $0.count, 0) }
            #expect(sent == bytes.count)
        }

        func advance(_ ns: UInt64) { clock.withLock { $0 += ns } }
        var count: Int { lookups.withLock { $0 } }
    }

    /// A netlink message: nlmsghdr (length, type, flags, sequence, port id) and 16 bytes of payload.
    static func message(_ type: UInt16) -> [UInt8] {
        let payload = 16
        var m = [UInt8](repeating: 0, count: MemoryLayout<clvs_nlmsghdr>.size + payload)
        withUnsafeBytes(of: UInt32(m.count).littleEndian) { m.replaceSubrange(NetlinkHeader.length..<NetlinkHeader.length + 4, with: $0) }
        withUnsafeBytes(of: type.littleEndian) { m.replaceSubrange(NetlinkHeader.type..<NetlinkHeader.type + 2, with: $0) }
        return m
    }

    @Test func aNotificationTriggersOnePassAfterTheCoalescingDelay() throws {
        let rig = try Rig()
        let w = rig.watcher()
        #expect(w.turn(rig.engine, maxWaitMs: 0) == false)
        #expect(rig.count == 2)  // the two new addresses, looked up at once
        #expect(rig.engine.tunnelRoute(Lab.rs1)?.mtu == 1500)
        rig.advance(TunnelRouteWatcher.spacing)

        rig.mtu.withLock { $0 = 1300 }
        rig.notify([clvs_rtm_newroute])
        #expect(w.turn(rig.engine, maxWaitMs: 0) == false)  // read; the pass waits for the burst's end
        #expect(rig.count == 2)
        rig.advance(TunnelRouteWatcher.coalesce)
        #expect(w.turn(rig.engine, maxWaitMs: 0) == true)
        #expect(rig.count == 4)
        #expect(rig.engine.tunnelRoute(Lab.rs1)?.mtu == 1300 && rig.engine.tunnelRoute(Self.rs2)?.mtu == 1300)
        rig.advance(Self.second)
        #expect(w.turn(rig.engine, maxWaitMs: 0) == false)
        #expect(rig.count == 4)
    }

    @Test func aBurstTriggersOnePass() throws {
        let rig = try Rig()
        let w = rig.watcher()
        w.turn(rig.engine, maxWaitMs: 0)
        rig.advance(TunnelRouteWatcher.spacing)
        rig.notify([clvs_rtm_newlink, clvs_rtm_delroute, clvs_rtm_newroute])
        rig.notify([clvs_rtm_deladdr])
        #expect(w.turn(rig.engine, maxWaitMs: 0) == false)
        rig.advance(TunnelRouteWatcher.coalesce / 2)
        rig.notify([clvs_rtm_newaddr])
        rig.notify([clvs_rtm_dellink])
        #expect(w.turn(rig.engine, maxWaitMs: 0) == false)
        rig.advance(TunnelRouteWatcher.coalesce / 2)
        #expect(w.turn(rig.engine, maxWaitMs: 0) == true)
        #expect(rig.count == 4)  // 2 at start, 2 in the one pass
        rig.advance(Self.second)
        #expect(w.turn(rig.engine, maxWaitMs: 0) == false)
        #expect(rig.count == 4)
    }

    @Test func otherMessagesTriggerNoPassAndAnOverflowTriggersAFullOne() throws {
        let rig = try Rig()
        let w = rig.watcher()
        w.turn(rig.engine, maxWaitMs: 0)
        rig.notify([clvs_nlmsg_noop, clvs_rtm_newneigh])
        w.turn(rig.engine, maxWaitMs: 0)
        rig.advance(Self.second)
        #expect(w.turn(rig.engine, maxWaitMs: 0) == false)
        #expect(rig.count == 2)

        // The kernel's ENOBUFS: notifications were lost, every address is looked up again.
        rig.overflowNext.withLock { $0 = true }
        rig.notify([clvs_rtm_newneigh])
        w.turn(rig.engine, maxWaitMs: 0)
        rig.advance(TunnelRouteWatcher.coalesce)
        #expect(w.turn(rig.engine, maxWaitMs: 0) == true)
        #expect(rig.count == 4)
    }

    @Test func aFailingSocketIsDroppedAfterOnePassAndTheSafetyRefreshRemains() throws {
        let rig = try Rig()
        let w = rig.watcher()
        w.turn(rig.engine, maxWaitMs: 0)
        rig.advance(TunnelRouteWatcher.spacing)
        rig.failNext.withLock { $0 = true }
        rig.notify([clvs_rtm_newroute])
        w.turn(rig.engine, maxWaitMs: 0)
        rig.advance(TunnelRouteWatcher.coalesce)
        #expect(w.turn(rig.engine, maxWaitMs: 0) == true)
        #expect(rig.count == 4)
        // The watcher closed the socket (a write to the pair is refused); the hourly pass comes.
        let message = Self.message(clvs_rtm_newroute)
        #expect(message.withUnsafeBytes { send(rig.ends.writer, $0.baseAddress, $0.count, 0) } == -1)
        rig.advance(Self.second)
        #expect(w.turn(rig.engine, maxWaitMs: 0) == false)
        #expect(rig.count == 4)
        rig.advance(3600 * Self.second)
        #expect(w.turn(rig.engine, maxWaitMs: 0) == true)
        #expect(rig.count == 6)
    }

    @Test func aTableInConstantChangeCostsOnePassPerSpacing() throws {
        let rig = try Rig()
        let w = rig.watcher()
        w.turn(rig.engine, maxWaitMs: 0)
        var passes = 0
        // A route change every 50 ms for 10 s (a flapping BGP feed).
        for _ in 0..<200 {
            rig.notify([clvs_rtm_newroute])
            if w.turn(rig.engine, maxWaitMs: 0) { passes += 1 }
            rig.advance(50_000_000)
        }
        #expect(passes >= 9 && passes <= 10)
        #expect(rig.count == 2 + 2 * passes)
    }

    @Test func theSafetyRefreshPassesWithoutNotifications() throws {
        let rig = try Rig()
        let w = rig.watcher()
        w.turn(rig.engine, maxWaitMs: 0)
        rig.advance(3599 * Self.second)
        #expect(w.turn(rig.engine, maxWaitMs: 0) == false)
        rig.advance(Self.second)
        #expect(w.turn(rig.engine, maxWaitMs: 0) == true)
        #expect(rig.count == 4)
    }

    @Test func aNewAddressIsLookedUpAtOnce() throws {
        let rig = try Rig()
        let w = rig.watcher()
        w.turn(rig.engine, maxWaitMs: 0)
        let rs3 = IPAddress("10.9.0.33")!
        try rig.engine.addDestination(Lab.vip, DestinationOptions(address: rs3, port: 80, method: .tunnel, tunnelType: .ipip))
        #expect(w.turn(rig.engine, maxWaitMs: 0) == false)
        #expect(rig.count == 3)
        #expect(rig.engine.tunnelRoute(rs3) != nil)
    }

    @Test func datagramsAreClassifiedByTheirMessages() {
        func classify(_ bytes: [UInt8]) -> RouteNotice { bytes.withUnsafeBytes { RouteNotificationSocket.classify($0) } }
        #expect(classify(Self.message(clvs_nlmsg_noop) + Self.message(clvs_rtm_newroute)) == .changed)
        #expect(classify(Self.message(clvs_rtm_newneigh)) == .none)
        // A truncated message (its length beyond the datagram) ends the walk.
        #expect(classify(Array(Self.message(clvs_rtm_newroute).dropLast())) == .none)
        #expect(classify([]) == .none)
    }

    @Test func theKernelsSocketOpensBoundToTheGroups() throws {
        // rtnetlink's notification groups need no privilege; nothing is sent.
        let socket = try RouteNotificationSocket.open()
        var address = clvs_sockaddr_nl()
        var length = socklen_t(MemoryLayout<clvs_sockaddr_nl>.size)
        try withUnsafeMutablePointer(to: &address) { p in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { s in try syscall("getsockname") { getsockname(socket.fd, s, &length) } }
        }
        #expect(address.nl_family == sa_family_t(AF_NETLINK))
        #expect(address.nl_groups == RouteNotificationSocket.groups)
        #expect(try socket.drain() != .overflowed)
    }
}
