import Testing
@testable import LVSCore
import LVSModel

/// The SYN-flood defence (issue 13 item 6) at the table's limit: drop_entry, secure_tcp, drop_packet.
@Suite struct DefenseTests {
    static func engine(capacity: Int, _ set: (inout DefenseConfiguration) -> Void) -> Engine {
        seedEngine(capacity: capacity) { set(&$0.defense) }
    }

    static func tcp(_ e: Engine, _ client: String, _ port: UInt16, _ flags: UInt8, at now: UInt64) -> Verdict {
        e.run(FrameBuilder.ipv4TCP(src: client, sport: port, dst: "192.168.1.100", dport: 80, flags: flags), at: now).0
    }

    static func spoofedSYN(_ e: Engine, _ n: Int, at now: UInt64) -> Verdict {
        tcp(e, "10.99.\(n / 250).\(n % 250 + 1)", UInt16(1024 + n % 60000), TCPFlag.syn, at: now)
    }

    /// A full table of spoofed half-open entries: drop_entry lets every new client in by evicting
    /// one, while the established connections stay and keep their real server.
    @Test func fullTableEvictsHalfOpenEntriesNeverEstablishedOnes() {
        let e = Self.engine(capacity: 16) { $0.dropEntry = .automatic }
        var rs: [UInt16: [UInt8]] = [:]
        for p: UInt16 in 1...4 {
            let (v, out) = e.syn(p, at: second)
            #expect(v == .forward(interface: 2))
            rs[p] = Array(out[0..<6])
            #expect(Self.tcp(e, "192.168.1.12", p, TCPFlag.ack, at: second) == .forward(interface: 2))
        }
        for n in 0..<12 { #expect(Self.spoofedSYN(e, n, at: second) == .forward(interface: 2)) }
        #expect(e.connectionCount == 16)
        // Full: new clients still get in, 20 times over, while the flood goes on (each client
        // ends with a RST: CLOSE entries may be evicted too; FIN_WAIT ones may not).
        for n in 12..<32 {
            #expect(e.syn(UInt16(100 + n), from: "192.168.1.13", at: second).0 == .forward(interface: 2))
            #expect(Self.tcp(e, "192.168.1.13", UInt16(100 + n), TCPFlag.ack, at: second) == .forward(interface: 2))
            #expect(Self.tcp(e, "192.168.1.13", UInt16(100 + n), TCPFlag.rst, at: second) == .forward(interface: 2))
            #expect(Self.spoofedSYN(e, n, at: second) == .forward(interface: 2))
        }
        #expect(e.counters.dropEntryEvictions == 40)
        #expect(e.counters.drops[Int(DropReason.tableFull.rawValue)] == 0)
        // The established connections were never evicted: same real server, still ESTABLISHED.
        for p: UInt16 in 1...4 {
            let (v, out) = e.run(FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: p, dst: "192.168.1.100", dport: 80, flags: TCPFlag.ack), at: second)
            #expect(v == .forward(interface: 2))
            #expect(Array(out[0..<6]) == rs[p])
        }
        let established = e.connections(now: second).filter { $0.state == "ESTABLISHED" }
        #expect(established.count == 4)
        #expect(e.connectionCount == 16)
    }

    /// A table full of ESTABLISHED connections (and one of UDP entries) has nothing to evict: the new
    /// connection is refused as before, counted as table-full.
    @Test func nothingEvictableMeansTableFull() {
        let e = Self.engine(capacity: 4) { $0.dropEntry = .always }
        for p: UInt16 in 1...4 {
            _ = e.syn(p, at: second)
            _ = Self.tcp(e, "192.168.1.12", p, TCPFlag.ack, at: second)
        }
        #expect(e.syn(9, at: second).0 == .drop(.tableFull))
        #expect(e.counters.dropEntryEvictions == 0)
        #expect(e.connections(now: second).filter { $0.state == "ESTABLISHED" }.count == 4)

        let u = Self.engine(capacity: 4) { $0.dropEntry = .always }
        let udp = ServiceKey(proto: .udp, address: IPAddress("192.168.1.100")!, port: 53)
        try! u.addService(udp, ServiceOptions(scheduler: "rr"))
        try! u.addDestination(udp, DestinationOptions(address: IPAddress("192.168.1.31")!, port: 53))
        for p: UInt16 in 1...4 {
            #expect(u.run(FrameBuilder.ipv4UDP(src: "10.99.0.1", sport: p, dst: "192.168.1.100", dport: 53), at: second).0 == .forward(interface: 2))
        }
        #expect(u.syn(9, at: second).0 == .drop(.tableFull))
    }

    /// The rover evicts close to oldest first: a client's half-open entry survives as many
    /// spoofed SYNs as the table holds evictable entries (here at least 54 of 64), so its ACK (one
    /// round trip later) still finds it.
    @Test func aLegitimateHalfOpenEntrySurvivesTheFlood() {
        let e = Self.engine(capacity: 64) { $0.dropEntry = .automatic }
        for n in 0..<64 { _ = Self.spoofedSYN(e, n, at: second) }
        for round in 0..<10 {
            let port = UInt16(2000 + round)
            #expect(e.syn(port, at: second).0 == .forward(interface: 2))
            for n in 0..<50 { #expect(Self.spoofedSYN(e, 64 + round * 50 + n, at: second) == .forward(interface: 2)) }
            #expect(Self.tcp(e, "192.168.1.12", port, TCPFlag.ack, at: second) == .forward(interface: 2))
            #expect(e.connections(now: second).first { $0.clientPort == port }?.state == "ESTABLISHED")
        }
    }

    /// The rover is bounded per new connection (1024 entries): behind a longer run of entries it
    /// may not evict, a new connection would be refused. The shard's tick moves it past the run.
    @Test func theTickMovesTheRoverPastEntriesItMayNotEvict() {
        let e = Self.engine(capacity: 2048) { $0.dropEntry = .automatic }
        for p: UInt16 in 0..<1500 {
            _ = e.syn(1000 + p, at: second)
            _ = Self.tcp(e, "192.168.1.12", 1000 + p, TCPFlag.ack, at: second)
        }
        for n in 0..<548 { _ = Self.spoofedSYN(e, n, at: second) }
        #expect(e.connectionCount == 2048)
        e.tick(now: second)
        #expect(e.syn(9, from: "192.168.1.13", at: second).0 == .forward(interface: 2))
        #expect(e.counters.drops[Int(DropReason.tableFull.rawValue)] == 0)
        #expect(e.connections(now: second).filter { $0.state == "ESTABLISHED" }.count == 1500)
    }

    /// Persistent service: spoofed SYNs leave templates behind for the persistence timeout. With
    /// the templates table full, drop_entry evicts one nothing uses instead of refusing the new
    /// client; an ASSURED template (a client that reached ESTABLISHED) stays.
    @Test func fullTemplatesTableEvictsUnusedTemplatesNotAssuredOnes() {
        let e = seedEngine(capacity: 4096, persistent: 300) { $0.defense.dropEntry = .automatic }
        #expect(e.templates.capacity == 1024)
        _ = e.syn(1, from: "192.168.1.13", at: second)
        _ = Self.tcp(e, "192.168.1.13", 1, TCPFlag.ack, at: second)
        _ = Self.tcp(e, "192.168.1.13", 1, TCPFlag.rst, at: second) // CLOSE, 10 s; the template stays ASSURED
        for n in 0..<1023 { #expect(Self.spoofedSYN(e, n, at: second) == .forward(interface: 2)) }
        #expect(e.templates.count == 1024)
        e.tick(now: 62 * second) // the SYN_RECV entries are gone, their templates stay (300 s)
        #expect(e.templates.count == 1024)
        for p: UInt16 in 0..<100 {
            #expect(e.syn(2000 + p, from: "172.16.\(p / 200).\(p % 200 + 1)", at: 62 * second).0 == .forward(interface: 2))
        }
        #expect(e.counters.dropEntryTemplateEvictions == 100)
        #expect(e.counters.drops[Int(DropReason.tableFull.rawValue)] == 0)
        #expect(e.connections(now: 62 * second).contains { $0.isTemplate && $0.clientAddress == IPAddress("192.168.1.13")! })
        // Off: the full templates table refuses the new client.
        let off = seedEngine(capacity: 4096, persistent: 300)
        for n in 0..<1024 { _ = Self.spoofedSYN(off, n, at: second) }
        off.tick(now: 62 * second)
        #expect(off.syn(9, from: "172.16.9.9", at: 62 * second).0 == .drop(.tableFull))
    }

    /// Off (the engine's default, the kernel's default): a full table refuses new connections.
    @Test func offKeepsTheOldBehaviour() {
        let e = seedEngine(capacity: 8)
        for n in 0..<8 { _ = Self.spoofedSYN(e, n, at: second) }
        #expect(e.syn(7, at: second).0 == .drop(.tableFull))
        #expect(e.counters.dropEntryEvictions == 0)
        #expect(e.counters.secureTCPShortened == 0)
    }

    /// secure_tcp: once fewer than amemthresh % of the entries are free, new SYN_RECV entries get
    /// the short timeout; the earlier ones keep 60 s. ESTABLISHED timeouts are untouched.
    @Test func secureTCPShortensHalfOpenEntriesAboveTheThreshold() {
        let e = Self.engine(capacity: 100) {
            $0.secureTCP = .automatic
            $0.amemthreshPercent = 10
            $0.secureSynRecvTimeout = 3
        }
        for n in 0..<95 { _ = Self.spoofedSYN(e, n, at: second) }
        // Entries 0-89 left at least 10 entries free; 90-94 fewer.
        #expect(e.counters.secureTCPShortened == 5)
        e.tick(now: 5 * second)
        #expect(e.connectionCount == 90)
        e.tick(now: 62 * second)
        #expect(e.connectionCount == 0)
        let always = Self.engine(capacity: 100) { $0.secureTCP = .always }
        _ = always.syn(5, at: second)
        _ = always.syn(6, at: second)
        _ = Self.tcp(always, "192.168.1.12", 6, TCPFlag.ack, at: second)
        always.tick(now: 5 * second)
        #expect(always.connections(now: 5 * second).map(\.state) == ["ESTABLISHED"])
    }

    /// drop_packet: mode 3 drops one of every am_droprate new connections; automatic drops only
    /// below the threshold, more the fuller the table (everything new at full).
    @Test func dropPacketSheds() {
        let e = Self.engine(capacity: 1000) {
            $0.dropPacket = .always
            $0.amDropRate = 4
        }
        var dropped = 0
        for n in 0..<40 where Self.spoofedSYN(e, n, at: second) == .drop(.dropPacket) { dropped += 1 }
        #expect(dropped == 10)
        #expect(e.counters.drops[Int(DropReason.dropPacket.rawValue)] == 10)

        let a = Self.engine(capacity: 100) {
            $0.dropPacket = .automatic
            $0.amemthreshPercent = 10
        }
        var verdicts: [Verdict] = []
        for n in 0..<200 { verdicts.append(Self.spoofedSYN(a, n, at: second)) }
        #expect(verdicts[0..<91].allSatisfy { $0 == .forward(interface: 2) })
        #expect(a.connectionCount == 100)
        #expect(verdicts[91...].contains(.drop(.dropPacket)))
        #expect(verdicts[150...].allSatisfy { $0 == .drop(.dropPacket) })
    }
}
