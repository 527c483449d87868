import Testing
@testable import LVSCore
import LVSModel

/// One service with a DR, a tunnel and a NAT real server, as the kernel allows: each new
/// connection leaves by its own real server's method, and the NAT one's reply comes back as the
/// VIP.
@Suite struct MixedMethodsTests {
    typealias N = NATFrames
    let client = "192.168.1.12", vip = "192.168.1.100"
    static let gateway = IPAddress("192.168.1.254")!
    static let gatewayMAC = MACAddress("00:50:00:00:09:00")!
    static let drServer = IPAddress("192.168.1.31")!
    static let tunServer = IPAddress("10.9.0.31")!

    @Test func drTunnelAndNATInOneService() {
        // The NAT real server 10.0.0.11:8080 behind eth1 first (natEngine), then DR and TUN.
        let (e, key) = natEngine()
        try! e.addDestination(key, DestinationOptions(address: Self.drServer, port: 80))
        e.setNeighbour(Self.drServer, mac: rs1MAC, interface: N.clientSide)
        try! e.addDestination(key, DestinationOptions(address: Self.tunServer, port: 80, method: .tunnel, tunnelType: .ipip))
        e.setTunnelRoute(Self.tunServer, TunnelRoute(interface: N.clientSide, gateway: Self.gateway,
                                                     source: IPAddress("192.168.1.21")!, mtu: 1500))
        _ = e.run(FrameBuilder.arpReply(senderMAC: Self.gatewayMAC, senderIP: "192.168.1.254", targetIP: "192.168.1.21"),
                  on: N.clientSide, at: second)

        // rr over the three: each SYN from another port; which method each got is read from
        // the verdict and the frame.
        var methods: [String] = []
        for port in UInt16(40000)..<40003 {
            let syn = N.segment(to: N.directorIn, from: N.clientMAC, src: client, sport: port, dst: vip, dport: 80, flags: TCPFlag.syn)
            let (verdict, out) = e.run(syn, on: N.clientSide, at: 2 * second)
            switch verdict {
            case .forward(interface: N.clientSide):
                // DR: only the MACs (and the TTL) change; the VIP stays the destination.
                #expect(Array(out[0..<6]) == FrameBuilder.mac(rs1MAC))
                #expect(Array(out[30..<34]) == FrameBuilder.v4(vip))
                methods.append("DR")
            case .forward(interface: N.serverSide):
                // NAT: the real server's address and port.
                #expect(Array(out[30..<34]) == FrameBuilder.v4("10.0.0.11"))
                #expect(Array(out[36..<38]) == [0x1F, 0x90])
                methods.append("NAT")
            case .drop(.tunnelled):
                var frames: [[UInt8]] = []
                e.primary.outbox.drain { bytes, _ in frames.append(Array(bytes)) }
                #expect(frames.count == 1)
                if let frame = frames.first {
                    let outer = frame.withUnsafeBytes { FrameParser.parse($0) }
                    #expect(outer.proto == 4 && outer.destination == Self.tunServer)
                    #expect(Array(frame[0..<6]) == FrameBuilder.mac(Self.gatewayMAC))
                }
                methods.append("TUN")
            default:
                Issue.record("SYN from port \(port): unexpected verdict \(verdict)")
            }
        }
        #expect(methods.sorted() == ["DR", "NAT", "TUN"])

        // The NAT connection's reply goes back to the client as the VIP.
        let natPort = UInt16(40000) + UInt16(methods.firstIndex(of: "NAT") ?? 0)
        let reply = N.segment(to: N.directorOut, from: N.serverMAC, src: "10.0.0.11", sport: 8080, dst: client, dport: natPort,
                              flags: TCPFlag.syn | TCPFlag.ack)
        let (v, back) = e.run(reply, on: N.serverSide, at: 2 * second)
        #expect(v == .forward(interface: N.clientSide))
        #expect(Array(back[26..<30]) == FrameBuilder.v4(vip) && Array(back[34..<36]) == [0x00, 0x50])
        // Each real server counted one connection.
        for rs in ["10.0.0.11", "192.168.1.31", "10.9.0.31"] { #expect(e.dest(rs).stats.conns == 1, "\(rs)") }
    }
}
