import XCTest
import CLVSXDP
import LVSCore
@testable import LVSDataPlane
import LVSModel

/// Issue 18 (NAT, "Fast path"): the tc program forwards NAT connections in both directions
/// (bpf/lib/nat.h), run on single frames with BPF_PROG_TEST_RUN (nothing attached, nothing sent;
/// root). Checksums are verified by recomputing them over the rewritten frame.
final class BPFNATTests: XCTestCase {
    typealias T = BPFProgramTests
    static let client = (v4: "192.168.1.12", v6: "2001:db8:1::12")
    static let vip = (v4: "192.168.1.100", v6: "2001:db8:1::100")
    static let server = (v4: "10.0.0.31", v6: "2001:db8:2::31")
    static let clientPort: UInt16 = 40000, virtualPort: UInt16 = 80, serverPort: UInt16 = 8080
    /// The client's MAC as the reply entry holds it, and the director's on the client side.
    static let clientHopMAC: [UInt8] = [0x00, 0x50, 0x00, 0x00, 0x03, 0x07]
    static let clientSideMAC: [UInt8] = [0x00, 0x50, 0x00, 0x00, 0x04, 0x02]
    /// An odd-length payload (the checksum's last byte is padded).
    static let payload: [UInt8] = Array("hello, world".utf8) + [0xAB]
    static let l3 = 14
    static let fin: UInt8 = 0x11, rst: UInt8 = 0x04

    // MARK: frames with valid checksums

    static func sum16(_ bytes: [UInt8]) -> UInt32 {
        var s: UInt32 = 0, i = 0
        while i + 1 < bytes.count { s += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1]); i += 2 }
        if i < bytes.count { s += UInt32(bytes[i]) << 8 }
        return s
    }

    static func fold(_ s: UInt32) -> UInt16 {
        var s = s
        while s >> 16 != 0 { s = (s & 0xFFFF) + (s >> 16) }
        return UInt16(s)
    }

    static func pseudoHeader(_ src: [UInt8], _ dst: [UInt8], proto: UInt8, length: Int) -> [UInt8] {
        src.count == 4 ? src + dst + [0, proto] + T.be16(UInt16(length))
                       : src + dst + [0, 0] + T.be16(UInt16(length)) + [0, 0, 0, proto]
    }

    /// Ethernet + IP + TCP/UDP + payload from `src`:`sport` to `dst`:`dport`, every checksum
    /// valid (`zeroUDPChecksum`: an IPv4 UDP datagram without one).
    static func frame(_ proto: UInt8, from src: String, _ sport: UInt16, to dst: String, _ dport: UInt16,
                      flags: UInt8 = T.ack, zeroUDPChecksum: Bool = false) -> [UInt8] {
        let s = T.bytes(src), d = T.bytes(dst), v4 = s.count == 4
        let checkAt = proto == T.tcp ? 16 : 6
        var l4 = T.be16(sport) + T.be16(dport)
        l4 += proto == T.tcp ? [0, 0, 0, 1, 0, 0, 0, 1, 0x50, flags, 0xFF, 0xFF, 0, 0, 0, 0]
                             : T.be16(UInt16(8 + payload.count)) + [0, 0]
        l4 += payload
        if !zeroUDPChecksum {
            var c = ~fold(sum16(pseudoHeader(s, d, proto: proto, length: l4.count) + l4))
            if proto == T.udp && c == 0 { c = 0xFFFF }
            l4[checkAt] = UInt8(c >> 8)
            l4[checkAt + 1] = UInt8(c & 0xFF)
        }
        if v4 {
            var ip: [UInt8] = [0x45, 0] + T.be16(UInt16(20 + l4.count)) + [0, 1, 0x40, 0, 64, proto, 0, 0] + s + d
            let c = ~fold(sum16(ip))
            ip[10] = UInt8(c >> 8)
            ip[11] = UInt8(c & 0xFF)
            return T.directorMAC + T.clientMAC + T.etherIPv4 + ip + l4
        }
        let ip: [UInt8] = [0x60, 0, 0, 0] + T.be16(UInt16(l4.count)) + [proto, 64] + s + d
        return T.directorMAC + T.clientMAC + T.etherIPv6 + ip + l4
    }

    /// What a frame carries: addresses, ports, TTL, MACs, and whether its checksums verify.
    struct Seen: Equatable {
        var source: [UInt8], destination: [UInt8]
        var sourcePort: UInt16, destinationPort: UInt16
        var ttl: UInt8
        var destinationMAC: [UInt8], sourceMAC: [UInt8]
        var ipChecksumOK: Bool, l4ChecksumOK: Bool
        var l4Checksum: UInt16
    }

    static func read(_ f: [UInt8]) -> Seen {
        let v4 = f[12] == 0x08
        let ip = Array(f[l3...])
        let hlen = v4 ? 20 : 40
        let src = v4 ? Array(ip[12..<16]) : Array(ip[8..<24])
        let dst = v4 ? Array(ip[16..<20]) : Array(ip[24..<40])
        let proto = v4 ? ip[9] : ip[6]
        let l4 = Array(ip[hlen...])
        let checkAt = proto == T.tcp ? 16 : 6
        let check = UInt16(l4[checkAt]) << 8 | UInt16(l4[checkAt + 1])
        let l4OK = (proto == T.udp && v4 && check == 0)
            || fold(sum16(pseudoHeader(src, dst, proto: proto, length: l4.count) + l4)) == 0xFFFF
        return Seen(source: src, destination: dst,
                    sourcePort: UInt16(l4[0]) << 8 | UInt16(l4[1]), destinationPort: UInt16(l4[2]) << 8 | UInt16(l4[3]),
                    ttl: v4 ? ip[8] : ip[7], destinationMAC: Array(f[0..<6]), sourceMAC: Array(f[6..<12]),
                    ipChecksumOK: !v4 || fold(sum16(Array(ip[0..<20]))) == 0xFFFF, l4ChecksumOK: l4OK, l4Checksum: check)
    }

    // MARK: the program with one NAT connection

    struct Lab {
        let p: XDPProgram
        let map: XDPConnMap
        var connKey: clvs_conn_key
        var replyKey: clvs_nat_reply_key
        let slot: UInt32
    }

    /// A tc (or XDP) program with the VIPs' services and a NAT connection client -> VIP:80 ->
    /// server:8080 of `proto` in `conns` and `nat_replies`, as FastPathBook writes them.
    func lab(_ kind: XDPProgram.Kind = .tc, proto: UInt8, v4: Bool, slot: UInt32) throws -> Lab {
        guard geteuid() == 0 else { throw XCTSkip("needs root to load BPF programs") }
        let p = try XDPProgram(object: .builtIn, kind: kind)
        try XDPVIPMap(program: p).update(vips: [
            VIPMatch(address: IPAddress(Self.vip.v4)!, proto: proto, port: Self.virtualPort),
            VIPMatch(address: IPAddress(Self.vip.v6)!, proto: proto, port: Self.virtualPort),
        ])
        let map = XDPConnMap(program: p, nat: true)
        let key = ConnectionKey(proto: proto, client: IPAddress(v4 ? Self.client.v4 : Self.client.v6)!, clientPort: Self.clientPort,
                                virtualAddress: IPAddress(v4 ? Self.vip.v4 : Self.vip.v6)!, virtualPort: Self.virtualPort)
        let server = IPAddress(v4 ? Self.server.v4 : Self.server.v6)!
        var k = XDPConnMap.key(key)
        var rk = XDPConnMap.replyKey(key, server: server, serverPort: Self.serverPort)
        var rv = XDPConnMap.replyValue(k, clientMAC: MACAddress(bytes: Self.clientHopMAC), sourceMAC: MACAddress(bytes: Self.clientSideMAC),
                                       interface: 3, destSlot: slot)
        XCTAssertEqual(map.putReply(&rk, &rv), 0)
        XCTAssertEqual(map.putNAT(&k, destinationMAC: MACAddress(bytes: T.realServerMAC), sourceMAC: MACAddress(bytes: T.egressMAC),
                                  interface: 9, destSlot: slot, server: server, serverPort: Self.serverPort), 0)
        return Lab(p: p, map: map, connKey: k, replyKey: rk, slot: slot)
    }

    /// Both directions of IPv4 TCP, IPv4 UDP and IPv6 TCP (and UDP): the client's packet leaves
    /// with the real server's address and port, the reply with VIP:vport; TTL minus one, the
    /// MACs of the entry, every checksum right (recomputed here); `stats` and `dest_stats` count
    /// them (In for the client's, Out for the reply), and a reply refreshes its connection's
    /// last-seen time.
    func testNATBothDirections() throws {
        let cases: [(String, UInt8, Bool, UInt32)] = [("IPv4 TCP", T.tcp, true, 11), ("IPv4 UDP", T.udp, true, 12),
                                                      ("IPv6 TCP", T.tcp, false, 13), ("IPv6 UDP", T.udp, false, 14)]
        for (what, proto, v4, slot) in cases {
            var lab = try lab(proto: proto, v4: v4, slot: slot)
            let c = v4 ? Self.client.v4 : Self.client.v6, vip = v4 ? Self.vip.v4 : Self.vip.v6, rs = v4 ? Self.server.v4 : Self.server.v6
            // Client -> VIP:80 becomes client -> server:8080.
            let toVIP = Self.frame(proto, from: c, Self.clientPort, to: vip, Self.virtualPort)
            let before = try XCTUnwrap(lab.map.destinationCounters(slot)), frames = try lab.p.frameCounters()
            let out = try lab.p.testRunFrame(toVIP)
            XCTAssertEqual(out.action, T.tcRedirect, "\(what): client's packet forwarded")
            XCTAssertEqual(out.frame.count, toVIP.count, what)
            let s = Self.read(out.frame), was = Self.read(toVIP)
            XCTAssertEqual(s.source, T.bytes(c), what)
            XCTAssertEqual(s.destination, T.bytes(rs), "\(what): destination is the real server")
            XCTAssertEqual(s.sourcePort, Self.clientPort, what)
            XCTAssertEqual(s.destinationPort, Self.serverPort, "\(what): destination port is the real server's")
            XCTAssertEqual(s.ttl, was.ttl - 1, "\(what): TTL")
            XCTAssertEqual(s.destinationMAC, T.realServerMAC, what)
            XCTAssertEqual(s.sourceMAC, T.egressMAC, what)
            XCTAssertTrue(s.ipChecksumOK, "\(what): IPv4 header checksum")
            XCTAssertTrue(s.l4ChecksumOK, "\(what): L4 checksum \(String(s.l4Checksum, radix: 16))")
            XCTAssertEqual(Array(out.frame.suffix(Self.payload.count)), Self.payload, "\(what): payload")
            var counted = try XCTUnwrap(lab.map.destinationCounters(slot))
            XCTAssertEqual(counted.packets, before.packets + 1, "\(what): In packet")
            XCTAssertEqual(counted.bytes, before.bytes + UInt64(toVIP.count - Self.l3), "\(what): In bytes")
            XCTAssertEqual(counted.outPackets, before.outPackets, what)
            XCTAssertEqual(try lab.p.frameCounters().fast, frames.fast + 1, what)

            // Server:8080 -> client becomes VIP:80 -> client.
            XCTAssertEqual(lab.map.get(&lab.connKey)?.last_seen != 0, true)
            var zeroed = lab.connKey
            XCTAssertEqual(lab.map.putNAT(&zeroed, destinationMAC: MACAddress(bytes: T.realServerMAC), sourceMAC: MACAddress(bytes: T.egressMAC),
                                          interface: 9, destSlot: slot, server: IPAddress(rs)!, serverPort: Self.serverPort), 0)
            XCTAssertEqual(lab.map.get(&lab.connKey)?.last_seen, 0)
            let reply = Self.frame(proto, from: rs, Self.serverPort, to: c, Self.clientPort)
            let back = try lab.p.testRunFrame(reply)
            XCTAssertEqual(back.action, T.tcRedirect, "\(what): reply forwarded")
            let r = Self.read(back.frame), rwas = Self.read(reply)
            XCTAssertEqual(r.source, T.bytes(vip), "\(what): reply's source is the VIP")
            XCTAssertEqual(r.destination, T.bytes(c), what)
            XCTAssertEqual(r.sourcePort, Self.virtualPort, "\(what): reply's source port is the virtual port")
            XCTAssertEqual(r.destinationPort, Self.clientPort, what)
            XCTAssertEqual(r.ttl, rwas.ttl - 1, "\(what): reply TTL")
            XCTAssertEqual(r.destinationMAC, Self.clientHopMAC, "\(what): to the client's next hop")
            XCTAssertEqual(r.sourceMAC, Self.clientSideMAC, what)
            XCTAssertTrue(r.ipChecksumOK, "\(what): reply IPv4 header checksum")
            XCTAssertTrue(r.l4ChecksumOK, "\(what): reply L4 checksum \(String(r.l4Checksum, radix: 16))")
            counted = try XCTUnwrap(lab.map.destinationCounters(slot))
            XCTAssertEqual(counted.outPackets, before.outPackets + 1, "\(what): Out packet")
            XCTAssertEqual(counted.outBytes, before.outBytes + UInt64(reply.count - Self.l3), "\(what): Out bytes")
            XCTAssertEqual(try lab.p.frameCounters().natReply, frames.natReply + 1, what)
            XCTAssertNotEqual(lab.map.get(&lab.connKey)?.last_seen ?? 0, 0, "\(what): the reply keeps the connection alive")
        }
    }

    /// What the tc program leaves alone: a client's SYN (lvsd's: a service frame), the real
    /// server's FIN or RST (lvsd follows the state), a reply without a `nat_replies` entry, a
    /// reply whose connection left `conns` (kernel / lvsd's packet sockets), all untouched and
    /// uncounted; an IPv4 UDP datagram without checksum keeps none.
    func testWhatTheNATFastPathLeavesToLVSDAndTheKernel() throws {
        var lab = try lab(proto: T.tcp, v4: true, slot: 21)
        let c = Self.client.v4, vip = Self.vip.v4, rs = Self.server.v4
        let before = try lab.p.frameCounters(), counted = try XCTUnwrap(lab.map.destinationCounters(21))
        let syn = Self.frame(T.tcp, from: c, Self.clientPort, to: vip, Self.virtualPort, flags: T.syn)
        let synRun = try lab.p.testRunFrame(syn)
        XCTAssertEqual(synRun.action, T.tcOK)
        XCTAssertEqual(synRun.frame, syn, "SYN not rewritten")
        XCTAssertEqual(try lab.p.frameCounters().service, before.service + 1, "SYN to lvsd")
        for (what, flags) in [("FIN", Self.fin), ("RST", Self.rst), ("SYN-ACK", 0x12)] {
            let f = Self.frame(T.tcp, from: rs, Self.serverPort, to: c, Self.clientPort, flags: flags)
            let run = try lab.p.testRunFrame(f)
            XCTAssertEqual(run.action, T.tcOK, "server's \(what) not forwarded")
            XCTAssertEqual(run.frame, f, "server's \(what) untouched")
        }
        let stranger = Self.frame(T.tcp, from: rs, 9999, to: c, Self.clientPort)
        XCTAssertEqual(try lab.p.testRunFrame(stranger).frame, stranger, "reply without an entry")
        XCTAssertEqual(try lab.p.testRunFrame(stranger).action, T.tcOK)
        lab.map.delete(&lab.connKey)
        let orphan = Self.frame(T.tcp, from: rs, Self.serverPort, to: c, Self.clientPort)
        let run = try lab.p.testRunFrame(orphan)
        XCTAssertEqual(run.action, T.tcOK, "reply whose connection left conns")
        XCTAssertEqual(run.frame, orphan)
        XCTAssertEqual(try lab.p.frameCounters().natReply, before.natReply, "nothing counted as a NAT reply")
        XCTAssertEqual(try lab.p.frameCounters().fast, before.fast, "nothing fast-forwarded")
        XCTAssertEqual(try XCTUnwrap(lab.map.destinationCounters(21)), counted, "destination counters unchanged")

        var udp = try self.lab(proto: T.udp, v4: true, slot: 22)
        let bare = Self.frame(T.udp, from: c, Self.clientPort, to: vip, Self.virtualPort, zeroUDPChecksum: true)
        let out = try udp.p.testRunFrame(bare)
        XCTAssertEqual(out.action, T.tcRedirect)
        XCTAssertEqual(Self.read(out.frame).l4Checksum, 0, "IPv4 UDP without checksum stays without")
        XCTAssertEqual(Self.read(out.frame).destination, T.bytes(rs))
        XCTAssertTrue(Self.read(out.frame).ipChecksumOK)
        udp.map.delete(&udp.connKey)
    }

    /// The XDP program does no NAT: an entry with CLVS_CONN_NAT (lvsd writes none there) is not
    /// forwarded as DR, the frame goes to lvsd unrewritten; replies are the kernel's.
    func testTheXDPProgramForwardsNoNAT() throws {
        let lab = try lab(.xdp, proto: T.tcp, v4: true, slot: 31)
        let toVIP = Self.frame(T.tcp, from: Self.client.v4, Self.clientPort, to: Self.vip.v4, Self.virtualPort)
        let before = try lab.p.frameCounters()
        let run = try lab.p.testRunFrame(toVIP)
        XCTAssertEqual(run.frame, toVIP, "not rewritten")
        XCTAssertEqual(try lab.p.frameCounters().service, before.service + 1, "to lvsd")
        let reply = Self.frame(T.tcp, from: Self.server.v4, Self.serverPort, to: Self.client.v4, Self.clientPort)
        let back = try lab.p.testRunFrame(reply)
        XCTAssertEqual(back.action, T.xdpPass)
        XCTAssertEqual(back.frame, reply)
    }
    /// The tc program's cost per frame (run with LVS_BPF_COST=1; LVS_BPF_BASELINE_OBJECT: an
    /// object built from the sources before NAT was in it): BPF_PROG_TEST_RUN's mean time for a
    /// DR frame it forwards, a TCP frame it leaves to the kernel (now one settings lookup more,
    /// and the `nat_replies` lookup once a NAT connection was in the map), and this build's NAT
    /// client packet and reply (one run each: the rewrite carries
    /// over to the next run). Prints; asserts nothing about time. Without LVS_BPF_COST=1 it runs
    /// two rounds of each (the same paths, not timed).
    func testTCCostPerFrame() throws {
        var objects: [(String, BPFObject)] = [("this build", .builtIn)]
        if let path = ProcessInfo.processInfo.environment["LVS_BPF_BASELINE_OBJECT"] {
            objects.insert(("baseline", try BPFObject(contentsOf: path)), at: 0)
        }
        let rounds = BPFProgramTests.costRounds(2000), perRound: UInt32 = 250
        var dr = T.ipv4(T.tcp, to: Self.vip.v4, port: Self.virtualPort, tcpFlags: T.ack)
        dr[Self.l3 + T.ipv4TTLAt] = 255
        let kernel = Self.frame(T.tcp, from: "192.168.1.50", 22, to: "192.168.1.21", 50000)
        for (name, object) in objects {
            guard geteuid() == 0 else { throw XCTSkip("needs root to load BPF programs") }
            let p = try XDPProgram(object: object, kind: .tc)
            try XDPVIPMap(program: p).update(vips: [VIPMatch(address: IPAddress(Self.vip.v4)!, proto: T.tcp, port: Self.virtualPort)])
            let map = XDPConnMap(program: p)
            var key = XDPConnMap.key(ConnectionKey(proto: T.tcp, client: IPAddress("192.168.1.12")!, clientPort: 40000,
                                                   virtualAddress: IPAddress(Self.vip.v4)!, virtualPort: Self.virtualPort))
            XCTAssertEqual(map.put(&key, destinationMAC: MACAddress(bytes: T.realServerMAC), sourceMAC: MACAddress(bytes: T.egressMAC),
                                   interface: 9, destSlot: 5), 0)
            func mean(_ prog: XDPProgram, _ f: [UInt8]) throws -> Double {
                var total = 0.0
                for _ in 0..<rounds { total += Double(try prog.timedRun(f, repeat: perRound).nanoseconds) }
                return total / Double(rounds)
            }
            var line = String(format: "BPF tc %@: DR forwarded %.1f ns/frame, to the kernel %.1f ns/frame", name,
                              try mean(p, dr), try mean(p, kernel))
            if name == "this build" {
                let nat = try lab(proto: T.tcp, v4: true, slot: 41)
                let toVIP = Self.frame(T.tcp, from: Self.client.v4, Self.clientPort, to: Self.vip.v4, Self.virtualPort)
                let reply = Self.frame(T.tcp, from: Self.server.v4, Self.serverPort, to: Self.client.v4, Self.clientPort)
                func once(_ prog: XDPProgram, _ f: [UInt8]) throws -> Double {
                    var total = 0.0
                    for _ in 0..<rounds { total += Double(try prog.timedRun(f, repeat: 1).nanoseconds) }
                    return total / Double(rounds)
                }
                line += String(format: "; to the kernel once NAT replies are looked up %.1f", try mean(nat.p, kernel))
                line += String(format: "; single runs: DR %.1f, NAT client packet %.1f, NAT reply %.1f ns/frame",
                               try once(p, dr), try once(nat.p, toVIP), try once(nat.p, reply))
            }
            print(line)
        }
    }
}
