import Testing
@testable import LVSCore

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
        // Re-sending updates rather than duplicates; unused entries expire with their timeout.
        backup.applySync(messages[0], now: 2 * second)
        #expect(backup.connections(now: 2 * second).count == 3 - 1 + 1) // shard copy + two synced (7000 again, 7001)
        backup.tick(now: 200 * second)
        #expect(backup.synced.count == 1) // 7001 (TIME_WAIT, 120 s) expired, 7000 (900 s) stays
        // A different syncid is ignored by a backup with a non-zero id.
        try backup.stopSyncBackup()
        var other = backupConfig
        other.syncID = 5
        try backup.startSyncBackup(other)
        #expect(backup.applySync(messages[0], now: 3 * second).applied == 0)
    }
}
