import CLVSShim
import Foundation
import LVSControl
import LVSCore
import LVSDataPlane
import Logging
import ServiceLifecycle
import LVSModel
import LVSSystem
import IPVSAdm
import KeepalivedConfig
import LVSHealth

/// lvsd's settings, as its command line gives them (see `lvsd --help` for each one's meaning).
public struct DaemonOptions: Sendable {
    public var interfaces: [String] = []
    public var socket: String = "/run/lvsd/lvsd.sock"
    public var config: String?
    public var markRules: [String] = []
    public var maxConnections: Int = 4 << 20
    public var dropEntry: Int = 1
    public var dropPacket: Int = 0
    public var secureTcp: Int = 1
    public var amemthresh: Int = 10
    public var amDroprate: Int = 10
    public var secureTcpTimeout: Int = 3
    public var logLevel: String = "info"
    public var metrics: String?
    public var workers: Int?
    public var noArp = false
    public var noKernelGuard = false
    public var dataplane: String = "auto"
    public var xskMode: String = "auto"
    public var pollSpinUs: Int = 200
    public var xdpObject: String?
    /// sysctl sync_refresh_period (seconds) and sync_retries; see `validatedSyncSettings`.
    public var syncRefreshPeriod: Int = 0
    public var syncRetries: Int = 0
    /// `--settings`: a sysctl.conf-style file of run-time settings; `--set-sysctl NAME=VALUE`
    /// after it (see `sysctlAssignments`).
    public var settingsFile: String?
    public var setSysctl: [String] = []
    /// The restart state file (`--state-file`); nil: the default beside the socket (`statePath`); "": none.
    public var stateFile: String?
    /// `--restart-guard`: a stop leaves the nftables guard for the next lvsd (docs/restart.md).
    public var restartGuard = false
    /// `--orphan-timeout` (seconds, 0: never): a dead lvsd's programs / guard let go after it.
    public var orphanTimeout = OrphanHeartbeat.defaultTimeout
    /// `--checkpoint-interval` (seconds, 0: off): the state file is also written while lvsd runs.
    public var checkpointInterval = StateCheckpoint.defaultInterval
    /// `--announce-table T` and `--announce-hold SECONDS` (see `validatedAnnouncement`).
    public var announceTable: Int?
    public var announceHold: Int = 5
    /// `--tunnel-route-refresh` (seconds): tunnel routes are also looked up this often (`TunnelRouteWatcher`).
    public var tunnelRouteRefresh: Int = 60

    public init() {}

    /// Where the connection table goes at a stop and comes from at a start: `--state-file`, else
    /// /run/lvsd/state with the default socket, else SOCKET.state (labs and tests, each with a
    /// socket of its own, never read each other's state); nil when "" turned it off.
    public var statePath: String? {
        if let stateFile { return stateFile.isEmpty ? nil : stateFile }
        return socket == "/run/lvsd/lvsd.sock" ? StateStore.defaultPath : socket + ".state"
    }

    /// The SYN-flood defence settings from the command line; a value out of range is an error naming the flag.
    func defenseConfiguration() throws -> DefenseConfiguration {
        func mode(_ value: Int, _ flag: String) throws -> DefenseMode {
            guard let m = DefenseMode(rawValue: UInt8(clamping: max(0, value))), value >= 0 else {
                throw ServerError("--\(flag) must be 0 (off), 1 or 2 (automatic) or 3 (always), got \(value)")
            }
            return m
        }
        var d = DefenseConfiguration()
        d.dropEntry = try mode(dropEntry, "drop-entry")
        d.dropPacket = try mode(dropPacket, "drop-packet")
        d.secureTCP = try mode(secureTcp, "secure-tcp")
        guard (1...99).contains(amemthresh) else { throw ServerError("--amemthresh must be a percentage from 1 to 99, got \(amemthresh)") }
        guard (2...1_000_000).contains(amDroprate) else { throw ServerError("--am-droprate must be from 2 to 1000000, got \(amDroprate)") }
        guard (1...60).contains(secureTcpTimeout) else { throw ServerError("--secure-tcp-timeout must be from 1 to 60 seconds, got \(secureTcpTimeout)") }
        d.amemthreshPercent = amemthresh
        d.amDropRate = amDroprate
        d.secureSynRecvTimeout = UInt32(secureTcpTimeout)
        return d
    }
}

/// lvsd's runtime: start-up in named steps (each one's attachments undone, in reverse, if a later
/// one fails or SIGTERM/SIGINT comes between them), then the running `DirectorService`.
///
/// `@unchecked Sendable`: the steps run one after another on the starting task; the running
/// service only reads what they built.
public final class LVSD: @unchecked Sendable {
    public let options: DaemonOptions
    let logger: Logger
    /// What start-up attached so far, undone in reverse if it stops part-way.
    let undo = StartupUndo()
    /// Builds the data plane instead of lvsd's own backends (tests: an in-memory one).
    var dataPlaneFactory: ((Director) throws -> any DataPlaneBackend)?
    /// systemd's notify socket (READY, RELOADING, STOPPING, WATCHDOG); tests give their own.
    var notifier = SystemdNotifier.fromEnvironment()

    // Built by the steps, in order.
    private(set) var rules: [MarkRule] = []
    public private(set) var engine: Engine!
    private(set) var keepalived: KeepalivedConfig?
    private(set) var director: Director!
    public private(set) var dataPlane: (any DataPlaneBackend)!
    private(set) var kind: DataPlaneKind = .afxdp
    /// The AF_XDP backend when it runs (afxdp, xdp): its attach modes are logged after start.
    private var afxdpPlane: AFXDPDataPlane<ShardWorker>?
    private var probeResult: String?
    private(set) var guardTable: NFTablesGuard?
    private(set) var server: ControlServer!
    private(set) var monitor: HealthMonitor?
    private(set) var metricsEndpoint: MetricsEndpoint?
    let vrrpHolder = VRRPHolder()
    var orphanHeartbeat: OrphanHeartbeat?
    /// `--announce-table`: the VIPs' routes (Announcer.swift).
    var announcer: Announcer?

    public init(options: DaemonOptions, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    /// lvsd's process: signal dispositions, logging, start-up, then the service until SIGTERM.
    /// Returns the exit status.
    public static func main(options: DaemonOptions) async -> Int32 {
        guard installSignalHandlers() else { return 1 }
        InPlaceRestart.recordExecutable()
        let level = Logger.Level(rawValue: options.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return DaemonLogHandler(inner: h)
        }
        let logger = Logger(label: "lvsd")
        let daemon = LVSD(options: options, logger: logger)
        do {
            let service = try await daemon.start()
            try await service.run()
            if InPlaceRestart.isRequested { return InPlaceRestart.execute(logger: logger) }
        } catch let stop as ProcessSignals.StopDuringStartup {
            logger.notice("lvsd stopped: \(stop); what it had attached was removed")
        } catch {
            logger.critical("lvsd cannot start: \(error)")
            return 1
        }
        return 0
    }

    /// lvsd's signal dispositions; false (and said on stderr) if the kernel refuses. Idempotent.
    /// lvsd's main.swift calls it first of all, before any other thread exists.
    @discardableResult
    public static func installSignalHandlers() -> Bool {
        // A client that goes away before its answer is written must not kill lvsd (EPIPE instead).
        signal(SIGPIPE, SIG_IGN)
        // First, before anything is attached: a SIGHUP or SIGTERM during start-up must not kill
        // lvsd with an XDP or tc program or the nftables table left behind.
        do { try ProcessSignals.install() } catch {
            FileHandle.standardError.write(Data("lvsd: \(error)\n".utf8))
            return false
        }
        return true
    }

    /// Runs the start-up steps; on success the returned service owns what they attached, on
    /// failure (an error, or SIGTERM/SIGINT seen at a checkpoint) it has all been undone.
    public func start() async throws -> DirectorService {
        defer { undo.run() }
        try buildEngine()
        try loadConfig()
        try ProcessSignals.checkpoint()
        try openDataPlane()
        prepareRestartAdoption()
        try ProcessSignals.checkpoint()
        try installVIPFilter()
        try startOrphanHeartbeat()
        try openAnnouncer()
        makeControlServer()
        try ProcessSignals.checkpoint()
        if keepalived == nil { restoreState() }
        try startDataPlane()
        startAnnouncer()
        try ProcessSignals.checkpoint()
        try await startHealthChecks()
        if keepalived != nil { restoreState() }
        handBackAdoptedFlows()
        try startVRRP()
        try startServers()
        let checkpoint = try startCheckpoint()
        try ProcessSignals.checkpoint()
        logReady()
        var service = DirectorService(director: director, dataPlane: dataPlane, server: server, guardTable: guardTable, logger: logger,
                                      monitor: monitor, configPath: keepalived == nil ? nil : options.config, metrics: metricsEndpoint,
                                      vrrpHolder: vrrpHolder, notifier: notifier)
        service.statePath = options.statePath
        service.keepGuard = options.restartGuard
        service.orphanHeartbeat = orphanHeartbeat
        service.checkpoint = checkpoint
        service.announcer = announcer
        service.announceHold = options.announceHold
        if let keepalived { service.syncSetting = KeepalivedSyncSetting(keepalived.vrrp.lvsSyncDaemon) }
        let started = service
        server.reload = { await started.reload() }
        // The data plane forwards and the control socket listens: systemd may order what needs lvsd after it.
        notifier.ready(status: "forwarding on \(options.interfaces.joined(separator: ",")) (\(kind.rawValue))")
        notifier.startWatchdog()
        // Started: from here the service removes what was attached when it stops.
        undo.disarm()
        return started
    }

    /// Step 1: checks the options that need no I/O, builds the engine with its interfaces and
    /// fwmark rules.
    func buildEngine() throws {
        let o = options
        guard !o.interfaces.isEmpty else { throw ServerError("at least one --interface is required") }
        let sysctls = try o.sysctlAssignments()
        guard geteuid() == 0 else { throw ServerError("lvsd must run as root (packet sockets and nftables)") }
        rules = try o.markRules.map { try MarkRuleSyntax.parse($0) }
        var cfg = EngineConfiguration()
        guard o.maxConnections > 0 else { throw ServerError("--max-connections must be positive, got \(o.maxConnections)") }
        cfg.connectionCapacity = o.maxConnections
        (cfg.syncRefreshPeriod, cfg.syncRetries) = try o.validatedSyncSettings()
        cfg.answerNeighbourRequests = !o.noArp
        cfg.defense = try o.defenseConfiguration()
        for a in sysctls { cfg.apply(a) }
        // Secret per run: the bucket hash keys and the random generator's seed (see EngineConfiguration).
        let random = try Self.randomWords(3)
        cfg.hashKey = SipHashKey(k0: random[0], k1: random[1])
        cfg.seed = random[2]
        let engine = Engine(configuration: cfg)
        let infos = try o.interfaces.map { try InterfaceInfo.lookup($0) }
        engine.setInterfaces(infos.map { i in
            EngineInterface(index: i.index, name: i.name, mac: i.mac,
                            addresses: i.ipv4.map { ($0, Self.prefix(of: $0, on: i.name)) } + i.ipv6.map { ($0, 64) })
        })
        engine.setMarkRules(rules)
        self.engine = engine
    }

    /// Step 2: `--config`: an ipvsadm rules file is applied now; a keepalived.conf is read (its
    /// virtual servers are applied by the health monitor, `startHealthChecks`).
    func loadConfig() throws {
        guard let config = options.config else { return }
        switch try ConfigFormat.detect(path: config) {
        case .ipvsadmRules:
            try Self.load(rulesFile: config, into: engine, now: monotonicNanoseconds())
            logger.info("rules loaded", metadata: ["file": "\(config)", "services": "\(engine.snapshot().services.count)"])
        case .keepalived:
            keepalived = try Self.loadKeepalived(config, logger: logger)
            if let vrrp = keepalived?.vrrp { manageVRRPAddresses(vrrp) }
        }
    }

    /// Step 3: the director and its data plane (`--dataplane`, probing for `auto`), not started.
    func openDataPlane() throws {
        let o = options
        let probing = o.dataplane == "auto"
        guard probing || DataPlaneKind(rawValue: o.dataplane) != nil else {
            throw ServerError("unsupported --dataplane '\(o.dataplane)' (supported: auto, \(DataPlaneKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard let socketMode = AFXDPSocketMode(rawValue: o.xskMode) else {
            throw ServerError("unsupported --xsk-mode '\(o.xskMode)' (supported: \(AFXDPSocketMode.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard (0...100_000).contains(o.pollSpinUs) else {
            throw ServerError("--poll-spin-us must be from 0 to 100000, got \(o.pollSpinUs)")
        }
        let spin = UInt64(o.pollSpinUs) * 1000
        let director = try Director(engine: engine, logger: logger)
        self.director = director
        let tunnelRoutes = try TunnelRouteWatcher.make(engine: engine, logger: logger, refreshSeconds: o.tunnelRouteRefresh)
        tunnelRoutes.start()
        undo.add { tunnelRoutes.stop() }
        // The workers hold the director unowned: it must outlive them, so the undo steps (which
        // stop them first) keep it until they have all run.
        undo.add { withExtendedLifetime(director) {} }
        if let workers = o.workers, workers < 1 { throw ServerError("--workers must be at least 1, got \(workers)") }
        director.interfaceNames = o.interfaces
        director.requestedWorkers = o.workers
        if let factory = dataPlaneFactory {
            let plane = try factory(director)
            undo.add { plane.stop() }
            dataPlane = plane
            director.dataPlane = plane
            kind = DataPlaneKind(rawValue: plane.kindName) ?? .afpacket
            return
        }
        kind = DataPlaneKind(rawValue: o.dataplane) ?? .afxdp
        if probing {
            // The default: AF_XDP when the XDP program loads and attaches natively everywhere
            // (generic XDP is slower than packet sockets), else AF_PACKET. Never xdp: its XDP_TX
            // on veth needs a peer setting lvsd cannot verify (see checkXDPTransmit).
            // (Also AF_PACKET when the --fwmark rules do not fit the BPF programs' trie.)
            do {
                _ = try XDPMarkMap.entries(for: rules)
                let plane = try Self.makeAFXDP(director: director, object: Self.bpfObject(o.xdpObject), socketMode: socketMode,
                                               allowGeneric: false, spin: spin, noARP: o.noArp)
                undo.add { plane.stop() }
                try plane.attach()
                probeResult = "auto: afxdp (native XDP attached on every interface)"
                director.prebuiltPlane = plane
            } catch {
                director.resetWorkers()
                kind = .afpacket
                probeResult = "auto: afpacket (afxdp not available: \(error))"
            }
            logger.notice("data plane chosen by probing", metadata: ["dataplane": "\(kind.rawValue)", "probe": "\(probeResult!)"])
        }
        let dataPlane: any DataPlaneBackend
        switch kind {
        case .afpacket:
            var dpConfig = DataPlaneConfiguration(interfaces: o.interfaces, workerCount: o.workers)
            dpConfig.tickInterval = 10_000_000
            dpConfig.spinNanoseconds = spin
            dataPlane = try DataPlane<ShardWorker>(configuration: dpConfig) { director.makeWorker($0) }
        case .afxdp, .xdp:
            let plane: AFXDPDataPlane<ShardWorker>
            if let prebuilt = director.prebuiltPlane {
                plane = prebuilt
                director.prebuiltPlane = nil
            } else {
                plane = try Self.makeAFXDP(director: director, object: Self.bpfObject(o.xdpObject), socketMode: socketMode,
                                           allowGeneric: true, spin: spin, noARP: o.noArp)
            }
            if let workers = o.workers, workers > plane.workers.count {
                logger.notice("afxdp: \(plane.workers.count) worker(s), not \(workers): each worker owns whole receive queues",
                              metadata: ["queues": "\(plane.queueCounts)"])
            }
            if kind == .xdp { director.enableFastPath(plane.connMap, kind: "xdp") }
            afxdpPlane = plane
            dataPlane = plane
        case .tc:
            var dpConfig = DataPlaneConfiguration(interfaces: o.interfaces, workerCount: o.workers)
            dpConfig.tickInterval = 10_000_000
            dpConfig.spinNanoseconds = spin
            let plane = try TCDataPlane<ShardWorker>(configuration: dpConfig, object: Self.bpfObject(o.xdpObject), noARP: o.noArp) { director.makeWorker($0) }
            director.enableFastPath(plane.connMap, kind: "tc")
            dataPlane = plane
        }
        undo.add { dataPlane.stop() }
        self.dataPlane = dataPlane
        director.dataPlane = dataPlane
        // The BPF programs learn which VIPs VRRP manages before anything is attached.
        if let vrrp = keepalived?.vrrp, !vrrp.isEmpty { try director.setManagedAddresses(Self.vrrpAddresses(vrrp)) }
    }

    /// Step 4: keeps the director's kernel off VIP traffic: the nftables guard (afpacket), else
    /// the BPF programs' VIP and fwmark maps.
    func installVIPFilter() throws {
        let rules = self.rules, logger = self.logger
        for r in rules { logger.info("fwmark rule", metadata: ["rule": "\(MarkRuleSyntax.format(r))"]) }
        if !dataPlane.filtersVIPTraffic {
            guardTable = options.noKernelGuard ? nil : try NFTablesGuard(interfaces: options.interfaces, vips: Self.vipMatches(engine.snapshot(), rules),
                                                                         marks: Self.activeMarkRules(engine.snapshot(), rules),
                                                                         orphanTimeoutMs: try options.orphanTimeoutMs())
            // After our own is in place: a guard a previous lvsd left (--restart-guard) keeps the
            // kernel off the VIPs until this one guards them.
            (try? NFTablesGuard.removeStale())?.forEach { logger.info("removed stale nftables table", metadata: ["table": "\($0)"]) }
            if let guardTable {
                undo.add {
                    do { try guardTable.remove() } catch { logger.error("cannot remove nftables guard: \(error)") }
                }
            }
        } else {
            // Every rule must fit the programs' fwmark trie, whichever services come later.
            do { _ = try XDPMarkMap.entries(for: rules) } catch { throw ServerError("--fwmark with --dataplane \(kind.rawValue): \(error)") }
            try dataPlane.updateVIPs(Self.vipMatches(engine.snapshot(), rules))
            try dataPlane.updateMarkRules(Self.activeMarkRules(engine.snapshot(), rules))
        }
    }

    /// Step 5: the control server (not listening yet); a configuration change keeps the kernel
    /// guard / the VIP maps in step with the services.
    func makeControlServer() {
        let director = self.director!, dataPlane = self.dataPlane!, guardTable = self.guardTable
        let rules = self.rules, logger = self.logger, kind = self.kind, announcer = self.announcer
        let guardLock = NSLock()
        server = ControlServer(path: options.socket, director: director, logger: logger) { [guardTable] in
            announcer?.changed()
            // Keep the kernel guard / the XDP VIP map in step with the services (off the packet path).
            guardLock.lock(); defer { guardLock.unlock() }
            guard case let .snapshot(s) = director.execute(.snapshot) else { return }
            do {
                if let guardTable { try guardTable.update(vips: Self.vipMatches(s, rules), marks: Self.activeMarkRules(s, rules)) }
                if guardTable == nil {
                    try dataPlane.updateVIPs(Self.vipMatches(s, rules))
                    try dataPlane.updateMarkRules(Self.activeMarkRules(s, rules))
                }
            } catch {
                logger.error("cannot update the VIP filter (\(kind.rawValue)): \(error)")
            }
        }
    }

    /// Step 5b: the previous lvsd's connections and templates (`StateStore`), bound to the services
    /// configured now: before the workers run with an ipvsadm rules file; with a keepalived.conf,
    /// right after the health monitor has added its virtual servers (docs/restart.md).
    func restoreState() {
        guard let path = options.statePath else { return }
        StateStore.load(engine, from: path, now: monotonicNanoseconds(), logger: logger)
    }

    /// Step 6: the workers run (BPF programs attached first); the status lines say what runs.
    func startDataPlane() throws {
        try dataPlane.start()
        try ProcessSignals.checkpoint()
        if let plane = afxdpPlane {
            for (info, mode) in zip(plane.interfaces, plane.modes) where mode == .generic {
                logger.warning("afxdp: native XDP attach failed on \(info.name); running in generic (skb) mode, slower",
                               metadata: ["interface": "\(info.name)"])
            }
            logger.info("afxdp: XDP program attached", metadata: ["object": "\(plane.configuration.object.name)", "interfaces": "\(plane.summary)"])
        }
        director.dataplaneStatus = dataPlane.statusLines
        if kind == .xdp, let plane = afxdpPlane {
            director.dataplaneStatus[0] = "data plane: xdp (established connections forwarded in XDP; the rest via AF_XDP sockets; \(plane.summary))"
            Self.checkXDPTransmit(plane.interfaces.map(\.name), logger: logger)
        }
        if let orphanHeartbeat { director.dataplaneStatus.append(orphanHeartbeat.statusLine) }
        if let probeResult { director.dataplaneStatus.insert("data plane chosen by probing: \(probeResult)", at: 1) }
        let pollSpinUs = options.pollSpinUs
        director.dataplaneStatus.append(pollSpinUs == 0 ? "poll spin: off (workers sleep in poll(2) at once)" : "poll spin: \(pollSpinUs) µs (after traffic, workers check their rings, yielding the CPU, before they sleep in poll(2))")
    }

    /// Step 7: keepalived.conf's virtual servers and their health checks.
    func startHealthChecks() async throws {
        guard let keepalived else { return }
        let server = self.server!, logger = self.logger, director = self.director!
        // The monitor sends its changes in batches: the guard follows once per batch.
        let backend = ChangeNotifyingBackend(execute: { director.execute($0) }) { server.notifyChange() }
        let m = HealthMonitor(config: keepalived, backend: backend, log: { logger.log($0) })
        await seedCheckerStates(m)
        await m.start()
        monitor = m
        try ProcessSignals.checkpoint()
        logger.info("keepalived.conf applied; health checks running", metadata: [
            "file": "\(options.config ?? "")", "virtual_servers": "\(keepalived.virtualServers.count)"])
    }

    /// Step 8: the metrics endpoint (`--metrics`) and the control socket listen.
    func startServers() throws {
        if let metrics = options.metrics {
            let endpoint = try MetricsEndpoint(address: metrics, director: director, logger: logger)
            if let monitor, let keepalived {
                endpoint.healthState = {
                    var out: [(service: String, destination: String, up: Bool)] = []
                    for vs in keepalived.virtualServers {
                        for rs in vs.realServers {
                            guard let up = await monitor.isAlive(vs.address, proto: vs.proto, realServer: rs.address, port: rs.port) else { continue }
                            out.append(("\(vs.proto.listName) \(vs.address)", "\(rs.address.bracketed):\(rs.port)", up))
                        }
                    }
                    return out
                }
            }
            if keepalived != nil {
                let holder = vrrpHolder
                endpoint.vrrpStatus = { holder.current?.status }
            }
            if let announcer { endpoint.announcements = { announcer.snapshot } }
            try endpoint.start()
            undo.add { endpoint.stop() }
            metricsEndpoint = endpoint
        }
        let server = self.server!
        // Before the socket listens: a client's status request reads them.
        director.serverCounters = [server.counters] + (metricsEndpoint.map { [$0.serverCounters] } ?? [])
        try server.start()
        undo.add { server.stop() }
    }

    private func logReady() {
        let o = options
        logger.info("lvsd ready", metadata: [
            "interfaces": "\(o.interfaces.joined(separator: ","))", "socket": "\(o.socket)", "dataplane": "\(kind.rawValue)",
            "workers": "\(dataPlane.workerCount)", "max_connections": "\(o.maxConnections)",
            "defense": "drop_entry=\(o.dropEntry) drop_packet=\(o.dropPacket) secure_tcp=\(o.secureTcp) amemthresh=\(o.amemthresh)%",
            "kernel_guard": "\(kind == .tc ? "tc program (PACKET_OTHERHOST)" : kind != .afpacket ? "XDP redirect" : o.noKernelGuard ? "off" : "nftables netdev ingress")",
        ])
    }

    /// `count` random 64-bit words from getrandom(2), which blocks only until the kernel's pool
    /// is initialised at boot.
    static func randomWords(_ count: Int) throws -> [UInt64] {
        var words = [UInt64](repeating: 0, count: count)
        try words.withUnsafeMutableBytes { buffer in
            var filled = 0
            do {
                while filled < buffer.count {
                    filled += try syscall("getrandom") { getrandom(buffer.baseAddress! + filled, buffer.count - filled, 0) }
                }
            } catch {
                throw ServerError("getrandom(2) failed: \(error)")
            }
        }
        return words
    }

    /// The AF_XDP data plane with lvsd's settings (not started).
    static func makeAFXDP(director: Director, object: BPFObject, socketMode: AFXDPSocketMode, allowGeneric: Bool,
                          spin: UInt64, noARP: Bool) throws -> AFXDPDataPlane<ShardWorker> {
        var xConfig = AFXDPConfiguration(interfaces: director.interfaceNames, object: object, workerCount: director.requestedWorkers)
        xConfig.tickInterval = 10_000_000
        xConfig.allowGenericMode = allowGeneric
        xConfig.socket.mode = socketMode
        xConfig.spinNanoseconds = spin
        xConfig.noARP = noARP
        return try AFXDPDataPlane<ShardWorker>(configuration: xConfig) { director.makeWorker($0) }
    }

    /// The BPF object: the file given with --xdp-object, else the one built into lvsd.
    static func bpfObject(_ explicit: String?) throws -> BPFObject {
        guard let explicit else { return .builtIn }
        do {
            return try BPFObject(contentsOf: explicit)
        } catch {
            throw ServerError("--xdp-object \(explicit): \(error)")
        }
    }

    /// The prefix length of an IPv4 address on an interface (from `ip -o addr`), /24 when unknown.
    static func prefix(of address: IPAddress, on interface: String) -> Int {
        var ifap: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&ifap) == 0 else { return 24 }
        defer { freeifaddrs(ifap) }
        var p = ifap
        while let a = p {
            defer { p = a.pointee.ifa_next }
            guard String(cString: a.pointee.ifa_name) == interface, let sa = a.pointee.ifa_addr,
                  sa.pointee.sa_family == sa_family_t(AF_INET), let nm = a.pointee.ifa_netmask else { continue }
            let addr = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
            guard IPAddress(ipv4: addr) == address else { continue }
            let mask = nm.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
            return mask.nonzeroBitCount
        }
        return 24
    }

    /// What the kernel must not see: every service VIP (port 0 = all ports) and fwmark rule targets.
    static func vipMatches(_ s: TableSnapshot, _ rules: [MarkRule]) -> [VIPMatch] {
        var out = Set<VIPMatch>()
        for svc in s.services {
            if svc.key.isFwmark {
                for r in rules where r.mark == svc.key.fwmark && r.prefixLength == (r.destination.isIPv4 ? 32 : 128) {
                    out.insert(VIPMatch(address: r.destination, proto: r.proto?.rawValue ?? 6, port: r.portLow == r.portHigh ? r.portLow : 0))
                }
            } else {
                out.insert(VIPMatch(address: svc.key.address, proto: svc.key.proto.rawValue, port: svc.key.port))
            }
        }
        return out.sorted { $0.description < $1.description }
    }

    /// The fwmark rules whose mark has a service of the rule's family (what the BPF programs must
    /// hand to lvsd).
    static func activeMarkRules(_ s: TableSnapshot, _ rules: [MarkRule]) -> [MarkRule] {
        let services = Set(s.services.filter { $0.key.isFwmark }.map { ServiceKey(fwmark: $0.key.fwmark, ipv6: $0.key.isIPv6) })
        return rules.filter { services.contains(ServiceKey(fwmark: $0.mark, ipv6: !$0.destination.isIPv4)) }
    }

    /// Reads keepalived.conf, logging its diagnostics; errors (file and line named) refuse it.
    static func loadKeepalived(_ path: String, logger: Logger) throws -> KeepalivedConfig {
        let (config, diagnostics) = try KeepalivedLoader.load(path: path)
        for d in diagnostics {
            if d.severity == .error { logger.error("\(d)") } else { logger.warning("\(d)") }
        }
        if let first = diagnostics.first(where: { $0.severity == .error }) {
            throw ServerError("\(first) (and \(diagnostics.filter { $0.severity == .error }.count - 1) more errors); nothing applied")
        }
        return config
    }

    /// Applies a rules file: ipvsadm-save format, one ipvsadm command per line (`#` comments allowed).
    /// Every line goes through lvsadm's own parser, so errors read exactly as ipvsadm's.
    static func load(rulesFile path: String, into engine: Engine, now: UInt64) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ServerError("cannot read config file \(path)")
        }
        var errors = ""
        let io = IPVSAdmIO(writeOut: { _ in }, writeErr: { errors += $0 }, readLine: { nil })
        let executor = IPVSAdmExecutor(backend: EngineBackend(engine: engine, now: { now }), io: io, resolver: NumericOnlyResolver())
        var lines: [(number: Int, words: [String])] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            lines.append((n + 1, line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init).filter { $0 != "ipvsadm" }))
        }
        // The changes go to the engine in batches; the first failing line stops the load.
        if let failed = executor.runStoppingAtFailure(lines.map(\.words), program: "lvsd") {
            throw ServerError("\(path):\(lines[failed.line].number): \(errors.trimmingCharacters(in: .whitespacesAndNewlines)) (exit \(failed.code))")
        }
    }
}

/// Runs until SIGTERM/SIGINT, then stops the data plane and removes what lvsd installed.
/// SIGHUP re-reads keepalived.conf and applies only the difference; one that came during
/// start-up is applied as soon as lvsd runs (before a SIGTERM that came after it).
///
/// `@unchecked Sendable`: every field is a constant; the two that are not Sendable,
/// `dataPlane` and `guardTable` (LVSDataPlane's classes), are used only by `shutdown`, once, on
/// the service's task after start-up has finished with them.
public struct DirectorService: Service, @unchecked Sendable {
    let director: Director
    let dataPlane: any DataPlaneBackend
    let server: ControlServer
    let guardTable: NFTablesGuard?
    let logger: Logger
    let monitor: HealthMonitor?
    let configPath: String?
    let metrics: MetricsEndpoint?
    /// The VRRP speaker (none until a keepalived.conf brings a vrrp_instance, at start or reload).
    let vrrpHolder: VRRPHolder
    var vrrp: VRRPService? { vrrpHolder.current }
    /// keepalived.conf's `lvs_sync_daemon` as last applied (a reload that changes it restarts them).
    var syncSetting: KeepalivedSyncSetting? = nil
    /// Told RELOADING/READY around a reload and STOPPING at the stop (nil: no systemd).
    var notifier: SystemdNotifier? = nil
    /// Where `shutdown` saves the connection table (nil: nowhere).
    var statePath: String?
    /// Leave the nftables guard for the next lvsd (`--restart-guard`).
    var keepGuard = false
    /// Stopped first at a stop: the leftovers (a kept guard, pinned programs) expire after the timeout.
    var orphanHeartbeat: OrphanHeartbeat?
    /// The periodic state checkpoint, stopped before the state is saved at the stop.
    var checkpoint: StateCheckpoint?
    /// The VIPs' routes (`--announce-table`), withdrawn first at a stop, then `announceHold` seconds of forwarding.
    var announcer: Announcer?
    var announceHold = 0

    /// Re-reads the configuration; on any error the running configuration stays as it is.
    /// systemd hears RELOADING=1 before and READY=1 after, whatever the outcome.
    func reload() async -> String {
        notifier?.reloading()
        defer { notifier?.ready(status: "reloaded") }
        guard let monitor, let configPath else {
            logger.warning("reload: only a keepalived.conf given with --config can be reloaded")
            return "lvsd: nothing to reload (start lvsd with --config keepalived.conf)\n"
        }
        do {
            let config = try LVSD.loadKeepalived(configPath, logger: logger)
            let vrrpReload = try prepareVRRPReload(config)   // LVSD+VRRP.swift
            try KeepalivedSyncSetting.check(config.vrrp.lvsSyncDaemon)
            await monitor.reload(config)
            let vrrpAnswer = applyVRRPReload(vrrpReload)
            let syncAnswer = syncSetting?.apply(config.vrrp.lvsSyncDaemon, director: director, logger: logger) ?? ""
            logger.info("configuration reloaded", metadata: ["file": "\(configPath)"])
            return "lvsd: reloaded \(configPath)\n" + vrrpAnswer + syncAnswer
        } catch {
            logger.error("reload failed, running configuration kept: \(error)")
            return "lvsd: reload failed, running configuration kept: \(error)\n"
        }
    }

    public func run() async throws {
        let signals = ProcessSignals.events()
        /// Applies what the signals asked for; true when lvsd must stop.
        func handleSignals() async -> Bool {
            if ProcessSignals.takeReload() {
                logger.info("SIGHUP: reloading")
                _ = await reload()
            }
            if let s = ProcessSignals.stopSignal {
                logger.info("\(ProcessSignals.name(s)): stopping")
                return true
            }
            return false
        }
        if !(await handleSignals()) {
            for await _ in signals where await handleSignals() { break }
        }
        await shutdown()
    }

    /// Stops the health checks, the servers, the sync daemons and the data plane, and removes
    /// the nftables guard.
    public func shutdown() async {
        logger.info("lvsd stopping")
        notifier?.stopping()
        notifier?.stopWatchdog()
        checkpoint?.stop()
        let stopStart = monotonicNanoseconds()
        func elapsedMs() -> String { "\((monotonicNanoseconds() - stopStart) / 1_000_000)" }
        // Withdraw, keep forwarding while the routers converge, then stop (LVSD+Announce.swift).
        // The heartbeat goes on during the hold: lvsd still forwards, its programs must not let go.
        await withdrawAndHold()
        orphanHeartbeat?.stop()
        // First, as keepalived does: a MASTER's priority-0 advert lets the backup take over at once.
        vrrp?.stop()
        await monitor?.stop()
        metrics?.stop()
        server.stop()
        director.sync.stopAll()
        // `lvsadm daemon restart`: what --restart-guard keeps stays, whatever the option says.
        let keepGuard = self.keepGuard || InPlaceRestart.isRequested
        if keepGuard { LVSD.keepProgramsAtStop(dataPlane) }
        logger.debug("stopping the data plane", metadata: ["after_ms": "\(elapsedMs())"])
        dataPlane.stop()
        announcer?.stop()
        logger.debug("data plane stopped", metadata: ["after_ms": "\(elapsedMs())"])
        switch dataPlane.kindName {
        case "afxdp": logger.info(keepGuard ? "afxdp: XDP programs left attached for the next lvsd (--restart-guard)" : "afxdp: XDP programs detached")
        case "tc": logger.info(keepGuard ? "tc: tc programs left attached for the next lvsd (--restart-guard)" : "tc: tc programs detached")
        default: break
        }
        // The workers have stopped: the table no longer changes.
        if let statePath {
            let checkers = await monitor?.carriedCheckerStates().map { CarriedCheckerState(label: $0.label, up: $0.up) } ?? []
            StateStore.save(director.engine, to: statePath, now: monotonicNanoseconds(), logger: logger, checkers: checkers)
        }
        if keepGuard, let guardTable {
            logger.notice("nftables guard left for the next lvsd (--restart-guard)", metadata: ["table": "\(guardTable.table)"])
        } else {
            do { try guardTable?.remove() } catch { logger.error("cannot remove nftables guard: \(error)") }
        }
        logger.info("lvsd stopped", metadata: ["stop_ms": "\(elapsedMs())"])
    }
}

/// The packet I/O backends lvsd can run.
enum DataPlaneKind: String, CaseIterable {
    case afpacket, afxdp, xdp, tc
}

extension LVSD {
    /// XDP_TX out of a veth is delivered only if the peer receives in NAPI mode (an XDP program
    /// there, or GRO on; on kernel 6.18 GRO alone was measured not to suffice); otherwise the fast
    /// path's frames are silently dropped. Say what can be known from here.
    static func checkXDPTransmit(_ interfaces: [String], logger: Logger) {
        let how = "attach an XDP program to the peer (bpf/xdp_pass.o) and turn GRO on there (`ethtool -K PEER gro on`)"
        for name in interfaces {
            switch XDPTransmitCheck.peerState(of: name) {
            case .notVeth:
                break
            case .peerGROOn(let peer):
                logger.notice("xdp: veth peer \(peer) of \(name) has GRO on; if it has no XDP program, frames forwarded by XDP_TX may still be dropped: \(how)")
            case .peerGROOff(let peer):
                logger.warning("xdp: veth peer \(peer) of \(name) has GRO off: frames forwarded by XDP_TX are DROPPED unless it has an XDP program: \(how)",
                               metadata: ["interface": "\(name)", "peer": "\(peer)"])
            case .unverifiable:
                logger.warning("xdp: \(name) is a veth whose peer is in another network namespace; lvsd cannot verify it: frames forwarded by XDP_TX are delivered only if the peer receives in NAPI mode, else dropped: \(how)",
                               metadata: ["interface": "\(name)"])
            }
        }
    }
}

/// The undo steps of a start-up in progress, run in reverse order unless start-up completed.
/// Used by the starting task only (LVSD's steps, one after the other), hence not Sendable.
final class StartupUndo {
    private var steps: [() -> Void] = []
    private var armed = true

    func add(_ step: @escaping () -> Void) { steps.append(step) }
    /// Start-up completed: the running service owns the clean-up now.
    func disarm() { armed = false }

    func run() {
        guard armed else { return }
        armed = false
        for step in steps.reversed() { step() }
    }
}

/// lvsd's log lines, as before its code moved from the lvsd executable into LVSDaemon: the
/// daemon's own messages keep `[lvsd]` as their source (other modules keep theirs).
struct DaemonLogHandler: LogHandler {
    var inner: StreamLogHandler

    func log(event: LogEvent) {
        var e = event
        if e.source == "LVSDaemon" { e.source = "lvsd" }
        inner.log(event: e)
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }
}
