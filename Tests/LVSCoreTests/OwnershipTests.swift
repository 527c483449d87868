import Testing
@testable import LVSCore
import LVSModel

/// VIP ownership (issue 15, the mechanism VRRP drives): a managed VIP this director does not own
/// is neither answered for, nor announced, nor forwarded, and its connections wait for a takeover.
@Suite struct OwnershipTests {
    static let vipAddress = IPAddress("192.168.1.100")!
    static let vip6Address = IPAddress("2001:db8:1::100")!

    /// A client's segment to the VIP from `port` with `flags`.
    static func segment(_ port: UInt16, _ flags: UInt8) -> [UInt8] {
        FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: port, dst: "192.168.1.100", dport: 80, flags: flags)
    }

    static func destinationMAC(_ frame: [UInt8]) -> MACAddress { frame.withUnsafeBytes { MACAddress(bytes: $0.baseAddress!) } }

    static func notOwnedDrops(_ e: Engine) -> UInt64 { e.counters.drops[Int(DropReason.notOwned.rawValue)] }

    /// A neighbour solicitation from the client for `target` (to its solicited-node address).
    static func solicitation(for target: String) -> [UInt8] {
        FrameBuilder.neighbourDiscovery(type: 135, src: "2001:db8:1::12", dst: "ff02::1:ff00:100", target: target,
                                        linkLayer: FrameBuilder.clientMAC)
    }

    /// Bytes from a hex string (spaces ignored, as tcpdump -xx prints them).
    static func hex(_ s: String) -> [UInt8] {
        let chars = Array(s.utf8.filter { $0 != UInt8(ascii: " ") })
        return stride(from: 0, to: chars.count, by: 2).map { UInt8(String(decoding: chars[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
    }

    @Test func unmanagedVIPsBehaveAsBefore() {
        let e = seedEngine()
        // Another address under VRRP control changes nothing for this VIP.
        e.setManagedAddresses([IPAddress("192.168.1.200")!])
        #expect(e.owns(Self.vipAddress))
        #expect(e.syn(1, at: second).0 == .forward(interface: 2))
        #expect(e.run(FrameBuilder.arpRequest(senderIP: "192.168.1.12", targetIP: "192.168.1.100"), at: second).0 == .reply(length: 60))
        // setOwned on an unmanaged address does not make it managed.
        e.setOwned([Self.vipAddress], false)
        #expect(e.owns(Self.vipAddress) && e.syn(2, at: second).0 == .forward(interface: 2))
        #expect(Self.notOwnedDrops(e) == 0)
        #expect(e.notOwnedVIPs == [IPAddress("192.168.1.200")!])
    }

    @Test func aManagedVIPIsNotAnsweredNotAnnouncedNotForwardedUntilOwned() {
        let e = seedEngine()
        e.setManagedAddresses([Self.vipAddress])
        #expect(!e.owns(Self.vipAddress))
        let arp = FrameBuilder.arpRequest(senderIP: "192.168.1.12", targetIP: "192.168.1.100")
        #expect(e.run(arp, at: second).0 == .pass, "ARP for a VIP not owned is the kernel's")
        // No gratuitous ARP for it (the service's announcement is still pending from addService).
        #expect(!e.pendingFrames(now: second).contains { Array($0.bytes[28..<32]) == FrameBuilder.v4("192.168.1.100") })
        #expect(e.announcementFrames([Self.vipAddress]).isEmpty)
        // A new connection is not scheduled: dropped and counted.
        #expect(e.syn(1, at: second).0 == .drop(.notOwned))
        #expect(e.connectionCount == 0)
        #expect(Self.notOwnedDrops(e) == 1)
        // Taken: answered and forwarded again.
        e.setOwned([Self.vipAddress], true)
        #expect(e.owns(Self.vipAddress) && e.notOwnedVIPs.isEmpty)
        #expect(e.run(arp, at: second).0 == .reply(length: 60))
        #expect(e.syn(1, at: second).0 == .forward(interface: 2))
        #expect(e.announcementFrames([Self.vipAddress]).count == 1)
        // Managed again from scratch keeps the ownership of an address that stays managed; one
        // that leaves the set is owned as every unmanaged address.
        e.setManagedAddresses([Self.vipAddress, IPAddress("192.168.1.200")!])
        #expect(e.owns(Self.vipAddress))
        e.setOwned([Self.vipAddress], false)
        e.setManagedAddresses([])
        #expect(e.owns(Self.vipAddress) && e.syn(3, at: second).0 == .forward(interface: 2))
    }

    @Test func neighbourSolicitationsForAnIPv6VIPFollowOwnership() {
        let e = NeighbourTests.engine()
        let ns = Self.solicitation(for: "2001:db8:1::100")
        #expect(e.run(ns, at: second).0 == .reply(length: 14 + 40 + 32))
        e.setManagedAddresses([Self.vip6Address])
        #expect(e.run(ns, at: second).0 == .pass, "NS for a VIP not owned is the kernel's")
        let six = FrameBuilder.ipv6TCP(src: "2001:db8:1::12", sport: 9, dst: "2001:db8:1::100", dport: 80, flags: TCPFlag.syn)
        #expect(e.run(six, at: second).0 == .drop(.notOwned))
        e.setOwned([Self.vip6Address], true)
        #expect(e.run(ns, at: second).0 == .reply(length: 14 + 40 + 32))
        #expect(e.run(six, at: second).0 == .forward(interface: 2))
    }

    /// The takeover guarantee: an established connection survives a release (its frames are
    /// dropped, not forwarded, and it is not deleted) and forwards to the same real server again
    /// once the VIP is owned.
    @Test func anEstablishedEntrySurvivesAReleaseAndForwardsAfterTheTakeover() {
        let e = seedEngine()
        e.setManagedAddresses([Self.vipAddress])
        e.setOwned([Self.vipAddress], true)
        let (v, first) = e.run(Self.segment(5000, TCPFlag.syn), at: second)
        #expect(v == .forward(interface: 2))
        let server = Self.destinationMAC(first)
        #expect(e.run(Self.segment(5000, TCPFlag.ack), at: second).0 == .forward(interface: 2))
        e.setOwned([Self.vipAddress], false)
        for _ in 0..<3 { #expect(e.run(Self.segment(5000, TCPFlag.ack), at: 2 * second).0 == .drop(.notOwned)) }
        #expect(Self.notOwnedDrops(e) == 3)
        e.tick(now: 10 * second)
        let kept = e.connections(now: 10 * second)
        #expect(kept.count == 1 && kept.first?.state == "ESTABLISHED" && kept.first?.clientPort == 5000)
        e.setOwned([Self.vipAddress], true)
        let (again, out) = e.run(Self.segment(5000, TCPFlag.ack), at: 11 * second)
        #expect(again == .forward(interface: 2))
        #expect(Self.destinationMAC(out) == server)
        #expect(e.counters.newConnections == 1)
    }

    /// A backup's synced connections (the sync daemon keeps applying them while the VIP is not
    /// owned) are not adopted while it is not owned, and serve the client after the takeover.
    @Test func syncedEntriesWaitForTheTakeover() throws {
        let master = seedEngine()
        try master.startSyncMaster(masterConfig)
        for flags in [TCPFlag.syn, TCPFlag.ack, TCPFlag.ack] { _ = master.tcp(7000, flags, at: second) }
        master.tick(now: second)
        let messages = master.takeSyncMessages(now: second, flushAfter: 0)
        let owner = try #require(master.connections(now: second).first { $0.clientPort == 7000 }).destinationAddress

        let backup = seedEngine()
        backup.setManagedAddresses([Self.vipAddress])
        try backup.startSyncBackup(backupConfig)
        #expect(backup.applySync(messages[0], now: second).applied == 1)
        #expect(backup.tcp(7000, TCPFlag.ack, at: 2 * second) == .drop(.notOwned))
        #expect(backup.synced.count == 1, "still waiting in the synced table")
        backup.setOwned([Self.vipAddress], true)
        let (v, out) = backup.run(Self.segment(7000, TCPFlag.ack), at: 3 * second)
        #expect(v == .forward(interface: 2))
        #expect(Self.destinationMAC(out) == (owner == IPAddress("192.168.1.31")! ? rs1MAC : rs2MAC))
        #expect(backup.synced.count == 0)
    }

    /// The packet path's filter may say "maybe" for an owned address sharing a bit with one not
    /// owned; the exact check under the lock then forwards it.
    @Test func anOwnedVIPSharingAFilterBitStillForwards() throws {
        let e = seedEngine()
        let bit = Engine.ownershipBit(Self.vipAddress)
        var twin: IPAddress?
        for a in UInt32(0x0A00_0001)..<UInt32(0x0A01_0000) where Engine.ownershipBit(IPAddress(ipv4: a)) == bit {
            twin = IPAddress(ipv4: a)
            break
        }
        let other = try #require(twin)
        e.setManagedAddresses([Self.vipAddress, other])
        e.setOwned([Self.vipAddress], true)
        #expect(e.syn(1, at: second).0 == .forward(interface: 2))
        e.setOwned([Self.vipAddress], false)
        #expect(e.syn(2, at: second).0 == .drop(.notOwned))
    }

    /// Later fragments and ICMP errors of a connection to a VIP not owned are dropped too.
    @Test func fragmentsAndICMPErrorsOfAReleasedVIPAreDropped() {
        let e = seedEngine()
        e.setManagedAddresses([Self.vipAddress])
        e.setOwned([Self.vipAddress], true)
        let head = FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 6000, dst: "192.168.1.100", dport: 80, flags: TCPFlag.syn,
                                        payload: 16, moreFragments: true)
        #expect(e.run(head, at: second).0 == .forward(interface: 2))
        e.setOwned([Self.vipAddress], false)
        let tail = FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 6000, dst: "192.168.1.100", dport: 80, flags: 0,
                                        payload: 16, fragmentOffset: 5)
        #expect(e.run(tail, at: second).0 == .drop(.notOwned))
    }

    /// The gratuitous ARP and the unsolicited NA, byte for byte as keepalived 2.2.7 sends them
    /// (vrrp_arp.c, vrrp_ndisc.c; the ARP checked against a capture of `keepalived --vrrp`): a
    /// broadcast ARP request with the VIP as sender and target and a broadcast target MAC; an NA
    /// from the VIP to ff02::1 (hop limit 255, override flag, target link-layer option).
    @Test func announcementsAreKeepalivedsBytes() {
        let e = NeighbourTests.engine()
        let frames = e.announcementFrames([Self.vipAddress, Self.vip6Address])
        #expect(frames.map(\.interface) == [2, 2])
        #expect(frames.first?.bytes == Self.hex("ffffffffffff" + "005000000400" + "0806" + "0001" + "0800" + "06" + "04" + "0001"
                                                 + "005000000400" + "c0a80164" + "ffffffffffff" + "c0a80164"))
        #expect(frames.last?.bytes == Self.hex("333300000001" + "005000000400" + "86dd"
                                                + "6000000000203aff" + "20010db8000100000000000000000100" + "ff020000000000000000000000000001"
                                                + "8800f4db" + "20000000" + "20010db8000100000000000000000100" + "0201" + "005000000400"))
        // A capture of keepalived 2.2.7 (`keepalived --vrrp`, MASTER with priority 255, in a netns
        // pair; interface MAC 02:00:00:00:aa:01): the same bytes for its addresses.
        let k = Engine()
        k.setInterfaces([EngineInterface(index: 7, name: "ownk0", mac: MACAddress("02:00:00:00:aa:01")!, addresses: [])])
        #expect(k.announcementFrames([IPAddress("10.99.77.100")!, IPAddress("2001:db8:77::100")!]).map(\.bytes) == [
            Self.hex("ffff ffff ffff 0200 0000 aa01 0806 0001 0800 0604 0001 0200 0000 aa01 0a63 4d64 ffff ffff ffff 0a63 4d64"),
            Self.hex("3333 0000 0001 0200 0000 aa01 86dd 6000 0000 0020 3aff 2001 0db8 0077 0000 0000 0000 0000 0100 ff02"
                     + "0000 0000 0000 0000 0000 0000 0001 8800 4c3e 2000 0000 2001 0db8 0077 0000 0000 0000 0000 0100 0201"
                     + "0200 0000 aa01"),
        ])
        // The new-VIP announcement is the same frame.
        let pending = e.pendingFrames(now: second).filter { $0.bytes.count == 42 && $0.bytes[21] == 1 && Array($0.bytes[28..<32]) == FrameBuilder.v4("192.168.1.100") }
        #expect(pending.map(\.bytes) == [frames[0].bytes])
        // One per interface, or only on the one asked for.
        e.setInterfaces(e.interfaces + [EngineInterface(index: 3, name: "eth1", mac: MACAddress("00:50:00:00:04:01")!, addresses: [])])
        #expect(e.announcementFrames([Self.vipAddress]).map(\.interface) == [2, 3])
        #expect(e.announcementFrames([Self.vipAddress], interface: 3).map(\.interface) == [3])
    }

    /// keepalived sets the NA's router flag on an interface that forwards IPv6 (vrrp_ndisc.c):
    /// the flags word becomes 0xa0000000 and the checksum follows; the ARP is unchanged.
    @Test func unsolicitedNAHasTheRouterFlagOnAForwardingInterface() {
        let e = NeighbourTests.engine()
        let plain = e.announcementFrames([Self.vipAddress, Self.vip6Address])
        let routed = e.announcementFrames([Self.vipAddress, Self.vip6Address], routerInterfaces: ["eth0"])
        #expect(routed.first?.bytes == plain.first?.bytes)
        #expect(routed.last?.bytes == Self.hex("333300000001" + "005000000400" + "86dd"
                                                + "6000000000203aff" + "20010db8000100000000000000000100" + "ff020000000000000000000000000001"
                                                + "880074db" + "a0000000" + "20010db8000100000000000000000100" + "0201" + "005000000400"))
        // Another interface's forwarding does not set it here.
        #expect(e.announcementFrames([Self.vip6Address], routerInterfaces: ["eth1"]).map(\.bytes) == [plain.last!.bytes])
    }
}
