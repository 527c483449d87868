import CLVSXDP
import LVSCore
import Testing
@testable import LVSDataPlane
import LVSModel
import LVSEngineTestSupport

/// Adopted fast-path entries lvsd does not know (`kept_unknown` after a kill -9,
/// `StaleFastPathEntries`), against the in-memory map: worker 0 deletes those idle for longer than
/// their protocol's timeout (with a NAT connection's reply entry), keeps fresh ones, and the set
/// drains and clears the shards' flag; a new connection lvsd schedules on a stale entry's 4-tuple
/// (or a FIN/RST it sees for one) removes that entry before the handshake's next packet.
@Suite struct StaleFastPathTests {
    static let second = SeedLab.second
    static let client = IPAddress("192.168.1.12")!
    static let oldServer = IPAddress("192.168.1.99")!

    /// The key of the seed client's connection from `port` to the VIP (`proto`).
    static func key(port: UInt16, proto: UInt8 = 6) -> ConnectionKey {
        ConnectionKey(proto: proto, client: client, clientPort: port, virtualAddress: SeedLab.vip.address, virtualPort: 80)
    }

    /// An entry the previous lvsd wrote (its destination slot 7, unknown here); `nat`: a NAT
    /// connection to `oldServer`:8080 with its reply entry.
    static func plant(_ map: FakeConnectionMap, _ key: ConnectionKey, nat: Bool = false) {
        var k = XDPConnMap.key(key)
        if nat {
            _ = map.putNAT(&k, destinationMAC: SeedLab.rs1MAC, sourceMAC: SeedLab.directorMAC, interface: SeedLab.interface,
                           destSlot: 7, server: oldServer, serverPort: 8080)
            var rk = XDPConnMap.replyKey(key, server: oldServer, serverPort: 8080)
            var rv = XDPConnMap.replyValue(k, clientMAC: SeedLab.clientMAC, sourceMAC: SeedLab.directorMAC,
                                           interface: SeedLab.interface, destSlot: 7)
            _ = map.putReply(&rk, &rv)
        } else {
            _ = map.put(&k, destinationMAC: SeedLab.rs1MAC, sourceMAC: SeedLab.directorMAC, interface: SeedLab.interface, destSlot: 7)
        }
    }

    final class Reports: @unchecked Sendable { var all: [StaleFastPathEntries.Report] = [] }

    @Test func idleEntriesExpireFreshOnesStayAndTheSetDrains() throws {
        let e = SeedLab.engine(), shard = e.primary!, map = FakeConnectionMap()
        map.supportsNAT = true
        try e.setTimeouts(IPVSTimeouts(tcp: 5, tcpFin: 5, udp: 3))
        let reports = Reports()
        let stale = StaleFastPathEntries { reports.all.append($0) }
        let book = FastPathBook(shard: shard, counters: FastPathCounters(map: map, stale: stale), readsFastPathCounters: true)
        let idle = Self.key(port: 9000), busy = Self.key(port: 9001), nat = Self.key(port: 9002, proto: 6)
        let udp = Self.key(port: 9003, proto: 17), vanished = Self.key(port: 9004)
        for k in [idle, busy, udp, vanished] { Self.plant(map, k) }
        Self.plant(map, nat, nat: true)
        #expect(map.replies.count == 1)
        let t0 = 100 * Self.second
        // Last seen 1 s before the adoption (idle since), or never (last seen 0: idle from the adoption).
        for k in [idle, nat] { map.touch(k, at: t0 - Self.second) }
        stale.adopt([idle, busy, nat, udp, vanished], now: t0)
        #expect(stale.isActive && stale.count == 5)
        book.tick(now: t0)
        #expect(shard.offloadStaleKeys)
        #expect(map.entries.count == 5 && stale.expired == 0) // nothing idle for 5 s yet
        // The program forwards `busy`; `vanished` leaves the map (the kernel or a hand-back).
        map.touch(busy, at: t0 + 3 * Self.second)
        map.entries.removeValue(forKey: vanished)
        // 4.5 s after the adoption: the UDP entry (3 s) and the TCP entries idle since t0 - 1 s (5 s) go.
        book.tick(now: t0 + 4 * Self.second + Self.second / 2)
        #expect(map.entries[idle] == nil && map.entries[nat] == nil && map.entries[udp] == nil)
        #expect(map.replies.isEmpty) // the NAT entry's reply entry went with it
        #expect(map.entries[busy] != nil)
        #expect(stale.expired == 3 && stale.count == 1 && stale.isActive)
        #expect(reports.all.last == StaleFastPathEntries.Report(expired: 3, replaced: 0, remaining: 1))
        // Within the check interval (1 s) nothing is checked again; then busy (last seen at
        // t0 + 3 s) stays until it has been idle for 5 s.
        book.tick(now: t0 + 5 * Self.second)
        #expect(map.entries[busy] != nil && stale.expired == 3)
        book.tick(now: t0 + 7 * Self.second)
        #expect(map.entries[busy] != nil && stale.expired == 3)
        book.tick(now: t0 + 9 * Self.second)
        #expect(map.entries.isEmpty && stale.count == 0 && !stale.isActive && stale.expired == 4)
        #expect(reports.all.last == StaleFastPathEntries.Report(expired: 4, replaced: 0, remaining: 0))
        book.tick(now: t0 + 11 * Self.second)
        #expect(!shard.offloadStaleKeys) // the flag cleared: the packet path records nothing more
        #expect(reports.all.count == 2)
    }

    @Test func aNewConnectionOnAStaleFourTupleReplacesItsEntry() throws {
        let e = SeedLab.engine(), shard = e.primary!, map = FakeConnectionMap()
        map.supportsNAT = true
        let stale = StaleFastPathEntries()
        let book = FastPathBook(shard: shard, counters: FastPathCounters(map: map, stale: stale), readsFastPathCounters: false)
        shard.offloadAfterPackets = 2
        let reused = Self.key(port: 9100), other = Self.key(port: 9101)
        Self.plant(map, reused, nat: true)
        Self.plant(map, other)
        let t0 = 100 * Self.second
        stale.adopt([reused, other], now: t0)
        book.tick(now: t0)
        #expect(shard.offloadStaleKeys)
        // The client reuses the 4-tuple: lvsd schedules the SYN; after the batch the stale entry
        // (forwarding to the old server) and its reply entry are gone, so the ACK comes to lvsd.
        _ = SeedLab.send(shard, port: 9100, flags: SeedLab.syn, at: t0 + 1)
        book.afterBatch()
        #expect(map.entries[reused] == nil && map.replies.isEmpty)
        #expect(map.entries[other] != nil && stale.replaced == 1 && stale.count == 1)
        // The ACK: established, lvsd's own entry goes in (to the seed's real server, slot 0).
        _ = SeedLab.send(shard, port: 9100, flags: SeedLab.ack, at: t0 + 2)
        book.afterBatch()
        #expect(map.entries[reused] != nil && map.entries[reused]?.value.dest != 7 && book.offloadedCount == 1)
        // A FIN lvsd sees for the other stale entry's connection (no connection here) ends it too.
        _ = SeedLab.send(shard, port: 9101, flags: 0x11, at: t0 + 3)
        book.afterBatch()
        #expect(map.entries[other] == nil && stale.replaced == 2 && !stale.isActive)
        book.tick(now: t0 + 4)
        #expect(!shard.offloadStaleKeys)
        // lvsd's own entry is untouched by all this.
        #expect(map.entries[reused] != nil && map.entries.count == 1)
    }

    @Test func withoutStaleEntriesANewConnectionRecordsNothing() {
        let e = SeedLab.engine(), shard = e.primary!, map = FakeConnectionMap()
        let stale = StaleFastPathEntries()
        let book = FastPathBook(shard: shard, counters: FastPathCounters(map: map, stale: stale), readsFastPathCounters: true)
        // An entry of a connection lvsd does not know, but not adopted as stale: a SYN on its
        // 4-tuple leaves it (the flag is clear, nothing is recorded or looked up).
        Self.plant(map, Self.key(port: 9200))
        book.tick(now: Self.second)
        #expect(!shard.offloadStaleKeys && stale.statusLine == nil)
        _ = SeedLab.send(shard, port: 9200, flags: SeedLab.syn, at: Self.second)
        book.afterBatch()
        #expect(map.entries.count == 1 && map.deletes == 0 && stale.replaced == 0)
    }
}
