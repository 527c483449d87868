import Testing
@testable import LVSCore

/// The named offsets into the engine's word arrays (issue 14): each layout is dense, its slots do
/// not overlap, and each word reaches the field of the public snapshot it is named after.
@Suite struct LayoutTests {
    @Test func flatTCPTableIndexAgreesWithTheTwoDimensionalTable() {
        #expect(TCPStateTable.stateCount == TCPState.allCases.count)
        #expect(TCPStateTable.inputOnlyFlat.count == TCPStateTable.inputOnly.count * TCPStateTable.stateCount)
        for (event, row) in TCPStateTable.inputOnly.enumerated() {
            for state in TCPState.allCases {
                let flat = TCPStateTable.inputOnlyFlat[TCPStateTable.index(event: event, state: state.rawValue)]
                #expect(flat == row[Int(state.rawValue)].rawValue)
            }
        }
        #expect(TCPStateTable.event(flags: TCPFlag.syn) == TCPStateTable.Event.syn.rawValue)
        #expect(TCPStateTable.event(flags: TCPFlag.fin | TCPFlag.ack) == TCPStateTable.Event.fin.rawValue)
        #expect(TCPStateTable.event(flags: TCPFlag.ack) == TCPStateTable.Event.ack.rawValue)
        #expect(TCPStateTable.event(flags: TCPFlag.rst | TCPFlag.syn) == TCPStateTable.Event.rst.rawValue)
        // The UDP and SCTP timeouts follow the TCP states' in `timeoutTicks`.
        #expect(Engine.udpTimeoutIndex >= TCPStateTable.stateCount && Engine.sctpTimeoutIndex > Engine.udpTimeoutIndex)
    }

    @Test func shardCountersHaveOneWordEach() {
        let fixed: [ShardCounter] = [.forwarded, .passed, .replies, .newConnections, .held, .dropEntryEvictions, .secureTCPShortened]
        #expect(fixed.allSatisfy { $0.rawValue < ShardCounter.dropBase })
        #expect(Set(fixed.map(\.rawValue)).count == fixed.count)
        let drops = DropReason.allCases.map { ShardCounter.drop($0) }
        #expect(Set(drops).count == drops.count)
        #expect(drops.allSatisfy { $0 >= ShardCounter.dropBase && $0 < ShardCounter.count })
    }

    @Test func perSlotLayoutsAreDenseAndDoNotOverlap() {
        let stats: [StatsWord] = [.conns, .inPackets, .outPackets, .inBytes, .outBytes]
        let counts: [DestCount] = [.active, .inactive, .persistent]
        let interfaceWords: [InterfaceWord] = [.ifindex, .mac]
        for slot in 0..<3 {
            #expect(stats.map { StatsWord.index(slot, $0) } == Array(slot * StatsWord.width..<(slot + 1) * StatsWord.width))
            #expect(counts.map { DestCount.index(UInt32(slot), $0) } == Array(slot * DestCount.width..<(slot + 1) * DestCount.width))
            #expect(interfaceWords.map { InterfaceWord.index(slot, $0) }
                    == Array(slot * InterfaceWord.width..<(slot + 1) * InterfaceWord.width))
        }
        #expect(DestCount.connection(inactive: true) == .inactive && DestCount.connection(inactive: false) == .active)
    }

    @Test func namedWordsReachTheirSnapshotFields() {
        let e = seedEngine()
        // One new connection, forwarded: new connections, forwarded, the destination's conns and input.
        let syn = FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 40000, dst: "192.168.1.100", dport: 80, flags: TCPFlag.syn)
        #expect(e.run(syn, at: second).0 == .forward(interface: 2))
        // A frame for another address is passed.
        let other = FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 40001, dst: "192.168.1.99", dport: 80, flags: TCPFlag.syn)
        #expect(e.run(other, at: second).0 == .pass)
        // An ACK of that connection whose TTL would expire: dropped, by reason, before it is counted.
        let expiring = FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 40000, dst: "192.168.1.100", dport: 80,
                                            flags: TCPFlag.ack, ttl: 1)
        #expect(e.run(expiring, at: second).0 == .drop(.ttlExceeded))
        let c = e.counters
        #expect(c.newConnections == 1 && c.forwarded == 1 && c.passed == 1 && c.replies == 0)
        for r in DropReason.allCases { #expect(c.drops[Int(r.rawValue)] == (r == .ttlExceeded ? 1 : 0)) }
        let d = e.snapshot().services[0].destinations.first { $0.stats.conns == 1 }!
        #expect(d.stats.inPackets == 1 && d.stats.inBytes == UInt64(syn.count - 14) && d.stats.outPackets == 0)
        #expect(d.activeConns == 1 && d.inactConns == 0 && d.persistConns == 0)
        #expect(e.snapshot().services[0].stats.conns == 1 && e.snapshot().services[0].stats.inPackets == 1)
    }
}
