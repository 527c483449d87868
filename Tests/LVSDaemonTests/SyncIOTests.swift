import Glibc
import LVSControl
import LVSCore
import LVSDataPlane
import Testing
@testable import LVSDaemon
import LVSModel

/// The sync daemon's I/O over a socketpair(AF_UNIX, SOCK_DGRAM): no IP traffic on the host.
@Suite struct SyncIOTests {
    static let master = SyncDaemonSnapshot(role: "master", interface: "eth0", syncID: 0, maxLength: 1472,
                                           group: "224.0.0.81", port: 8848, ttl: 1)
    static let backup = SyncDaemonSnapshot(role: "backup", interface: "eth0", syncID: 0, maxLength: 1472,
                                           group: "224.0.0.81", port: 8848, ttl: 1)

    /// Two connected datagram sockets: [0] the master's end, [1] the backup's.
    static func socketPair() -> [Int32] {
        var fds: [Int32] = [-1, -1]
        let rc = socketpair(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds)
        precondition(rc == 0, "socketpair: \(errno)")
        return fds
    }

    /// SYN, ACK, ACK from client port `port`: the master syncs the connection on its third packet.
    static func establish(_ e: Engine, port: UInt16, at now: UInt64) {
        for flags in [Lab.syn, Lab.ack, Lab.ack] {
            _ = Lab.send(e.primary!, port: port, flags: flags, at: now)
        }
        e.tick(now: now)
    }

    @Test func aMastersMessagesReachTheBackupsEngine() throws {
        let fds = Self.socketPair()
        defer { close(fds[0]); close(fds[1]) }
        let m = Lab.engine(), b = Lab.engine()
        try m.startSyncMaster(Self.master)
        try b.startSyncBackup(Self.backup)
        Self.establish(m, port: 7000, at: Lab.second)
        // Nothing is ready before the message is a second old (flushed then).
        #expect(SyncIO.sendPending(m, socket: fds[0], to: nil, now: Lab.second) == 0)
        #expect(SyncIO.sendPending(m, socket: fds[0], to: nil, now: 3 * Lab.second) == 1)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: SyncIO.maxDatagram, alignment: 8)
        defer { buffer.deallocate() }
        let counts = SyncIO.receiveOne(b, socket: fds[1], buffer: buffer, waitMilliseconds: 5000, now: { 3 * Lab.second })
        #expect(counts?.received == 1 && counts?.applied == 1)
        let synced = b.connections(now: 3 * Lab.second)
        #expect(synced.count == 1 && synced.first?.clientPort == 7000 && synced.first?.destinationAddress == Lab.rs1)
        // Nothing more: the receive times out.
        #expect(SyncIO.receiveOne(b, socket: fds[1], buffer: buffer, waitMilliseconds: 10) == nil)
    }

    @Test func aMalformedDatagramIsCountedAndIgnored() throws {
        let fds = Self.socketPair()
        defer { close(fds[0]); close(fds[1]) }
        let b = Lab.engine()
        try b.startSyncBackup(Self.backup)
        let garbage: [UInt8] = [0xde, 0xad, 0xbe, 0xef, 1, 2, 3]
        #expect(garbage.withUnsafeBytes { send(fds[0], $0.baseAddress, $0.count, 0) } == garbage.count)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: SyncIO.maxDatagram, alignment: 8)
        defer { buffer.deallocate() }
        let counts = SyncIO.receiveOne(b, socket: fds[1], buffer: buffer, waitMilliseconds: 5000)
        #expect(counts?.received == 1 && counts?.dropped == 1 && counts?.applied == 0)
        #expect(b.syncCounters.dropped == 1)
        #expect(b.connections(now: Lab.second).isEmpty)
    }

    /// The daemons' own threads, each on its end of the pair: the master's connection appears
    /// in the backup's engine; both stop when asked.
    @Test func theDaemonThreadsCarryAConnectionAcross() {
        let fds = Self.socketPair()
        let m = Lab.engine(), b = Lab.engine()
        let masters = SyncDaemons(engine: m, logger: Lab.logger), backups = SyncDaemons(engine: b, logger: Lab.logger)
        #expect(backups.start(Self.backup, socket: fds[1]) == .ok)
        #expect(masters.start(Self.master, socket: fds[0]) == .ok)
        defer {
            masters.stopAll()
            backups.stopAll()
        }
        #expect(masters.start(Self.master, socket: dup(fds[0])) == .failed(.daemonRunning))
        // The master thread flushes by the monotonic clock: the packets' time is long past.
        Self.establish(m, port: 7100, at: Lab.second)
        #expect(Lab.waitUntil { b.syncCounters.applied >= 1 })
        #expect(b.connections(now: monotonicNanoseconds()).contains { $0.clientPort == 7100 })
        #expect(masters.stop("master") == .ok)
        #expect(masters.stop("master") == .failed(.noDaemon))
    }

    /// A backup that starts after the master's connections were made (their usual sync went out
    /// with nobody listening) asks for the table when it starts and gets it; `requestFullResync`
    /// asks again.
    @Test func aBackupThatStartsLateGetsTheWholeTable() throws {
        let fds = Self.socketPair()
        let m = Lab.engine(), b = Lab.engine()
        let masters = SyncDaemons(engine: m, logger: Lab.logger), backups = SyncDaemons(engine: b, logger: Lab.logger)
        #expect(masters.start(Self.master, socket: fds[0]) == .ok)
        defer {
            masters.stopAll()
            backups.stopAll()
        }
        Self.establish(m, port: 7200, at: Lab.second)
        // The usual message goes out and is lost: read and thrown away before the backup starts.
        var p = pollfd(fd: fds[1], events: Int16(POLLIN), revents: 0)
        #expect(poll(&p, 1, 5000) == 1)
        var scratch = [UInt8](repeating: 0, count: SyncIO.maxDatagram)
        #expect(recv(fds[1], &scratch, scratch.count, 0) > 0)
        #expect(b.syncCounters.received == 0)

        #expect(backups.start(Self.backup, socket: fds[1]) == .ok)
        #expect(Lab.waitUntil { b.connections(now: monotonicNanoseconds()).contains { $0.clientPort == 7200 } })
        #expect(m.resyncCounters.started == 1 && m.resyncCounters.requests == 1)
        #expect(backups.requestFullResync())
        #expect(Lab.waitUntil { m.resyncCounters.requests == 2 })
        #expect(masters.requestFullResync() == false) // no backup daemon there
    }

    /// `--sync-refresh-period` and `--sync-retries`: the kernel's ranges; an error names the option.
    @Test func syncOptionsAreChecked() throws {
        var o = DaemonOptions()
        #expect(try o.validatedSyncSettings() == (0, 0))
        o.syncRefreshPeriod = 120
        o.syncRetries = 3
        #expect(try o.validatedSyncSettings() == (120, 3))
        o.syncRetries = 4
        #expect { try o.validatedSyncSettings() } throws: { "\($0)".contains("--sync-retries must be from 0 to 3, got 4") }
        o.syncRetries = 0
        o.syncRefreshPeriod = -1
        #expect { try o.validatedSyncSettings() } throws: { "\($0)".contains("--sync-refresh-period must be from 0 to 2147483 seconds, got -1") }
    }

    /// The transport takes an IPv4 or an IPv6 group, as the kernel does: the IPv6 defaults leave
    /// room for its 48 bytes of headers.
    @Test func ipv4AndIPv6Groups() {
        #expect(SyncDaemons.isMulticast(IPAddress("224.0.0.81")!) && SyncDaemons.isMulticast(IPAddress("ff02::81")!))
        #expect(!SyncDaemons.isMulticast(IPAddress("192.168.1.1")!) && !SyncDaemons.isMulticast(IPAddress("2001:db8::1")!))
        var six = Self.master
        six.group = "ff02::81"
        six.maxLength = 0
        #expect(SyncDaemons.complete(six, mtu: 1500).maxLength == 1452)
        six.role = "backup"
        #expect(SyncDaemons.complete(six, mtu: 9000).maxLength == 9000 - 48)
        var four = Self.master
        four.maxLength = 0
        #expect(SyncDaemons.complete(four, mtu: 1500).maxLength == 1472)
    }
}
