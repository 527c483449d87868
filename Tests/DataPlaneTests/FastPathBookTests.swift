import CLVSXDP
import LVSCore
import Testing
@testable import LVSDataPlane
import LVSModel
import LVSEngineTestSupport

/// The connection map in memory: what `FastPathBook` writes, deletes and reads back, without BPF.
final class FakeConnectionMap: ConnectionMap {
    var entries: [ConnectionKey: (key: clvs_conn_key, value: clvs_conn_value)] = [:]
    var slotCounters: [UInt32: FastPathTraffic] = [:]
    var puts = 0, deletes = 0
    /// NAT: whether the "program" forwards both directions, and the reply entries.
    var supportsNAT = false
    var replies: [ConnectionKey: (key: clvs_nat_reply_key, value: clvs_nat_reply_value)] = [:]

    /// The reply key as a `ConnectionKey` (real server as "client", client as "virtual").
    static func replyIdentity(_ k: clvs_nat_reply_key) -> ConnectionKey {
        var m = clvs_conn_key()
        m.family = k.family
        m.proto = k.proto
        m.cport = k.rport
        m.vport = k.cport
        m.caddr = k.raddr
        m.vaddr = k.caddr
        return XDPConnMap.connectionKey(m)
    }

    func putNAT(_ key: inout clvs_conn_key, destinationMAC: MACAddress, sourceMAC: MACAddress, interface: Int32,
                destSlot: UInt32, server: IPAddress, serverPort: UInt16) -> Int32 {
        _ = put(&key, destinationMAC: destinationMAC, sourceMAC: sourceMAC, interface: interface, destSlot: destSlot)
        let id = XDPConnMap.connectionKey(key)
        entries[id]!.value.flags = CLVS_CONN_NAT
        withUnsafeMutableBytes(of: &entries[id]!.value.raddr) { server.store(to: $0.baseAddress!) }
        entries[id]!.value.rport = serverPort.bigEndian
        return 0
    }

    func putReply(_ key: inout clvs_nat_reply_key, _ value: inout clvs_nat_reply_value) -> Int32 {
        guard supportsNAT else { return -95 }
        replies[Self.replyIdentity(key)] = (key, value)
        return 0
    }

    func deleteReply(_ key: inout clvs_nat_reply_key) { replies.removeValue(forKey: Self.replyIdentity(key)) }

    func put(_ key: inout clvs_conn_key, destinationMAC: MACAddress, sourceMAC: MACAddress, interface: Int32,
             destSlot: UInt32) -> Int32 {
        var v = clvs_conn_value()
        withUnsafeMutableBytes(of: &v.dmac) { destinationMAC.store(to: $0.baseAddress!) }
        withUnsafeMutableBytes(of: &v.smac) { sourceMAC.store(to: $0.baseAddress!) }
        v.ifindex = UInt32(bitPattern: interface)
        v.dest = destSlot
        entries[XDPConnMap.connectionKey(key)] = (key, v)
        puts += 1
        return 0
    }

    func get(_ key: inout clvs_conn_key) -> clvs_conn_value? { entries[XDPConnMap.connectionKey(key)]?.value }

    func delete(_ key: inout clvs_conn_key) {
        if entries.removeValue(forKey: XDPConnMap.connectionKey(key)) != nil { deletes += 1 }
    }

    func destinationCounters(_ slot: UInt32) -> FastPathTraffic? { slotCounters[slot] ?? FastPathTraffic(packets: 0, bytes: 0) }
    func count() -> UInt64 { UInt64(entries.count) }
    func makeReader(batch: Int) -> FakeReader { FakeReader(map: self, batch: batch) }

    /// The program forwarded a packet of `key` at `time`.
    func touch(_ key: ConnectionKey, at time: UInt64) { entries[key]?.value.last_seen = time }

    final class FakeReader: ConnectionMapReader {
        let map: FakeConnectionMap
        let batch: Int
        var position = 0
        var batches = 0
        init(map: FakeConnectionMap, batch: Int) { self.map = map; self.batch = batch }
        func restart() { position = 0 }
        func next(_ body: (clvs_conn_key, clvs_conn_value) -> Void) -> XDPConnMapReader.Step {
            batches += 1
            let all = Array(map.entries.values)
            let end = min(all.count, position + batch)
            for e in all[position..<end] { body(e.key, e.value) }
            position = end
            return end == all.count ? .end : .more
        }
    }
}

/// `FastPathBook`: the fast-path bookkeeping a worker does for the XDP or tc program, against
/// a fake map (no BPF, no root).
@Suite struct FastPathBookTests {
    /// SYN, then ACKs until the shard offers the connection (offloading from the 2nd packet).
    static func establish(_ shard: EngineShard, port: UInt16, at now: UInt64) {
        shard.offloadAfterPackets = 2
        _ = SeedLab.send(shard, port: port, flags: SeedLab.syn, at: now)
        _ = SeedLab.send(shard, port: port, flags: SeedLab.ack, at: now)
    }

    @Test func establishedConnectionsAreWrittenAndFINRemovesThem() {
        let e = SeedLab.engine(), shard = e.primary!, map = FakeConnectionMap()
        let book = FastPathBook(shard: shard, counters: FastPathCounters(map: map), readsFastPathCounters: true)
        #expect(shard.offloadEnabled)
        Self.establish(shard, port: 6000, at: SeedLab.second)
        book.afterBatch()
        #expect(map.entries.count == 1 && book.offloadedCount == 1)
        let entry = map.entries.values.first!
        #expect(entry.value.ifindex == 2)
        #expect(withUnsafeBytes(of: entry.value.dmac) { MACAddress(bytes: $0.baseAddress!) } == SeedLab.rs1MAC)
        #expect(XDPConnMap.connectionKey(entry.key).clientPort == 6000)
        // The same connection offered again (packets in flight) is not written twice.
        _ = SeedLab.send(shard, port: 6000, flags: 0x10, at: SeedLab.second)
        book.afterBatch()
        #expect(map.puts == 1)
        // FIN: the entry goes at once.
        _ = SeedLab.send(shard, port: 6000, flags: 0x11, at: SeedLab.second)
        book.afterBatch()
        #expect(map.entries.isEmpty && book.offloadedCount == 0 && map.deletes == 1)
        book.detach()
        #expect(!shard.offloadEnabled && shard.offloadedLastSeen == nil)
    }

    @Test func workerZeroAddsWhatTheProgramForwardedToTheStatistics() {
        let e = SeedLab.engine(), shard = e.primary!, map = FakeConnectionMap()
        let counters = FastPathCounters(map: map)
        let book = FastPathBook(shard: shard, counters: counters, readsFastPathCounters: true)
        Self.establish(shard, port: 6001, at: SeedLab.second)
        book.afterBatch()
        let slot = map.entries.values.first!.value.dest
        let before = e.snapshot().services[0].destinations[0].stats.inPackets
        map.slotCounters[slot] = FastPathTraffic(packets: 10, bytes: 1000)
        book.tick(now: 5 * SeedLab.second)
        #expect(e.snapshot().services[0].destinations[0].stats.inPackets == before + 10)
        #expect(counters.totals().packets == 10)
        // Within the second: not read again; then only the difference counts.
        map.slotCounters[slot] = FastPathTraffic(packets: 15, bytes: 1500)
        book.tick(now: 5 * SeedLab.second + 1)
        #expect(e.snapshot().services[0].destinations[0].stats.inPackets == before + 10)
        book.tick(now: 6 * SeedLab.second)
        #expect(e.snapshot().services[0].destinations[0].stats.inPackets == before + 15)
    }

    @Test func theReadBackPassDropsQuiescedEntriesWithinItsCPUBudget() {
        let e = SeedLab.engine(), shard = e.primary!, map = FakeConnectionMap()
        // Each clock read advances 1 ms: a batch "takes" 1 ms, so the next waits 9 ms.
        var clock: UInt64 = 0
        let book = FastPathBook(shard: shard, counters: FastPathCounters(map: map), readsFastPathCounters: false,
                                clock: { clock += 1_000_000; return clock })
        for port in UInt16(7000)..<7003 { Self.establish(shard, port: port, at: SeedLab.second) }
        book.afterBatch()
        #expect(map.entries.count == 3)
        // Traffic seen by the program comes back as the connection's last-seen time.
        let key = map.entries.keys.first!
        map.touch(key, at: 2 * SeedLab.second)
        // Quiesce the real server: the destination changed, so a pass starts at the next tick.
        var o = DestinationOptions(address: SeedLab.rs1, port: 80)
        o.weight = 0
        try! e.editDestination(SeedLab.vip, o)
        let t0 = 3 * SeedLab.second
        book.tick(now: t0)
        #expect(map.entries.isEmpty && book.offloadedCount == 0)
        // Budget: the batch took 1 ms, so no batch is read before t0 + 9 ms.
        o.weight = 1
        try! e.editDestination(SeedLab.vip, o)
        Self.establish(shard, port: 7100, at: t0)
        book.afterBatch()
        #expect(map.entries.count == 1)
        try! e.editDestination(SeedLab.vip, { var q = o; q.weight = 0; return q }())
        book.tick(now: t0 + 1_000_000)
        #expect(map.entries.count == 1) // pass started, its batch waits for the budget
        book.tick(now: t0 + 9 * 1_000_000)
        #expect(map.entries.isEmpty)
    }

    @Test func entriesTheMapLostAreForgottenAtTheEndOfAPass() {
        let e = SeedLab.engine(), shard = e.primary!, map = FakeConnectionMap()
        let book = FastPathBook(shard: shard, counters: FastPathCounters(map: map), readsFastPathCounters: false)
        Self.establish(shard, port: 7200, at: SeedLab.second)
        Self.establish(shard, port: 7201, at: SeedLab.second)
        book.afterBatch()
        #expect(book.offloadedCount == 2)
        map.entries.removeValue(forKey: map.entries.keys.first!)
        // The periodic pass (no destination change).
        book.tick(now: SeedLab.second + FastPathBook<FakeConnectionMap>.offloadSyncInterval)
        #expect(book.offloadedCount == 1 && map.entries.count == 1)
    }
}
