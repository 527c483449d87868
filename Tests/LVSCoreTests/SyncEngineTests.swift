import Testing
@testable import LVSCore
import LVSModel

let masterConfig = SyncDaemonSnapshot(role: "master", interface: "eth0", syncID: 0, maxLength: 1472,
                                      group: "224.0.0.81", port: 8848, ttl: 1)
let backupConfig = SyncDaemonSnapshot(role: "backup", interface: "eth0", syncID: 0, maxLength: 1472,
                                      group: "224.0.0.81", port: 8848, ttl: 1)

extension Engine {
    func tcp(_ port: UInt16, _ flags: UInt8, at now: UInt64) -> Verdict {
        run(FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: port, dst: "192.168.1.100", dport: 80, flags: flags), at: now).0
    }
    func sent(at now: UInt64) -> [SyncConnection] {
        tick(now: now)
        return takeSyncMessages(now: now, flushAfter: 0).flatMap { SyncMessageDecoder.decode($0).entries }
    }
}

@Suite struct SyncEngineTests {
    @Test func entryStaysSixtyFourBytes() {
        #expect(MemoryLayout<ConnectionEntry>.size == 64)
    }

    @Test func masterSendsOnThirdPacketAndOnStateChanges() throws {
        let e = seedEngine()
        try e.startSyncMaster(masterConfig)
        #expect(throws: IPVSError.daemonRunning) { try e.startSyncMaster(masterConfig) }
        _ = e.tcp(5000, TCPFlag.syn, at: second)          // pkt 1, SYN_RECV: not synced
        _ = e.tcp(5000, TCPFlag.ack, at: second)          // pkt 2, ESTABLISHED: not forced
        #expect(e.sent(at: second).isEmpty)
        _ = e.tcp(5000, TCPFlag.ack, at: second)          // pkt 3
        let third = e.sent(at: second)
        #expect(third.count == 1)
        #expect(third.first?.state == 1 && third.first?.timeout == 900 && third.first?.flags == 3)
        #expect(third.first?.destinationPort == 80 && third.first?.clientPort == 5000)
        for _ in 4...52 { _ = e.tcp(5000, TCPFlag.ack, at: second) }
        #expect(e.sent(at: second).isEmpty)
        _ = e.tcp(5000, TCPFlag.ack, at: second)          // pkt 53
        #expect(e.sent(at: second).count == 1)
        _ = e.tcp(5000, TCPFlag.fin | TCPFlag.ack, at: second) // FIN_WAIT: forced
        let fin = e.sent(at: second)
        #expect(fin.count == 1 && fin.first?.state == 4 && fin.first?.timeout == 120 && fin.first?.isInactive == true)
        // UDP: on the third packet.
        for _ in 0..<3 { _ = e.run(FrameBuilder.ipv4UDP(src: "192.168.1.12", sport: 7, dst: "192.168.1.100", dport: 80), at: second) }
        try e.stopSyncMaster()
        #expect(throws: IPVSError.noDaemon) { try e.stopSyncMaster() }
        _ = e.tcp(5001, TCPFlag.syn, at: second)
        _ = e.tcp(5001, TCPFlag.fin, at: second)
        #expect(e.sent(at: second).isEmpty)
    }

    @Test func templatesGoWithTheirConnections() throws {
        let e = seedEngine(persistent: 360)
        try e.startSyncMaster(masterConfig)
        _ = e.tcp(6000, TCPFlag.syn, at: second)
        _ = e.tcp(6000, TCPFlag.ack, at: second)
        _ = e.tcp(6000, TCPFlag.ack, at: second)
        let s = e.sent(at: second)
        #expect(s.count == 2)
        #expect(s.last?.isTemplate == true && s.last?.state == 1 && s.last?.timeout == 360 && s.last?.clientPort == 0)
    }

    @Test func backupKeepsEntriesAndServesThemAfterFailover() throws {
        let master = seedEngine()
        try master.startSyncMaster(masterConfig)
        _ = master.tcp(7000, TCPFlag.syn, at: second)
        _ = master.tcp(7000, TCPFlag.ack, at: second)
        _ = master.tcp(7000, TCPFlag.ack, at: second)
        _ = master.tcp(7001, TCPFlag.syn, at: second)
        _ = master.tcp(7001, TCPFlag.fin, at: second)
        master.tick(now: second)
        let messages = master.takeSyncMessages(now: second, flushAfter: 0)
        #expect(messages.count == 1)
        let owner = master.connections(now: second).first { $0.clientPort == 7000 }!.destinationAddress

        let backup = seedEngine()
        // Not running: ignored.
        #expect(backup.applySync(messages[0], now: second).received == 0)
        try backup.startSyncBackup(backupConfig)
        let r = backup.applySync(messages[0], now: second)
        #expect(r.applied == 2)
        let list = backup.connections(now: second)
        #expect(list.count == 2)
        #expect(list.contains { $0.clientPort == 7000 && $0.state == "ESTABLISHED" && $0.destinationAddress == owner && $0.expiresSeconds == 900 })
        #expect(list.contains { $0.clientPort == 7001 && $0.state == "TIME_WAIT" })
        let snap = backup.snapshot()
        #expect(snap.daemons.map(\.role) == ["backup"])
        let active = snap.services[0].destinations.reduce(0) { $0 + $1.activeConns }
        let inactive = snap.services[0].destinations.reduce(0) { $0 + $1.inactConns }
        #expect(active == 1 && inactive == 1)
        // Failover: the client's next packet goes to the same real server.
        let (v, out) = backup.run(FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 7000, dst: "192.168.1.100", dport: 80, flags: TCPFlag.ack), at: 2 * second)
        #expect(v == .forward(interface: 2))
        let mac = out.withUnsafeBytes { MACAddress(bytes: $0.baseAddress!) }
        #expect(mac == (owner == IPAddress("192.168.1.31")! ? rs1MAC : rs2MAC))
        #expect(backup.connections(now: 2 * second).count == 2)
        #expect(backup.synced.count == 1)
        // Re-sending updates rather than duplicates (7000 is the shard's now, not synced again);
        // unused entries expire with their timeout.
        backup.applySync(messages[0], now: 2 * second)
        #expect(backup.connections(now: 2 * second).count == 2) // shard's 7000, synced 7001
        backup.tick(now: 200 * second)
        #expect(backup.synced.count == 0) // 7001 (TIME_WAIT, 120 s) expired
        // A different syncid is ignored by a backup with a non-zero id.
        try backup.stopSyncBackup()
        var other = backupConfig
        other.syncID = 5
        try backup.startSyncBackup(other)
        #expect(backup.applySync(messages[0], now: 3 * second).applied == 0)
    }
}

/// The backup daemon's input bounds (issue 13 item 10): anyone on the segment can send sync
/// messages, as with the kernel, so what they can do is bounded.
@Suite struct SyncBoundsTests {
    static func template(client: String, timeout: UInt32, rip: String = "192.168.1.31") -> SyncConnection {
        SyncConnection(proto: 6, flags: SyncProtocol.flagTemplate | 3, state: 0, clientPort: 0, virtualPort: 80,
                       destinationPort: 80, timeout: timeout, client: IPAddress(client)!,
                       virtualAddress: IPAddress("192.168.1.100")!, destination: IPAddress(rip)!)
    }

    static func connection(port: UInt16, state: UInt16 = 1, timeout: UInt32 = 900, inactive: Bool = false) -> SyncConnection {
        SyncConnection(proto: 6, flags: 3 | (inactive ? SyncProtocol.flagInactive : 0), state: state, clientPort: port,
                       virtualPort: 80, destinationPort: 80, timeout: timeout, client: IPAddress("192.168.1.12")!,
                       virtualAddress: IPAddress("192.168.1.100")!, destination: IPAddress("192.168.1.31")!)
    }

    static func apply(_ e: Engine, _ list: [SyncConnection], at now: UInt64) {
        for m in SyncMessageBuilder.messages(list, syncID: 0) { e.applySync(m, now: now) }
    }

    /// A template's timeout is at most its service's persistence timeout (360 s here), whatever
    /// the message says; a connection's at most the local timeout of its state.
    @Test func syncedTimeoutsAreClamped() throws {
        let e = seedEngine(persistent: 360)
        try e.startSyncBackup(backupConfig)
        Self.apply(e, [Self.template(client: "10.1.0.1", timeout: 0x00FF_FFFF), Self.template(client: "10.1.0.2", timeout: 100),
                       Self.connection(port: 4000, timeout: 0x00FF_FFFF)], at: second)
        let list = e.connections(now: second)
        #expect(list.first { $0.isTemplate && $0.clientAddress == IPAddress("10.1.0.1")! }?.expiresSeconds == 360)
        #expect(list.first { $0.isTemplate && $0.clientAddress == IPAddress("10.1.0.2")! }?.expiresSeconds == 100)
        #expect(list.first { !$0.isTemplate && $0.clientPort == 4000 }?.expiresSeconds == 900)
        #expect(e.syncCounters.clamped == 2 && e.syncCounters.applied == 3)
        // A refresh never shortens a template, and cannot lengthen it past the bound either.
        Self.apply(e, [Self.template(client: "10.1.0.1", timeout: 1)], at: 2 * second)
        #expect(e.connections(now: 2 * second).first { $0.isTemplate && $0.clientAddress == IPAddress("10.1.0.1")! }?.expiresSeconds == 359)
        // Templates for a service that is not persistent are not kept.
        let plain = seedEngine()
        try plain.startSyncBackup(backupConfig)
        Self.apply(plain, [Self.template(client: "10.1.0.1", timeout: 60)], at: second)
        #expect(plain.connections(now: second).isEmpty && plain.syncCounters.unbound == 1)
    }

    /// A connection a worker adopted is not inserted again by the next update for it: it is
    /// counted once (active 1), and the update is counted as served locally.
    @Test func adoptedConnectionIsNotCountedTwice() throws {
        let e = seedEngine()
        try e.startSyncBackup(backupConfig)
        Self.apply(e, [Self.connection(port: 7000)], at: second)
        #expect(e.dest("192.168.1.31").activeConns == 1)
        // The client's next packet after failover: the worker adopts the entry.
        let (v, _) = e.run(FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 7000, dst: "192.168.1.100", dport: 80, flags: TCPFlag.ack), at: second)
        #expect(v == .forward(interface: 2))
        #expect(e.synced.count == 0 && e.primary.table.count == 1)
        // The old master (still running) sends its next update about it, twice.
        Self.apply(e, [Self.connection(port: 7000)], at: 2 * second)
        Self.apply(e, [Self.connection(port: 7000, state: 4, timeout: 120, inactive: true)], at: 3 * second)
        #expect(e.synced.count == 0)
        #expect(e.connections(now: 3 * second).count == 1)
        let d = e.dest("192.168.1.31")
        #expect(d.activeConns == 1 && d.inactConns == 0)
        #expect(d.stats.conns == 0) // a synced connection is no new connection here
        #expect(e.syncCounters.servedLocally == 2)
        // The connection ends: nothing is left counted on the destination.
        _ = e.run(FrameBuilder.ipv4TCP(src: "192.168.1.12", sport: 7000, dst: "192.168.1.100", dport: 80, flags: TCPFlag.rst), at: 3 * second)
        e.tick(now: 30 * second)
        e.tick(now: 1000 * second)
        let after = e.dest("192.168.1.31")
        #expect(after.activeConns == 0 && after.inactConns == 0)
    }

    /// A flood of sync datagrams fills at most the synced templates' share of the template table
    /// (half of it by default); the rest is refused and counted, and local clients still get
    /// templates.
    @Test func syncFloodCannotFillTheTemplateTable() throws {
        let e = seedEngine(capacity: 4096, persistent: 300) // templates: 1024, synced at most 512
        try e.startSyncBackup(backupConfig)
        let flood = (0..<2000).map { Self.template(client: "10.2.\($0 / 250).\($0 % 250 + 1)", timeout: 300) }
        Self.apply(e, flood, at: second)
        #expect(e.syncedTemplates.count == 512 && e.syncedTemplates.limit == 512)
        #expect(e.syncCounters.templateLimit == 2000 - 512)
        #expect(e.syncCounters.clamped == 0) // 300 s: the service's own timeout
        // Updates of templates already kept still apply at the limit.
        Self.apply(e, Array(flood[0..<10]), at: second)
        #expect(e.syncCounters.applied == 512 + 10)
        var forwarded = 0
        for i in 0..<512 {
            if e.syn(1000, from: "10.9.\(i / 250).\(i % 250 + 1)", at: second).0 == .forward(interface: 2) { forwarded += 1 }
        }
        #expect(forwarded == 512)
        #expect(e.counters.drops[Int(DropReason.tableFull.rawValue)] == 0)
        // A client whose template came by sync uses it, and it stops counting against the share.
        #expect(e.syn(1000, from: "10.2.0.1", at: second).0 == .forward(interface: 2))
        #expect(e.syncedTemplates.count == 511)
        // Expired synced templates leave room for new ones.
        e.tick(now: 400 * second)
        #expect(e.syncedTemplates.count == 0)
    }
}
