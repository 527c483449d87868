import Testing
@testable import LVSCore
import LVSModel

/// Sync completed for failover (issue 15): IPv6 entries, templates linked to their connections
/// on the backup, sync_refresh_period / sync_retries, master and backup at once, full resync.
@Suite struct SyncFailoverTests {
    static let vip6 = ServiceKey(proto: .tcp, address: IPAddress("2001:db8:1::100")!, port: 80)

    /// An engine with an IPv6 service 2001:db8:1::100:80 on real servers ::31 and ::32.
    static func ipv6Engine() -> Engine {
        var cfg = EngineConfiguration()
        cfg.connectionCapacity = 1024
        let e = Engine(configuration: cfg)
        e.setInterfaces([EngineInterface(index: 2, name: "eth0", mac: FrameBuilder.directorMAC,
                                         addresses: [(IPAddress("2001:db8:1::21")!, 64)])])
        try! e.addService(vip6, ServiceOptions(scheduler: "rr", netmask: 128))
        try! e.addDestination(vip6, DestinationOptions(address: IPAddress("2001:db8:1::31")!, port: 80))
        try! e.addDestination(vip6, DestinationOptions(address: IPAddress("2001:db8:1::32")!, port: 80))
        e.setNeighbour(IPAddress("2001:db8:1::31")!, mac: rs1MAC, interface: 2)
        e.setNeighbour(IPAddress("2001:db8:1::32")!, mac: rs2MAC, interface: 2)
        return e
    }

    static func tcp6(_ e: Engine, _ port: UInt16, _ flags: UInt8, at now: UInt64) -> Verdict {
        e.run(FrameBuilder.ipv6TCP(src: "2001:db8:1::12", sport: port, dst: "2001:db8:1::100", dport: 80, flags: flags), at: now).0
    }

    static func establish(_ e: Engine, _ port: UInt16, from client: String = "192.168.1.12", at now: UInt64) {
        for flags in [TCPFlag.syn, TCPFlag.ack, TCPFlag.ack] {
            _ = e.run(FrameBuilder.ipv4TCP(src: client, sport: port, dst: "192.168.1.100", dport: 80, flags: flags), at: now)
        }
    }

    /// The master sends an IPv6 service's connection as a 72-byte IPv6 entry; the backup keeps it
    /// and, after failover, forwards the client's next packet to the same real server.
    @Test func ipv6ConnectionsAreSentAndApplied() throws {
        let master = Self.ipv6Engine()
        try master.startSyncMaster(masterConfig)
        for flags in [TCPFlag.syn, TCPFlag.ack, TCPFlag.ack] { _ = Self.tcp6(master, 7000, flags, at: second) }
        master.tick(now: second)
        let messages = master.takeSyncMessages(now: second, flushAfter: 0)
        #expect(messages.count == 1)
        #expect(messages.first?.count == SyncProtocol.headerLength + SyncProtocol.entryLengthV6)
        let entries = messages.flatMap { SyncMessageDecoder.decode($0).entries }
        #expect(entries.count == 1 && entries.first?.ipv6 == true)
        let owner = master.connections(now: second).first!.destinationAddress
        #expect(entries.first?.destination == owner && entries.first?.client == IPAddress("2001:db8:1::12")!)

        let backup = Self.ipv6Engine()
        try backup.startSyncBackup(backupConfig)
        #expect(backup.applySync(messages[0], now: second).applied == 1)
        let list = backup.connections(now: second)
        #expect(list.count == 1 && list.first?.state == "ESTABLISHED" && list.first?.destinationAddress == owner)
        let (v, out) = backup.run(FrameBuilder.ipv6TCP(src: "2001:db8:1::12", sport: 7000, dst: "2001:db8:1::100", dport: 80,
                                                       flags: TCPFlag.ack), at: 2 * second)
        #expect(v == .forward(interface: 2))
        let mac = out.withUnsafeBytes { MACAddress(bytes: $0.baseAddress!) }
        #expect(mac == (owner == IPAddress("2001:db8:1::31")! ? rs1MAC : rs2MAC))
    }

    /// A synced connection is linked to its synced template (whatever the order in the message):
    /// the template outlives its persistence timeout while the connection lives, and after
    /// takeover a new connection of the same client follows it to the same real server, even
    /// where the backup's scheduler would pick the other one.
    @Test func templatesControlTheirSyncedConnections() throws {
        let master = seedEngine(persistent: 360)
        try master.startSyncMaster(masterConfig)
        Self.establish(master, 6000, from: "192.168.1.12", at: second) // rr: .32
        Self.establish(master, 6001, from: "192.168.1.13", at: second) // rr: .31
        master.tick(now: second)
        let messages = master.takeSyncMessages(now: second, flushAfter: 0)
        let sent = messages.flatMap { SyncMessageDecoder.decode($0).entries }
        #expect(sent.filter(\.isTemplate).count == 2 && sent.filter { !$0.isTemplate }.count == 2)
        let owner13 = master.connections(now: second).first { $0.clientPort == 6001 }!.destinationAddress
        #expect(owner13 == IPAddress("192.168.1.31")!)

        let backup = seedEngine(persistent: 360)
        try backup.startSyncBackup(backupConfig)
        for m in messages { backup.applySync(m, now: second) }
        #expect(backup.syncCounters.applied == 4)
        let templates = backup.lock.withLock { (0..<UInt32(backup.templates.capacity)).map { backup.templates[$0] }.filter { $0.isTemplate && !$0.isDead } }
        #expect(templates.count == 2 && templates.allSatisfy { $0.control == 1 })

        // 400 s later: past the templates' 360 s, within the connections' 900 s: still there.
        backup.tick(now: 400 * second)
        let later = backup.connections(now: 400 * second)
        #expect(later.filter(\.isTemplate).count == 2)
        // Takeover: a new connection of 192.168.1.13 goes to .31, its template's server (the
        // backup's own rr would start with .32).
        let (v, out) = backup.syn(7000, from: "192.168.1.13", at: 400 * second)
        #expect(v == .forward(interface: 2))
        #expect(out.withUnsafeBytes { MACAddress(bytes: $0.baseAddress!) } == rs1MAC)
        // The old connection adopted by a worker keeps its link; the template goes only after
        // all its connections are gone and its timer has run out.
        _ = backup.run(FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 6000, dst: "192.168.1.100", dport: 80, flags: TCPFlag.ack), at: 400 * second)
        backup.tick(now: 5000 * second)
        backup.tick(now: 6000 * second)
        #expect(backup.connections(now: 6000 * second).isEmpty)
        #expect(backup.dest("192.168.1.31").persistConns == 0 && backup.dest("192.168.1.32").persistConns == 0)
    }

    /// sync_refresh_period 60 s: the 53rd packet a moment after the 3rd is not sent again (its
    /// expiry moved less than 60 s); the 103rd, 61 s later, is. sync_retries 1: one re-send of
    /// the unchanged connection, refresh / 8 after the last.
    @Test func refreshPeriodAndRetries() throws {
        func engine(retries: UInt8) throws -> Engine {
            let e = seedEngine { $0.syncRefreshPeriod = 60; $0.syncRetries = retries }
            try e.startSyncMaster(masterConfig)
            return e
        }
        let e = try engine(retries: 0)
        _ = e.tcp(5000, TCPFlag.syn, at: second)
        _ = e.tcp(5000, TCPFlag.ack, at: second)
        _ = e.tcp(5000, TCPFlag.ack, at: second)       // pkt 3: sent
        #expect(e.sent(at: second).count == 1)
        for _ in 4...53 { _ = e.tcp(5000, TCPFlag.ack, at: 2 * second) } // pkt 53, 1 s later
        #expect(e.sent(at: 2 * second).isEmpty)
        for _ in 54...103 { _ = e.tcp(5000, TCPFlag.ack, at: 62 * second) } // pkt 103, 61 s after the send
        #expect(e.sent(at: 62 * second).count == 1)
        // A state change is sent at once whatever the period.
        _ = e.tcp(5000, TCPFlag.fin | TCPFlag.ack, at: 63 * second)
        #expect(e.sent(at: 63 * second).first?.state == 4)

        let r = try engine(retries: 1)
        _ = r.tcp(5000, TCPFlag.syn, at: second)
        _ = r.tcp(5000, TCPFlag.ack, at: second)
        _ = r.tcp(5000, TCPFlag.ack, at: second)
        #expect(r.sent(at: second).count == 1)
        for _ in 4...53 { _ = r.tcp(5000, TCPFlag.ack, at: 3 * second) }  // 2 s < 60 / 8: no retry yet
        #expect(r.sent(at: 3 * second).isEmpty)
        for _ in 54...103 { _ = r.tcp(5000, TCPFlag.ack, at: 10 * second) } // 9 s >= 7.5 s: the retry
        #expect(r.sent(at: 10 * second).count == 1)
        for _ in 104...153 { _ = r.tcp(5000, TCPFlag.ack, at: 20 * second) } // retries used up
        #expect(r.sent(at: 20 * second).isEmpty)

        // Without a refresh period (the default), the 53rd packet is sent.
        let plain = seedEngine()
        try plain.startSyncMaster(masterConfig)
        for _ in 1...3 { _ = plain.tcp(5000, plain.connections(now: second).isEmpty ? TCPFlag.syn : TCPFlag.ack, at: second) }
        #expect(plain.sent(at: second).count == 1)
        for _ in 4...53 { _ = plain.tcp(5000, TCPFlag.ack, at: 2 * second) }
        #expect(plain.sent(at: 2 * second).count == 1)
    }

    /// Master and backup daemons on one engine: it applies the peer's connections, does not send
    /// them on (neither by the packet rule nor in a full resync), and sends its own.
    @Test func masterAndBackupAtOnce() throws {
        let peer = seedEngine()
        try peer.startSyncMaster(masterConfig)
        Self.establish(peer, 7000, at: second)
        peer.tick(now: second)
        let fromPeer = peer.takeSyncMessages(now: second, flushAfter: 0)

        let e = seedEngine()
        try e.startSyncMaster(masterConfig)
        try e.startSyncBackup(backupConfig)
        #expect(e.syncDaemons.master != nil && e.syncDaemons.backup != nil)
        for m in fromPeer { e.applySync(m, now: second) }
        #expect(e.connections(now: second).count == 1)
        #expect(e.sent(at: 2 * second).isEmpty)
        #expect(e.requestResync(syncID: 0, now: 2 * second) == .started)
        #expect(e.sent(at: 3 * second).isEmpty)
        // Its own connection goes out.
        Self.establish(e, 7001, at: 4 * second)
        #expect(e.sent(at: 4 * second).map(\.clientPort) == [7001])
    }

    /// The request datagram: a kernel backup reads it as a version 0 message with no connections.
    @Test func resyncRequestIsHarmlessToKernelBackups() {
        let r = SyncProtocol.resyncRequest(syncID: 9)
        #expect(r.count == 8)
        #expect(r.withUnsafeBytes { SyncProtocol.resyncRequestSyncID($0) } == 9)
        let d = SyncMessageDecoder.decode(r)
        #expect(d.version == 0 && d.entries.isEmpty && d.skipped == 0 && d.error == nil)
        // A normal empty v1 message or a connection message is not a request.
        var plain = r
        plain[6] = 0; plain[7] = 0
        #expect(plain.withUnsafeBytes { SyncProtocol.resyncRequestSyncID($0) } == nil)
        let m = SyncMessageBuilder.messages([SyncBoundsTests.connection(port: 1)], syncID: 9)[0]
        #expect(m.withUnsafeBytes { SyncProtocol.resyncRequestSyncID($0) } == nil)
    }

    /// A full resync sends the whole table (connections and their templates), paced by the
    /// datagram rate; requests are coalesced (one queued behind a running one) and a flood is
    /// refused and counted; the queued one runs once the interval has passed.
    @Test func fullResyncIsPacedAndCoalesced() throws {
        let master = seedEngine(capacity: 16384, persistent: 300)
        try master.startSyncMaster(SyncDaemonSnapshot(role: "master", interface: "eth0", syncID: 4, maxLength: 1472,
                                                      group: "224.0.0.81", port: 8848, ttl: 1))
        for i in 0..<3000 { Self.establish(master, UInt16(10000 + i % 50), from: "10.3.\(i / 50).\(i % 50 + 1)", at: second) }
        master.tick(now: second)
        _ = master.takeSyncMessages(now: second, flushAfter: 0) // the usual sync: drained
        #expect(master.requestResync(syncID: 5, now: second) == .ignored)
        #expect(master.requestResync(syncID: 4, now: second) == .started)
        #expect(master.requestResync(syncID: 4, now: second) == .queued)
        for _ in 0..<100 { #expect(master.requestResync(syncID: 4, now: second) == .refused) }
        let c = master.resyncCounters
        #expect(c.requests == 102 && c.started == 1 && c.queued == 1 && c.refused == 100 && c.otherSyncID == 1)

        let backup = seedEngine(capacity: 16384, persistent: 300) { $0.syncedTemplatePercent = 100 }
        try backup.startSyncBackup(backupConfig)
        // 20 ms steps, as the sender thread: never more than the rate allows.
        var now = second, steps = 0, most = 0, total = 0
        while master.resyncCounters.started == 1 && steps < 10_000 {
            now += 20_000_000
            steps += 1
            let out = master.takeSyncMessages(now: now)
            most = max(most, out.count)
            total += out.count
            for m in out { backup.applySync(m, now: now) }
            if !master.resyncInProgress { break }
            if master.resyncCounters.started == 2 { break }
        }
        #expect(most <= Int(SyncRule.resyncDatagramsPerSecond) / 50 + 1)
        #expect(total >= 6000 / 40) // 6000 entries of 36 bytes, 40 a datagram
        #expect(backup.connections(now: now).filter { !$0.isTemplate }.count == 3000)
        #expect(backup.connections(now: now).filter(\.isTemplate).count == 3000)
        #expect(backup.syncedTemplates.count == 3000)
        #expect(master.resyncCounters.entries >= 6000) // and the start of the queued one
        // The queued request ran once the interval passed (or runs now).
        _ = master.takeSyncMessages(now: now + 6 * second)
        #expect(master.resyncCounters.started == 2)
    }
}
