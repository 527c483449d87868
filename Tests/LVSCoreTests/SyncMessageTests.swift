import Testing
@testable import LVSCore
import LVSModel

/// Sync message vectors built by hand from the layout of §7.3 / §7.5.
@Suite struct SyncMessageTests {
    static let tcpEntry = SyncConnection(proto: 6, flags: 0x0003, state: 1, clientPort: 51234, virtualPort: 80,
                                         destinationPort: 80, timeout: 900, client: IPAddress("192.168.1.50")!,
                                         virtualAddress: IPAddress("10.0.0.100")!, destination: IPAddress("10.0.0.11")!)

    /// One IPv4 ESTABLISHED DR entry, syncid 7.
    static let v1Single: [UInt8] = [
        0x00, 0x07, 0x00, 0x2C, 0x01, 0x01, 0x00, 0x00,        // reserved, syncid, size 44, 1 conn, version 1, spare
        0x00, 0x06, 0x00, 0x24,                                // IPv4, TCP, ver 0 / size 36
        0x00, 0x00, 0x00, 0x03,                                // flags: DR
        0x00, 0x01, 0xC8, 0x22, 0x00, 0x50, 0x00, 0x50,        // state 1, cport 51234, vport 80, dport 80
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x84,        // fwmark 0, timeout 900
        192, 168, 1, 50, 10, 0, 0, 100, 10, 0, 0, 11,         // caddr, vaddr, daddr
    ]

    @Test func encodesKernelLayout() {
        let m = SyncMessageBuilder.messages([Self.tcpEntry], syncID: 7)
        #expect(m == [Self.v1Single])
    }

    @Test func decodesKernelLayout() {
        let d = SyncMessageDecoder.decode(Self.v1Single)
        #expect(d.version == 1 && d.syncID == 7 && d.error == nil && d.skipped == 0)
        #expect(d.entries == [Self.tcpEntry])
        #expect(d.entries[0].backupFlags == 0x0023)
    }

    @Test func syncIDFilter() {
        #expect(SyncMessageDecoder.decode(Self.v1Single, syncID: 7).entries.count == 1)
        #expect(SyncMessageDecoder.decode(Self.v1Single, syncID: 8).error == .syncIDMismatch)
        #expect(SyncMessageDecoder.decode(Self.v1Single, syncID: 0).entries.count == 1)
    }

    @Test func hashedAndHighFlagsNeverSent() {
        var c = Self.tcpEntry
        c.flags = 0x0001_0143 // NFCT-like bit 16, INACTIVE, HASHED, DR
        let m = SyncMessageBuilder.messages([c], syncID: 0)[0]
        #expect(Array(m[12..<16]) == [0, 0, 0x01, 0x03])
        let d = SyncMessageDecoder.decode(m)
        #expect(d.entries[0].flags == 0x0103 && d.entries[0].isInactive)
        #expect(d.entries[0].backupFlags == 0x0123)
    }

    @Test func ipv6EntryAndPadding() {
        let six = SyncConnection(ipv6: true, proto: 17, flags: 3, state: 0, clientPort: 40000, virtualPort: 53, destinationPort: 53,
                                 timeout: 300, client: IPAddress("2001:db8::50")!, virtualAddress: IPAddress("2001:db8::100")!,
                                 destination: IPAddress("2001:db8::11")!, peData: [1, 2, 3], peName: Array("sip".utf8))
        // 72 + (2+3) + (2+3) = 82 bytes: the next entry starts at 8 + 84.
        #expect(six.encodedLength == 82)
        let m = SyncMessageBuilder.messages([six, Self.tcpEntry], syncID: 1)
        #expect(m.count == 1)
        let b = m[0]
        #expect(b.count == 8 + 84 + 36)
        #expect(Int(b[2]) << 8 | Int(b[3]) == b.count)
        #expect(b[4] == 2)
        #expect(b[8] == 1 && b[9] == 17 && b[10] == 0 && b[11] == 82)
        #expect(Array(b[8 + 24..<8 + 40]) == [0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50])
        #expect(Array(b[8 + 72..<8 + 82]) == [2, 3, 1, 2, 3, 3, 3, 0x73, 0x69, 0x70])
        #expect(b[90] == 0 && b[91] == 0)           // padding
        #expect(b[92] == 0 && b[93] == 6)           // next entry: IPv4 TCP
        let d = SyncMessageDecoder.decode(b)
        #expect(d.error == nil)
        #expect(d.entries == [six, Self.tcpEntry])
    }

    @Test func sequenceOptionAndTemplate() {
        var nat = Self.tcpEntry
        nat.flags = 0x0600
        nat.sequence = [1, 2, 3, 4, 5, 6]
        let tpl = SyncConnection(proto: 0, flags: 0x1003, state: 1, clientPort: 0, virtualPort: 0, destinationPort: 0, fwmark: 1,
                                 timeout: 360, client: IPAddress("192.168.1.50")!, virtualAddress: IPAddress(ipv4: 1),
                                 destination: IPAddress("10.0.0.11")!)
        let b = SyncMessageBuilder.messages([nat, tpl], syncID: 0)[0]
        #expect(Array(b[8 + 36..<8 + 40]) == [1, 24, 0, 0])
        #expect(b[11] == 62)                        // 36 + 26
        let d = SyncMessageDecoder.decode(b)
        #expect(d.entries == [nat, tpl])
        #expect(d.entries[1].isTemplate && d.entries[1].fwmark == 1)
    }

    @Test func sizeRulesSplitMessages() {
        let list = (0..<100).map { i -> SyncConnection in
            var c = Self.tcpEntry
            c.clientPort = UInt16(1000 + i)
            return c
        }
        let m = SyncMessageBuilder.messages(list, syncID: 0)
        // (1472 - 8) / 36 = 40 entries per message.
        #expect(m.map { $0[4] } == [40, 40, 20])
        #expect(m.allSatisfy { $0.count <= 1472 })
        #expect(m.flatMap { SyncMessageDecoder.decode($0).entries } == list)
        let small = SyncMessageBuilder.messages(list.prefix(3).map { $0 }, syncID: 0, maxLength: 20)
        #expect(small.count == 3 && small.allSatisfy { $0.count == 44 }) // one entry alone may exceed it
    }

    @Test func semanticErrorsSkipOneEntry() {
        var onePacket = Self.tcpEntry
        onePacket.flags |= SyncProtocol.flagOnePacket
        var badState = Self.tcpEntry
        badState.state = 11
        var badProto = Self.tcpEntry
        badProto.proto = 47
        var noCportTemplate = Self.tcpEntry
        noCportTemplate.flags = SyncProtocol.flagTemplate | SyncProtocol.flagNoClientPort
        var unknownPE = Self.tcpEntry
        unknownPE.peName = Array("xyz".utf8)
        let b = SyncMessageBuilder.messages([onePacket, badState, Self.tcpEntry, badProto, noCportTemplate, unknownPE], syncID: 0)[0]
        let d = SyncMessageDecoder.decode(b)
        #expect(d.error == nil && d.skipped == 5 && d.entries == [Self.tcpEntry])
    }

    @Test func unknownOptions() {
        // Entry with an optional unknown option (0x40|9) is kept; with a mandatory one (9) skipped.
        for (type, kept) in [(UInt8(0x49), true), (UInt8(9), false)] {
            var b = Self.v1Single
            b += [type, 2, 0xAA, 0xBB]
            b[3] = UInt8(b.count)
            b[11] = 40
            let d = SyncMessageDecoder.decode(b)
            #expect(d.error == nil)
            #expect(d.entries.count == (kept ? 1 : 0) && d.skipped == (kept ? 0 : 1))
        }
    }

    @Test func framingErrorsAbortDatagram() {
        // Entry version nibble 1.
        var v = SyncMessageBuilder.messages([Self.tcpEntry, Self.tcpEntry], syncID: 0)[0]
        v[10] = 0x10
        #expect(SyncMessageDecoder.decode(v).error == .unknownEntryVersion(0))
        #expect(SyncMessageDecoder.decode(v).entries.isEmpty)
        // Second entry claims more bytes than remain.
        var t = SyncMessageBuilder.messages([Self.tcpEntry, Self.tcpEntry], syncID: 0)[0]
        t[47] = 60
        let d = SyncMessageDecoder.decode(t)
        #expect(d.entries.count == 1 && d.error == .truncatedEntry(1))
        // Option with length 0, and an option running past the entry.
        for opt: [UInt8] in [[2, 0, 0, 0], [2, 9, 0, 0]] {
            var b = Self.v1Single + opt
            b[3] = UInt8(b.count)
            b[11] = 40
            #expect(SyncMessageDecoder.decode(b).error == .badOption(0))
        }
        // Header count larger than the entries present.
        var c = Self.v1Single
        c[4] = 2
        #expect(SyncMessageDecoder.decode(c).error == .truncatedEntry(1))
        #expect(SyncMessageDecoder.decode(c).entries.count == 1)
    }

    @Test func truncatedAndGarbledAtEveryLength() {
        var six = Self.tcpEntry
        six.ipv6 = true
        six.client = IPAddress("2001:db8::1")!
        six.virtualAddress = IPAddress("2001:db8::2")!
        six.destination = IPAddress("2001:db8::3")!
        six.sequence = [9, 8, 7, 6, 5, 4]
        let full = SyncMessageBuilder.messages([Self.tcpEntry, six, Self.tcpEntry], syncID: 3)[0]
        for n in 0..<full.count {
            var cut = Array(full.prefix(n))
            let d0 = SyncMessageDecoder.decode(cut)
            #expect(d0.entries.isEmpty) // size no longer matches
            if n >= 4 {
                cut[2] = UInt8(n >> 8)
                cut[3] = UInt8(n & 0xFF)
                let d = SyncMessageDecoder.decode(cut)
                #expect(d.entries.count <= 3)
            }
        }
        var rng: UInt64 = 0x1234_5678
        for _ in 0..<3000 {
            var g = full
            for _ in 0..<4 {
                rng = rng &* 6364136223846793005 &+ 1442695040888963407
                let pos = Int((rng >> 33) % UInt64(g.count))
                g[pos] = UInt8(truncatingIfNeeded: rng >> 13)
            }
            _ = SyncMessageDecoder.decode(g)
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            let n = Int((rng >> 33) % UInt64(g.count))
            var h = Array(g.prefix(n))
            if n >= 4 { h[2] = UInt8(n >> 8); h[3] = UInt8(n & 0xFF) }
            _ = SyncMessageDecoder.decode(h)
        }
        #expect(SyncMessageDecoder.decode([]).error == .tooShort)
        #expect(SyncMessageDecoder.decode([0, 0, 0]).error == .tooShort)
        #expect(SyncMessageDecoder.decode([0, 0, 0, 4]).entries.isEmpty)
    }

    @Test func version0() {
        // nr_conns 1, syncid 2, size 28; entry: reserved, UDP, ports, addresses, flags INACTIVE|DR, state 0.
        let v0: [UInt8] = [
            1, 2, 0, 28,
            0, 17, 0x9C, 0x40, 0, 53, 0, 53,
            192, 168, 1, 50, 10, 0, 0, 100, 10, 0, 0, 11,
            0x01, 0x43, 0, 0,
        ]
        let d = SyncMessageDecoder.decode(v0)
        #expect(d.version == 0 && d.syncID == 2 && d.error == nil)
        #expect(d.entries == [SyncConnection(proto: 17, flags: 0x0103, state: 0, clientPort: 40000, virtualPort: 53, destinationPort: 53,
                                             timeout: 0, client: IPAddress("192.168.1.50")!, virtualAddress: IPAddress("10.0.0.100")!,
                                             destination: IPAddress("10.0.0.11")!)])
        // v0 with sequence data, and the encoder round trip.
        var nat = Self.tcpEntry
        nat.flags = 0x0400
        nat.timeout = 0
        nat.sequence = [1, 2, 3, 4, 5, 6]
        var plain = Self.tcpEntry
        plain.timeout = 0
        let enc = SyncMessageV0.encode([nat, plain], syncID: 9)
        #expect(enc.count == 4 + 48 + 24)
        let r = SyncMessageDecoder.decode(enc)
        #expect(r.version == 0 && r.entries == [nat, plain])
        // A v0 message whose sequence data is missing aborts.
        var cut = Array(enc.prefix(4 + 30))
        cut[0] = 1
        cut[3] = UInt8(cut.count)
        #expect(SyncMessageDecoder.decode(cut).error == .truncatedEntry(0))
        // A v1 message read by a v0 receiver would see reserved byte 0 = "0 connections".
        var v1 = Self.v1Single
        v1[7] = 1 // spare != 0: not v1, parsed as v0 with nr_conns 0
        #expect(SyncMessageDecoder.decode(v1).version == 0 && SyncMessageDecoder.decode(v1).entries.isEmpty)
    }
}
