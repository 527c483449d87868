import Foundation
import XCTest
import CLVSXDP
import LVSCore
@testable import LVSDataPlane
import LVSModel

/// A restart on the BPF planes (docs/restart.md): a program left attached keeps its `conns` map;
/// the next lvsd finds it through the interface, loads its object with that map and replaces
/// the program in one step; a final detach leaves nothing. Root (namespaces, BPF).
final class BPFAdoptionTests: XCTestCase {
    /// Layouts that differ are named; equal ones are adoptable.
    func testLayoutDifferencesAreNamed() {
        let ours = clvs_map_layout(type: 1, key_size: 40, value_size: 32, max_entries: 1 << 22, flags: 1)
        XCTAssertNil(BPFAdoption.differences(ours, ours))
        var theirs = ours
        theirs.key_size = 44
        theirs.max_entries = 1 << 20
        XCTAssertEqual(BPFAdoption.differences(theirs, ours), "key size 44 -> 40, max entries 1048576 -> 4194304")
    }

    func testProgramLeftAttachedIsAdoptedAndReplaced() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root (namespaces, BPF)") }
        let ns = "lvsadopt-\(getpid())"
        defer { _ = try? ExternalCommand.run(["ip", "netns", "del", ns]) }
        try shell("ip netns add \(ns)")
        try shell("ip -n \(ns) link add ra type veth peer name rb")
        try shell("ip -n \(ns) link set ra up")
        try shell("ip -n \(ns) link set rb up")
        for kind in [XDPProgram.Kind.xdp, .tc] {
            try inNamespace(ns) { try self.adoptAndReplace(kind) }
        }
    }

    /// The attached lvsd program of `kind` on `info` (0: none).
    func attachedID(_ info: InterfaceInfo, _ kind: XDPProgram.Kind) -> UInt32 {
        var a = clvs_attached()
        clvs_attached_lvsd(info.index, &a)
        return kind == .xdp ? a.xdp_id : a.tc_id
    }

    func adoptAndReplace(_ kind: XDPProgram.Kind) throws {
        let info = try InterfaceInfo.lookup("ra")
        let what = "\(kind)"
        func attach(_ p: XDPProgram, replacing left: clvs_attached = clvs_attached()) throws {
            if kind == .xdp { _ = try p.attach(to: info, allowGeneric: true, replacing: left) } else { try p.attachTC(to: info) }
        }
        var key = XDPConnMap.key(ConnectionKey(proto: 6, client: IPAddress("10.9.0.1")!, clientPort: 40000,
                                               virtualAddress: IPAddress("10.9.0.100")!, virtualPort: 80))
        // tc also: a NAT connection, its conns entry and its reply entry.
        let natConnection = ConnectionKey(proto: 6, client: IPAddress("10.9.0.1")!, clientPort: 40001,
                                          virtualAddress: IPAddress("10.9.0.100")!, virtualPort: 80)
        var natKey = XDPConnMap.key(natConnection)
        var replyKey = XDPConnMap.replyKey(natConnection, server: IPAddress("10.8.0.31")!, serverPort: 8080)
        let entries: UInt64 = kind == .tc ? 2 : 1
        // The old lvsd: attached, its fast-path entries, stopped with --restart-guard.
        do {
            let old = try XDPProgram(object: .builtIn, kind: kind)
            try attach(old)
            let oldMap = XDPConnMap(program: old, nat: kind == .tc)
            XCTAssertEqual(oldMap.put(&key, destinationMAC: MACAddress("02:00:00:00:00:01")!,
                                      sourceMAC: MACAddress("02:00:00:00:00:02")!, interface: info.index, destSlot: 3), 0, what)
            if kind == .tc {
                var value = XDPConnMap.replyValue(natKey, clientMAC: MACAddress("02:00:00:00:00:03")!,
                                                  sourceMAC: MACAddress("02:00:00:00:00:02")!, interface: info.index, destSlot: 4)
                XCTAssertEqual(oldMap.putReply(&replyKey, &value), 0, what)
                XCTAssertEqual(oldMap.putNAT(&natKey, destinationMAC: MACAddress("02:00:00:00:00:01")!,
                                             sourceMAC: MACAddress("02:00:00:00:00:02")!, interface: info.index, destSlot: 4,
                                             server: IPAddress("10.8.0.31")!, serverPort: 8080), 0, what)
            }
            old.leaveAttached()
        }
        let oldID = attachedID(info, kind)
        XCTAssertNotEqual(oldID, 0, "\(what): the program stays attached after its object is gone")

        // The next lvsd takes the map over and replaces the program.
        let adoption = BPFAdoption.find(interfaces: [info], object: .builtIn, kind: kind)
        XCTAssertGreaterThanOrEqual(adoption.connsFD, 0, "\(what): \(adoption.note ?? "no note")")
        XCTAssertTrue(adoption.note?.contains("adopted the conns map of previous program \(oldID) (\(entries) entries)") == true, adoption.note ?? "")
        let new = try adoption.loadFirst(object: .builtIn, kind: kind)
        let map = XDPConnMap(program: new, nat: kind == .tc)
        XCTAssertEqual(map.count(), entries, "\(what): the new object uses the old map")
        XCTAssertEqual(map.get(&key)?.dest, 3, what)
        if kind == .tc {
            // The NAT connection's reply entry came along (nat_replies adopted too).
            XCTAssertGreaterThanOrEqual(adoption.natRepliesFD, 0, adoption.note ?? "")
            XCTAssertTrue(adoption.note?.hasSuffix("and its nat_replies") == true, adoption.note ?? "")
            XCTAssertEqual(map.getReply(&replyKey)?.dest, 4, "\(what): the reply entry survived")
            XCTAssertEqual(map.get(&natKey)?.flags, CLVS_CONN_NAT, what)
        }
        try attach(new, replacing: adoption.leftovers[0])
        let newID = attachedID(info, kind)
        XCTAssertNotEqual(newID, 0, what)
        XCTAssertNotEqual(newID, oldID, "\(what): replaced by the new program")
        XCTAssertEqual(map.count(), entries, "\(what): the entries survived the replacement")

        // A final stop: nothing of lvsd's stays attached.
        if kind == .xdp { new.detach() } else { new.detachTC() }
        XCTAssertEqual(attachedID(info, kind), 0, what)
        XCTAssertNil(BPFAdoption.find(interfaces: [info], object: .builtIn, kind: kind).note, what)
    }
}
