import Testing
@testable import LVSCore
import LVSModel

/// The forwarding method is the connection's, as in the kernel (`ip_vs_bind_dest` copies the
/// destination's `IP_VS_CONN_F_FWD_MASK` bits into the connection): `ipvsadm -e ... -m|-g|-i`
/// changes the method of new connections only, and a synced connection takes its destination's.
@Suite struct ConnectionMethodTests {
    typealias N = NATFrames
    static let client = "192.168.1.12", vip = "192.168.1.100", server = "10.0.0.11"
    static let rs = IPAddress(server)!

    /// The two-interface director of `natEngine`, with one real server 10.0.0.11:80 on eth1
    /// reached by `method` (port 80, so that DR and TUN may use it too).
    static func engine(_ method: ForwardMethod) -> (Engine, ServiceKey) {
        let e = Engine()
        e.setInterfaces([
            EngineInterface(index: N.clientSide, name: "eth0", mac: N.directorIn, addresses: [(IPAddress("192.168.1.21")!, 24)]),
            EngineInterface(index: N.serverSide, name: "eth1", mac: N.directorOut, addresses: [(IPAddress("10.0.0.1")!, 24)]),
        ])
        let key = ServiceKey(proto: .tcp, address: IPAddress(vip)!, port: 80)
        try! e.addService(key, ServiceOptions(scheduler: "rr"))
        try! e.addDestination(key, DestinationOptions(address: rs, port: 80, method: method, tunnelType: .ipip))
        e.setNeighbour(rs, mac: N.serverMAC, interface: N.serverSide)
        return (e, key)
    }

    /// `ipvsadm -e -t VIP:80 -r 10.0.0.11:80 -m|-g|-i`; the next hop is resolved again.
    static func edit(_ e: Engine, _ key: ServiceKey, to method: ForwardMethod) {
        try! e.editDestination(key, DestinationOptions(address: rs, port: 80, method: method, tunnelType: .ipip))
        e.setNeighbour(rs, mac: N.serverMAC, interface: N.serverSide)
    }

    /// A client's segment from `port` to the VIP.
    static func fromClient(_ port: UInt16, _ flags: UInt8) -> [UInt8] {
        N.segment(to: N.directorIn, from: N.clientMAC, src: client, sport: port, dst: vip, dport: 80, flags: flags)
    }

    /// The real server's reply to the client's `port`, as a NAT real server sends it (to its gateway).
    static func reply(_ port: UInt16) -> [UInt8] {
        N.segment(to: N.directorOut, from: N.serverMAC, src: server, sport: 80, dst: client, dport: port,
                  flags: TCPFlag.syn | TCPFlag.ack)
    }

    /// How a client's frame left: "DR" (MACs only), "NAT" (destination rewritten), "TUN"
    /// (encapsulated, IPIP), or the verdict.
    static func sent(_ e: Engine, _ frame: [UInt8], at now: UInt64) -> String {
        let (v, out) = e.run(frame, on: N.clientSide, at: now)
        switch v {
        case .forward(interface: N.serverSide):
            if Array(out[30..<34]) == FrameBuilder.v4(vip) { return "DR" }
            if Array(out[30..<34]) == FrameBuilder.v4(server) { return "NAT" }
            return "forwarded elsewhere"
        case .drop(.tunnelled):
            var frames: [[UInt8]] = []
            e.primary.outbox.drain { bytes, _ in frames.append(Array(bytes)) }
            guard frames.count == 1 else { return "\(frames.count) tunnelled frames" }
            let outer = frames[0].withUnsafeBytes { FrameParser.parse($0) }
            return outer.proto == 4 && outer.destination == rs ? "TUN" : "tunnelled elsewhere"
        default:
            return "\(v)"
        }
    }

    @Test func dRConnectionStaysDRAfterEditToNAT() {
        let (e, key) = Self.engine(.directRoute)
        #expect(Self.sent(e, Self.fromClient(40000, TCPFlag.syn), at: second) == "DR")
        Self.edit(e, key, to: .masquerade)
        #expect(Self.sent(e, Self.fromClient(40000, TCPFlag.ack), at: 2 * second) == "DR")
        #expect(Self.sent(e, Self.fromClient(40001, TCPFlag.syn), at: 2 * second) == "NAT")
        // The DR connection has no reply to translate: a frame like one goes to the kernel.
        #expect(e.run(Self.reply(40000), on: N.serverSide, at: 2 * second).0 == .pass)
        // The NAT one's reply comes back as the VIP.
        let (v, back) = e.run(Self.reply(40001), on: N.serverSide, at: 2 * second)
        #expect(v == .forward(interface: N.clientSide))
        #expect(Array(back[26..<30]) == FrameBuilder.v4(Self.vip))
        var methods: [(UInt32, ConnectionMethod)] = []
        e.primary.table.forEachLive { i, entry in methods.append((i, entry.method)) }
        #expect(methods.sorted { $0.0 < $1.0 }.map(\.1) == [.directRoute, .masquerade])
    }

    @Test func nATConnectionEditedToDRKeepsItsRepliesTranslated() {
        let (e, key) = Self.engine(.masquerade)
        #expect(Self.sent(e, Self.fromClient(40000, TCPFlag.syn), at: second) == "NAT")
        Self.edit(e, key, to: .directRoute)
        #expect(Self.sent(e, Self.fromClient(40000, TCPFlag.ack), at: 2 * second) == "NAT")
        let (v, back) = e.run(Self.reply(40000), on: N.serverSide, at: 2 * second)
        #expect(v == .forward(interface: N.clientSide))
        #expect(Array(back[26..<30]) == FrameBuilder.v4(Self.vip))
        #expect(e.dest(Self.server).stats.outPackets == 1)
        #expect(Self.sent(e, Self.fromClient(40001, TCPFlag.syn), at: 2 * second) == "DR")
    }

    @Test func tunnelConnectionStaysTunnelledAndDRStaysDR() {
        let (e, key) = Self.engine(.tunnel)
        #expect(Self.sent(e, Self.fromClient(40000, TCPFlag.syn), at: second) == "TUN")
        Self.edit(e, key, to: .directRoute)
        #expect(Self.sent(e, Self.fromClient(40000, TCPFlag.ack), at: 2 * second) == "TUN")
        #expect(Self.sent(e, Self.fromClient(40001, TCPFlag.syn), at: 2 * second) == "DR")
        Self.edit(e, key, to: .tunnel)
        #expect(Self.sent(e, Self.fromClient(40001, TCPFlag.ack), at: 3 * second) == "DR")
        #expect(Self.sent(e, Self.fromClient(40000, TCPFlag.ack), at: 3 * second) == "TUN")
        #expect(Self.sent(e, Self.fromClient(40002, TCPFlag.syn), at: 3 * second) == "TUN")
    }

    /// The master synced a DR connection (its flags say DR); the backup's destination is NAT:
    /// the connection is NAT here, as the kernel's backup binds it with its destination's method.
    @Test func syncedConnectionTakesTheDestinationsMethod() throws {
        let (e, _) = Self.engine(.masquerade)
        try e.startSyncBackup(backupConfig)
        let c = SyncConnection(proto: 6, flags: UInt32(ForwardMethod.directRoute.rawValue), state: UInt16(TCPState.established.rawValue),
                               clientPort: 7000, virtualPort: 80, destinationPort: 80, timeout: 900,
                               client: IPAddress(Self.client)!, virtualAddress: IPAddress(Self.vip)!, destination: Self.rs)
        for m in SyncMessageBuilder.messages([c], syncID: 0) { e.applySync(m, now: second) }
        #expect(e.synced.count == 1)
        #expect(Self.sent(e, Self.fromClient(7000, TCPFlag.ack), at: second) == "NAT")
        let (v, back) = e.run(Self.reply(7000), on: N.serverSide, at: second)
        #expect(v == .forward(interface: N.clientSide))
        #expect(Array(back[26..<30]) == FrameBuilder.v4(Self.vip))
    }

    /// The method shares the destination's word and leaves the slot alone.
    @Test func methodBitsLeaveTheSlot() {
        let table = ConnectionTable(capacity: 16)
        let key = ConnectionKey(proto: 6, client: IPAddress(Self.client)!, clientPort: 1, virtualAddress: IPAddress(Self.vip)!, virtualPort: 80)
        let i = table.insert(key, dest: 65535, method: .masquerade, stateFlags: 0, control: 0, expires: 10)!
        #expect(table[i].dest == 65535 && table[i].method == .masquerade)
        table[i].dest = 7
        #expect(table[i].dest == 7 && table[i].method == .masquerade)
        table[i].method = .tunnel
        #expect(table[i].dest == 7 && table[i].method == .tunnel)
        table[i].method = .directRoute
        #expect(table[i].destWord == 7) // DR: the word is the slot, as DR's packet path reads it
        #expect(MemoryLayout<ConnectionEntry>.size == 64)
    }
}
