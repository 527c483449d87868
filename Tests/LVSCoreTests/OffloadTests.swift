import Testing
@testable import LVSCore
import LVSModel

/// The XDP fast path's hook in the shard: what it records, and traffic reported back.
@Suite struct OffloadTests {
    func tcp(_ e: Engine, _ flags: UInt8, at now: UInt64) -> Verdict {
        e.run(FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 6000, dst: "192.168.1.100", dport: 80, flags: flags), at: now).0
    }
    func drained(_ s: EngineShard) -> [OffloadRecord] {
        var out: [OffloadRecord] = []
        s.drainOffloads { out.append($0) }
        return out
    }
    /// The seed engine with offloading on from the 2nd packet and one TCP connection (ESTABLISHED
    /// at 1 s) recorded for the fast path.
    func oneOffloaded() -> (Engine, EngineShard, [OffloadRecord]) {
        let e = seedEngine()
        let s = e.primary!
        s.offloadEnabled = true
        s.offloadAfterPackets = 2
        _ = tcp(e, TCPFlag.syn, at: second)
        _ = tcp(e, TCPFlag.ack, at: second)
        let r = drained(s)
        #expect(r.count == 1)
        return (e, s, r)
    }

    @Test func recordsEstablishedConnectionsAndTheirFIN() {
        let e = seedEngine()
        let s = e.primary!
        // Off: nothing is recorded.
        _ = tcp(e, TCPFlag.syn, at: second)
        _ = tcp(e, TCPFlag.ack, at: second)
        #expect(drained(s).isEmpty)
        s.offloadEnabled = true
        // The third packet is below the threshold (offloadAfterPackets = 4, counting the SYN).
        #expect(tcp(e, TCPFlag.ack | TCPFlag.psh, at: second) == .forward(interface: 2))
        #expect(drained(s).isEmpty)
        #expect(tcp(e, TCPFlag.ack, at: second) == .forward(interface: 2))
        let r = drained(s)
        #expect(r.count == 1 && r[0].remove == false && r[0].key.clientPort == 6000 && r[0].key.virtualPort == 80)
        #expect(s.offloadTarget(destSlot: r[0].destSlot)?.destinationMAC == rs2MAC)
        // A FIN on an ESTABLISHED connection asks for removal; nothing is offered after it.
        _ = tcp(e, TCPFlag.fin | TCPFlag.ack, at: second)
        _ = tcp(e, TCPFlag.ack, at: second)
        let after = drained(s)
        #expect(after.count == 1 && after[0].remove == true)
    }

    @Test func shortConnectionsAndFewUDPPacketsAreNotOffered() {
        let e = seedEngine()
        let s = e.primary!
        s.offloadEnabled = true
        // SYN, handshake ACK, request, FIN: a short HTTP connection stays in lvsd (its FIN still
        // asks for a removal, which costs the worker a dictionary miss, no map operation).
        for flags in [TCPFlag.syn, TCPFlag.ack, TCPFlag.ack | TCPFlag.psh, TCPFlag.fin | TCPFlag.ack, TCPFlag.ack] {
            #expect(tcp(e, flags, at: second) == .forward(interface: 2))
        }
        #expect(drained(s).allSatisfy { $0.remove })
        // UDP: offered from the fourth datagram of a flow on.
        let udp = FrameBuilder.ipv4UDP(src: "192.168.1.12", sport: 7000, dst: "192.168.1.100", dport: 53)
        try! e.addService(ServiceKey(proto: .udp, address: IPAddress("192.168.1.100")!, port: 53), ServiceOptions(scheduler: "rr"))
        try! e.addDestination(ServiceKey(proto: .udp, address: IPAddress("192.168.1.100")!, port: 53),
                              DestinationOptions(address: IPAddress("192.168.1.31")!, port: 53))
        var offered: [Int] = []
        for i in 1...5 {
            #expect(e.run(udp, at: second).0 == .forward(interface: 2))
            if !drained(s).isEmpty { offered.append(i) }
        }
        #expect(offered == [4, 5])
    }

    @Test func trafficReportedBackCountsAndKeepsTheConnectionAlive() {
        let (e, s, r) = oneOffloaded()
        let before = e.dest("192.168.1.32").stats.inPackets
        // 1000 s later (ESTABLISHED times out after 900 s) with XDP traffic seen at 999 s.
        let word = s.offloadedTraffic(r[0].key, destSlot: r[0].destSlot, packets: 10, bytes: 600, lastSeen: 999 * second)
        #expect(word != nil)
        #expect(e.dest("192.168.1.32").stats.inPackets == before + 10)
        e.tick(now: 1000 * second)
        #expect(e.connectionCount == 1)
        // Quiesced: no longer a target (the worker then removes the entry).
        var o = DestinationOptions(address: IPAddress("192.168.1.32")!, port: 80)
        o.weight = 0
        try! e.editDestination(vip, o)
        #expect(s.offloadTarget(destSlot: r[0].destSlot) == nil)
        // Gone: nil.
        e.tick(now: 3000 * second)
        #expect(e.connectionCount == 0)
        #expect(s.offloadedTraffic(r[0].key, destSlot: r[0].destSlot, packets: 0, bytes: 0, lastSeen: 0) == nil)
    }

    /// When the idle timer of an offloaded connection runs out, the fast path's last-seen time
    /// decides: seen within the timeout, it lives on from then; not seen, it expires and the
    /// fast path is told to let go of it.
    @Test func expiryAsksTheFastPathForTheLastSeenTime() {
        let (e, s, r) = oneOffloaded()
        var seen: UInt64 = 950 * second
        var asked: [ConnectionKey] = []
        var ended: [ConnectionKey] = []
        s.offloadedLastSeen = { key in asked.append(key); return seen }
        s.offloadedEnded = { ended.append($0) }
        // ESTABLISHED times out 900 s after the ACK at 1 s: at 1000 s the fast path saw it at 950 s.
        e.tick(now: 1000 * second)
        #expect(asked == [r[0].key])
        #expect(ended.isEmpty)
        #expect(e.connectionCount == 1)
        // Still there at 1800 s (950 + 900 = 1850 s), gone after 1850 s when nothing newer was seen.
        e.tick(now: 1800 * second)
        #expect(e.connectionCount == 1)
        seen = 950 * second
        e.tick(now: 1900 * second)
        #expect(e.connectionCount == 0)
        #expect(ended == [r[0].key])
        // Not offloaded (nil): it expires as usual, and the fast path is told (it ignores it).
        asked = []
        ended = []
        s.offloadedLastSeen = { key in asked.append(key); return nil }
        _ = tcp(e, TCPFlag.syn, at: 2000 * second)
        _ = tcp(e, TCPFlag.ack, at: 2000 * second)
        e.tick(now: 2901 * second)
        #expect(asked.count == 1 && ended.count == 1)
        #expect(e.connectionCount == 0)
    }

    /// The generation that makes the worker re-check every offloaded connection moves only when a
    /// destination's forwarding changes: a neighbour refresh that learns the same MAC again must
    /// not start a pass over a map of a million entries.
    @Test func sameMACAgainLeavesTheOffloadGenerationAlone() {
        let e = seedEngine()
        let s = e.primary!
        let g0 = s.offloadGeneration
        e.setNeighbour(IPAddress("192.168.1.31")!, mac: rs1MAC, interface: 2)
        e.setNeighbour(IPAddress("192.168.1.32")!, mac: rs2MAC, interface: 2)
        #expect(s.offloadGeneration == g0)
        e.setNeighbour(IPAddress("192.168.1.31")!, mac: MACAddress("00:50:00:00:09:00")!, interface: 2)
        #expect(s.offloadGeneration != g0)
    }
}
