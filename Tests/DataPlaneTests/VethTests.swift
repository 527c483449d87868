import Foundation
import XCTest
import CLVSShim
import LVSCore
@testable import LVSDataPlane
import LVSModel

/// Real packets: client namespace A —veth— director namespace D —veth— server namespace C.
/// A and C know each other's address only through D's MACs (static neighbours), D's kernel has no
/// addresses and no forwarding: every frame that crosses is moved by the PacketSocket data plane.
/// Offloads stay at veth defaults (TSO/GSO on), so TCP sends super-frames bigger than the MTU.
final class VethTests: XCTestCase {
    static let clientIP = "10.77.0.1", serverIP = "10.77.0.3"
    static let macA = MACAddress("02:77:00:00:00:01")!, macDA = MACAddress("02:77:00:00:00:0a")!
    static let macC = MACAddress("02:77:00:00:00:03")!, macDC = MACAddress("02:77:00:00:00:0b")!

    func testForwardsRealTrafficThroughVeth() throws {
        guard geteuid() == 0 else {
            print("VethTests skipped: needs root (network namespaces, AF_PACKET)")
            throw XCTSkip("needs root")
        }
        guard (try? ExternalCommand.run(["ip", "-V"]))?.status == 0 else {
            print("VethTests skipped: iproute2 'ip' not found")
            throw XCTSkip("no ip command")
        }
        let pid = getpid()
        let (a, d, c) = ("lvsdp-\(pid)-a", "lvsdp-\(pid)-d", "lvsdp-\(pid)-c")
        defer {
            for ns in [a, d, c] { _ = try? ExternalCommand.run(["ip", "netns", "del", ns]) }
        }
        for ns in [a, d, c] { try shell("ip netns add \(ns)") }
        try shell("ip link add a0 netns \(a) address \(Self.macA) type veth peer name da netns \(d) address \(Self.macDA)")
        try shell("ip link add c0 netns \(c) address \(Self.macC) type veth peer name dc netns \(d) address \(Self.macDC)")
        try shell("ip -n \(a) addr add \(Self.clientIP)/24 dev a0")
        try shell("ip -n \(c) addr add \(Self.serverIP)/24 dev c0")
        // DR: the director owns the VIP too; only the guard keeps its kernel from answering (RST, ICMP).
        try shell("ip -n \(d) addr add \(Self.serverIP)/24 dev da")
        for (ns, dev) in [(a, "a0"), (c, "c0"), (d, "da"), (d, "dc"), (a, "lo"), (c, "lo")] {
            try shell("ip -n \(ns) link set \(dev) up")
        }
        try shell("ip -n \(a) neigh replace \(Self.serverIP) lladdr \(Self.macDA) dev a0 nud permanent")
        try shell("ip -n \(c) neigh replace \(Self.clientIP) lladdr \(Self.macDC) dev c0 nud permanent")

        // Director: sockets and the nftables guard are created inside D.
        let processors = ResultBox<[TestForwarder]>()
        processors.result = .success([])
        let plane: DataPlane<TestForwarder> = try inNamespace(d) {
            let da = try InterfaceInfo.lookup("da"), dc = try InterfaceInfo.lookup("dc")
            XCTAssertEqual(da.mac, Self.macDA)
            var made: [TestForwarder] = []
            let plane = try DataPlane(configuration: .init(interfaces: ["da", "dc"], workerCount: 2)) { _ in
                let p = TestForwarder(da.index, .init(egress: dc.index, source: Self.macDC, destination: Self.macC),
                                      dc.index, .init(egress: da.index, source: Self.macDA, destination: Self.macA))
                made.append(p)
                return p
            }
            processors.result = .success(made)
            return plane
        }
        let guardTable: NFTablesGuard = try inNamespace(d) {
            try NFTablesGuard(interfaces: ["da", "dc"], vips: [
                VIPMatch(address: IPAddress(Self.serverIP)!, proto: 6, port: 9001),
                VIPMatch(address: IPAddress(Self.serverIP)!, proto: 17, port: 0),
            ])
        }
        defer { _ = try? inNamespace(d) { try guardTable.remove() } }
        try plane.start()
        defer { plane.stop() }

        // Guard: installed, atomically updatable, visible in D only.
        let listing: String = try inNamespace(d) {
            try guardTable.update(vips: [
                VIPMatch(address: IPAddress(Self.serverIP)!, proto: 6, port: 9001),
                VIPMatch(address: IPAddress(Self.serverIP)!, proto: 17, port: 9000),
                VIPMatch(address: IPAddress("2001:db8::3")!, proto: 6, port: 0),
            ])
            return try ExternalCommand.check(["nft", "list", "table", "netdev", guardTable.table])
        }
        XCTAssertTrue(listing.contains("10.77.0.3 . tcp . 9001"), listing)
        XCTAssertTrue(listing.contains("10.77.0.3 . udp . 9000"), listing)
        XCTAssertTrue(listing.contains("2001:db8::3 . tcp"), listing)

        // Stale tables of dead lvsd processes go, ours stays.
        var deadPid: Int32 = 4_000_000
        while kill(deadPid, 0) == 0 || errno != ESRCH { deadPid -= 1 }
        let removed: [String] = try inNamespace(d) {
            try ExternalCommand.check(["nft", "add", "table", "netdev", "lvsd_\(deadPid)"])
            return try NFTablesGuard.removeStale()
        }
        XCTAssertEqual(removed, ["lvsd_\(deadPid)"])

        // UDP: 200 datagrams A → C.
        let udpServer = try inNamespace(c) { try makeSocket(Int32(SOCK_DGRAM.rawValue), bindTo: Self.serverIP, port: 9000, timeoutSeconds: 3) }
        defer { close(udpServer) }
        let udpClient = try inNamespace(a) { try makeSocket(Int32(SOCK_DGRAM.rawValue), bindTo: nil, port: 0) }
        defer { close(udpClient) }
        try connectSocket(udpClient, to: Self.serverIP, port: 9000)
        let sent = 200
        for i in 0..<sent {
            var payload = pattern(100 + (i * 37) % 1300, seed: i)
            payload[0] = UInt8(i & 0xFF)
            try sendAll(udpClient, payload)
            if i % 50 == 49 { usleep(2000) }
        }
        var intact = 0
        var buffer = [UInt8](repeating: 0, count: 2048)
        while intact < sent {
            let n = buffer.withUnsafeMutableBytes { recv(udpServer, $0.baseAddress!, 2048, 0) }
            if n <= 0 { break }
            let i = Int(buffer[0])
            var expected = pattern(100 + (i * 37) % 1300, seed: i)
            expected[0] = buffer[0]
            // i is modulo 256 but only 0..<200 are sent
            XCTAssertEqual(Array(buffer[0..<n]), expected, "datagram \(i) intact")
            intact += 1
        }
        XCTAssertEqual(intact, sent, "UDP datagrams through the data plane")

        // TCP: 1 MB each way through the forwarder.
        let elapsed = try tcpExchange(clientNamespace: a, serverNamespace: c, serverIP: Self.serverIP, port: 9001, size: 1 << 20)

        let counters = plane.counters()
        let da = plane.interfaces[0].index, dc = plane.interfaces[1].index
        let forwarders = try processors.result!.get()
        let largest = forwarders.map(\.largest).max() ?? 0
        print("VethTests: 2 MB TCP round trip in \(String(format: "%.3f", elapsed)) s; largest frame \(largest) B; "
              + "per worker forwarded \(forwarders.map(\.forwarded)); ticks \(forwarders.map(\.ticks))")
        let dropped: String = try inNamespace(d) {
            try ExternalCommand.check(["nft", "list", "table", "netdev", guardTable.table])
        }
        XCTAssertNotNil(dropped.range(of: #"counter packets [1-9][0-9]* bytes [0-9]+ drop"#, options: .regularExpression),
                        "the guard kept VIP traffic from the director's kernel:\n\(dropped)")
        print("VethTests: da \(counters[da]!)\nVethTests: dc \(counters[dc]!)")
        XCTAssertGreaterThan(largest, 1514, "GSO super-frames crossed the data plane")
        XCTAssertGreaterThan(counters[da]!.rxPackets, UInt64(sent))
        XCTAssertGreaterThan(counters[dc]!.txPackets, UInt64(sent))
        XCTAssertGreaterThan(counters[dc]!.rxPackets, 0)
        XCTAssertEqual(counters[da]!.txErrors + counters[dc]!.txErrors, 0)
        XCTAssertEqual(counters[da]!.truncated + counters[dc]!.truncated, 0)
        XCTAssertTrue(forwarders.allSatisfy { $0.ticks > 0 }, "workers tick while idle")

        let stopStart = monotonicNanoseconds()
        plane.stop()
        XCTAssertLessThan(monotonicNanoseconds() - stopStart, 1_000_000_000, "stop within a second")
    }

    /// One worker: the fanout group spreads by CPU (no flow hash per frame) and still defragments;
    /// several workers: by flow hash. Read back from the kernel (getsockopt PACKET_FANOUT).
    func testFanoutModeFollowsTheWorkerCount() throws {
        guard geteuid() == 0 else {
            print("VethTests skipped: needs root (network namespaces, AF_PACKET)")
            throw XCTSkip("needs root")
        }
        let ns = "lvsdp-\(getpid())-f"
        defer { _ = try? ExternalCommand.run(["ip", "netns", "del", ns]) }
        try shell("ip netns add \(ns)")
        try shell("ip -n \(ns) link add f0 type veth peer name f1")
        let dummy = TestForwarder.Route(egress: 0, source: Self.macA, destination: Self.macC)
        for (workers, mode, kernelMode) in [(1, PacketSocket.FanoutMode.cpu, Int32(PACKET_FANOUT_CPU)),
                                            (2, .hash, Int32(PACKET_FANOUT_HASH))] {
            let settings: [(Int32, Bool)?] = try inNamespace(ns) {
                let plane = try DataPlane(configuration: .init(interfaces: ["f0", "f1"], workerCount: workers)) { _ in
                    TestForwarder(0, dummy, 0, dummy)
                }
                XCTAssertEqual(plane.fanoutMode, mode)
                return try plane.workers.flatMap { $0.sockets }.map { try $0.kernelFanoutSetting().map { ($0.mode, $0.defrag) } }
            }
            XCTAssertEqual(settings.count, 2 * workers)
            for s in settings {
                XCTAssertEqual(s?.0, kernelMode, "\(workers) worker(s)")
                XCTAssertEqual(s?.1, true, "\(workers) worker(s): defragmentation")
            }
        }
    }
}
