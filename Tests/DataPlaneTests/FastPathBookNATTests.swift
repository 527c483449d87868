import CLVSXDP
import LVSCore
import Testing
@testable import LVSDataPlane
import LVSModel
import LVSEngineTestSupport

/// `FastPathBook` and NAT connections (issue 18, the tc fast path in both directions), against
/// the in-memory map: a NAT connection's `conns` entry and its `nat_replies` entry are written
/// together and removed together (client's FIN, real server's FIN, expiry), the replies the
/// program forwarded become OutPkts/OutBytes, and a plane without NAT in its fast path (XDP)
/// gets no NAT connection at all.
@Suite struct FastPathBookNATTests {
    static let serverPort: UInt16 = 8080
    static let client = IPAddress("192.168.1.12")!
    static let fin: UInt8 = 0x11

    /// The seed lab with real server .31:8080 as a NAT (`-m`) destination.
    static func engine() -> Engine {
        let e = SeedLab.engine(seeded: false)
        try! e.addService(SeedLab.vip, ServiceOptions(scheduler: "rr"))
        try! e.addDestination(SeedLab.vip, DestinationOptions(address: SeedLab.rs1, port: serverPort, method: .masquerade))
        e.setNeighbour(SeedLab.rs1, mac: SeedLab.rs1MAC, interface: SeedLab.interface)
        return e
    }

    /// The real server's reply (from .31:8080 to the client's `port`) with `flags`.
    static func reply(_ shard: EngineShard, port: UInt16, flags: UInt8, at now: UInt64) -> Verdict {
        var frame = SeedLab.bytes(SeedLab.directorMAC) + SeedLab.bytes(SeedLab.rs1MAC) + [0x08, 0x00]
        var ip: [UInt8] = [0x45, 0, 0, 40, 0x12, 0x35, 0, 0, 64, 6, 0, 0, 192, 168, 1, 31, 192, 168, 1, 12]
        let cs = InternetChecksum.finish(ip.withUnsafeBytes { InternetChecksum.sum($0.baseAddress!, count: 20) })
        ip[10] = UInt8(cs >> 8)
        ip[11] = UInt8(cs & 0xFF)
        frame += ip
        frame += [UInt8(serverPort >> 8), UInt8(serverPort & 0xFF), UInt8(port >> 8), UInt8(port & 0xFF),
                  0, 0, 0, 1, 0, 0, 0, 1, 0x50, flags, 0xFF, 0xFF, 0, 0, 0, 0]
        return frame.withUnsafeMutableBytes { shard.process($0, interface: SeedLab.interface, now: now) }
    }

    /// SYN, the server's SYN-ACK, ACKs: established, offered from the 2nd client packet on.
    static func establish(_ shard: EngineShard, port: UInt16, at now: UInt64) {
        shard.offloadAfterPackets = 2
        _ = SeedLab.send(shard, port: port, flags: SeedLab.syn, at: now)
        _ = reply(shard, port: port, flags: 0x12, at: now)
        _ = SeedLab.send(shard, port: port, flags: SeedLab.ack, at: now)
        _ = SeedLab.send(shard, port: port, flags: SeedLab.ack, at: now)
    }

    static func bytes<T>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v) { Array($0) } }

    @Test func entryPairWrittenAndRemovedTogether() {
        let e = Self.engine(), shard = e.primary!, map = FakeConnectionMap()
        map.supportsNAT = true
        let book = FastPathBook(shard: shard, counters: FastPathCounters(map: map), readsFastPathCounters: true)
        #expect(shard.offloadsNAT)
        Self.establish(shard, port: 6100, at: SeedLab.second)
        book.afterBatch()
        #expect(map.entries.count == 1 && map.replies.count == 1 && book.offloadedCount == 1)
        guard let conn = map.entries.values.first, let reply = map.replies.values.first else { return }
        // The connection's entry: DR's MACs plus the real server's address and port.
        #expect(conn.value.flags == CLVS_CONN_NAT)
        #expect(Array(Self.bytes(conn.value.raddr).prefix(4)) == [192, 168, 1, 31])
        #expect(UInt16(bigEndian: conn.value.rport) == Self.serverPort)
        #expect(withUnsafeBytes(of: conn.value.dmac) { MACAddress(bytes: $0.baseAddress!) } == SeedLab.rs1MAC)
        // The reply's: its tuple, the connection's key, the client's next hop, the slot.
        #expect(UInt16(bigEndian: reply.key.rport) == Self.serverPort && UInt16(bigEndian: reply.key.cport) == 6100)
        #expect(Array(Self.bytes(reply.key.raddr).prefix(4)) == [192, 168, 1, 31])
        #expect(Array(Self.bytes(reply.key.caddr).prefix(4)) == [192, 168, 1, 12])
        #expect(Self.bytes(reply.value.conn) == Self.bytes(conn.key))
        #expect(withUnsafeBytes(of: reply.value.dmac) { MACAddress(bytes: $0.baseAddress!) } == SeedLab.clientMAC)
        #expect(withUnsafeBytes(of: reply.value.smac) { MACAddress(bytes: $0.baseAddress!) } == SeedLab.directorMAC)
        #expect(reply.value.ifindex == UInt32(SeedLab.interface) && reply.value.dest == conn.value.dest)

        // The real server's FIN (lvsd sees it: the program never forwards one): both go.
        _ = Self.reply(shard, port: 6100, flags: Self.fin, at: SeedLab.second)
        book.afterBatch()
        #expect(map.entries.isEmpty && map.replies.isEmpty && book.offloadedCount == 0)

        // The client's FIN: both go.
        Self.establish(shard, port: 6101, at: SeedLab.second)
        book.afterBatch()
        #expect(map.entries.count == 1 && map.replies.count == 1)
        _ = SeedLab.send(shard, port: 6101, flags: Self.fin, at: SeedLab.second)
        book.afterBatch()
        #expect(map.entries.isEmpty && map.replies.isEmpty)

        // Expiry (nothing seen in the map): both go.
        Self.establish(shard, port: 6102, at: SeedLab.second)
        book.afterBatch()
        #expect(map.entries.count == 1 && map.replies.count == 1)
        shard.tick(now: 2000 * SeedLab.second)
        #expect(map.entries.isEmpty && map.replies.isEmpty && book.offloadedCount == 0)
    }

    @Test func repliesTheProgramForwardedCountAsOut() {
        let e = Self.engine(), shard = e.primary!, map = FakeConnectionMap()
        map.supportsNAT = true
        let book = FastPathBook(shard: shard, counters: FastPathCounters(map: map), readsFastPathCounters: true)
        Self.establish(shard, port: 6200, at: SeedLab.second)
        book.afterBatch()
        let slot = map.entries.values.first!.value.dest
        let before = e.snapshot().services[0].destinations[0].stats, serviceBefore = e.snapshot().services[0].stats
        map.slotCounters[slot] = FastPathTraffic(packets: 3, bytes: 300, outPackets: 7, outBytes: 7000)
        book.tick(now: 5 * SeedLab.second)
        let after = e.snapshot().services[0].destinations[0].stats
        #expect(after.inPackets == before.inPackets + 3 && after.inBytes == before.inBytes + 300)
        #expect(after.outPackets == before.outPackets + 7 && after.outBytes == before.outBytes + 7000)
        #expect(e.snapshot().services[0].stats.outPackets == serviceBefore.outPackets + 7)
    }

    @Test func withoutNATInTheProgramNATConnectionsStayInLVSD() {
        let e = Self.engine(), shard = e.primary!, map = FakeConnectionMap()
        let book = FastPathBook(shard: shard, counters: FastPathCounters(map: map), readsFastPathCounters: true)
        #expect(!shard.offloadsNAT)
        Self.establish(shard, port: 6300, at: SeedLab.second)
        book.afterBatch()
        #expect(map.entries.isEmpty && map.replies.isEmpty && book.offloadedCount == 0)
    }
}
