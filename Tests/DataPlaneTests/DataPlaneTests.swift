import Foundation
import XCTest
import CLVSShim
import LVSCore
@testable import LVSDataPlane
import LVSModel

/// Replies to frames starting with 0xAA (shrinking them), drops 0xDD, forwards 0xF0+n to n, passes the rest.
final class ScriptedProcessor: FrameProcessor {
    var seen = 0
    func process(_ frame: UnsafeMutableRawBufferPointer, interface: Int32, now: UInt64) -> Verdict {
        seen += 1
        switch frame[0] {
        case 0xAA: frame[1] = 0xBB; return .reply(length: 20)
        case 0xDD: return .drop(.noDestination)
        case let b where b >= 0xF0: frame[1] = 0xEE; return .forward(interface: Int32(b - 0xF0))
        default: return .pass
        }
    }
}

final class DataPlaneTests: XCTestCase {
    func testInMemoryVerdicts() {
        let plane = InMemoryDataPlane(processor: ScriptedProcessor(), interfaces: [1, 2])
        let vnet: [UInt8] = [1, 4, 0, 54, 0x05, 0xa8, 0, 34, 0, 16]
        XCTAssertEqual(plane.feed([0xF2] + [UInt8](repeating: 0, count: 59), interface: 1, vnetHeader: vnet), .forward(interface: 2))
        XCTAssertEqual(plane.feed([0xAA] + [UInt8](repeating: 7, count: 59), interface: 2, vnetHeader: vnet), .reply(length: 20))
        XCTAssertEqual(plane.feed([0xDD] + [UInt8](repeating: 0, count: 59), interface: 1), .drop(.noDestination))
        XCTAssertEqual(plane.feed([0x00] + [UInt8](repeating: 0, count: 59), interface: 1), .pass)
        XCTAssertEqual(plane.feed([0xF9] + [UInt8](repeating: 0, count: 59), interface: 1), .forward(interface: 9))
        XCTAssertEqual(plane.feed([0xAA] + [UInt8](repeating: 0, count: 9), interface: 1), .reply(length: 20)) // too long

        let forwarded = plane.transmitted(on: 2)
        XCTAssertEqual(forwarded.count, 2)
        XCTAssertEqual(forwarded[0][1], 0xEE)
        XCTAssertEqual(plane.transmitted[0].vnetHeader, vnet, "forward keeps the vnet header")
        XCTAssertEqual(forwarded[1].count, 20)
        XCTAssertEqual(Array(forwarded[1][0..<3]), [0xAA, 0xBB, 7])
        XCTAssertEqual(plane.transmitted[1].vnetHeader, InMemoryDataPlane<ScriptedProcessor>.zeroVnetHeader, "reply zeroes it")

        let c = plane.counters()
        XCTAssertEqual(c[1]?.rxPackets, 5)
        XCTAssertEqual(c[1]?.passed, 1)
        XCTAssertEqual(c[1]?.dropped, 1)
        XCTAssertEqual(c[1]?.dropReasons[.noDestination], 1)
        XCTAssertEqual(c[1]?.unknownEgress, 1)
        XCTAssertEqual(c[1]?.txErrors, 1)
        XCTAssertEqual(c[2]?.txPackets, 2)
        XCTAssertEqual(c[2]?.txBytes, 80)
        XCTAssertEqual(plane.takeTransmitted().count, 2)
        XCTAssertTrue(plane.transmitted.isEmpty)
    }

    func testMissingInterfaceIsNamed() {
        XCTAssertThrowsError(try InterfaceInfo.lookup("lvsdp-nope0")) { error in
            XCTAssertEqual(error as? DataPlaneError, .noSuchInterface("lvsdp-nope0"))
            XCTAssertTrue("\(error)".contains("'lvsdp-nope0'"))
        }
        XCTAssertThrowsError(try DataPlane(configuration: .init(interfaces: ["lvsdp-nope1"]),
                                           makeProcessor: { _ in ScriptedProcessor() })) { error in
            XCTAssertTrue("\(error)".contains("'lvsdp-nope1'"))
        }
        XCTAssertGreaterThanOrEqual(affinityCPUCount(), 1)
        let lo = try? InterfaceInfo.lookup("lo")
        XCTAssertEqual(lo?.ipv4.contains(IPAddress("127.0.0.1")!), true)
    }

    func testRulesetText() {
        let vips = [
            VIPMatch(address: IPAddress("10.0.0.1")!, proto: 6, port: 80),
            VIPMatch(address: IPAddress("10.0.0.1")!, proto: 17, port: 0),
            VIPMatch(address: IPAddress("2001:db8::1")!, proto: 6, port: 443),
        ]
        let text = NFTablesGuard.ruleset(table: "lvsd_42", interfaces: ["eth0", "eth1"], vips: vips)
        XCTAssertTrue(text.contains("table netdev lvsd_42 {"))
        XCTAssertTrue(text.contains("type filter hook ingress device \"eth1\" priority -300; policy accept;"))
        XCTAssertTrue(text.contains("add element netdev lvsd_42 vip4 { 10.0.0.1 . 6 . 80 }"))
        XCTAssertTrue(text.contains("add element netdev lvsd_42 vip4any { 10.0.0.1 . 17 }"))
        XCTAssertTrue(text.contains("add element netdev lvsd_42 vip6 { 2001:db8::1 . 6 . 443 }"))
        let update = NFTablesGuard.elements(table: "lvsd_42", vips: [], flush: true)
        XCTAssertEqual(update.split(separator: "\n").count, 4)
    }

    /// The afpacket guard drops what the active fwmark rules match (issue 13 item 2): a prefix
    /// with a port range, a single port, no protocol, IPv6; one rule per fwmark rule and interface.
    func testRulesetFwmarkRules() {
        let marks = [
            MarkRule(destination: IPAddress("203.0.113.9")!, prefixLength: 24, proto: .tcp, portLow: 80, portHigh: 81, mark: 1),
            MarkRule(destination: IPAddress("203.0.113.128")!, prefixLength: 25, proto: .udp, portLow: 53, portHigh: 53, mark: 1),
            MarkRule(destination: IPAddress("198.51.100.7")!, prefixLength: 32, proto: nil, mark: 2),
            MarkRule(destination: IPAddress("2001:db8:5::")!, prefixLength: 48, proto: .tcp, portLow: 443, portHigh: 443, mark: 3),
        ]
        let text = NFTablesGuard.ruleset(table: "lvsd_42", interfaces: ["eth0", "eth1"], vips: [], marks: marks)
        XCTAssertTrue(text.contains("chain marks1 {"), text)
        for i in 0..<2 {
            XCTAssertTrue(text.contains("add rule netdev lvsd_42 marks\(i) ip daddr 203.0.113.0/24 meta l4proto 6 th dport 80-81 counter drop"), text)
            XCTAssertTrue(text.contains("add rule netdev lvsd_42 marks\(i) ip daddr 203.0.113.128/25 meta l4proto 17 th dport 53 counter drop"), text)
            XCTAssertTrue(text.contains("add rule netdev lvsd_42 marks\(i) ip daddr 198.51.100.7/32 meta l4proto { 6, 17, 132 } counter drop"), text)
            XCTAssertTrue(text.contains("add rule netdev lvsd_42 marks\(i) ip6 daddr 2001:db8:5::/48 meta l4proto 6 th dport 443 counter drop"), text)
        }
        let update = NFTablesGuard.markRules(table: "lvsd_42", interfaceCount: 2, marks: [], flush: true)
        XCTAssertEqual(update, "flush chain netdev lvsd_42 marks0\nflush chain netdev lvsd_42 marks1\n")
    }
}
