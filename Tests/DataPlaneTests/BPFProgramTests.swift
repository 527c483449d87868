import Foundation
import XCTest
import CLVSXDP
import LVSCore
@testable import LVSDataPlane
import LVSModel

/// lvsd's BPF programs (bpf/lvs_xdp.c, built into lvsd) run on single frames with
/// BPF_PROG_TEST_RUN: nothing is attached and nothing is sent. Whether a frame went to lvsd is read
/// from the programs' `stats` counters (with an empty `xsks` map the XDP redirect falls back to
/// XDP_DROP, so the action alone does not tell). Needs root (loading BPF programs).
final class BPFProgramTests: XCTestCase {
    static let clientMAC: [UInt8] = [0x00, 0x50, 0x00, 0x00, 0x03, 0x00]
    static let directorMAC: [UInt8] = [0x00, 0x50, 0x00, 0x00, 0x04, 0x00]
    static let etherIPv4: [UInt8] = [0x08, 0x00]
    static let etherIPv6: [UInt8] = [0x86, 0xDD]
    static let etherARP: [UInt8] = [0x08, 0x06]
    static let tcp: UInt8 = 6, udp: UInt8 = 17, icmpv6: UInt8 = 58
    /// TCP flags: a connection's first segment (lvsd's), and one of an established connection.
    static let syn: UInt8 = 0x02, ack: UInt8 = 0x10
    static let realServerMAC: [UInt8] = [0x00, 0x50, 0x00, 0x00, 0x05, 0x00]
    static let egressMAC: [UInt8] = [0x00, 0x50, 0x00, 0x00, 0x04, 0x01]
    /// Program return values (linux/bpf.h, linux/pkt_cls.h).
    static let xdpDrop: UInt32 = 1, xdpPass: UInt32 = 2, xdpTX: UInt32 = 3, xdpRedirect: UInt32 = 4
    static let tcOK: UInt32 = 0, tcRedirect: UInt32 = 7
    /// Frame offsets: the MAC addresses, and the IPv4 TTL / IPv6 hop limit after `l3`.
    static let destinationMACAt = 0, sourceMACAt = 6, ipv4TTLAt = 8, ipv4ChecksumAt = 10, ipv6HopLimitAt = 7

    static func bytes(_ a: String) -> [UInt8] {
        let ip = IPAddress(a)!
        var out = [UInt8](repeating: 0, count: ip.isIPv4 ? 4 : 16)
        out.withUnsafeMutableBytes { ip.store(to: $0.baseAddress!) }
        return out
    }

    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }

    /// Ethernet + IPv4 + TCP/UDP header to `dst`:`port` (checksums left zero: the programs do not
    /// check them). `fragmentOffset` > 0 makes it a later fragment (no transport header).
    static func ipv4(_ proto: UInt8, to dst: String, port: UInt16, fragmentOffset: UInt16 = 0, tcpFlags: UInt8 = syn) -> [UInt8] {
        let l4: [UInt8] = fragmentOffset > 0 ? [UInt8](repeating: 0, count: 16)
            : be16(40000) + be16(port) + (proto == tcp ? [0, 0, 0, 1, 0, 0, 0, 0, 0x50, tcpFlags, 0xFF, 0xFF, 0, 0, 0, 0]
                                                       : be16(8) + [0, 0])
        var ip: [UInt8] = [0x45, 0] + be16(UInt16(20 + l4.count)) + [0, 1] + be16(fragmentOffset) + [64, proto, 0, 0]
        ip += bytes("192.168.1.12") + bytes(dst)
        return directorMAC + clientMAC + etherIPv4 + ip + l4
    }

    /// Ethernet + IPv6 + TCP header to `dst`:`port`.
    static func ipv6(to dst: String, port: UInt16, tcpFlags: UInt8 = syn) -> [UInt8] {
        let l4 = be16(40000) + be16(port) + [0, 0, 0, 1, 0, 0, 0, 0, 0x50, tcpFlags, 0xFF, 0xFF, 0, 0, 0, 0]
        let ip: [UInt8] = [0x60, 0, 0, 0] + be16(UInt16(l4.count)) + [tcp, 64] + bytes("2001:db8:1::12") + bytes(dst)
        return directorMAC + clientMAC + etherIPv6 + ip + l4
    }

    /// An ICMP port unreachable (ICMPv6 type 1 code 4 for IPv6 addresses) from the client to `to`,
    /// quoting a packet sent from `quotedSource`:`sport` (protocol `proto`) to the client.
    static func icmpError(to: String, quotedSource: String, proto: UInt8, sport: UInt16) -> [UInt8] {
        let client = IPAddress(to)!.isIPv4 ? "192.168.1.12" : "2001:db8:1::12"
        let quotedL4 = be16(sport) + be16(40000) + [0, 0, 0, 0]
        if IPAddress(to)!.isIPv4 {
            let quoted: [UInt8] = [0x45, 0] + be16(UInt16(20 + 8)) + [0, 1, 0, 0, 64, proto, 0, 0] + bytes(quotedSource) + bytes(client) + quotedL4
            let icmp: [UInt8] = [3, 3, 0, 0, 0, 0, 0, 0] + quoted
            let ip: [UInt8] = [0x45, 0] + be16(UInt16(20 + icmp.count)) + [0, 1, 0, 0, 64, 1, 0, 0] + bytes(client) + bytes(to)
            return directorMAC + clientMAC + etherIPv4 + ip + icmp
        }
        let quoted: [UInt8] = [0x60, 0, 0, 0] + be16(8) + [proto, 64] + bytes(quotedSource) + bytes(client) + quotedL4
        let icmp: [UInt8] = [1, 4, 0, 0, 0, 0, 0, 0] + quoted
        let ip: [UInt8] = [0x60, 0, 0, 0] + be16(UInt16(icmp.count)) + [icmpv6, 64] + bytes(client) + bytes(to)
        return directorMAC + clientMAC + etherIPv6 + ip + icmp
    }

    /// A broadcast ARP request for `target`.
    static func arpRequest(for target: String) -> [UInt8] {
        let arp: [UInt8] = [0, 1, 0x08, 0x00, 6, 4, 0, 1] + clientMAC + bytes("192.168.1.12") + [0, 0, 0, 0, 0, 0] + bytes(target)
        return [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] + clientMAC + etherARP + arp
    }

    /// A neighbour solicitation for `target` (hop limit 255, source link-layer option).
    static func solicitation(for target: String) -> [UInt8] {
        let icmp: [UInt8] = [135, 0, 0, 0, 0, 0, 0, 0] + bytes(target) + [1, 1] + clientMAC
        let ip: [UInt8] = [0x60, 0, 0, 0] + be16(UInt16(icmp.count)) + [icmpv6, 255] + bytes("2001:db8:1::12") + bytes(target)
        return [0x33, 0x33, 0xFF, 0x00, 0x01, 0x00] + clientMAC + etherIPv6 + ip + icmp
    }

    /// `frame` with VLAN tags (TPIDs, outermost first) inserted after the MAC addresses.
    static func tagged(_ frame: [UInt8], _ tpids: [UInt16]) -> [UInt8] {
        var tags: [UInt8] = []
        for (i, tpid) in tpids.enumerated() { tags += be16(tpid) + be16(UInt16(10 + i)) }
        return Array(frame[0..<12]) + tags + Array(frame[12...])
    }

    func program(_ kind: XDPProgram.Kind) throws -> XDPProgram {
        guard geteuid() == 0 else { throw XCTSkip("needs root to load BPF programs") }
        return try XDPProgram(object: .builtIn, kind: kind)
    }

    /// Runs the program on `frame`; true when it handed the frame to lvsd.
    func toLVSD(_ p: XDPProgram, _ frame: [UInt8]) throws -> Bool {
        let before = try p.frameCounters().toLVSD
        _ = try p.testRun(frame)
        return try p.frameCounters().toLVSD > before
    }

    func rule(_ text: String, _ len: Int, _ proto: IPProtocolNumber?, _ low: UInt16 = 0, _ high: UInt16 = 65535, mark: UInt32 = 1) -> MarkRule {
        MarkRule(destination: IPAddress(text)!, prefixLength: len, proto: proto, portLow: low, portHigh: high, mark: mark)
    }

    /// Issue 13 item 2: every fwmark rule form reaches lvsd, on the XDP and the tc program: IPv4
    /// and IPv6 prefixes shorter than the address, a protocol with a single port or a port range,
    /// no protocol at all, and a longer prefix nested in a shorter one with another protocol (the
    /// longest match must still answer for the shorter rule). Frames no rule matches stay the
    /// kernel's; an emptied rule set sends nothing more.
    func testFwmarkRuleFormsReachLVSD() throws {
        for kind in [XDPProgram.Kind.xdp, .tc] {
            let p = try program(kind)
            let marks = XDPMarkMap(program: p)
            try marks.update(rules: [
                rule("203.0.113.0", 24, .tcp, 80, 81),
                rule("203.0.113.128", 25, .udp, 53, 53, mark: 2),
                rule("2001:db8:5::", 48, .tcp, 443, 443, mark: 3),
                rule("198.51.100.7", 32, nil, mark: 4),
                rule("10.9.0.0", 16, .sctp, 5000, 5100, mark: 5),
            ])
            let cases: [(String, [UInt8], Bool)] = [
                ("tcp /24 port 80", Self.ipv4(Self.tcp, to: "203.0.113.7", port: 80), true),
                ("tcp /24 port 81 (range)", Self.ipv4(Self.tcp, to: "203.0.113.7", port: 81), true),
                ("tcp /24 port 82", Self.ipv4(Self.tcp, to: "203.0.113.7", port: 82), false),
                ("udp /24 port 80", Self.ipv4(Self.udp, to: "203.0.113.7", port: 80), false),
                ("tcp in the nested /25, /24's rule", Self.ipv4(Self.tcp, to: "203.0.113.200", port: 80), true),
                ("udp in the nested /25", Self.ipv4(Self.udp, to: "203.0.113.200", port: 53), true),
                ("udp 53 outside the /25", Self.ipv4(Self.udp, to: "203.0.113.7", port: 53), false),
                ("outside the /24", Self.ipv4(Self.tcp, to: "203.0.114.1", port: 80), false),
                ("later fragment into the /24", Self.ipv4(Self.tcp, to: "203.0.113.9", port: 0, fragmentOffset: 100), true),
                ("IPv6 /48 port 443", Self.ipv6(to: "2001:db8:5:1::9", port: 443), true),
                ("IPv6 /48 port 444", Self.ipv6(to: "2001:db8:5:1::9", port: 444), false),
                ("IPv6 outside the /48", Self.ipv6(to: "2001:db8:6::1", port: 443), false),
                ("no protocol: udp, any port", Self.ipv4(Self.udp, to: "198.51.100.7", port: 9999), true),
                ("no protocol: tcp, any port", Self.ipv4(Self.tcp, to: "198.51.100.7", port: 1), true),
                ("next to the /32", Self.ipv4(Self.udp, to: "198.51.100.8", port: 9999), false),
                ("sctp range", Self.ipv4(132, to: "10.9.200.1", port: 5050), true),
                ("sctp below the range", Self.ipv4(132, to: "10.9.200.1", port: 4999), false),
                // ICMP errors about what a real server sent from the prefix (its source and port).
                ("ICMP error about 203.0.113.7:80", Self.icmpError(to: "203.0.113.7", quotedSource: "203.0.113.7", proto: Self.tcp, sport: 80), true),
                ("ICMP error about 203.0.113.7:22", Self.icmpError(to: "203.0.113.7", quotedSource: "203.0.113.7", proto: Self.tcp, sport: 22), false),
                ("ICMP error quoting another source", Self.icmpError(to: "203.0.113.7", quotedSource: "203.0.113.8", proto: Self.tcp, sport: 80), false),
                ("ICMP error about udp 53 in the /25", Self.icmpError(to: "203.0.113.200", quotedSource: "203.0.113.200", proto: Self.udp, sport: 53), true),
                ("ICMPv6 error about [2001:db8:5:1::9]:443", Self.icmpError(to: "2001:db8:5:1::9", quotedSource: "2001:db8:5:1::9", proto: Self.tcp, sport: 443), true),
                ("ICMPv6 error about [2001:db8:5:1::9]:80", Self.icmpError(to: "2001:db8:5:1::9", quotedSource: "2001:db8:5:1::9", proto: Self.tcp, sport: 80), false),
            ]
            for (what, frame, expected) in cases {
                XCTAssertEqual(try toLVSD(p, frame), expected, "\(kind) program: \(what)")
            }
            try marks.update(rules: [])
            XCTAssertFalse(try toLVSD(p, Self.ipv4(Self.tcp, to: "203.0.113.7", port: 80)), "\(kind): rules removed")
        }
    }

    /// The trie entries: a nested prefix carries the ranges of the rules around it, ranges of one
    /// protocol merge, a rule without protocol covers all; too many ranges is a clear error.
    func testMarkEntries() throws {
        let e = try XDPMarkMap.entries(for: [
            rule("203.0.113.0", 24, .tcp, 80, 81), rule("203.0.113.128", 25, .tcp, 82, 90),
            rule("203.0.113.128", 25, .udp, 53, 53), rule("203.0.113.5", 24, .tcp, 100, 100),
        ])
        XCTAssertEqual(e.map(\.description), ["203.0.113.0/24", "203.0.113.128/25"])
        XCTAssertEqual(e[0].ranges, [.init(proto: 6, low: 80, high: 81), .init(proto: 6, low: 100, high: 100)])
        XCTAssertEqual(e[1].ranges, [.init(proto: 6, low: 80, high: 90), .init(proto: 6, low: 100, high: 100),
                                     .init(proto: 17, low: 53, high: 53)])
        XCTAssertEqual(try XDPMarkMap.entries(for: [rule("10.0.0.0", 8, nil), rule("10.1.0.0", 16, .tcp, 1, 1)])[1].ranges,
                       [.init(proto: 0, low: 0, high: 65535)])
        let many = (0..<UInt16(XDPMarkMap.maxRanges + 1)).map { rule("10.0.0.1", 32, .tcp, 10 * $0, 10 * $0) }
        XCTAssertThrowsError(try XDPMarkMap.entries(for: many)) { error in
            XCTAssertTrue("\(error)".contains("10.0.0.1/32"), "\(error)")
        }
        XCTAssertNoThrow(try XDPMarkMap.entries(for: Array(many.dropLast())))
    }

    /// Issue 13 item 7: with --no-arp (the `settings` map), ARP requests and neighbour
    /// solicitations for a VIP stay the kernel's on the XDP and the tc program, while the VIP's
    /// service traffic still goes to lvsd; without it they go to lvsd.
    func testNoARPLeavesNeighbourDiscoveryToTheKernel() throws {
        for kind in [XDPProgram.Kind.xdp, .tc] {
            let p = try program(kind)
            try XDPVIPMap(program: p).update(vips: [
                VIPMatch(address: IPAddress("192.168.1.100")!, proto: Self.tcp, port: 80),
                VIPMatch(address: IPAddress("2001:db8:1::100")!, proto: Self.tcp, port: 80),
            ])
            let arp = Self.arpRequest(for: "192.168.1.100"), ns = Self.solicitation(for: "2001:db8:1::100")
            let service = Self.ipv4(Self.tcp, to: "192.168.1.100", port: 80)
            XCTAssertTrue(try toLVSD(p, arp), "\(kind): ARP request for the VIP, lvsd answers")
            XCTAssertTrue(try toLVSD(p, ns), "\(kind): NS for the VIP, lvsd answers")
            try p.setNoARP(true)
            XCTAssertFalse(try toLVSD(p, arp), "\(kind) --no-arp: ARP request for the VIP is the kernel's")
            XCTAssertFalse(try toLVSD(p, ns), "\(kind) --no-arp: NS for the VIP is the kernel's")
            XCTAssertTrue(try toLVSD(p, service), "\(kind) --no-arp: the service still reaches lvsd")
            try p.setNoARP(false)
            XCTAssertTrue(try toLVSD(p, arp), "\(kind): ARP to lvsd again")
        }
    }

    /// The AF_XDP worker's checksum completion reads the same tag stacks: a CHECKSUM_PARTIAL UDP
    /// datagram (the field holds the pseudo-header sum) behind QinQ tags gets its full checksum.
    func testChecksumCompletionBehindQinQ() {
        var plain = Self.ipv4(Self.udp, to: "192.168.1.100", port: 53)
        let l3 = 14, l4 = l3 + 20, udpLength = plain.count - l4
        var pseudo: UInt32 = UInt32(Self.udp) + UInt32(udpLength)
        for i in stride(from: l3 + 12, to: l3 + 20, by: 2) { pseudo += UInt32(plain[i]) << 8 | UInt32(plain[i + 1]) }
        while pseudo > 0xFFFF { pseudo = (pseudo & 0xFFFF) + (pseudo >> 16) }
        plain[l4 + 6] = UInt8(pseudo >> 8)
        plain[l4 + 7] = UInt8(pseudo & 0xFF)
        for tags in [[UInt16(0x88A8), 0x8100], [0x8100, 0x8100], [0x88A8]] {
            var frame = Self.tagged(plain, tags)
            let done = frame.withUnsafeMutableBufferPointer { clvs_complete_l4_checksum($0.baseAddress!, UInt32($0.count)) }
            XCTAssertEqual(done, 1, "tags \(tags.map { String($0, radix: 16) })")
            // The completed checksum verifies: the sum over pseudo header and datagram is 0xFFFF.
            let at = frame.count - udpLength
            var sum: UInt32 = UInt32(Self.udp) + UInt32(udpLength)
            for i in stride(from: at - 8, to: at, by: 2) { sum += UInt32(frame[i]) << 8 | UInt32(frame[i + 1]) }
            for i in stride(from: at, to: frame.count, by: 2) { sum += UInt32(frame[i]) << 8 | UInt32(i + 1 < frame.count ? frame[i + 1] : 0) }
            while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
            XCTAssertEqual(sum, 0xFFFF, "tags \(tags.map { String($0, radix: 16) })")
        }
    }

    /// Issue 13 item 12a: the XDP program and lvsd's parser agree on VLAN tag stacks. QinQ (802.1ad
    /// then 802.1Q, or 802.1Q twice) and single tags of either kind go to lvsd, which parses them
    /// (for a service frame and an ARP request); deeper stacks stay the kernel's and are `.other`
    /// to the parser.
    func testVLANTagStacksAgreeWithTheParser() throws {
        let p = try program(.xdp)
        try XDPVIPMap(program: p).update(vips: [VIPMatch(address: IPAddress("192.168.1.100")!, proto: Self.tcp, port: 80)])
        let stacks: [[UInt16]] = [[], [0x8100], [0x88A8], [0x88A8, 0x8100], [0x8100, 0x8100],
                                  [0x88A8, 0x88A8], [0x8100, 0x88A8], [0x88A8, 0x8100, 0x8100], [0x8100, 0x8100, 0x8100]]
        for tags in stacks {
            for (what, plain, kind) in [("TCP to the VIP", Self.ipv4(Self.tcp, to: "192.168.1.100", port: 80), FrameKind.ipv4),
                                        ("ARP request for the VIP", Self.arpRequest(for: "192.168.1.100"), FrameKind.arp)] {
                let frame = Self.tagged(plain, tags)
                let parsed = frame.withUnsafeBytes { FrameParser.parse($0) }
                let lvsdHandles = parsed.kind == kind
                let redirected = try toLVSD(p, frame)
                XCTAssertEqual(redirected, lvsdHandles,
                               "\(what), tags \(tags.map { String($0, radix: 16) }): program redirects \(redirected), parser reads \(parsed.kind)")
                if tags.count <= 2 && !tags.dropFirst().contains(0x88A8) {
                    XCTAssertTrue(lvsdHandles && redirected, "\(what), tags \(tags.map { String($0, radix: 16) }) must be lvsd's")
                }
            }
        }
    }

    /// Issue 14: the XDP and the tc entry point share one classifier (bpf/lib/classify.h). On
    /// both: a frame to a VIP service goes to lvsd (and is not rewritten), a frame to another
    /// address is the kernel's, and a frame of a connection in `conns` is rewritten by the fast
    /// path (the real server's MAC, the director's egress MAC, TTL / hop limit minus one, the IPv4
    /// checksum adjusted) and sent out of the entry's interface, counted for its destination slot.
    /// The same holds behind QinQ tags (the tc test run sees them in band, as XDP does).
    func testBothEntryPointsShareTheClassifier() throws {
        for kind in [XDPProgram.Kind.xdp, .tc] {
            let p = try program(kind)
            let toLVSDAction = kind == .xdp ? Self.xdpDrop : Self.tcOK
            try XDPVIPMap(program: p).update(vips: [
                VIPMatch(address: IPAddress("192.168.1.100")!, proto: Self.tcp, port: 80),
                VIPMatch(address: IPAddress("2001:db8:1::100")!, proto: Self.tcp, port: 80),
            ])
            for tags in [[], [UInt16(0x88A8), 0x8100]] {
                let what = "\(kind), tags \(tags.map { String($0, radix: 16) })"
                let l3 = 14 + 4 * tags.count
                // A new connection to the VIP: lvsd's (the redirect falls back to XDP_DROP without
                // a socket, so the kernel never sees it; tc marks it PACKET_OTHERHOST and lets it go on).
                let syn = Self.tagged(Self.ipv4(Self.tcp, to: "192.168.1.100", port: 80), tags)
                let before = try p.frameCounters()
                let first = try p.testRunFrame(syn)
                XCTAssertEqual(first.action, toLVSDAction, what)
                XCTAssertEqual(first.frame, syn, "\(what): a frame for lvsd is not rewritten")
                XCTAssertEqual(try p.frameCounters().service, before.service + 1, "\(what): VIP frame to lvsd")
                // Another address: the kernel's, untouched.
                let other = Self.tagged(Self.ipv4(Self.tcp, to: "192.168.1.200", port: 80), tags)
                XCTAssertFalse(try toLVSD(p, other), "\(what): non-VIP frame")
                XCTAssertEqual(try p.testRunFrame(other).frame, other, what)

                // Established connections in `conns`: IPv4 leaving by another interface, IPv6 by
                // the one it came in on (XDP_TX; BPF_PROG_TEST_RUN's XDP frames come in on lo).
                let map = XDPConnMap(program: p)
                let cases: [(String, String, Int32, UInt32)] = [
                    ("192.168.1.12", "192.168.1.100", 9, 5),
                    ("2001:db8:1::12", "2001:db8:1::100", 1, 6),
                ]
                for (client, vip, egress, slot) in cases {
                    let v4 = IPAddress(vip)!.isIPv4
                    var key = XDPConnMap.key(ConnectionKey(proto: Self.tcp, client: IPAddress(client)!, clientPort: 40000,
                                                           virtualAddress: IPAddress(vip)!, virtualPort: 80))
                    XCTAssertEqual(map.put(&key, destinationMAC: MACAddress(bytes: Self.realServerMAC),
                                           sourceMAC: MACAddress(bytes: Self.egressMAC), interface: egress, destSlot: slot), 0)
                    defer { map.delete(&key) }
                    let plain = v4 ? Self.ipv4(Self.tcp, to: vip, port: 80, tcpFlags: Self.ack) : Self.ipv6(to: vip, port: 80, tcpFlags: Self.ack)
                    let frame = Self.tagged(plain, tags)
                    let counted = try XCTUnwrap(map.destinationCounters(slot))
                    let fastBefore = try p.frameCounters().fast
                    let run = try p.testRunFrame(frame)
                    let expected: UInt32 = kind == .tc ? Self.tcRedirect : (egress == 1 ? Self.xdpTX : Self.xdpRedirect)
                    XCTAssertEqual(run.action, expected, "\(what) \(vip): forwarded")
                    XCTAssertEqual(run.frame.count, frame.count, what)
                    guard run.frame.count == frame.count else { continue }
                    XCTAssertEqual(Array(run.frame[Self.destinationMACAt..<Self.destinationMACAt + 6]), Self.realServerMAC, "\(what) \(vip)")
                    XCTAssertEqual(Array(run.frame[Self.sourceMACAt..<Self.sourceMACAt + 6]), Self.egressMAC, "\(what) \(vip)")
                    if v4 {
                        XCTAssertEqual(run.frame[l3 + Self.ipv4TTLAt], frame[l3 + Self.ipv4TTLAt] - 1, "\(what): TTL")
                        // RFC 1624: TTL minus one raises the checksum by 0x0100 (it was zero).
                        XCTAssertEqual(Array(run.frame[(l3 + Self.ipv4ChecksumAt)...].prefix(2)), [0x01, 0x00], "\(what): IPv4 checksum")
                    } else {
                        XCTAssertEqual(run.frame[l3 + Self.ipv6HopLimitAt], frame[l3 + Self.ipv6HopLimitAt] - 1, "\(what): hop limit")
                    }
                    XCTAssertEqual(Array(run.frame[12...]).prefix(l3 - 12 + 7), Array(frame[12...]).prefix(l3 - 12 + 7),
                                   "\(what): tags and the start of the IP header unchanged")
                    XCTAssertEqual(try p.frameCounters().fast, fastBefore + 1, what)
                    let after = try XCTUnwrap(map.destinationCounters(slot))
                    XCTAssertEqual(after.packets, counted.packets + 1, "\(what): destination slot \(slot) counts the packet")
                    XCTAssertEqual(after.bytes, counted.bytes + UInt64(frame.count - l3), "\(what): and its IP bytes")
                    // A SYN of the same four-tuple is lvsd's (state changes are never forwarded).
                    let synAgain = Self.tagged(v4 ? Self.ipv4(Self.tcp, to: vip, port: 80) : Self.ipv6(to: vip, port: 80), tags)
                    XCTAssertEqual(try p.testRunFrame(synAgain).frame, synAgain, "\(what): SYN not rewritten")
                }
            }
        }
    }

    /// Issue 15 (VIP ownership, VRRP BACKUP): on the XDP and the tc program, a VIP address marked
    /// not owned (`XDPVIPMap.setNotOwned`) gets no ARP/ND answer from lvsd (the kernel's), and the
    /// fast path stops forwarding its established connections, which stay in `conns` (their
    /// frames go to lvsd, which drops them); another VIP's connection still goes the fast way.
    /// Owned again, everything is as before. --no-arp survives the settings flag's changes, and a
    /// VIP added while not owned starts so.
    func testAVIPNotOwnedIsNeitherAnsweredNorFastForwarded() throws {
        for kind in [XDPProgram.Kind.xdp, .tc] {
            let p = try program(kind)
            let vips = XDPVIPMap(program: p)
            try vips.update(vips: [
                VIPMatch(address: IPAddress("192.168.1.100")!, proto: Self.tcp, port: 80),
                VIPMatch(address: IPAddress("192.168.1.101")!, proto: Self.tcp, port: 80),
                VIPMatch(address: IPAddress("2001:db8:1::100")!, proto: Self.tcp, port: 80),
            ])
            let map = XDPConnMap(program: p)
            var keys: [clvs_conn_key] = []
            for (client, vip) in [("192.168.1.12", "192.168.1.100"), ("192.168.1.12", "192.168.1.101"), ("2001:db8:1::12", "2001:db8:1::100")] {
                var key = XDPConnMap.key(ConnectionKey(proto: Self.tcp, client: IPAddress(client)!, clientPort: 40000,
                                                       virtualAddress: IPAddress(vip)!, virtualPort: 80))
                XCTAssertEqual(map.put(&key, destinationMAC: MACAddress(bytes: Self.realServerMAC),
                                       sourceMAC: MACAddress(bytes: Self.egressMAC), interface: 9, destSlot: 5), 0)
                keys.append(key)
            }
            defer { for var k in keys { map.delete(&k) } }
            let forwarded = kind == .tc ? Self.tcRedirect : Self.xdpRedirect
            let v4 = Self.ipv4(Self.tcp, to: "192.168.1.100", port: 80, tcpFlags: Self.ack)
            let other = Self.ipv4(Self.tcp, to: "192.168.1.101", port: 80, tcpFlags: Self.ack)
            let v6 = Self.ipv6(to: "2001:db8:1::100", port: 80, tcpFlags: Self.ack)
            let arp = Self.arpRequest(for: "192.168.1.100"), ns = Self.solicitation(for: "2001:db8:1::100")
            func check(owned: Bool, _ when: String) throws {
                let what = "\(kind), \(when)"
                for frame in [v4, v6] {
                    let before = try p.frameCounters()
                    let run = try p.testRunFrame(frame)
                    if owned {
                        XCTAssertEqual(run.action, forwarded, "\(what): forwarded by the fast path")
                        XCTAssertEqual(try p.frameCounters().fast, before.fast + 1, what)
                    } else {
                        XCTAssertEqual(run.frame, frame, "\(what): not rewritten")
                        XCTAssertEqual(try p.frameCounters().fast, before.fast, "\(what): not forwarded")
                        XCTAssertEqual(try p.frameCounters().service, before.service + 1, "\(what): to lvsd, which drops it")
                    }
                }
                XCTAssertEqual(try p.testRun(other), forwarded, "\(what): an owned VIP's connection")
                XCTAssertEqual(try toLVSD(p, arp), owned, "\(what): ARP request for the VIP")
                XCTAssertEqual(try toLVSD(p, ns), owned, "\(what): NS for the VIP")
                XCTAssertEqual(map.count(), 3, "\(what): the entries stay")
            }
            try check(owned: true, "owned")
            try vips.setNotOwned([IPAddress("192.168.1.100")!, IPAddress("2001:db8:1::100")!])
            try check(owned: false, "not owned")
            try vips.setNotOwned([])
            try check(owned: true, "owned again")
            // --no-arp stays on through the ownership flag's changes.
            try p.setNoARP(true)
            try vips.setNotOwned([IPAddress("192.168.1.100")!])
            try vips.setNotOwned([])
            XCTAssertFalse(try toLVSD(p, arp), "\(kind) --no-arp kept")
            try p.setNoARP(false)
            // A VIP added while not owned starts not owned.
            try vips.setNotOwned([IPAddress("192.168.1.102")!])
            XCTAssertFalse(try toLVSD(p, Self.arpRequest(for: "192.168.1.102")), "\(kind): not a VIP yet")
            try vips.update(vips: Array(vips.entries.filter { $0.port != 0 }) + [VIPMatch(address: IPAddress("192.168.1.102")!, proto: Self.tcp, port: 80)])
            XCTAssertFalse(try toLVSD(p, Self.arpRequest(for: "192.168.1.102")), "\(kind): added while not owned")
            XCTAssertTrue(try toLVSD(p, Self.ipv4(Self.tcp, to: "192.168.1.102", port: 80)), "\(kind): its service frames reach lvsd")
            try vips.setNotOwned([])
            XCTAssertTrue(try toLVSD(p, Self.arpRequest(for: "192.168.1.102")), "\(kind): owned")
        }
    }

    /// Rounds of a cost measurement: `full` with LVS_BPF_COST=1 (the measurement), else 2 (the
    /// same paths run and are checked, nothing is timed).
    static func costRounds(_ full: Int) -> Int {
        ProcessInfo.processInfo.environment["LVS_BPF_COST"] == "1" ? full : 2
    }

    /// The per-packet cost of the ownership check in the fast path (run with LVS_BPF_COST=1; set
    /// LVS_BPF_BASELINE_OBJECT to a BPF object built from the sources before it to compare):
    /// BPF_PROG_TEST_RUN's mean time per forwarded frame, with every VIP owned (one array lookup
    /// more) and with another VIP not owned (the address entry's lookup too). Prints; asserts
    /// nothing about time. Without LVS_BPF_COST=1 it runs two rounds: the frames are forwarded.
    func testFastPathOwnershipCost() throws {
        var objects: [(String, BPFObject)] = [("this build", .builtIn)]
        if let path = ProcessInfo.processInfo.environment["LVS_BPF_BASELINE_OBJECT"] {
            objects.insert(("baseline \(path)", try BPFObject(contentsOf: path)), at: 0)
        }
        let rounds = Self.costRounds(4000), perRound: UInt32 = 250 // TTL 255: every run of a round forwards
        var frame = Self.ipv4(Self.tcp, to: "192.168.1.100", port: 80, tcpFlags: Self.ack)
        frame[14 + Self.ipv4TTLAt] = 255
        for kind in [XDPProgram.Kind.xdp, .tc] {
            for (name, object) in objects {
                guard geteuid() == 0 else { throw XCTSkip("needs root to load BPF programs") }
                let p = try XDPProgram(object: object, kind: kind)
                let vips = XDPVIPMap(program: p)
                try vips.update(vips: [VIPMatch(address: IPAddress("192.168.1.100")!, proto: Self.tcp, port: 80),
                                       VIPMatch(address: IPAddress("192.168.1.101")!, proto: Self.tcp, port: 80)])
                var key = XDPConnMap.key(ConnectionKey(proto: Self.tcp, client: IPAddress("192.168.1.12")!, clientPort: 40000,
                                                       virtualAddress: IPAddress("192.168.1.100")!, virtualPort: 80))
                let map = XDPConnMap(program: p)
                XCTAssertEqual(map.put(&key, destinationMAC: MACAddress(bytes: Self.realServerMAC),
                                       sourceMAC: MACAddress(bytes: Self.egressMAC), interface: 9, destSlot: 5), 0)
                func mean() throws -> Double {
                    var total = 0.0
                    for _ in 0..<rounds {
                        let r = try p.timedRun(frame, repeat: perRound)
                        XCTAssertEqual(r.action, kind == .xdp ? Self.xdpRedirect : Self.tcRedirect, "forwarded by the fast path")
                        total += Double(r.nanoseconds)
                    }
                    return total / Double(rounds)
                }
                let allOwned = try mean()
                var line = "BPF fast path \(kind) \(name): \(String(format: "%.1f", allOwned)) ns/frame, every VIP owned"
                if name == "this build" {
                    try vips.setNotOwned([IPAddress("192.168.1.101")!])
                    line += "; \(String(format: "%.1f", try mean())) ns/frame, another VIP not owned"
                }
                print(line)
            }
        }
    }

    /// `dest_stats` (CLVS_MAX_DESTS, clvs_xdp_maps.h: the one definition the program and the loader
    /// share) has a slot for every destination slot of a default engine, so the fast path counts
    /// them all (lvsd leaves a connection to a slot beyond it to its own path).
    func testDestinationSlotsCoverTheEngine() {
        XCTAssertGreaterThanOrEqual(Int(XDPConnMap.maxDestinationSlots), EngineConfiguration().maxDestinations)
    }
}
