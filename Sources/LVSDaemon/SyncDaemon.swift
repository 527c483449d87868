import CLVSShim
import Dispatch
import Foundation
import Glibc
import LVSControl
import LVSCore
import LVSDataPlane
import Logging
import Synchronization
import LVSModel

/// The connection synchronisation daemons (`--start-daemon master|backup`): UDP over IPv4
/// multicast, one thread each, off the packet path. The master's thread sends the messages the
/// workers' ticks packed; the backup's thread receives and applies them to the engine.
final class SyncDaemons: @unchecked Sendable {
    let engine: Engine
    let logger: Logger
    private let lock = NSLock()
    private var master: SyncThread?
    private var backup: SyncThread?

    init(engine: Engine, logger: Logger) {
        self.engine = engine
        self.logger = logger
    }

    /// The kernel's defaults for what ipvsadm did not send.
    static func complete(_ c: SyncDaemonSnapshot, mtu: Int) -> SyncDaemonSnapshot {
        var d = c
        if d.interface.isEmpty { d.interface = "eth0" }
        if d.group.isEmpty { d.group = "224.0.0.81" }
        if d.port == 0 { d.port = SyncProtocol.defaultPort }
        if d.ttl == 0 { d.ttl = SyncProtocol.defaultTTL }
        if d.maxLength == 0 {
            d.maxLength = d.role == "master" ? UInt32(SyncProtocol.defaultMaxLength) : UInt32(min(max(mtu, 1500), 65535) - 28)
        } else if d.role == "backup" {
            d.maxLength = max(1024, min(d.maxLength, 65535 - 28))
        }
        return d
    }

    func start(_ request: SyncDaemonSnapshot) -> ControlResponse {
        lock.lock(); defer { lock.unlock() }
        let isMaster = request.role == "master"
        guard isMaster || request.role == "backup" else { return .failed(.invalid) }
        if (isMaster ? master : backup) != nil { return .failed(.daemonRunning) }
        let name = request.interface.isEmpty ? "eth0" : request.interface
        guard let info = try? InterfaceInfo.lookup(name) else {
            logger.error("sync daemon: no such interface", metadata: ["interface": "\(name)"])
            return .failed(.noDevice)
        }
        let config = Self.complete(request, mtu: info.mtu)
        guard let group = IPAddress(config.group), group.isIPv4, group.ipv4Value >> 28 == 0xE else {
            logger.error("sync daemon: only IPv4 multicast groups are supported", metadata: ["group": "\(config.group)"])
            return .failed(.invalid)
        }
        do {
            let socket = try isMaster ? Self.senderSocket(info, config) : Self.receiverSocket(info, config, group: group)
            if let refused = attach(config, socket: socket, destination: Self.sockaddr4(group.ipv4Value, config.port)) { return refused }
            logger.info("sync daemon started", metadata: [
                "role": "\(config.role)", "interface": "\(config.interface)", "syncid": "\(config.syncID)",
                "group": "\(config.group)", "port": "\(config.port)", "maxlen": "\(config.maxLength)",
            ])
            return .ok
        } catch {
            logger.error("sync daemon cannot start: \(error)", metadata: ["role": "\(config.role)"])
            return .failed(.invalid)
        }
    }

    /// Runs the daemon of `config.role` on `socket` (taken over: closed when it stops). The
    /// master sends to `destination`, or on the connected socket when nil. Under `lock`.
    private func attach(_ config: SyncDaemonSnapshot, socket: Int32, destination: sockaddr_in?) -> ControlResponse? {
        let isMaster = config.role == "master"
        let thread = SyncThread(socket: socket)
        do {
            if isMaster { try engine.startSyncMaster(config) } else { try engine.startSyncBackup(config) }
        } catch {
            close(socket)
            return .failed(error)
        }
        if isMaster {
            thread.run(name: "lvsd-sync-master") { [engine] t in Self.sendLoop(t, engine: engine, destination: destination) }
            master = thread
        } else {
            thread.run(name: "lvsd-sync-backup") { [engine] t in Self.receiveLoop(t, engine: engine) }
            backup = thread
        }
        return nil
    }

    /// Starts a daemon on a socket made elsewhere (tests: one end of a socketpair), with the
    /// kernel's defaults for what `config` leaves out. `.ok`, or why not.
    func start(_ request: SyncDaemonSnapshot, socket: Int32, destination: sockaddr_in? = nil) -> ControlResponse {
        lock.lock(); defer { lock.unlock() }
        guard request.role == "master" || request.role == "backup" else { close(socket); return .failed(.invalid) }
        if (request.role == "master" ? master : backup) != nil { close(socket); return .failed(.daemonRunning) }
        return attach(Self.complete(request, mtu: 1500), socket: socket, destination: destination) ?? .ok
    }

    func stop(_ role: String) -> ControlResponse {
        lock.lock(); defer { lock.unlock() }
        let thread: SyncThread?
        switch role {
        case "master":
            thread = master
            master = nil
            if thread != nil { try? engine.stopSyncMaster() }
        case "backup":
            thread = backup
            backup = nil
            if thread != nil { try? engine.stopSyncBackup() }
        default:
            return .failed(.invalid)
        }
        guard let thread else { return .failed(.noDaemon) }
        thread.stop()
        logger.info("sync daemon stopped", metadata: ["role": "\(role)"])
        return .ok
    }

    func stopAll() {
        _ = stop("master")
        _ = stop("backup")
    }

    // MARK: Sockets

    struct SocketError: Error, CustomStringConvertible {
        var description: String
    }

    static func check(_ rc: Int32, _ what: String) throws {
        if rc < 0 { throw SocketError(description: "\(what): \(String(cString: strerror(errno)))") }
    }

    static func setInt(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32, _ what: String) throws {
        var v = value
        try check(setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)), what)
    }

    static func sockaddr4(_ address: UInt32, _ port: UInt16) -> sockaddr_in {
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = port.bigEndian
        sa.sin_addr.s_addr = address.bigEndian
        return sa
    }

    static func bind4(_ fd: Int32, _ address: UInt32, _ port: UInt16) throws {
        var sa = sockaddr4(address, port)
        let rc = withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try check(rc, "bind")
    }

    /// The master's socket: multicast out of the interface, TTL, loop off, DF off, bound to its address.
    static func senderSocket(_ info: InterfaceInfo, _ c: SyncDaemonSnapshot) throws -> Int32 {
        let fd = Glibc.socket(AF_INET, 2 /* SOCK_DGRAM */ | clvs_sock_cloexec, 0)
        try check(fd, "socket(AF_INET, SOCK_DGRAM)")
        do {
            var mreq = ip_mreqn()
            mreq.imr_ifindex = info.index
            if let a = info.ipv4.first { mreq.imr_address.s_addr = a.ipv4Value.bigEndian }
            try check(setsockopt(fd, Int32(IPPROTO_IP), IP_MULTICAST_IF, &mreq, socklen_t(MemoryLayout<ip_mreqn>.size)), "IP_MULTICAST_IF")
            try setInt(fd, Int32(IPPROTO_IP), IP_MULTICAST_TTL, Int32(c.ttl), "IP_MULTICAST_TTL")
            try setInt(fd, Int32(IPPROTO_IP), IP_MULTICAST_LOOP, 0, "IP_MULTICAST_LOOP")
            try setInt(fd, Int32(IPPROTO_IP), IP_MTU_DISCOVER, Int32(IP_PMTUDISC_DONT), "IP_MTU_DISCOVER")
            if let a = info.ipv4.first { try bind4(fd, a.ipv4Value, 0) }
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    /// The backup's socket: bound to the group and port on the interface, member of the group there.
    static func receiverSocket(_ info: InterfaceInfo, _ c: SyncDaemonSnapshot, group: IPAddress) throws -> Int32 {
        let fd = Glibc.socket(AF_INET, 2 /* SOCK_DGRAM */ | clvs_sock_cloexec, 0)
        try check(fd, "socket(AF_INET, SOCK_DGRAM)")
        do {
            try setInt(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR")
            let rc = info.name.withCString { setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, $0, socklen_t(strlen($0) + 1)) }
            try check(rc, "SO_BINDTODEVICE")
            var tv = timeval(tv_sec: 0, tv_usec: 100_000) // stop is noticed within 100 ms
            try check(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size)), "SO_RCVTIMEO")
            try bind4(fd, group.ipv4Value, c.port)
            var mreq = ip_mreqn()
            mreq.imr_multiaddr.s_addr = group.ipv4Value.bigEndian
            mreq.imr_ifindex = info.index
            try check(setsockopt(fd, Int32(IPPROTO_IP), IP_ADD_MEMBERSHIP, &mreq, socklen_t(MemoryLayout<ip_mreqn>.size)), "IP_ADD_MEMBERSHIP")
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    // MARK: Loops

    /// The master's thread: every 20 ms, the finished messages go out.
    static func sendLoop(_ t: SyncThread, engine: Engine, destination: sockaddr_in?) {
        while !t.stopping {
            SyncIO.sendPending(engine, socket: t.socket, to: destination, now: monotonicNanoseconds())
            usleep(20_000)
        }
    }

    /// The backup's thread: applies each datagram; notices `stop` within `SyncIO.receiveWaitMilliseconds`.
    static func receiveLoop(_ t: SyncThread, engine: Engine) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: SyncIO.maxDatagram, alignment: 8)
        defer { buffer.deallocate() }
        while !t.stopping {
            _ = SyncIO.receiveOne(engine, socket: t.socket, buffer: buffer)
        }
    }
}

/// One daemon thread and its socket; `stop` waits until the thread has ended.
final class SyncThread: @unchecked Sendable {
    let socket: Int32
    private let flag = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)

    init(socket: Int32) { self.socket = socket }

    var stopping: Bool { flag.load(ordering: .relaxed) }

    func run(name: String, _ body: @escaping @Sendable (SyncThread) -> Void) {
        let thread = Thread { [self] in
            body(self)
            done.signal()
        }
        thread.name = name
        thread.start()
    }

    func stop() {
        flag.store(true, ordering: .relaxed)
        done.wait()
        close(socket)
    }
}
