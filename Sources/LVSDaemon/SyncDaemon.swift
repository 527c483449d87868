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
import LVSSystem

/// The connection synchronisation daemons (`--start-daemon master|backup`): UDP over IPv4
/// multicast, one thread each, off the packet path. The master's thread sends the messages the
/// workers' ticks packed, and listens on the group for full-resync requests; the backup's thread
/// receives and applies them to the engine, and asks for the whole table when it starts. Both
/// may run at once (the kernel allows it): multicast loop is off, so neither sees its own.
final class SyncDaemons: Sendable {
    let engine: Engine
    let logger: Logger
    /// The running daemons' threads; starting and stopping hold the lock throughout.
    private let running = Mutex<Running>(Running())

    struct Running {
        var master: SyncThread?
        var backup: SyncThread?

        subscript(isMaster: Bool) -> SyncThread? {
            get { isMaster ? master : backup }
            set { if isMaster { master = newValue } else { backup = newValue } }
        }
    }

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
        // IP and UDP headers: 28 bytes over IPv4, 48 over IPv6.
        let headers = IPAddress(d.group).map { $0.isIPv4 ? 28 : 48 } ?? 28
        if d.maxLength == 0 {
            d.maxLength = d.role == "master" ? UInt32(1500 - headers) : UInt32(min(max(mtu, 1500), 65535) - headers)
        } else if d.role == "backup" {
            d.maxLength = max(1024, min(d.maxLength, UInt32(65535 - headers)))
        }
        return d
    }

    func start(_ request: SyncDaemonSnapshot) -> ControlResponse {
        running.withLock { start(request, &$0) }
    }

    private func start(_ request: SyncDaemonSnapshot, _ running: inout Running) -> ControlResponse {
        let isMaster = request.role == "master"
        guard isMaster || request.role == "backup" else { return .failed(.invalid) }
        if running[isMaster] != nil { return .failed(.daemonRunning) }
        let name = request.interface.isEmpty ? "eth0" : request.interface
        guard let info = try? InterfaceInfo.lookup(name) else {
            logger.error("sync daemon: no such interface", metadata: ["interface": "\(name)"])
            return .failed(.noDevice)
        }
        let config = Self.complete(request, mtu: info.mtu)
        guard let group = IPAddress(config.group), Self.isMulticast(group) else {
            logger.error("sync daemon: the group is not a multicast address", metadata: ["group": "\(config.group)"])
            return .failed(.invalid)
        }
        do {
            // Each daemon has a second socket: the master listens on the group for full-resync
            // requests, the backup sends its request to the group.
            let socket = try isMaster ? Self.senderSocket(info, config) : Self.receiverSocket(info, config, group: group)
            let other: Int32
            do {
                other = try isMaster ? Self.receiverSocket(info, config, group: group) : Self.senderSocket(info, config)
            } catch {
                close(socket)
                throw error
            }
            if let refused = attach(config, socket: socket, other: other, destination: Self.groupAddress(group, port: config.port, info), &running) { return refused }
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

    /// Runs the daemon of `config.role` on `socket` (taken over: closed when it stops), and on
    /// `other` (the master's listening socket, the backup's sending one; nil: `socket` does both).
    /// Both send to `destination`, or on the connected socket when nil. Under `running`'s lock.
    private func attach(_ config: SyncDaemonSnapshot, socket: Int32, other: Int32? = nil, destination: RawSocketAddress?,
                        _ running: inout Running) -> ControlResponse? {
        let isMaster = config.role == "master"
        let thread = SyncThread(socket: socket, other: other, destination: destination)
        do {
            if isMaster { try engine.startSyncMaster(config) } else { try engine.startSyncBackup(config) }
        } catch {
            close(socket)
            if let other { close(other) }
            return .failed(error)
        }
        if isMaster {
            thread.run(name: "lvsd-sync-master") { [engine] t in Self.sendLoop(t, engine: engine, destination: destination) }
        } else {
            let syncID = config.syncID
            thread.run(name: "lvsd-sync-backup") { [engine] t in
                // A backup that starts (or returns) asks the masters for their whole table.
                SyncIO.sendResyncRequest(socket: t.sendingSocket, to: destination, syncID: syncID)
                Self.receiveLoop(t, engine: engine)
            }
        }
        running[isMaster] = thread
        return nil
    }

    /// Starts a daemon on a socket made elsewhere (tests: one end of a socketpair), with the
    /// kernel's defaults for what `config` leaves out. `.ok`, or why not.
    func start(_ request: SyncDaemonSnapshot, socket: Int32, destination: RawSocketAddress? = nil) -> ControlResponse {
        running.withLock { running in
            guard request.role == "master" || request.role == "backup" else { close(socket); return .failed(.invalid) }
            if running[request.role == "master"] != nil { close(socket); return .failed(.daemonRunning) }
            return attach(Self.complete(request, mtu: 1500), socket: socket, destination: destination, &running) ?? .ok
        }
    }

    func stop(_ role: String) -> ControlResponse {
        running.withLock { running in
            guard role == "master" || role == "backup" else { return .failed(.invalid) }
            let isMaster = role == "master"
            guard let thread = running[isMaster] else { return .failed(.noDaemon) }
            running[isMaster] = nil
            if isMaster { try? engine.stopSyncMaster() } else { try? engine.stopSyncBackup() }
            thread.stop()
            logger.info("sync daemon stopped", metadata: ["role": "\(role)"])
            return .ok
        }
    }

    func stopAll() {
        _ = stop("master")
        _ = stop("backup")
    }

    /// Asks the peers' master daemons for their whole table (a full-resync request from the
    /// backup daemon), e.g. when VRRP makes this director a backup again. False when no backup
    /// daemon runs here or the request could not be sent.
    @discardableResult
    func requestFullResync() -> Bool {
        running.withLock { running in
            guard let t = running.backup, let syncID = engine.syncDaemons.backup?.syncID else { return false }
            return SyncIO.sendResyncRequest(socket: t.sendingSocket, to: t.destination, syncID: syncID)
        }
    }

    // MARK: Sockets

    /// 224.0.0.0/4 or ff00::/8 (the kernel takes an IPv4 or an IPv6 group).
    static func isMulticast(_ a: IPAddress) -> Bool {
        a.isIPv4 ? a.ipv4Value >> 28 == 0xE : a.words.0 >> 24 == 0xFF
    }

    /// The group and port to send to; an IPv6 group is scoped to the interface.
    static func groupAddress(_ group: IPAddress, port: UInt16, _ info: InterfaceInfo) -> RawSocketAddress {
        guard !group.isIPv4 else { return .ipv4(address: group.ipv4Value, port: port) }
        guard case var .ipv6(sa) = RawSocketAddress.ipv6(address: in6(group), port: port) else { fatalError("unreachable") }
        sa.sin6_scope_id = UInt32(info.index)
        return .ipv6(sa)
    }

    static func in6(_ a: IPAddress) -> in6_addr {
        var raw = in6_addr()
        withUnsafeMutableBytes(of: &raw) { a.store(to: $0.baseAddress!) }
        return raw
    }

    /// A UDP socket set up by `body`, or closed when `body` throws (a `SystemError` naming the call).
    private static func datagramSocket(ipv6: Bool = false, _ body: (Int32) throws -> Void) throws -> Int32 {
        let fd = try SocketSetup.open(family: ipv6 ? AF_INET6 : AF_INET, type: Int32(SOCK_DGRAM.rawValue),
                                      name: ipv6 ? "socket(AF_INET6, SOCK_DGRAM)" : "socket(AF_INET, SOCK_DGRAM)")
        do {
            try body(fd)
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    /// The sending socket: multicast out of the interface, TTL, loop off, DF off, bound to its address.
    static func senderSocket(_ info: InterfaceInfo, _ c: SyncDaemonSnapshot) throws -> Int32 {
        if let g = IPAddress(c.group), !g.isIPv4 {
            return try datagramSocket(ipv6: true) { fd in
                try SocketSetup.setOption(fd, Int32(IPPROTO_IPV6), IPV6_MULTICAST_IF, Int32(info.index), name: "IPV6_MULTICAST_IF")
                try SocketSetup.setOption(fd, Int32(IPPROTO_IPV6), IPV6_MULTICAST_HOPS, Int32(c.ttl), name: "IPV6_MULTICAST_HOPS")
                try SocketSetup.setOption(fd, Int32(IPPROTO_IPV6), IPV6_MULTICAST_LOOP, Int32(0), name: "IPV6_MULTICAST_LOOP")
                try SocketSetup.setOption(fd, Int32(IPPROTO_IPV6), IPV6_MTU_DISCOVER, Int32(IPV6_PMTUDISC_DONT), name: "IPV6_MTU_DISCOVER")
            }
        }
        return try datagramSocket { fd in
            var mreq = ip_mreqn()
            mreq.imr_ifindex = info.index
            if let a = info.ipv4.first { mreq.imr_address.s_addr = a.ipv4Value.bigEndian }
            try SocketSetup.setOption(fd, Int32(IPPROTO_IP), IP_MULTICAST_IF, mreq, name: "IP_MULTICAST_IF")
            try SocketSetup.setOption(fd, Int32(IPPROTO_IP), IP_MULTICAST_TTL, Int32(c.ttl), name: "IP_MULTICAST_TTL")
            try SocketSetup.setOption(fd, Int32(IPPROTO_IP), IP_MULTICAST_LOOP, Int32(0), name: "IP_MULTICAST_LOOP")
            try SocketSetup.setOption(fd, Int32(IPPROTO_IP), IP_MTU_DISCOVER, Int32(IP_PMTUDISC_DONT), name: "IP_MTU_DISCOVER")
            if let a = info.ipv4.first { try SocketSetup.bind(fd, to: .ipv4(address: a.ipv4Value, port: 0)) }
        }
    }

    /// The receiving socket: bound to the group and port on the interface, member of the group there.
    static func receiverSocket(_ info: InterfaceInfo, _ c: SyncDaemonSnapshot, group: IPAddress) throws -> Int32 {
        if !group.isIPv4 {
            return try datagramSocket(ipv6: true) { fd in
                try SocketSetup.setOption(fd, SOL_SOCKET, SO_REUSEADDR, Int32(1), name: "SO_REUSEADDR")
                try SocketSetup.setOption(fd, SOL_SOCKET, SO_BINDTODEVICE, string: info.name, name: "SO_BINDTODEVICE")
                try SocketSetup.setOption(fd, SOL_SOCKET, SO_RCVTIMEO, timeval(tv_sec: 0, tv_usec: 100_000), name: "SO_RCVTIMEO")
                try SocketSetup.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, Int32(1), name: "IPV6_V6ONLY")
                try SocketSetup.bind(fd, to: groupAddress(group, port: c.port, info))
                var mreq = ipv6_mreq()
                mreq.ipv6mr_multiaddr = in6(group)
                mreq.ipv6mr_interface = UInt32(info.index)
                _ = try syscall("setsockopt(IPV6_ADD_MEMBERSHIP)") {
                    withUnsafeBytes(of: &mreq) { setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_ADD_MEMBERSHIP, $0.baseAddress, socklen_t($0.count)) }
                }
            }
        }
        return try datagramSocket { fd in
            try SocketSetup.setOption(fd, SOL_SOCKET, SO_REUSEADDR, Int32(1), name: "SO_REUSEADDR")
            try SocketSetup.setOption(fd, SOL_SOCKET, SO_BINDTODEVICE, string: info.name, name: "SO_BINDTODEVICE")
            // Stop is noticed within 100 ms.
            try SocketSetup.setOption(fd, SOL_SOCKET, SO_RCVTIMEO, timeval(tv_sec: 0, tv_usec: 100_000), name: "SO_RCVTIMEO")
            try SocketSetup.bind(fd, to: .ipv4(address: group.ipv4Value, port: c.port))
            var mreq = ip_mreqn()
            mreq.imr_multiaddr.s_addr = group.ipv4Value.bigEndian
            mreq.imr_ifindex = info.index
            try SocketSetup.setOption(fd, Int32(IPPROTO_IP), IP_ADD_MEMBERSHIP, mreq, name: "IP_ADD_MEMBERSHIP")
        }
    }

    // MARK: Loops

    /// The master's thread: every 20 ms, the finished messages (and a full resync's next
    /// datagrams) go out; in between it waits for full-resync requests.
    static func sendLoop(_ t: SyncThread, engine: Engine, destination: RawSocketAddress?) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: SyncIO.maxDatagram, alignment: 8)
        defer { buffer.deallocate() }
        while !t.stopping {
            SyncIO.sendPending(engine, socket: t.socket, to: destination, now: monotonicNanoseconds())
            SyncIO.receiveRequests(engine, socket: t.listeningSocket, buffer: buffer, waitMilliseconds: SyncIO.sendIntervalMilliseconds)
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

/// One daemon thread and its sockets; `stop` waits until the thread has ended.
final class SyncThread: Sendable {
    let socket: Int32
    /// The master's listening socket, the backup's sending one (nil: `socket` does both).
    let other: Int32?
    /// Where both send (the group and port), or nil on connected sockets.
    let destination: RawSocketAddress?
    private let flag = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)

    init(socket: Int32, other: Int32? = nil, destination: RawSocketAddress? = nil) {
        self.socket = socket
        self.other = other
        self.destination = destination
    }

    var listeningSocket: Int32 { other ?? socket }
    var sendingSocket: Int32 { other ?? socket }

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
        if let other { close(other) }
    }
}

extension DaemonOptions {
    /// `--sync-refresh-period` and `--sync-retries` with the kernel's ranges (sync_refresh_period
    /// 0 to `SyncRule.maxRefreshPeriod` seconds, default 0; sync_retries 0 to 3, default 0); a
    /// value out of range is an error naming the option.
    public func validatedSyncSettings() throws -> (refreshPeriod: UInt32, retries: UInt8) {
        guard syncRefreshPeriod >= 0, syncRefreshPeriod <= Int(SyncRule.maxRefreshPeriod) else {
            throw ServerError("--sync-refresh-period must be from 0 to \(SyncRule.maxRefreshPeriod) seconds, got \(syncRefreshPeriod)")
        }
        guard syncRetries >= 0, syncRetries <= Int(SyncRule.maxRetries) else {
            throw ServerError("--sync-retries must be from 0 to \(SyncRule.maxRetries), got \(syncRetries)")
        }
        return (UInt32(syncRefreshPeriod), UInt8(syncRetries))
    }
}
