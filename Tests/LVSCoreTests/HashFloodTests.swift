import Testing
@testable import LVSCore
import LVSModel

/// Hash flooding (issue 13 item 5): the connection table's buckets must not be predictable.
@Suite struct HashFloodTests {
    /// The bucket hash the connection table used before it was keyed (a fixed public seed and an
    /// invertible mix), before masking.
    static func oldMix(seed: UInt32, proto: UInt8, c: (UInt32, UInt32, UInt32, UInt32), cport: UInt16, vlow: UInt32, vport: UInt16) -> UInt32 {
        var h = seed ^ c.3 ^ c.0
        h = h &* 0x9E37_79B1
        h ^= (UInt32(cport) << 16 | UInt32(vport)) ^ UInt32(proto) << 8
        h = h &* 0x85EB_CA6B
        h ^= vlow ^ c.2 ^ c.1
        h = h &* 0xC2B2_AE35
        h ^= h >> 16
        return h
    }

    /// `n` connection keys from one client /64 (2001:db8:bad:1::/64, one source port) that the old
    /// mix with the old default seed put into a single bucket: the third address word is chosen
    /// so that it cancels whatever the fourth one and the ports contributed.
    static func adversarialKeys(_ n: Int, seed: UInt32 = 0x5EED_1234) -> [ConnectionKey] {
        let c0: UInt32 = 0x2001_0DB8, c1: UInt32 = 0x0BAD_0001
        let vipAddress = IPAddress("2001:db8:1::100")!
        let vlow = vipAddress.words.3
        let cport: UInt16 = 40000, vport: UInt16 = 80, proto: UInt8 = 6
        let target: UInt32 = 0x1234_5678
        return (0..<n).map { i in
            let c3 = UInt32(i) &* 2_654_435_761 | 1
            var h = (seed ^ c3 ^ c0) &* 0x9E37_79B1
            h ^= (UInt32(cport) << 16 | UInt32(vport)) ^ UInt32(proto) << 8
            h = h &* 0x85EB_CA6B
            let c2 = h ^ vlow ^ c1 ^ target
            let client = IPAddress(high: UInt64(c0) << 32 | UInt64(c1), low: UInt64(c2) << 32 | UInt64(c3))
            return ConnectionKey(proto: proto, client: client, clientPort: cport, virtualAddress: vipAddress, virtualPort: vport)
        }
    }

    static func bucket(_ t: ConnectionTable, _ k: ConnectionKey) -> UInt32 {
        t.view.bucket(proto: k.proto, client: k.client, cport: k.clientPort, vlow: k.virtualAddress.words.3, vport: k.virtualPort)
    }

    @Test func theAdversarialKeysCollideUnderTheOldMix() {
        let keys = Self.adversarialKeys(1000)
        let hashes = Set(keys.map { k in
            let w = k.client.words
            return Self.oldMix(seed: 0x5EED_1234, proto: k.proto, c: (w.0, w.1, w.2, w.3), cport: k.clientPort,
                               vlow: k.virtualAddress.words.3, vport: k.virtualPort)
        })
        #expect(hashes.count == 1)
        #expect(Set(keys.map(\.client)).count == 1000)
    }

    /// 10,000 keys aimed at one bucket of a table with the default key spread over the buckets:
    /// no chain is longer than a random spread gives (expected longest about 7 of 16,384 buckets).
    /// On the old mix they all shared one chain of 10,000.
    @Test func adversarialKeysSpreadOverManyBuckets() {
        let t = ConnectionTable(capacity: 20_000)
        let keys = Self.adversarialKeys(10_000)
        var chains: [UInt32: Int] = [:]
        for k in keys {
            chains[Self.bucket(t, k), default: 0] += 1
            #expect(t.insert(k, dest: 0, stateFlags: 0, control: 0, expires: 100) != nil)
        }
        let longest = chains.values.max() ?? 0
        #expect(longest <= 16, "longest chain \(longest)")
        #expect(chains.count >= 5000, "\(chains.count) buckets used")
        for k in keys { #expect(t.lookup(k, template: false) != nil) }
    }

    /// Two keys put the same connections into different buckets: knowing one table's layout says
    /// nothing about another's.
    @Test func differentKeysGiveDifferentBuckets() {
        let a = ConnectionTable(capacity: 8192, key: SipHashKey(k0: 1, k1: 2))
        let b = ConnectionTable(capacity: 8192, key: SipHashKey(k0: 1, k1: 3))
        let keys = Self.adversarialKeys(2000) + (0..<2000).map { i in
            ConnectionKey(proto: 6, client: IPAddress(ipv4: 0x0A00_0000 + UInt32(i)), clientPort: UInt16(i),
                          virtualAddress: IPAddress("192.168.1.100")!, virtualPort: 80)
        }
        let same = keys.filter { Self.bucket(a, $0) == Self.bucket(b, $0) }.count
        #expect(same < keys.count / 50, "\(same) of \(keys.count) in the same bucket")
    }

    /// Every table of an engine has its own key, derived from the configuration's secret key.
    @Test func everyTableOfAnEngineHasItsOwnKey() {
        var c1 = EngineConfiguration(), c2 = EngineConfiguration()
        c1.hashKey = SipHashKey(k0: 0xAAAA, k1: 0xBBBB)
        c2.hashKey = SipHashKey(k0: 0xAAAA, k1: 0xBBBC)
        let e1 = Engine(configuration: c1), e2 = Engine(configuration: c2)
        let second = e1.makeShard()
        let keys = [e1.primary.table.view.key, second.table.view.key, e1.templates.view.key, e1.synced.view.key,
                    e1.primary.fragments.key, second.fragments.key, e2.primary.table.view.key, e2.templates.view.key]
        for i in keys.indices {
            for j in keys.indices where j > i { #expect(keys[i] != keys[j], "tables \(i) and \(j) share a key") }
        }
    }

    /// The IPv4 form of the hash is the same whether the address came from an IPv4 header or was
    /// built from its words, and IPv4 and IPv6 keys with equal low words do not collide by design.
    @Test func batchPrefetchAndLookupAgreeOnTheBucket() {
        let e = seedEngine()
        let frame = FrameBuilder.ipv4TCP(src: "10.1.2.3", sport: 4321, dst: "192.168.1.100", dport: 80, flags: TCPFlag.syn)
        let fromFrame = frame.withUnsafeBytes { EngineShard.bucket(of: $0, in: e.primary.conns) }
        let k = ConnectionKey(proto: 6, client: IPAddress("10.1.2.3")!, clientPort: 4321,
                              virtualAddress: IPAddress("192.168.1.100")!, virtualPort: 80)
        #expect(fromFrame == Self.bucket(e.primary.table, k))
        let v6 = FrameBuilder.ipv6TCP(src: "2001:db8:bad:1::7", sport: 4321, dst: "2001:db8:1::100", dport: 80, flags: TCPFlag.syn)
        let fromFrame6 = v6.withUnsafeBytes { EngineShard.bucket(of: $0, in: e.primary.conns) }
        let k6 = ConnectionKey(proto: 6, client: IPAddress("2001:db8:bad:1::7")!, clientPort: 4321,
                               virtualAddress: IPAddress("2001:db8:1::100")!, virtualPort: 80)
        #expect(fromFrame6 == Self.bucket(e.primary.table, k6))
    }
    /// `process` takes the bucket the batch prefetch computed for a frame (hashing once per
    /// packet), and only when the frame is the announced one: a frame rewritten in place after the
    /// announcement (another connection) is still looked up by its own key.
    @Test func processUsesThePrefetchedBucketOnlyForTheAnnouncedFrame() {
        let e = seedEngine()
        let s: EngineShard = e.primary
        let clients = ["10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.4"]
        var rs: [String: [UInt8]] = [:]
        for c in clients { rs[c] = Array(e.syn(4000, from: c, at: second).1[0..<6]) }
        let acks = clients.map { FrameBuilder.ipv4TCP(src: $0, sport: 4000, dst: "192.168.1.100", dport: 80, flags: TCPFlag.ack) }
        let size = acks[0].count
        let ring = UnsafeMutableRawBufferPointer.allocate(byteCount: size * acks.count, alignment: 64)
        defer { ring.deallocate() }
        func slot(_ k: Int) -> UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(rebasing: ring[(k * size)..<((k + 1) * size)]) }
        for (k, a) in acks.enumerated() { slot(k).copyBytes(from: a) }
        for k in acks.indices { s.prefetch(UnsafeRawBufferPointer(slot(k))) }
        s.prefetchEntries()
        #expect(s.prefetchReady == 4)
        // Slot 2 now holds client 4's ACK (announced as client 3's).
        slot(2).copyBytes(from: acks[3])
        for k in acks.indices {
            #expect(s.process(slot(k), interface: 2, now: second) == .forward(interface: 2))
            let client = k == 2 ? clients[3] : clients[k]
            #expect(Array(slot(k)[0..<6]) == rs[client]!, "frame \(k)")
        }
        #expect(s.prefetchNext == 4)
        #expect(e.connectionCount == 4)
    }
}
