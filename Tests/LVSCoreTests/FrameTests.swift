import Testing
@testable import LVSCore
import LVSModel

@Suite struct FrameTests {
    @Test func parsesTCPv4() {
        let b = FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 40000, dst: "192.168.1.100", dport: 80, flags: TCPFlag.syn)
        let f = b.withUnsafeBytes { FrameParser.parse($0) }
        #expect(f.kind == .ipv4)
        #expect(f.proto == 6)
        #expect(f.source == IPAddress("192.168.1.12")!)
        #expect(f.destination == IPAddress("192.168.1.100")!)
        #expect(f.sourcePort == 40000 && f.destinationPort == 80)
        #expect(f.tcpFlags == TCPFlag.syn)
        #expect(f.ipLength == 40)
    }

    @Test func parsesVLANAndIPv6ExtensionHeaders() {
        let v = FrameBuilder.ipv4TCP(src: "10.0.0.1", sport: 1, dst: "10.0.0.2", dport: 2, flags: TCPFlag.ack, vlan: true)
        let fv = v.withUnsafeBytes { FrameParser.parse($0) }
        #expect(fv.vlanTagged && fv.l3Offset == 18 && fv.kind == .ipv4 && fv.destinationPort == 2)
        let six = FrameBuilder.ipv6TCP(src: "2001:db8:1::12", sport: 5, dst: "2001:db8:1::100", dport: 80, flags: TCPFlag.syn, hopByHop: true)
        let f6 = six.withUnsafeBytes { FrameParser.parse($0) }
        #expect(f6.kind == .ipv6 && f6.proto == 6 && f6.destinationPort == 80 && f6.tcpFlags == TCPFlag.syn)
    }

    /// `frame` (untagged) with VLAN tags inserted after the MAC addresses, outermost first.
    static func tagged(_ frame: [UInt8], _ tpids: [UInt16]) -> [UInt8] {
        var tags: [UInt8] = []
        for (i, tpid) in tpids.enumerated() { tags += [UInt8(tpid >> 8), UInt8(tpid & 0xFF), 0x00, UInt8(10 + i)] }
        return Array(frame[0..<12]) + tags + Array(frame[12...])
    }

    /// QinQ (issue 13 item 12a): an 802.1ad outer tag with an 802.1Q inner one, two 802.1Q tags, and
    /// a single 802.1ad tag parse as tagged IPv4 (the BPF program redirects the same stacks:
    /// DataPlaneTests' BPFProgramTests checks that it agrees); three tags, or an 802.1ad inner
    /// tag, are not lvsd's (`.other`, so the kernel's).
    @Test func parsesQinQ() {
        let plain = FrameBuilder.ipv4TCP(src: "10.0.0.1", sport: 1, dst: "10.0.0.2", dport: 80, flags: TCPFlag.syn)
        for (tpids, l3) in [([UInt16(0x88A8), 0x8100], 22), ([0x8100, 0x8100], 22), ([0x88A8], 18), ([0x8100], 18)] {
            let f = Self.tagged(plain, tpids).withUnsafeBytes { FrameParser.parse($0) }
            #expect(f.kind == .ipv4 && f.vlanTagged && f.l3Offset == l3 && f.destinationPort == 80 && f.tcpFlags == TCPFlag.syn,
                    "tags \(tpids)")
        }
        for tpids in [[UInt16(0x88A8), 0x8100, 0x8100], [0x8100, 0x88A8], [0x88A8, 0x88A8]] {
            let f = Self.tagged(plain, tpids).withUnsafeBytes { FrameParser.parse($0) }
            #expect(f.kind == .other, "tags \(tpids)")
        }
        let arp = Self.tagged(FrameBuilder.arpRequest(senderIP: "10.0.0.1", targetIP: "10.0.0.2"), [0x88A8, 0x8100])
        let fa = arp.withUnsafeBytes { FrameParser.parse($0) }
        #expect(fa.kind == .arp && fa.l3Offset == 22 && fa.destination == IPAddress("10.0.0.2")!)
    }

    @Test func fragments() {
        let first = FrameBuilder.ipv4TCP(src: "10.0.0.1", sport: 1, dst: "10.0.0.2", dport: 2, flags: TCPFlag.ack, moreFragments: true)
        let later = FrameBuilder.ipv4TCP(src: "10.0.0.1", sport: 1, dst: "10.0.0.2", dport: 2, flags: 0, payload: 16, fragmentOffset: 3)
        let f1 = first.withUnsafeBytes { FrameParser.parse($0) }
        let f2 = later.withUnsafeBytes { FrameParser.parse($0) }
        #expect(f1.isFirstFragment && f1.hasPorts)
        #expect(f2.isLaterFragment && !f2.hasPorts && f2.kind == .ipv4)
    }

    /// Every prefix of every kind of frame parses without trapping; truncated IP frames are malformed.
    @Test func truncationAtEveryByte() {
        let frames = [
            FrameBuilder.ipv4TCP(src: "10.0.0.1", sport: 1, dst: "10.0.0.2", dport: 2, flags: TCPFlag.syn, payload: 10),
            FrameBuilder.ipv4TCP(src: "10.0.0.1", sport: 1, dst: "10.0.0.2", dport: 2, flags: TCPFlag.syn, vlan: true),
            Self.tagged(FrameBuilder.ipv4TCP(src: "10.0.0.1", sport: 1, dst: "10.0.0.2", dport: 2, flags: TCPFlag.syn), [0x88A8, 0x8100]),
            FrameBuilder.ipv4UDP(src: "10.0.0.1", sport: 1, dst: "10.0.0.2", dport: 53),
            FrameBuilder.ipv6TCP(src: "2001:db8::1", sport: 1, dst: "2001:db8::2", dport: 2, flags: TCPFlag.syn, hopByHop: true),
            FrameBuilder.arpRequest(senderIP: "10.0.0.1", targetIP: "10.0.0.2"),
        ]
        for frame in frames {
            for n in 0..<frame.count {
                let f = Array(frame[0..<n]).withUnsafeBytes { FrameParser.parse($0) }
                if n < 14 { #expect(f.kind == .malformed) }
                if f.kind == .ipv4 || f.kind == .ipv6 { #expect(f.l3Offset + f.ipLength <= n) }
            }
        }
    }

    @Test func badHeaders() {
        var b = FrameBuilder.ipv4TCP(src: "10.0.0.1", sport: 1, dst: "10.0.0.2", dport: 2, flags: TCPFlag.syn)
        b[14] = 0x44 // IHL 4
        #expect(b.withUnsafeBytes { FrameParser.parse($0) }.malformedReason == .badIHL)
        b[14] = 0x4F // IHL 15 > length
        #expect(b.withUnsafeBytes { FrameParser.parse($0) }.kind == .malformed)
        b[14] = 0x45; b[16] = 0xFF // total length > frame
        #expect(b.withUnsafeBytes { FrameParser.parse($0) }.malformedReason == .badIPv4Length)
        b[16] = 0; b[17] = 10 // total length < IHL
        #expect(b.withUnsafeBytes { FrameParser.parse($0) }.malformedReason == .badIPv4Length)
        var t = FrameBuilder.ipv4TCP(src: "10.0.0.1", sport: 1, dst: "10.0.0.2", dport: 2, flags: TCPFlag.syn)
        t[46] = 0x40 // TCP data offset 16 bytes
        #expect(t.withUnsafeBytes { FrameParser.parse($0) }.malformedReason == .badTCPOffset)
        var o = FrameBuilder.ipv4TCP(src: "10.0.0.1", sport: 1, dst: "10.0.0.2", dport: 2, flags: TCPFlag.syn)
        o[14] = 0x46 // options claimed, zero-length: header swallows the TCP header
        #expect(o.withUnsafeBytes { FrameParser.parse($0) }.kind == .malformed)
    }

    /// Random mutations never trap (a cheap in-test fuzz; the libFuzzer target goes further).
    @Test func randomMutationsNeverTrap() {
        var rng = SchedulingContext(source: .zero, randomState: 42)
        let base = FrameBuilder.ipv6TCP(src: "2001:db8::1", sport: 1, dst: "2001:db8::2", dport: 2, flags: TCPFlag.syn, hopByHop: true)
        for _ in 0..<20_000 {
            var b = base
            let n = Int(rng.nextRandom() % 6) + 1
            for _ in 0..<n { b[Int(rng.nextRandom() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.nextRandom()) }
            let cut = Int(rng.nextRandom() % UInt64(b.count + 1))
            _ = Array(b[0..<cut]).withUnsafeBytes { FrameParser.parse($0) }
        }
    }

    @Test func directRouteRewriteDecrementsTTLAndKeepsChecksumValid() {
        var b = FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 40000, dst: "192.168.1.100", dport: 80, flags: TCPFlag.syn)
        let rs = MACAddress("00:50:00:00:01:00")!
        let ok = b.withUnsafeMutableBytes { FrameRewriter.directRoute($0, l3Offset: 14, ipv6: false, destinationMAC: rs, sourceMAC: FrameBuilder.directorMAC) }
        #expect(ok)
        #expect(Array(b[0..<6]) == FrameBuilder.mac(rs))
        #expect(Array(b[6..<12]) == FrameBuilder.mac(FrameBuilder.directorMAC))
        #expect(b[22] == 63)
        #expect(b.withUnsafeBytes { InternetChecksum.ipv4HeaderValid($0.baseAddress! + 14, headerLength: 20) })
        // Addresses and ports unchanged.
        let f = b.withUnsafeBytes { FrameParser.parse($0) }
        #expect(f.destination == IPAddress("192.168.1.100")! && f.destinationPort == 80)
        var dying = FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 1, dst: "192.168.1.100", dport: 80, flags: TCPFlag.syn, ttl: 1)
        #expect(!dying.withUnsafeMutableBytes { FrameRewriter.directRoute($0, l3Offset: 14, ipv6: false, destinationMAC: rs, sourceMAC: rs) })
    }

    @Test func tcpStateTableInputOnly() {
        #expect(TCPStateTable.next(.none, flags: TCPFlag.syn) == .synRecv)
        #expect(TCPStateTable.next(.synRecv, flags: TCPFlag.ack) == .established)
        #expect(TCPStateTable.next(.established, flags: TCPFlag.fin | TCPFlag.ack) == .finWait)
        #expect(TCPStateTable.next(.finWait, flags: TCPFlag.ack) == .finWait)
        #expect(TCPStateTable.next(.finWait, flags: TCPFlag.syn) == .synRecv)
        #expect(TCPStateTable.next(.established, flags: TCPFlag.rst | TCPFlag.ack) == .close)
        #expect(TCPStateTable.next(.synRecv, flags: TCPFlag.rst) == .synRecv)
        #expect(TCPStateTable.next(.lastAck, flags: TCPFlag.ack) == .close)
        #expect(TCPStateTable.next(.established, flags: 0) == .close)
        #expect(TCPStateTable.defaultTimeouts[Int(TCPState.established.rawValue)] == 900)
    }
}

@Suite struct FragmenterTests {
    @Test func largeDatagramIsFragmentedAndReassembles() {
        let frame = FrameBuilder.ipv4UDP(src: "192.168.1.12", sport: 5000, dst: "192.168.1.100", dport: 53, payload: 4000)
        let slot = 2048
        let out = UnsafeMutableRawPointer.allocate(byteCount: slot * 8, alignment: 8)
        defer { out.deallocate() }
        var lengths = [Int](repeating: 0, count: 8)
        let n = frame.withUnsafeBytes { f in
            lengths.withUnsafeMutableBufferPointer { FrameRewriter.fragmentIPv4(f, l3Offset: 14, mtu: 1500, output: out, slotSize: slot, maxFragments: 8, lengths: $0.baseAddress!) }
        }
        #expect(n == 3)
        var payload: [UInt8] = []
        for k in 0..<n {
            let bytes = UnsafeRawBufferPointer(start: out + k * slot, count: lengths[k])
            #expect(bytes.count - 14 <= 1500)
            #expect(InternetChecksum.ipv4HeaderValid(bytes.baseAddress! + 14, headerLength: 20))
            let f = FrameParser.parse(bytes)
            #expect(f.kind == .ipv4)
            let flags = UInt16(bytes[20]) << 8 | UInt16(bytes[21])
            #expect((flags & 0x1FFF) * 8 == UInt16(payload.count))
            #expect((flags & 0x2000 != 0) == (k < n - 1))
            #expect(k == 0 ? f.isFirstFragment && f.destinationPort == 53 : f.isLaterFragment)
            payload += bytes[34...]
        }
        #expect(payload == Array(frame[34...]))
        // Don't-fragment datagrams are left alone.
        var df = frame
        df[20] |= 0x40
        let m = df.withUnsafeBytes { f in
            lengths.withUnsafeMutableBufferPointer { FrameRewriter.fragmentIPv4(f, l3Offset: 14, mtu: 1500, output: out, slotSize: slot, maxFragments: 8, lengths: $0.baseAddress!) }
        }
        #expect(m == 0)
    }

    @Test func completesAPartialChecksum() {
        var frame = FrameBuilder.ipv4UDP(src: "10.0.0.1", sport: 1, dst: "10.0.0.2", dport: 2, payload: 33)
        // Pseudo-header sum in the checksum field, as CHECKSUM_PARTIAL leaves it.
        var pseudo = InternetChecksum.sum(frame.withUnsafeBytes { $0.baseAddress! + 26 }, count: 8)
        pseudo = pseudo &+ 17 &+ UInt32(8 + 33)
        let folded = UInt16(truncatingIfNeeded: (pseudo & 0xFFFF) + (pseudo >> 16))
        frame[40] = UInt8(folded >> 8); frame[41] = UInt8(folded & 0xFF)
        frame.withUnsafeMutableBytes { FrameRewriter.completeChecksum($0, start: 34, offset: 6, udp: true) }
        // Verify: pseudo header + UDP segment sums to 0xFFFF.
        let verify = frame.withUnsafeBytes { b -> UInt16 in
            var s = InternetChecksum.sum(b.baseAddress! + 26, count: 8)
            s = s &+ 17 &+ UInt32(8 + 33)
            return InternetChecksum.finish(InternetChecksum.sum(b.baseAddress! + 34, count: 8 + 33, initial: s))
        }
        #expect(verify == 0)
    }
}
