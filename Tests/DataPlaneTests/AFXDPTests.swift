import Foundation
import XCTest
import CLVSShim
import LVSCore
@testable import LVSDataPlane
import LVSModel

/// Real packets through the AF_XDP backend: client namespace A —veth— director D —veth— server C.
/// lvsd's XDP program on D's interfaces redirects the listed addresses to AF_XDP sockets; the test
/// forwarder moves frames between the two interfaces (a copy into the other socket's UMEM each
/// time). Offloads stay on, so the senders' TCP/UDP checksums arrive CHECKSUM_PARTIAL and must be
/// completed by the worker.
final class AFXDPTests: XCTestCase {
    static let clientIP = "10.78.0.1", serverIP = "10.78.0.3"
    static let macA = MACAddress("02:78:00:00:00:01")!, macDA = MACAddress("02:78:00:00:00:0a")!
    static let macC = MACAddress("02:78:00:00:00:03")!, macDC = MACAddress("02:78:00:00:00:0b")!

    /// The object swift build compiled from bpf/lvs_xdp.c into the binary: an ELF object for BPF
    /// (e_machine 247) with both programs; a copy written to a file loads the same way
    /// (--xdp-object), and a file that is not an object is refused by name.
    func testBuiltInObjectAndObjectFiles() throws {
        let object = BPFObject.builtIn
        XCTAssertTrue(object.bytes.starts(with: [0x7F, 0x45, 0x4C, 0x46]), "ELF magic")
        XCTAssertEqual(Int(object.bytes[18]) | Int(object.bytes[19]) << 8, 247, "EM_BPF")
        XCTAssertTrue(object.name.contains("lvs_xdp.o built into lvsd"), object.name)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lvs-bpfobject-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let copy = dir.appendingPathComponent("copy.o").path
        try Data(object.bytes).write(to: URL(fileURLWithPath: copy))
        let fromFile = try BPFObject(contentsOf: copy)
        XCTAssertEqual(fromFile.bytes, object.bytes)
        XCTAssertEqual(fromFile.name, copy)
        let text = dir.appendingPathComponent("not-an-object.o").path
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: text))
        XCTAssertThrowsError(try BPFObject(contentsOf: text)) { XCTAssertTrue("\($0)".contains("not-an-object.o' is not an ELF object"), "\($0)") }
        XCTAssertThrowsError(try BPFObject(contentsOf: dir.appendingPathComponent("missing.o").path)) {
            XCTAssertTrue("\($0)".contains("missing.o"), "\($0)")
        }
        guard geteuid() == 0 else { throw XCTSkip("needs root to load BPF programs (the rest passed)") }
        for kind in [XDPProgram.Kind.xdp, .tc] {
            let program = try XDPProgram(object: fromFile, kind: kind)
            XCTAssertEqual(program.objectName, copy)
            XCTAssertGreaterThanOrEqual(program.vipsMap, 0)
        }
        XCTAssertThrowsError(try XDPProgram(object: BPFObject(name: "truncated", bytes: Array(object.bytes.prefix(200))))) {
            XCTAssertTrue("\($0)".contains("cannot load BPF object truncated"), "\($0)")
        }
    }

    /// The fast path's connection map: 10,000 entries written, read back in batches with their
    /// keys intact (IPv4 and IPv6), then deleted.
    func testConnectionMapBatchRead() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root (BPF maps)") }
        let program = try XDPProgram(object: .builtIn)
        let map = XDPConnMap(program: program)
        var keys: [ConnectionKey] = []
        for i in 0..<10_000 {
            let v6 = i % 3 == 0
            keys.append(ConnectionKey(proto: i % 2 == 0 ? 6 : 17,
                                      client: v6 ? IPAddress("2001:db8::\(String(i, radix: 16))")! : IPAddress(ipv4: 0x0A00_0000 + UInt32(i)),
                                      clientPort: UInt16(1024 + i), virtualAddress: v6 ? IPAddress("2001:db8:1::100")! : IPAddress("192.168.1.100")!,
                                      virtualPort: 80))
        }
        for k in keys {
            var mk = XDPConnMap.key(k)
            XCTAssertEqual(map.put(&mk, destinationMAC: Self.macC, sourceMAC: Self.macDC, interface: 7, destSlot: 3), 0)
        }
        var seen = Set<ConnectionKey>()
        XCTAssertTrue(map.forEachEntry(batch: 1000) { mk, v in
            seen.insert(XDPConnMap.connectionKey(mk))
            XCTAssertEqual(v.ifindex, 7)
            XCTAssertEqual(v.dest, 3)
        })
        XCTAssertEqual(seen, Set(keys))
        XCTAssertEqual(map.count(), 10_000)
        // Nothing forwarded yet: the destination's counters (summed over CPUs) are zero.
        let c = try XCTUnwrap(map.destinationCounters(3))
        XCTAssertEqual(c.packets, 0)
        XCTAssertEqual(c.bytes, 0)
        var big = XDPConnMap.key(keys[0])
        XCTAssertEqual(map.put(&big, destinationMAC: Self.macC, sourceMAC: Self.macDC, interface: 7,
                               destSlot: XDPConnMap.maxDestinationSlots), -ERANGE, "a slot beyond dest_stats is refused")
        for k in keys {
            var mk = XDPConnMap.key(k)
            map.delete(&mk)
        }
        var left = 0
        XCTAssertTrue(map.forEachEntry { _, _ in left += 1 })
        XCTAssertEqual(left, 0)
    }

    func testRedirectsAndTransmitsRealTraffic() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root (namespaces, XDP)") }
        let pid = getpid()
        let (a, d, c) = ("lvsxdp-\(pid)-a", "lvsxdp-\(pid)-d", "lvsxdp-\(pid)-c")
        defer { for ns in [a, d, c] { _ = try? ExternalCommand.run(["ip", "netns", "del", ns]) } }
        for ns in [a, d, c] { try shell("ip netns add \(ns)") }
        try shell("ip link add a0 netns \(a) address \(Self.macA) type veth peer name da netns \(d) address \(Self.macDA)")
        try shell("ip link add c0 netns \(c) address \(Self.macC) type veth peer name dc netns \(d) address \(Self.macDC)")
        try shell("ip -n \(a) addr add \(Self.clientIP)/24 dev a0")
        try shell("ip -n \(c) addr add \(Self.serverIP)/24 dev c0")
        for (ns, dev) in [(a, "a0"), (c, "c0"), (d, "da"), (d, "dc"), (a, "lo"), (c, "lo")] {
            try shell("ip -n \(ns) link set \(dev) up")
        }
        try shell("ip -n \(a) neigh replace \(Self.serverIP) lladdr \(Self.macDA) dev a0 nud permanent")
        try shell("ip -n \(c) neigh replace \(Self.clientIP) lladdr \(Self.macDC) dev c0 nud permanent")

        // veth has no zero-copy AF_XDP: insisting on it fails with a clear error (and frees what it
        // opened); the default (.auto) falls back to copy mode, checked below.
        try inNamespace(d) {
            var zc = AFXDPConfiguration(interfaces: ["da"], workerCount: 1)
            zc.socket.mode = .zeroCopy
            XCTAssertThrowsError(try AFXDPDataPlane<TestForwarder>(configuration: zc) { _ in
                TestForwarder(0, .init(egress: 0, source: Self.macDA, destination: Self.macA), 0, .init(egress: 0, source: Self.macDA, destination: Self.macA))
            }) { error in
                XCTAssertTrue("\(error)".contains("zero-copy"), "\(error)")
            }
        }
        let plane: AFXDPDataPlane<TestForwarder> = try inNamespace(d) {
            let da = try InterfaceInfo.lookup("da"), dc = try InterfaceInfo.lookup("dc")
            let plane = try AFXDPDataPlane(configuration: .init(interfaces: ["da", "dc"], workerCount: 2)) { _ in
                TestForwarder(da.index, .init(egress: dc.index, source: Self.macDC, destination: Self.macC),
                              dc.index, .init(egress: da.index, source: Self.macDA, destination: Self.macA))
            }
            // Both directions are "VIP" traffic here, so both are redirected.
            try plane.updateVIPs([
                VIPMatch(address: IPAddress(Self.serverIP)!, proto: 17, port: 9000),
                VIPMatch(address: IPAddress(Self.serverIP)!, proto: 6, port: 9001),
                VIPMatch(address: IPAddress(Self.clientIP)!, proto: 17, port: 0),
                VIPMatch(address: IPAddress(Self.clientIP)!, proto: 6, port: 0),
            ])
            try plane.start()
            return plane
        }
        var stopped = false
        defer { if !stopped { _ = try? inNamespace(d) { plane.stop() } } }
        XCTAssertEqual(plane.workers.count, 1, "veth has one queue: one worker")
        XCTAssertEqual(plane.modes, [.native, .native], plane.summary)
        XCTAssertEqual(plane.zeroCopy, [false, false], plane.summary)
        XCTAssertTrue(plane.summary.contains("copy mode"), plane.summary)
        let links: String = try inNamespace(d) { try ExternalCommand.check(["ip", "-d", "link", "show", "da"]) }
        XCTAssertTrue(links.contains("prog/xdp"), links)

        // UDP: 200 datagrams A → C (A → VIP:9000).
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
            var expected = pattern(100 + (Int(buffer[0]) * 37) % 1300, seed: Int(buffer[0]))
            expected[0] = buffer[0]
            XCTAssertEqual(Array(buffer[0..<n]), expected)
            intact += 1
        }
        XCTAssertEqual(intact, sent, "UDP datagrams through AF_XDP")

        // TCP: 1 MB each way (the kernel drops segments with a bad checksum: this fails without
        // the worker completing CHECKSUM_PARTIAL checksums).
        let elapsed = try tcpExchange(clientNamespace: a, serverNamespace: c, serverIP: Self.serverIP, port: 9001, size: 1 << 20)
        print("AFXDPTests: 2 MB of TCP through AF_XDP in \(String(format: "%.2f", elapsed)) s")

        let counters = plane.counters()
        let daIndex = plane.interfaces[0].index, dcIndex = plane.interfaces[1].index
        XCTAssertGreaterThan(counters[daIndex]?.rxPackets ?? 0, UInt64(sent))
        XCTAssertGreaterThan(counters[dcIndex]?.txPackets ?? 0, UInt64(sent))
        XCTAssertGreaterThan(counters[daIndex]?.txPackets ?? 0, 0)
        XCTAssertEqual(counters[daIndex]?.txErrors ?? 1, 0)

        // Stop detaches the programs: D's interfaces carry no XDP program any more.
        let after: String = try inNamespace(d) {
            plane.stop()
            return try ExternalCommand.check(["ip", "-d", "link", "show", "da"])
        }
        stopped = true
        XCTAssertFalse(after.contains("prog/xdp"), after)
    }
}
