import Testing
@testable import LVSCore
import LVSModel

/// The run-time settings as behaviour: each one changed on a running engine (`setSysctls`, what
/// `lvsadm daemon sysctl` does) changes what the next packet does.
@Suite struct SysctlEngineTests {
    static let client = "192.168.1.12"

    static func tcp(_ port: UInt16, _ flags: UInt8) -> [UInt8] {
        FrameBuilder.ipv4TCP(src: client, sport: port, dst: "192.168.1.100", dport: 80, flags: flags)
    }

    static func destMAC(_ out: [UInt8]) -> MACAddress { out.withUnsafeBytes { MACAddress(bytes: $0.baseAddress!) } }

    /// An IPv4 SCTP frame to VIP:9000 whose first chunk is `chunk` (1 INIT, 0 DATA, 6 ABORT).
    static func sctp(_ sport: UInt16, chunk: UInt8) -> [UInt8] {
        let chunkBytes: [UInt8] = [chunk, 0, 0, 4]
        let total = 20 + 12 + chunkBytes.count
        var ip: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 1, 0, 0, 64, 132, 0, 0]
        ip += FrameBuilder.v4(client) + FrameBuilder.v4("192.168.1.100")
        let cs = InternetChecksum.finish(ip.withUnsafeBytes { InternetChecksum.sum($0.baseAddress!, count: 20) })
        ip[10] = UInt8(cs >> 8); ip[11] = UInt8(cs & 0xFF)
        let common: [UInt8] = [UInt8(sport >> 8), UInt8(sport & 0xFF), 0x23, 0x28, 0, 0, 0, 1, 0, 0, 0, 0]
        return FrameBuilder.mac(FrameBuilder.directorMAC) + FrameBuilder.mac(FrameBuilder.clientMAC) + [0x08, 0x00]
            + ip + common + chunkBytes
    }

    @Test func sloppyTCPSchedulesAMidStreamACKOnlyWhenSet() throws {
        let e = seedEngine()
        #expect(e.sysctls[.sloppyTCP] == 0)
        #expect(e.run(Self.tcp(5000, TCPFlag.ack), at: second).0 == .pass)
        #expect(e.connectionCount == 0)
        try e.setSysctls([SysctlAssignment(.sloppyTCP, 1)])
        #expect(e.sysctls[.sloppyTCP] == 1)
        #expect(e.run(Self.tcp(5000, TCPFlag.ack), at: second).0 == .forward(interface: 2))
        #expect(e.connectionCount == 1)
        // An RST never creates one.
        #expect(e.run(Self.tcp(5001, TCPFlag.rst | TCPFlag.ack), at: second).0 == .pass)
        #expect(e.connectionCount == 1)
        // Back to 0: the established pickup goes on, a new mid-stream flow is not scheduled.
        try e.setSysctls([SysctlAssignment(.sloppyTCP, 0)])
        #expect(e.run(Self.tcp(5000, TCPFlag.ack), at: 2 * second).0 == .forward(interface: 2))
        #expect(e.run(Self.tcp(5002, TCPFlag.ack), at: 2 * second).0 == .pass)
        #expect(e.connectionCount == 1)
    }

    @Test func sloppySCTPSchedulesAnyChunkButAbort() throws {
        let e = seedEngine()
        let key = ServiceKey(proto: .sctp, address: IPAddress("192.168.1.100")!, port: 9000)
        try e.addService(key, ServiceOptions(scheduler: "rr"))
        try e.addDestination(key, DestinationOptions(address: IPAddress("192.168.1.31")!, port: 9000))
        #expect(e.run(Self.sctp(7000, chunk: 0), at: second).0 == .pass)
        #expect(e.run(Self.sctp(7001, chunk: 1), at: second).0 == .forward(interface: 2))
        #expect(e.connectionCount == 1)
        try e.setSysctls([SysctlAssignment(.sloppySCTP, 1)])
        #expect(e.run(Self.sctp(7002, chunk: 0), at: second).0 == .forward(interface: 2))
        #expect(e.run(Self.sctp(7003, chunk: 6), at: second).0 == .pass)
        #expect(e.connectionCount == 2)
    }

    /// expire_nodest_conn: a packet of a connection whose real server was deleted is dropped
    /// with 0; with 1 the entry goes and the packet is treated as new (an ACK then passes).
    @Test func expireNodestConnSetAtRunTime() throws {
        for expire in [0, 1] {
            let e = seedEngine()
            _ = e.syn(1, at: second) // → .32
            _ = e.run(Self.tcp(1, TCPFlag.ack), at: second)
            try e.deleteDestination(vip, address: IPAddress("192.168.1.32")!, port: 80)
            try e.setSysctls([SysctlAssignment(.expireNodestConn, expire)])
            let v = e.run(Self.tcp(1, TCPFlag.ack), at: 2 * second).0
            #expect(v == (expire == 1 ? .pass : .drop(.destinationUnavailable)), "expire_nodest_conn=\(expire)")
            #expect(e.connections(now: 2 * second).count == (expire == 1 ? 0 : 1), "expire_nodest_conn=\(expire)")
        }
    }

    /// conn_reuse_mode: a SYN on a FIN_WAIT entry (DR) stays with its server in mode 1 and is
    /// scheduled afresh in mode 3 (bit 1); mode 0 never reuses, not even TIME_WAIT.
    @Test func connReuseModeSetAtRunTime() throws {
        for mode in [1, 3] {
            let e = seedEngine()
            #expect(Self.destMAC(e.syn(9, at: second).1) == rs2MAC)
            for flags in [TCPFlag.ack, TCPFlag.fin, TCPFlag.ack] { _ = e.run(Self.tcp(9, flags), at: second) }
            #expect(e.connections(now: second).first?.state == "FIN_WAIT")
            try e.setSysctls([SysctlAssignment(.connReuseMode, mode)])
            let (v, out) = e.syn(9, at: 2 * second)
            #expect(v == .forward(interface: 2))
            #expect(Self.destMAC(out) == (mode == 3 ? rs1MAC : rs2MAC), "conn_reuse_mode=\(mode)")
            #expect(e.connections(now: 2 * second).count == 1)
        }
        #expect(!seedEngineReuses(mode: 0) && seedEngineReuses(mode: 1))
    }

    /// Whether a SYN on a CLOSE entry (ESTABLISHED, then an RST) is scheduled afresh with `mode`: its entry
    /// went to .32, round robin's next pick is .31.
    func seedEngineReuses(mode: Int) -> Bool {
        let e = seedEngine()
        _ = e.syn(11, at: second) // → .32
        _ = e.run(Self.tcp(11, TCPFlag.ack), at: second)
        _ = e.run(Self.tcp(11, TCPFlag.rst), at: second)
        try! e.setSysctls([SysctlAssignment(.connReuseMode, mode)])
        return Self.destMAC(e.syn(11, at: 2 * second).1) == rs1MAC
    }

    /// expire_quiescent_template: a persistent client whose server was quiesced (weight 0) keeps
    /// going there with 0, and is scheduled to another with 1.
    @Test func expireQuiescentTemplateSetAtRunTime() throws {
        for expire in [0, 1] {
            let e = seedEngine(persistent: 360)
            let first = Self.destMAC(e.syn(100, at: second).1)
            let quiesced = first == rs1MAC ? "192.168.1.31" : "192.168.1.32"
            try e.editDestination(vip, DestinationOptions(address: IPAddress(quiesced)!, port: 80, weight: 0))
            try e.setSysctls([SysctlAssignment(.expireQuiescentTemplate, expire)])
            let next = Self.destMAC(e.syn(101, at: 2 * second).1)
            #expect((next == first) == (expire == 0), "expire_quiescent_template=\(expire)")
        }
    }

    /// drop_packet 3 with am_droprate 2 sheds one of every two new connections; 0 none.
    @Test func dropPacketAndAmDroprateSetAtRunTime() throws {
        let e = seedEngine { $0.defense = DefenseConfiguration() }
        for p in 0..<4 { #expect(e.syn(UInt16(200 + p), at: second).0 == .forward(interface: 2)) }
        try e.setSysctls([SysctlAssignment(.dropPacket, 3), SysctlAssignment(.amDroprate, 2)])
        var dropped = 0
        for p in 0..<10 where e.syn(UInt16(300 + p), at: second).0 == .drop(.dropPacket) { dropped += 1 }
        #expect(dropped == 5)
        #expect(e.defenseStatus.configuration.dropPacket == .always)
    }

    /// A setting fixed at start, or a value out of range, refuses the whole change.
    @Test func aRefusedChangeChangesNothing() {
        let e = seedEngine()
        let before = e.sysctls
        #expect(throws: SysctlError.self) { try e.setSysctls([SysctlAssignment(.sloppyTCP, 1), SysctlAssignment(.amemthresh, 20)]) }
        #expect(throws: SysctlError.self) { try e.setSysctls([SysctlAssignment(.sloppyTCP, 1), SysctlAssignment(.dropEntry, 4)]) }
        #expect(e.sysctls == before)
    }

    /// Values given at start (EngineConfiguration, as lvsd's --settings fills it) are the live ones.
    @Test func startValuesComeFromTheConfiguration() {
        var cfg = EngineConfiguration()
        for a in [SysctlAssignment(.sloppyTCP, 1), SysctlAssignment(.amemthresh, 20), SysctlAssignment(.syncRetries, 2),
                  SysctlAssignment(.secureTCP, 3)] { cfg.apply(a) }
        let e = Engine(configuration: cfg)
        #expect(e.sysctls[.sloppyTCP] == 1 && e.sysctls[.amemthresh] == 20 && e.sysctls[.syncRetries] == 2)
        #expect(e.sysctls[.secureTCP] == 3 && e.defenseStatus.configuration.secureTCP == .always)
        #expect(cfg.sysctlValues == e.sysctls)
    }
}
