import Testing
@testable import LVSCore
import LVSModel

/// The shard's side of stale fast-path entries (`Offload+Stale.swift`): while the worker says
/// some exist, a new connection, and a FIN/RST of no connection, are recorded as removals of
/// their 4-tuple; otherwise nothing is.
@Suite struct StaleOffloadTests {
    func tcp(_ e: Engine, port: UInt16, _ flags: UInt8, at now: UInt64) -> Verdict {
        e.run(FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: port, dst: "192.168.1.100", dport: 80, flags: flags), at: now).0
    }
    func drained(_ s: EngineShard) -> [OffloadRecord] {
        var out: [OffloadRecord] = []
        s.drainOffloads { out.append($0) }
        return out
    }

    @Test func newConnectionsAndUnknownFINsAreRecordedOnlyWhileFlagged() {
        let e = seedEngine()
        let s = e.primary!
        s.offloadEnabled = true
        // Flag clear: a SYN and a FIN of no connection record nothing.
        _ = tcp(e, port: 6100, TCPFlag.syn, at: second)
        _ = tcp(e, port: 6101, TCPFlag.fin | TCPFlag.ack, at: second)
        #expect(drained(s).isEmpty)
        s.offloadStaleKeys = true
        _ = tcp(e, port: 6102, TCPFlag.syn, at: second)
        _ = tcp(e, port: 6103, TCPFlag.rst, at: second)
        _ = tcp(e, port: 6104, TCPFlag.ack, at: second) // a mid-stream segment of no connection: nothing
        _ = tcp(e, port: 6102, TCPFlag.ack, at: second) // the new connection's ACK: not new any more
        let r = drained(s)
        #expect(r.map(\.key.clientPort) == [6102, 6103])
        #expect(r.allSatisfy { $0.remove })
    }

    @Test func theIdleTimeoutsAreTheConfiguredOnes() throws {
        let e = seedEngine()
        try e.setTimeouts(IPVSTimeouts(tcp: 7, tcpFin: 5, udp: 3))
        #expect(e.primary!.fastPathIdleTimeout(proto: 6) == 7 * second)
        #expect(e.primary!.fastPathIdleTimeout(proto: 17) == 3 * second)
    }
}
