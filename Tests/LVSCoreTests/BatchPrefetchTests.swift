import Testing
@testable import LVSCore

/// The batch prefetch hint: it must name the same hash bucket as the lookup, never read past a
/// frame, and never change a verdict.
@Suite struct BatchPrefetchTests {
    func parsedBucket(_ frame: [UInt8], _ conns: ConnectionTableView) -> UInt32 {
        let f = frame.withUnsafeBytes { FrameParser.parse($0) }
        return conns.bucket(proto: f.proto, client: f.source, cport: f.sourcePort,
                            vlow: f.destination.words.3, vport: f.destinationPort)
    }

    @Test func quickBucketMatchesTheLookupsBucket() {
        let engine = seedEngine()
        let conns = engine.primary.conns
        defer { withExtendedLifetime(engine) {} }
        let frames: [[UInt8]] = [
            FrameBuilder.ipv4TCP(src: "10.1.2.3", sport: 40000, dst: "192.168.1.100", dport: 80, flags: TCPFlag.ack),
            FrameBuilder.ipv4TCP(src: "10.1.2.3", sport: 40001, dst: "192.168.1.100", dport: 80, flags: TCPFlag.syn, vlan: true),
            FrameBuilder.ipv4TCP(src: "10.1.2.4", sport: 5, dst: "192.168.1.100", dport: 80, flags: TCPFlag.ack, moreFragments: true),
            FrameBuilder.ipv4UDP(src: "10.9.9.9", sport: 53000, dst: "192.168.1.100", dport: 53),
            FrameBuilder.ipv6TCP(src: "2001:db8:1::12", sport: 41000, dst: "2001:db8:1::100", dport: 443, flags: TCPFlag.ack),
        ]
        for frame in frames {
            let quick = frame.withUnsafeBytes { EngineShard.bucket(of: $0, in: conns) }
            #expect(quick == parsedBucket(frame, conns))
        }
    }

    @Test func framesWithoutAConnectionKeyHaveNoBucket() {
        let engine = seedEngine()
        let conns = engine.primary.conns
        defer { withExtendedLifetime(engine) {} }
        let none: [[UInt8]] = [
            FrameBuilder.arpRequest(senderIP: "192.168.1.12", targetIP: "192.168.1.100"),
            FrameBuilder.ipv4TCP(src: "10.1.2.3", sport: 1, dst: "192.168.1.100", dport: 80, flags: 0, payload: 64, fragmentOffset: 8),
            FrameBuilder.ipv6TCP(src: "2001:db8:1::12", sport: 1, dst: "2001:db8:1::100", dport: 80, flags: 0, hopByHop: true),
            [],
        ]
        for frame in none { #expect(frame.withUnsafeBytes { EngineShard.bucket(of: $0, in: conns) } == nil) }
    }

    @Test func truncatedAndMutatedFramesAreSafe() {
        let engine = seedEngine()
        let shard: EngineShard = engine.primary
        defer { withExtendedLifetime(engine) {} }
        let base = FrameBuilder.ipv4TCP(src: "10.1.2.3", sport: 40000, dst: "192.168.1.100", dport: 80, flags: TCPFlag.ack)
        let v6 = FrameBuilder.ipv6TCP(src: "2001:db8:1::12", sport: 41000, dst: "2001:db8:1::100", dport: 443, flags: TCPFlag.ack)
        for frame in [base, v6] {
            for n in 0...frame.count {
                // An exact-size copy, so reading past the end would be caught by the sanitizers in the fuzz build.
                let prefix = Array(frame[0..<n])
                prefix.withUnsafeBytes { shard.prefetch($0) }
            }
        }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            var m = base
            m[Int.random(in: 12..<m.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            m.withUnsafeBytes { shard.prefetch($0) }
            if shard.prefetchCount == EngineShard.prefetchCapacity { shard.prefetchEntries() }
        }
        shard.prefetchEntries()
        #expect(shard.prefetchCount == 0)
    }

    @Test func prefetchingABatchChangesNoVerdict() {
        let plain = seedEngine(), hinted = seedEngine()
        var frames: [[UInt8]] = []
        for i in 0..<40 {
            frames.append(FrameBuilder.ipv4TCP(src: "10.0.0.\(i % 7)", sport: UInt16(30000 + i), dst: "192.168.1.100", dport: 80, flags: TCPFlag.syn))
        }
        for i in 0..<40 {
            frames.append(FrameBuilder.ipv4TCP(src: "10.0.0.\(i % 7)", sport: UInt16(30000 + i), dst: "192.168.1.100", dport: 80, flags: TCPFlag.ack))
        }
        frames.append(FrameBuilder.arpRequest(senderIP: "192.168.1.12", targetIP: "192.168.1.100"))
        var start = 0
        while start < frames.count {
            let batch = frames[start..<min(frames.count, start + 32)]
            for f in batch { f.withUnsafeBytes { hinted.primary.prefetch($0) } }
            hinted.primary.prefetchEntries()
            for f in batch {
                let a = plain.run(f, at: second), b = hinted.run(f, at: second)
                #expect(a.0 == b.0)
                #expect(a.1 == b.1)
            }
            start += 32
        }
        #expect(plain.connectionCount == 40 && hinted.connectionCount == 40)
    }
}
