import Foundation
import XCTest
import CLVSXDP
import LVSCore
@testable import LVSDataPlane
import LVSModel

/// --orphan-timeout (issue 16): a dead lvsd's leftovers stop claiming the VIPs by themselves.
final class OrphanTests: XCTestCase {
    static let second: UInt64 = 1_000_000_000

    /// Frames the program left to the kernel because lvsd's heartbeat was too old (CLVS_STAT_ORPHANED).
    func orphaned(_ p: XDPProgram) throws -> UInt64 {
        var out = [UInt64](repeating: 0, count: Int(CLVS_STAT_COUNT.rawValue))
        XCTAssertEqual(clvs_xdp_counters_read(p.countersMap, &out), 0)
        return out[Int(CLVS_STAT_ORPHANED.rawValue)]
    }

    /// On the XDP and the tc program (BPF_PROG_TEST_RUN): with a fresh heartbeat a VIP's frame is
    /// lvsd's and an established connection is forwarded; with one older than its timeout both are
    /// left to the kernel untouched (XDP_PASS / TC_ACT_OK, the frame as it came) and counted as
    /// orphaned; a new beat claims them again. A timeout of 0 (and the map as it starts) never
    /// expires, and a beat a little ahead of the program's clock (written on another CPU) is fresh.
    func testAStaleHeartbeatLeavesEveryFrameToTheKernel() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root to load BPF programs") }
        let t = BPFProgramTests.self
        for kind in [XDPProgram.Kind.xdp, .tc] {
            let p = try XDPProgram(object: .builtIn, kind: kind)
            let heartbeat = try XCTUnwrap(BPFHeartbeat(program: p), "\(kind): the built-in object has a heartbeat map")
            let pass = kind == .xdp ? t.xdpPass : t.tcOK
            let forwarded = kind == .xdp ? t.xdpRedirect : t.tcRedirect
            try XDPVIPMap(program: p).update(vips: [VIPMatch(address: IPAddress("192.168.1.100")!, proto: t.tcp, port: 80)])
            var key = XDPConnMap.key(ConnectionKey(proto: t.tcp, client: IPAddress("192.168.1.12")!, clientPort: 40000,
                                                   virtualAddress: IPAddress("192.168.1.100")!, virtualPort: 80))
            XCTAssertEqual(XDPConnMap(program: p).put(&key, destinationMAC: MACAddress(bytes: t.realServerMAC),
                                                      sourceMAC: MACAddress(bytes: t.egressMAC), interface: 9, destSlot: 5), 0)
            let syn = t.ipv4(t.tcp, to: "192.168.1.100", port: 80)
            let established = t.ipv4(t.tcp, to: "192.168.1.100", port: 80, tcpFlags: t.ack)
            let arp = t.arpRequest(for: "192.168.1.100")

            /// Whether lvsd's programs claim the frames: the SYN and the ARP request go to lvsd,
            /// the established frame is forwarded; or none of them (and each is counted orphaned).
            func check(claimed: Bool, _ what: String) throws {
                let before = try orphaned(p), toLVSD = try p.frameCounters().toLVSD
                let runs = [try p.testRunFrame(syn), try p.testRunFrame(arp), try p.testRunFrame(established)]
                if claimed {
                    XCTAssertEqual(try p.frameCounters().toLVSD, toLVSD + 2, "\(kind) \(what): SYN and ARP to lvsd")
                    XCTAssertEqual(runs[2].action, forwarded, "\(kind) \(what): established forwarded")
                    XCTAssertEqual(try orphaned(p), before, "\(kind) \(what)")
                } else {
                    XCTAssertEqual(try p.frameCounters().toLVSD, toLVSD, "\(kind) \(what): nothing to lvsd")
                    for (run, frame) in zip(runs, [syn, arp, established]) {
                        XCTAssertEqual(run.action, pass, "\(kind) \(what): to the kernel")
                        XCTAssertEqual(run.frame, frame, "\(kind) \(what): untouched")
                    }
                    XCTAssertEqual(try orphaned(p), before + 3, "\(kind) \(what): counted orphaned")
                }
            }

            try check(claimed: true, "as the map starts (timeout 0)")
            let now = monotonicNanoseconds()
            try heartbeat.beat(now: now, timeoutNanoseconds: 3 * Self.second)
            try check(claimed: true, "fresh heartbeat")
            try heartbeat.beat(now: now + Self.second / 10, timeoutNanoseconds: 3 * Self.second)
            try check(claimed: true, "a beat ahead of the program's clock")
            try heartbeat.beat(now: now - 10 * Self.second, timeoutNanoseconds: 3 * Self.second)
            try check(claimed: false, "heartbeat 10 s old, timeout 3 s")
            try heartbeat.beat(now: now - 10 * Self.second, timeoutNanoseconds: 0)
            try check(claimed: true, "timeout 0: never orphaned")
            try heartbeat.beat(now: now - 10 * Self.second, timeoutNanoseconds: 3 * Self.second)
            try check(claimed: false, "stale again")
            try heartbeat.beat(now: monotonicNanoseconds(), timeoutNanoseconds: 3 * Self.second)
            try check(claimed: true, "a new lvsd's beat")
        }
    }

    /// The heartbeat map is shared by every interface's program, like the other maps.
    func testTheHeartbeatMapIsShared() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root to load BPF programs") }
        let first = try XDPProgram(object: .builtIn, kind: .xdp)
        let second = try XDPProgram(object: .builtIn, kind: .xdp, sharingVIPsOf: first)
        try XCTUnwrap(BPFHeartbeat(program: first)).beat(now: 1, timeoutNanoseconds: Self.second)
        XCTAssertEqual(try second.testRun(BPFProgramTests.ipv4(BPFProgramTests.tcp, to: "192.168.1.200", port: 80)), BPFProgramTests.xdpPass)
        XCTAssertEqual(try orphaned(second), 1, "the second interface's program reads the first one's heartbeat")
    }

    /// The afpacket guard with a timeout: the `alive` set, its rule first in every chain (also after
    /// the fwmark chains are flushed), each interface's element with the timeout, and a refresh that
    /// is one transaction replacing the elements. Without one, none of it.
    func testGuardRulesetExpiresWithoutRefresh() throws {
        let vips = [VIPMatch(address: IPAddress("10.0.0.1")!, proto: 6, port: 80)]
        let text = NFTablesGuard.ruleset(table: "lvsd_42", interfaces: ["eth0", "eth1"], vips: vips, orphanTimeoutMs: 3000)
        XCTAssertTrue(text.contains("set alive { type ifname; flags timeout; }"), text)
        XCTAssertEqual(text.components(separatedBy: "policy accept;\n    iifname != @alive counter accept\n").count - 1, 4, text)
        XCTAssertTrue(text.contains("add element netdev lvsd_42 alive { \"eth0\" timeout 3000ms, \"eth1\" timeout 3000ms }"), text)
        XCTAssertLessThan(text.range(of: "add element netdev lvsd_42 alive")!.lowerBound, text.range(of: "add element netdev lvsd_42 vip4")!.lowerBound)
        let plain = NFTablesGuard.ruleset(table: "lvsd_42", interfaces: ["eth0", "eth1"], vips: vips)
        XCTAssertFalse(plain.contains("alive"), plain)

        var scripts: [String] = []
        let guarded = try NFTablesGuard(interfaces: ["lo"], vips: vips, pid: 42, orphanTimeoutMs: 1500) { scripts.append($0) }
        try guarded.refreshAlive()
        XCTAssertEqual(scripts.last, "flush set netdev lvsd_42 alive\nadd element netdev lvsd_42 alive { \"lo\" timeout 1500ms }\n")
        try guarded.update(vips: [], marks: [])
        XCTAssertTrue(scripts.last!.contains("flush chain netdev lvsd_42 marks0\nadd rule netdev lvsd_42 marks0 iifname != @alive counter accept\n"),
                      scripts.last!)
        try guarded.remove()
        let count = scripts.count
        try guarded.refreshAlive()
        XCTAssertEqual(scripts.count, count, "no refresh of a removed table")

        var none: [String] = []
        let forever = try NFTablesGuard(interfaces: ["lo"], vips: vips, pid: 43) { none.append($0) }
        try forever.refreshAlive()
        try forever.update(vips: [], marks: [])
        XCTAssertEqual(none.count, 2, "no refresh without a timeout")
        XCTAssertFalse(none.joined().contains("alive"))
    }

    /// The heartbeat check's cost per forwarded frame (run with LVS_BPF_COST=1; set
    /// LVS_BPF_BASELINE_OBJECT to a BPF object built from the sources before it): BPF_PROG_TEST_RUN's
    /// mean time of the fast path, rounds of the objects interleaved; this build with a timeout of 0
    /// (the array lookup alone) and with a fresh heartbeat (the lookup and a clock read). Prints.
    /// Without LVS_BPF_COST=1 it runs two rounds: the frames are forwarded, not orphaned.
    func testHeartbeatCost() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root to load BPF programs") }
        let t = BPFProgramTests.self
        var frame = t.ipv4(t.tcp, to: "192.168.1.100", port: 80, tcpFlags: t.ack)
        frame[14 + t.ipv4TTLAt] = 255
        for kind in [XDPProgram.Kind.xdp, .tc] {
            var programs: [(String, XDPProgram)] = []
            if let path = ProcessInfo.processInfo.environment["LVS_BPF_BASELINE_OBJECT"] {
                programs.append(("baseline", try XDPProgram(object: try BPFObject(contentsOf: path), kind: kind)))
            }
            programs.append(("timeout 0", try XDPProgram(object: .builtIn, kind: kind)))
            programs.append(("heartbeat 3 s", try XDPProgram(object: .builtIn, kind: kind)))
            for (_, p) in programs {
                try XDPVIPMap(program: p).update(vips: [VIPMatch(address: IPAddress("192.168.1.100")!, proto: t.tcp, port: 80)])
                var key = XDPConnMap.key(ConnectionKey(proto: t.tcp, client: IPAddress("192.168.1.12")!, clientPort: 40000,
                                                       virtualAddress: IPAddress("192.168.1.100")!, virtualPort: 80))
                XCTAssertEqual(XDPConnMap(program: p).put(&key, destinationMAC: MACAddress(bytes: t.realServerMAC),
                                                          sourceMAC: MACAddress(bytes: t.egressMAC), interface: 9, destSlot: 5), 0)
            }
            let beating = programs.last!.1
            var totals = [Double](repeating: 0, count: programs.count)
            let rounds = BPFProgramTests.costRounds(1500)
            for _ in 0..<rounds {
                // A beat now and then, as lvsd writes it (the program must not see it stale).
                try BPFHeartbeat(program: beating)!.beat(now: monotonicNanoseconds(), timeoutNanoseconds: 3 * Self.second)
                for (i, (_, p)) in programs.enumerated() {
                    let r = try p.timedRun(frame, repeat: 250)
                    XCTAssertEqual(r.action, kind == .xdp ? t.xdpRedirect : t.tcRedirect, "forwarded, not orphaned")
                    totals[i] += Double(r.nanoseconds)
                }
            }
            print("BPF heartbeat cost \(kind): " + zip(programs, totals).map { "\($0.0.0) \(String(format: "%.1f", $0.1 / Double(rounds))) ns/frame" }.joined(separator: ", "))
        }
    }
}
