import Testing
@testable import LVSCore
import LVSModel

/// A director engine with the seed's topology: VIP 192.168.1.100:80, real servers .31 and .32.
func seedEngine(capacity: Int = 1024, scheduler: String = "rr", persistent: UInt32? = nil,
                configure: (inout EngineConfiguration) -> Void = { _ in }) -> Engine {
    var cfg = EngineConfiguration()
    cfg.connectionCapacity = capacity
    configure(&cfg)
    let e = Engine(configuration: cfg)
    e.setInterfaces([EngineInterface(index: 2, name: "eth0", mac: FrameBuilder.directorMAC,
                                     addresses: [(IPAddress("192.168.1.21")!, 24)])])
    var o = ServiceOptions(scheduler: scheduler)
    if let p = persistent { o.flags.insert(.persistent); o.timeout = p }
    try! e.addService(vip, o)
    try! e.addDestination(vip, DestinationOptions(address: IPAddress("192.168.1.31")!, port: 80))
    try! e.addDestination(vip, DestinationOptions(address: IPAddress("192.168.1.32")!, port: 80))
    e.setNeighbour(IPAddress("192.168.1.31")!, mac: rs1MAC, interface: 2)
    e.setNeighbour(IPAddress("192.168.1.32")!, mac: rs2MAC, interface: 2)
    return e
}
let vip = ServiceKey(proto: .tcp, address: IPAddress("192.168.1.100")!, port: 80)
let rs1MAC = MACAddress("00:50:00:00:01:00")!
let rs2MAC = MACAddress("00:50:00:00:02:00")!
let second: UInt64 = 1_000_000_000

extension Engine {
    /// Processes a frame copy; returns the verdict and the frame after rewriting.
    func run(_ frame: [UInt8], at now: UInt64) -> (Verdict, [UInt8]) {
        var b = frame
        let v = b.withUnsafeMutableBytes { process($0, interface: 2, now: now) }
        return (v, b)
    }
    func syn(_ port: UInt16, from client: String = "192.168.1.12", at now: UInt64) -> (Verdict, [UInt8]) {
        run(FrameBuilder.ipv4TCP(src: client, sport: port, dst: "192.168.1.100", dport: 80, flags: TCPFlag.syn), at: now)
    }
    func dest(_ a: String) -> DestinationSnapshot {
        snapshot().services.flatMap(\.destinations).first { $0.options.address == IPAddress(a)! }!
    }
}

@Suite struct EngineTests {
    @Test func seedRoundRobinAlternatesAndRewritesOnlyMACs() {
        let e = seedEngine()
        var macs: [MACAddress] = []
        for i in 0..<4 {
            let (v, out) = e.syn(UInt16(40000 + i), at: second)
            #expect(v == .forward(interface: 2))
            macs.append(out.withUnsafeBytes { MACAddress(bytes: $0.baseAddress!) })
            #expect(out.withUnsafeBytes { MACAddress(bytes: $0.baseAddress! + 6) } == FrameBuilder.directorMAC)
            let f = out.withUnsafeBytes { FrameParser.parse($0) }
            #expect(f.destination == IPAddress("192.168.1.100")! && f.source == IPAddress("192.168.1.12")!)
        }
        // rr starts with the newest destination (.32).
        #expect(macs == [rs2MAC, rs1MAC, rs2MAC, rs1MAC])
        #expect(e.dest("192.168.1.31").stats.conns == 2)
        #expect(e.dest("192.168.1.32").activeConns == 2)
    }

    @Test func existingConnectionStaysOnItsServerThroughItsLifecycle() {
        let e = seedEngine()
        let (_, first) = e.syn(5000, at: second)
        let chosen = first.withUnsafeBytes { MACAddress(bytes: $0.baseAddress!) }
        for flags in [TCPFlag.ack, TCPFlag.ack | TCPFlag.psh, TCPFlag.fin | TCPFlag.ack, TCPFlag.ack] {
            let (v, out) = e.run(FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 5000, dst: "192.168.1.100", dport: 80, flags: flags), at: 2 * second)
            #expect(v == .forward(interface: 2))
            #expect(out.withUnsafeBytes { MACAddress(bytes: $0.baseAddress!) } == chosen)
        }
        let conns = e.connections(now: 2 * second)
        #expect(conns.count == 1)
        #expect(conns[0].state == "FIN_WAIT")
        #expect(conns[0].expiresSeconds == 119 || conns[0].expiresSeconds == 120)
        let d = chosen == rs1MAC ? e.dest("192.168.1.31") : e.dest("192.168.1.32")
        #expect(d.activeConns == 0 && d.inactConns == 1 && d.stats.inPackets == 5)
        // FIN_WAIT expires 120 s after the last packet; the counts go back to zero.
        e.tick(now: 100 * second)
        #expect(e.connectionCount == 1)
        e.tick(now: 123 * second)
        #expect(e.connectionCount == 0)
        #expect(e.dest("192.168.1.31").inactConns == 0 && e.dest("192.168.1.32").inactConns == 0)
    }

    @Test func nonSYNWithoutConnectionPassesAndTimeoutsFollowState() {
        let e = seedEngine()
        let (v, _) = e.run(FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 7, dst: "192.168.1.100", dport: 80, flags: TCPFlag.ack), at: second)
        #expect(v == .pass)
        _ = e.syn(7, at: second)
        #expect(e.connections(now: second)[0].state == "SYN_RECV")
        _ = e.run(FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 7, dst: "192.168.1.100", dport: 80, flags: TCPFlag.rst), at: 2 * second)
        // RST in SYN_RECV stays SYN_RECV (input-only table); an ACK then RST closes.
        _ = e.run(FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 7, dst: "192.168.1.100", dport: 80, flags: TCPFlag.ack), at: 2 * second)
        _ = e.run(FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 7, dst: "192.168.1.100", dport: 80, flags: TCPFlag.rst), at: 3 * second)
        #expect(e.connections(now: 3 * second)[0].state == "CLOSE")
        e.tick(now: 14 * second)
        #expect(e.connectionCount == 0)
    }

    @Test func connReuseAfterTimeWaitReschedules() {
        let e = seedEngine()
        _ = e.syn(9, at: second)
        for flags in [TCPFlag.ack, TCPFlag.fin, TCPFlag.ack] {
            _ = e.run(FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 9, dst: "192.168.1.100", dport: 80, flags: flags), at: second)
        }
        // FIN_WAIT + SYN (conn_reuse_mode 1): same server.
        let (_, a) = e.syn(9, at: 2 * second)
        #expect(a.withUnsafeBytes { MACAddress(bytes: $0.baseAddress!) } == rs2MAC)
        #expect(e.connectionCount == 1)
    }

    @Test func udpConnectionsAreInactiveAndExpire() {
        let e = seedEngine()
        try! e.addService(ServiceKey(proto: .udp, address: IPAddress("192.168.1.100")!, port: 53), ServiceOptions(scheduler: "rr"))
        try! e.addDestination(ServiceKey(proto: .udp, address: IPAddress("192.168.1.100")!, port: 53), DestinationOptions(address: IPAddress("192.168.1.31")!, port: 53))
        let (v, _) = e.run(FrameBuilder.ipv4UDP(src: "192.168.1.12", sport: 3333, dst: "192.168.1.100", dport: 53), at: second)
        #expect(v == .forward(interface: 2))
        let c = e.connections(now: second)
        #expect(c.count == 1 && c[0].state == "UDP" && c[0].expiresSeconds == 300)
        let d = e.snapshot().services.first { $0.key.proto == .udp }!.destinations[0]
        #expect(d.activeConns == 0 && d.inactConns == 1)
        e.tick(now: 302 * second)
        #expect(e.connectionCount == 0)
    }

    @Test func persistenceKeepsClientOnOneServerAndTemplatesOutliveConnections() {
        let e = seedEngine(persistent: 360)
        let (_, a) = e.syn(1000, at: second)
        let (_, b) = e.syn(1001, at: second)
        #expect(a.withUnsafeBytes { MACAddress(bytes: $0.baseAddress!) } == b.withUnsafeBytes { MACAddress(bytes: $0.baseAddress!) })
        let conns = e.connections(now: second)
        let template = conns.first { $0.isTemplate }!
        #expect(template.clientPort == 0 && template.virtualPort == 80 && template.state == "NONE")
        #expect(conns.filter { !$0.isTemplate }.count == 2)
        #expect(e.snapshot().services[0].destinations.map(\.persistConns).reduce(0, +) == 1)
        // Another client is scheduled on its own.
        let (_, c) = e.syn(1002, from: "192.168.1.13", at: second)
        #expect(c.withUnsafeBytes { MACAddress(bytes: $0.baseAddress!) } != a.withUnsafeBytes { MACAddress(bytes: $0.baseAddress!) })
        // ESTABLISHED marks the template ASSURED.
        _ = e.run(FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 1000, dst: "192.168.1.100", dport: 80, flags: TCPFlag.ack), at: second)
        #expect(e.connections(now: second).first { $0.isTemplate && $0.clientAddress == IPAddress("192.168.1.12")! }!.state == "ASSURED")
    }

    @Test func persistenceNetmaskGroupsClients() {
        let e = Engine()
        e.setInterfaces([EngineInterface(index: 2, name: "eth0", mac: FrameBuilder.directorMAC, addresses: [])])
        try! e.addService(vip, ServiceOptions(scheduler: "rr", flags: .persistent, timeout: 60, netmask: 0xFFFF_FF00))
        for a in ["192.168.1.31", "192.168.1.32"] {
            try! e.addDestination(vip, DestinationOptions(address: IPAddress(a)!, port: 80))
        }
        e.setNeighbour(IPAddress("192.168.1.31")!, mac: rs1MAC, interface: 2)
        e.setNeighbour(IPAddress("192.168.1.32")!, mac: rs2MAC, interface: 2)
        let (_, a) = e.syn(1, from: "10.1.1.5", at: second)
        let (_, b) = e.syn(2, from: "10.1.1.77", at: second)
        #expect(Array(a[0..<6]) == Array(b[0..<6]))
        #expect(e.connections(now: second).first { $0.isTemplate }!.clientAddress == IPAddress("10.1.1.0")!)
    }

    @Test func tableFullRefusesNewButKeepsExisting() {
        let e = seedEngine(capacity: 4)
        for p in 0..<4 { #expect(e.syn(UInt16(100 + p), at: second).0 == .forward(interface: 2)) }
        #expect(e.syn(200, at: second).0 == .drop(.tableFull))
        #expect(e.counters.drops[Int(DropReason.tableFull.rawValue)] == 1)
        let (v, _) = e.run(FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 100, dst: "192.168.1.100", dport: 80, flags: TCPFlag.ack), at: second)
        #expect(v == .forward(interface: 2))
        // After expiry there is room again.
        e.tick(now: 200 * second)
        #expect(e.syn(200, at: 200 * second).0 == .forward(interface: 2))
    }

    @Test func weightZeroQuiescesAndDeletedDestinationDropsItsConnections() {
        let e = seedEngine()
        _ = e.syn(1, at: second) // → .32
        try! e.editDestination(vip, DestinationOptions(address: IPAddress("192.168.1.32")!, port: 80, weight: 0))
        for p in 2..<6 { #expect(e.syn(UInt16(p), at: second).1.withUnsafeBytes { MACAddress(bytes: $0.baseAddress!) } == rs1MAC) }
        // Existing connection to the quiesced server keeps working.
        let ack = FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 1, dst: "192.168.1.100", dport: 80, flags: TCPFlag.ack)
        #expect(e.run(ack, at: second).1.withUnsafeBytes { MACAddress(bytes: $0.baseAddress!) } == rs2MAC)
        try! e.deleteDestination(vip, address: IPAddress("192.168.1.32")!, port: 80)
        #expect(e.run(ack, at: second).0 == .drop(.destinationUnavailable))
        #expect(e.snapshot().services[0].destinations.count == 1)
    }

    /// ip_vs_in_hook's order: a SYN that conn_reuse_mode lets start afresh is scheduled anew even
    /// when its old entry's destination was deleted; only then does an unavailable destination drop.
    @Test func synReusingAClosedEntryOfADeletedDestinationIsScheduledAnew() {
        let e = seedEngine()
        func tcp(_ port: UInt16, _ flags: UInt8) -> [UInt8] {
            FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: port, dst: "192.168.1.100", dport: 80, flags: flags)
        }
        _ = e.syn(7, at: second) // → .32 (rr starts with the newest)
        _ = e.run(tcp(7, TCPFlag.ack), at: second)
        _ = e.run(tcp(7, TCPFlag.rst), at: second) // ESTABLISHED + RST → CLOSE
        _ = e.syn(8, at: second) // → .31
        _ = e.syn(9, at: second) // → .32
        _ = e.run(tcp(9, TCPFlag.ack), at: second)
        _ = e.run(tcp(9, TCPFlag.fin), at: second) // → FIN_WAIT
        #expect(e.connections(now: second).first { $0.clientPort == 7 }?.state == "CLOSE")
        #expect(e.connections(now: second).first { $0.clientPort == 9 }?.state == "FIN_WAIT")
        try! e.deleteDestination(vip, address: IPAddress("192.168.1.32")!, port: 80)
        // CLOSE + SYN (conn_reuse_mode 1): the old entry goes, the SYN goes to the remaining server.
        let (v, out) = e.syn(7, at: 2 * second)
        #expect(v == .forward(interface: 2))
        #expect(out.withUnsafeBytes { MACAddress(bytes: $0.baseAddress!) } == rs1MAC)
        #expect(e.connections(now: 2 * second).first { $0.clientPort == 7 }?.state == "SYN_RECV")
        // FIN_WAIT is not reused with mode 1: the SYN meets the deleted destination and is dropped.
        #expect(e.syn(9, at: 2 * second).0 == .drop(.destinationUnavailable))
        #expect(e.connections(now: 2 * second).first { $0.clientPort == 9 }?.state == "FIN_WAIT")
    }

    /// expire_nodest_conn: a SYN on any entry whose destination has weight 0 is scheduled afresh
    /// (without it, the SYN stays with the quiesced server).
    @Test func expireNodestConnReschedulesASYNOnAQuiescedDestination() {
        for expire in [false, true] {
            let e = seedEngine { $0.expireNodestConn = expire }
            _ = e.syn(1, at: second) // → .32
            _ = e.run(FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 1, dst: "192.168.1.100", dport: 80, flags: TCPFlag.ack), at: second)
            try! e.editDestination(vip, DestinationOptions(address: IPAddress("192.168.1.32")!, port: 80, weight: 0))
            let (v, out) = e.syn(1, at: 2 * second)
            #expect(v == .forward(interface: 2))
            let mac = out.withUnsafeBytes { MACAddress(bytes: $0.baseAddress!) }
            #expect(mac == (expire ? rs1MAC : rs2MAC), "expire_nodest_conn=\(expire)")
            let c = e.connections(now: 2 * second)
            #expect(c.count == 1)
            #expect(c.first?.state == (expire ? "SYN_RECV" : "ESTABLISHED"), "expire_nodest_conn=\(expire)")
        }
    }

    @Test func noDestinationAndUnknownTraffic() {
        let e = Engine()
        try! e.addService(vip, ServiceOptions(scheduler: "rr"))
        #expect(e.syn(1, at: second).0 == .drop(.noDestination))
        let other = FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 1, dst: "192.168.1.21", dport: 22, flags: TCPFlag.syn)
        #expect(e.run(other, at: second).0 == .pass)
        var junk: [UInt8] = [1, 2, 3]
        #expect(junk.withUnsafeMutableBytes { e.process($0, interface: 2, now: 0) } == .drop(.malformed))
    }

    @Test func answersARPForVIPAndLearnsRealServerMACs() {
        let e = Engine()
        e.setInterfaces([EngineInterface(index: 2, name: "eth0", mac: FrameBuilder.directorMAC, addresses: [(IPAddress("192.168.1.21")!, 24)])])
        try! e.addService(vip, ServiceOptions(scheduler: "rr"))
        try! e.addDestination(vip, DestinationOptions(address: IPAddress("192.168.1.31")!, port: 80))
        // Before resolution the packet is dropped (counted), and a request is pending.
        #expect(e.syn(1, at: second).0 == .drop(.neighbourUnresolved))
        let frames = e.pendingFrames(now: second)
        #expect(frames.contains { $0.bytes.count == 42 && Array($0.bytes[38..<42]) == FrameBuilder.v4("192.168.1.31") })
        #expect(frames.contains { Array($0.bytes[28..<32]) == FrameBuilder.v4("192.168.1.100") }) // gratuitous ARP
        let (v, _) = e.run(FrameBuilder.arpReply(senderMAC: rs1MAC, senderIP: "192.168.1.31", targetIP: "192.168.1.21"), at: second)
        #expect(v == .pass)
        #expect(e.syn(2, at: second).0 == .forward(interface: 2))
        let (r, reply) = e.run(FrameBuilder.arpRequest(senderIP: "192.168.1.12", targetIP: "192.168.1.100"), at: second)
        #expect(r == .reply(length: 60))
        #expect(Array(reply[0..<6]) == FrameBuilder.mac(FrameBuilder.clientMAC))
        #expect(reply[21] == 2)
        #expect(Array(reply[22..<28]) == FrameBuilder.mac(FrameBuilder.directorMAC))
        #expect(Array(reply[28..<32]) == FrameBuilder.v4("192.168.1.100"))
        #expect(Array(reply[38..<42]) == FrameBuilder.v4("192.168.1.12"))
        // ARP for other addresses is the kernel's.
        #expect(e.run(FrameBuilder.arpRequest(senderIP: "192.168.1.12", targetIP: "192.168.1.21"), at: second).0 == .pass)
    }

    @Test func statsAndEstimatorFollowTheKernelFormula() {
        let e = seedEngine()
        for p in 0..<10 { _ = e.syn(UInt16(p), at: second) }
        var est = RateEstimator()
        var s = StatsCounters()
        s.conns = 10; s.inPackets = 10; s.inBytes = 400
        est.sample(s)
        // cps_est = (10 << 9) >> 2 = 1280; reported (1280 + 511) >> 10 = 1.
        #expect(est.rates.cps == 1)
        #expect(est.rates.inBPS == ((400 << 4) >> 2 + 0xF) >> 5)
        e.tick(now: 3 * second)
        #expect(e.snapshot().services[0].stats.conns == 10)
        try! e.zero(nil)
        #expect(e.snapshot().services[0].stats == StatsSnapshot())
        #expect(e.snapshot().services[0].destinations.allSatisfy { $0.stats == StatsSnapshot() })
    }

    @Test func controlErrorsMatchTheKernel() {
        let e = seedEngine()
        #expect(throws: IPVSError.serviceExists) { try e.addService(vip, ServiceOptions()) }
        #expect(throws: IPVSError.schedulerNotFound) {
            try e.addService(ServiceKey(proto: .udp, address: IPAddress("192.168.1.100")!, port: 1), ServiceOptions(scheduler: "bogus"))
        }
        let missing = ServiceKey(proto: .tcp, address: IPAddress("10.9.9.9")!, port: 1)
        #expect(throws: IPVSError.noSuchService) { try e.editService(missing, ServiceOptions()) }
        #expect(throws: IPVSError.noSuchService) { try e.addDestination(missing, DestinationOptions(address: IPAddress("10.0.0.1")!, port: 1)) }
        #expect(throws: IPVSError.destinationExists) { try e.addDestination(vip, DestinationOptions(address: IPAddress("192.168.1.31")!, port: 80)) }
        #expect(throws: IPVSError.noSuchDestination) { try e.deleteDestination(vip, address: IPAddress("192.168.1.99")!, port: 80) }
        #expect(throws: IPVSError.outOfRange) { try e.addDestination(vip, DestinationOptions(address: IPAddress("192.168.1.40")!, port: 80, weight: -1)) }
        #expect(throws: IPVSError.outOfRange) { try e.addDestination(vip, DestinationOptions(address: IPAddress("192.168.1.40")!, port: 80, lowerThreshold: 5)) }
        #expect(throws: IPVSError.invalid) { try e.addDestination(vip, DestinationOptions(address: IPAddress("224.0.0.1")!, port: 80)) }
        #expect(throws: IPVSError.invalid) { try e.addDestination(vip, DestinationOptions(address: IPAddress("2001:db8::1")!, port: 80)) }
        // Nothing configured was lost.
        #expect(e.snapshot().services.count == 1 && e.snapshot().services[0].destinations.count == 2)
    }

    @Test func thresholdsSetAndClearOverload() {
        let e = seedEngine()
        try! e.editDestination(vip, DestinationOptions(address: IPAddress("192.168.1.32")!, port: 80, upperThreshold: 1))
        _ = e.syn(1, at: second) // .32 → overloaded
        for p in 2..<5 { #expect(e.syn(UInt16(p), at: second).1.withUnsafeBytes { MACAddress(bytes: $0.baseAddress!) } == rs1MAC) }
    }

    @Test func ipv6DirectRouting() {
        let e = Engine()
        e.setInterfaces([EngineInterface(index: 2, name: "eth0", mac: FrameBuilder.directorMAC, addresses: [(IPAddress("2001:db8:1::21")!, 64)])])
        let key = ServiceKey(proto: .tcp, address: IPAddress("2001:db8:1::100")!, port: 80)
        try! e.addService(key, ServiceOptions(scheduler: "rr", netmask: 128))
        try! e.addDestination(key, DestinationOptions(address: IPAddress("2001:db8:1::31")!, port: 80))
        e.setNeighbour(IPAddress("2001:db8:1::31")!, mac: rs1MAC, interface: 2)
        let (v, out) = e.run(FrameBuilder.ipv6TCP(src: "2001:db8:1::12", sport: 5, dst: "2001:db8:1::100", dport: 80, flags: TCPFlag.syn), at: second)
        #expect(v == .forward(interface: 2))
        #expect(Array(out[0..<6]) == FrameBuilder.mac(rs1MAC))
        #expect(out[21] == 63) // hop limit decremented
    }
}

@Suite struct ShardTests {
    /// Two workers share one engine: scheduling, persistence and counts are global.
    @Test func roundRobinAndPersistenceAreGlobalAcrossShards() {
        let e = seedEngine()
        let other = e.makeShard()
        func mac(_ b: [UInt8]) -> MACAddress { b.withUnsafeBytes { MACAddress(bytes: $0.baseAddress!) } }
        var macs: [MACAddress] = []
        for i in 0..<4 {
            var b = FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: UInt16(100 + i), dst: "192.168.1.100", dport: 80, flags: TCPFlag.syn)
            let shard = i % 2 == 0 ? e.primary! : other
            #expect(b.withUnsafeMutableBytes { shard.process($0, interface: 2, now: second) } == .forward(interface: 2))
            macs.append(mac(b))
        }
        #expect(macs == [rs2MAC, rs1MAC, rs2MAC, rs1MAC])
        let snap = e.snapshot()
        #expect(snap.services[0].stats.conns == 4)
        #expect(snap.services[0].destinations.map(\.activeConns) == [2, 2])
        #expect(e.connectionCount == 4)
        // Expiry in both shards brings the shared counts back to zero.
        e.tick(now: 200 * second)
        other.tick(now: 200 * second)
        #expect(e.snapshot().services[0].destinations.map(\.activeConns) == [0, 0])
        #expect(e.connectionCount == 0)
    }

    @Test func persistenceTemplatesAreShared() {
        let e = seedEngine(persistent: 300)
        let other = e.makeShard()
        var a = FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 1, dst: "192.168.1.100", dport: 80, flags: TCPFlag.syn)
        var b = FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 2, dst: "192.168.1.100", dport: 80, flags: TCPFlag.syn)
        _ = a.withUnsafeMutableBytes { e.primary.process($0, interface: 2, now: second) }
        _ = b.withUnsafeMutableBytes { other.process($0, interface: 2, now: second) }
        #expect(Array(a[0..<6]) == Array(b[0..<6]))
        #expect(e.templateConnections(now: second).count == 1)
    }

    /// Two threads forward on two shards while a third edits the configuration: counts stay exact.
    @Test func concurrentShardsAndControl() async {
        let e = seedEngine(capacity: 1 << 16)
        let shards = [e.primary!, e.makeShard()]
        let perShard = 20_000
        await withTaskGroup(of: Void.self) { group in
            for (n, shard) in shards.enumerated() {
                group.addTask {
                    for i in 0..<perShard {
                        let src = "10.\(n).\(i / 250).\(i % 250 + 1)"
                        var syn = FrameBuilder.ipv4TCP(src: src, sport: 1000, dst: "192.168.1.100", dport: 80, flags: TCPFlag.syn)
                        _ = syn.withUnsafeMutableBytes { shard.process($0, interface: 2, now: second) }
                        var ack = FrameBuilder.ipv4TCP(src: src, sport: 1000, dst: "192.168.1.100", dport: 80, flags: TCPFlag.ack)
                        _ = ack.withUnsafeMutableBytes { shard.process($0, interface: 2, now: second) }
                    }
                }
            }
            group.addTask {
                for w in 0..<200 {
                    try? e.editDestination(vip, DestinationOptions(address: IPAddress("192.168.1.31")!, port: 80, weight: Int32(w % 3 + 1)))
                    _ = e.snapshot()
                }
            }
        }
        let snap = e.snapshot()
        #expect(snap.services[0].stats.conns == UInt64(2 * perShard))
        #expect(snap.services[0].stats.inPackets == UInt64(4 * perShard))
        #expect(snap.services[0].destinations.map(\.activeConns).reduce(0, +) == UInt32(2 * perShard))
    }
}

@Suite struct OutboxTests {
    /// The first SYN after a destination is added waits for its MAC instead of being lost.
    @Test func firstPacketWaitsForTheRealServerMAC() {
        let e = Engine()
        e.setInterfaces([EngineInterface(index: 2, name: "eth0", mac: FrameBuilder.directorMAC, addresses: [(IPAddress("192.168.1.21")!, 24)])])
        try! e.addService(vip, ServiceOptions(scheduler: "rr"))
        try! e.addDestination(vip, DestinationOptions(address: IPAddress("192.168.1.31")!, port: 80))
        #expect(e.syn(1, at: second).0 == .drop(.neighbourUnresolved))
        e.tick(now: second + 20_000_000)
        #expect(e.primary.outbox.count == 0) // still unresolved: held
        _ = e.run(FrameBuilder.arpReply(senderMAC: rs1MAC, senderIP: "192.168.1.31", targetIP: "192.168.1.21"), at: second)
        e.tick(now: second + 40_000_000)
        var sent: [[UInt8]] = []
        e.primary.outbox.drain { bytes, ifindex in
            #expect(ifindex == 2)
            sent.append(Array(bytes))
        }
        #expect(sent.count == 1)
        #expect(Array(sent[0][0..<6]) == FrameBuilder.mac(rs1MAC))
        #expect(Array(sent[0][6..<12]) == FrameBuilder.mac(FrameBuilder.directorMAC))
        #expect(sent[0][47] == TCPFlag.syn)
        #expect(e.snapshot().services[0].destinations[0].activeConns == 1)
    }

    @Test func heldFramesExpireAfterOneSecond() {
        let e = Engine()
        e.setInterfaces([EngineInterface(index: 2, name: "eth0", mac: FrameBuilder.directorMAC, addresses: [])])
        try! e.addService(vip, ServiceOptions(scheduler: "rr"))
        try! e.addDestination(vip, DestinationOptions(address: IPAddress("192.168.1.31")!, port: 80))
        _ = e.syn(1, at: second)
        e.tick(now: 3 * second)
        _ = e.run(FrameBuilder.arpReply(senderMAC: rs1MAC, senderIP: "192.168.1.31", targetIP: "192.168.1.21"), at: 3 * second)
        e.tick(now: 3 * second + 20_000_000)
        #expect(e.primary.outbox.count == 0)
    }

    /// No real server: the client gets ICMP port unreachable from the VIP (ip_vs_leave).
    @Test func portUnreachableWhenNoDestination() {
        let e = Engine()
        e.setInterfaces([EngineInterface(index: 2, name: "eth0", mac: FrameBuilder.directorMAC, addresses: [])])
        try! e.addService(vip, ServiceOptions(scheduler: "rr"))
        #expect(e.syn(4242, at: second).0 == .drop(.noDestination))
        var sent: [[UInt8]] = []
        e.primary.outbox.drain { bytes, _ in sent.append(Array(bytes)) }
        #expect(sent.count == 1)
        let f = sent[0].withUnsafeBytes { FrameParser.parse($0) }
        #expect(f.kind == .ipv4 && f.proto == 1 && f.isICMPError)
        #expect(f.icmpType == 3 && f.icmpCode == 3)
        #expect(f.source == IPAddress("192.168.1.100")! && f.destination == IPAddress("192.168.1.12")!)
        #expect(f.innerSourcePort == 4242 && f.innerDestinationPort == 80)
        #expect(Array(sent[0][0..<6]) == FrameBuilder.mac(FrameBuilder.clientMAC))
        #expect(sent[0].withUnsafeBytes { InternetChecksum.ipv4HeaderValid($0.baseAddress! + 14, headerLength: 20) })
        #expect(sent[0].withUnsafeBytes { InternetChecksum.finish(InternetChecksum.sum($0.baseAddress! + 34, count: $0.count - 34)) } == 0)
    }
}

@Suite struct NoARPTests {
    /// A backup director (`lvsd --no-arp`) neither answers ARP for the VIPs nor announces them.
    @Test func noARPAnswersOrAnnouncements() {
        var cfg = EngineConfiguration()
        cfg.answerNeighbourRequests = false
        let e = Engine(configuration: cfg)
        e.setInterfaces([EngineInterface(index: 2, name: "eth0", mac: FrameBuilder.directorMAC, addresses: [(IPAddress("192.168.1.21")!, 24)])])
        try! e.addService(vip, ServiceOptions(scheduler: "rr"))
        #expect(!e.pendingFrames(now: second).contains { Array($0.bytes[28..<32]) == FrameBuilder.v4("192.168.1.100") })
        #expect(e.run(FrameBuilder.arpRequest(senderIP: "192.168.1.12", targetIP: "192.168.1.100"), at: second).0 == .pass)
    }
}

@Suite struct LimitTests {
    /// Services and destinations are bounded; at the limit the kernel's ENOMEM answer, nothing lost.
    @Test func serviceAndDestinationLimits() {
        var cfg = EngineConfiguration()
        cfg.maxServices = 2
        cfg.maxDestinations = 3
        cfg.connectionCapacity = 64
        let e = Engine(configuration: cfg)
        let a = ServiceKey(proto: .tcp, address: IPAddress("10.0.0.1")!, port: 80)
        let b = ServiceKey(proto: .tcp, address: IPAddress("10.0.0.2")!, port: 80)
        try! e.addService(a, ServiceOptions(scheduler: "rr"))
        try! e.addService(b, ServiceOptions(scheduler: "rr"))
        #expect(throws: IPVSError.noMemory) {
            try e.addService(ServiceKey(proto: .tcp, address: IPAddress("10.0.0.3")!, port: 80), ServiceOptions(scheduler: "rr"))
        }
        for i in 1...3 { try! e.addDestination(a, DestinationOptions(address: IPAddress("10.1.0.\(i)")!, port: 80)) }
        #expect(throws: IPVSError.noMemory) { try e.addDestination(b, DestinationOptions(address: IPAddress("10.1.0.9")!, port: 80)) }
        #expect(e.snapshot().services.map(\.destinations.count).sorted() == [0, 3])
        // A freed slot can be used again.
        try! e.deleteDestination(a, address: IPAddress("10.1.0.1")!, port: 80)
        try! e.addDestination(b, DestinationOptions(address: IPAddress("10.1.0.9")!, port: 80))
        try! e.deleteService(b)
        try! e.addService(ServiceKey(proto: .udp, address: IPAddress("10.0.0.3")!, port: 53), ServiceOptions(scheduler: "rr"))
    }

    /// Persistence templates have their own bound: at the limit a new client is refused (counted
    /// as table-full); clients with a template keep being served.
    @Test func templateTableFull() {
        var cfg = EngineConfiguration()
        cfg.connectionCapacity = 1024 // templates: max(1024, capacity / 4) = 1024
        let e = Engine(configuration: cfg)
        e.setInterfaces([EngineInterface(index: 2, name: "eth0", mac: FrameBuilder.directorMAC, addresses: [])])
        try! e.addService(vip, ServiceOptions(scheduler: "rr", flags: .persistent, timeout: 300))
        try! e.addDestination(vip, DestinationOptions(address: IPAddress("192.168.1.31")!, port: 80))
        e.setNeighbour(IPAddress("192.168.1.31")!, mac: rs1MAC, interface: 2)
        var forwarded = 0
        var full = 0
        for i in 0..<1100 {
            let (v, _) = e.syn(1000, from: "10.9.\(i / 250).\(i % 250 + 1)", at: second)
            if v == .forward(interface: 2) { forwarded += 1 } else if v == .drop(.tableFull) { full += 1 }
        }
        // 1024 entries in the shard's table too (capacity 1024): the connection table fills first.
        #expect(forwarded == 1024 && full == 76)
        #expect(e.counters.drops[Int(DropReason.tableFull.rawValue)] == 76)
    }
}

@Suite struct FwmarkTests {
    /// Firewall-mark services: lvsd's own rules classify frames; templates are keyed by the mark.
    @Test func markRulesSelectTheFwmarkService() {
        let e = Engine()
        e.setInterfaces([EngineInterface(index: 2, name: "eth0", mac: FrameBuilder.directorMAC, addresses: [])])
        e.setMarkRules([MarkRule(destination: IPAddress("192.168.1.100")!, prefixLength: 32, proto: .tcp, portLow: 80, portHigh: 443, mark: 1)])
        let fw = ServiceKey(fwmark: 1, ipv6: false)
        try! e.addService(fw, ServiceOptions(scheduler: "rr", flags: .persistent, timeout: 60))
        try! e.addDestination(fw, DestinationOptions(address: IPAddress("192.168.1.31")!, port: 0))
        try! e.addDestination(fw, DestinationOptions(address: IPAddress("192.168.1.32")!, port: 0))
        e.setNeighbour(IPAddress("192.168.1.31")!, mac: rs1MAC, interface: 2)
        e.setNeighbour(IPAddress("192.168.1.32")!, mac: rs2MAC, interface: 2)
        var a = FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 1, dst: "192.168.1.100", dport: 80, flags: TCPFlag.syn)
        var b = FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 2, dst: "192.168.1.100", dport: 443, flags: TCPFlag.syn)
        var c = FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 3, dst: "192.168.1.100", dport: 22, flags: TCPFlag.syn)
        #expect(a.withUnsafeMutableBytes { e.process($0, interface: 2, now: second) } == .forward(interface: 2))
        #expect(b.withUnsafeMutableBytes { e.process($0, interface: 2, now: second) } == .forward(interface: 2))
        #expect(c.withUnsafeMutableBytes { e.process($0, interface: 2, now: second) } == .pass) // port 22: no rule
        #expect(Array(a[0..<6]) == Array(b[0..<6])) // one template for the mark: same server for 80 and 443
        let t = e.connections(now: second).first { $0.isTemplate }!
        #expect(t.protocolName == "IP" && t.virtualAddress == IPAddress(ipv4: 1) && t.virtualPort == 0)
        let conns = e.connections(now: second).filter { !$0.isTemplate }
        #expect(Set(conns.map(\.destinationPort)) == [80, 443]) // port-0 destinations keep the packet's port
    }
}
