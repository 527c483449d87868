import ArgumentParser
import CLVSShim
import Foundation
import LVSControl
import LVSCore
import LVSDataPlane
import Logging
import ServiceLifecycle

/// lvsd: the user-space IPVS Direct-Routing director.
@main
struct LVSD: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lvsd",
        abstract: "User-space Linux Virtual Server director (Direct Routing), driven by lvsadm/ipvsadm syntax.")

    @Option(name: .customLong("interface"), help: "Interface to load-balance on (repeatable).")
    var interfaces: [String] = []

    @Option(help: "Control socket path (lvsadm uses LVSD_SOCKET or this default).")
    var socket: String = "/run/lvsd/lvsd.sock"

    @Option(help: "keepalived.conf (virtual servers and health checks) or an ipvsadm-save rules file, applied at start; SIGHUP reloads it.")
    var config: String?

    @Option(name: [.customLong("check-config"), .customLong("config-test")], help: "Only validate FILE and exit (0 valid, 5 errors, 2 fatal).")
    var checkConfig: String?

    @Option(name: .customLong("fwmark"), help: "Firewall-mark rule DST[/LEN][,tcp|udp|sctp[,PORT[-PORT]]]=MARK (repeatable).")
    var markRules: [String] = []

    @Option(help: "Maximum connection entries (connections and persistence templates).")
    var maxConnections: Int = 4 << 20

    @Option(help: "SYN-flood defence drop_entry: 0 off, 1 or 2 automatic (engaged while fewer than --amemthresh % of a worker's connection entries are free), 3 always. Engaged, a new connection that finds the table full evicts a half-open (SYN_RECV) or finished (TIME_WAIT, CLOSE) TCP entry instead of being refused; never an ESTABLISHED one.")
    var dropEntry: Int = 1

    @Option(help: "SYN-flood defence drop_packet: 0 off, 1 or 2 automatic, 3 always. Engaged, one of every N new-connection packets is dropped (N = --am-droprate when 3; automatic: threshold / (threshold - free entries), so all at a full table).")
    var dropPacket: Int = 0

    @Option(help: "SYN-flood defence secure_tcp: 0 off, 1 or 2 automatic, 3 always. Engaged, a new TCP connection's SYN_RECV entry times out after --secure-tcp-timeout seconds instead of 60.")
    var secureTcp: Int = 1

    @Option(help: "The automatic defences engage while fewer than PERCENT % (1-99) of a worker's connection entries are free (the kernel: free memory below amemthresh).")
    var amemthresh: Int = 10

    @Option(help: "drop_packet 3 drops one of every N new-connection packets (2-1000000).")
    var amDroprate: Int = 10

    @Option(help: "SYN_RECV timeout in seconds (1-60) while secure_tcp is engaged.")
    var secureTcpTimeout: Int = 3

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(help: "Serve Prometheus metrics on ADDRESS:PORT (off by default), e.g. 127.0.0.1:9100.")
    var metrics: String?

    @Option(help: "Data-plane worker threads (default: the CPUs lvsd may run on).")
    var workers: Int?

    @Flag(help: "Do not answer ARP / neighbour solicitations for the VIPs nor announce them (a backup director, or the VIP owned by the kernel or VRRP).")
    var noArp = false

    @Flag(help: "Do not install the netdev-ingress nftables table that keeps the director's kernel off VIP traffic.")
    var noKernelGuard = false

    @Option(help: "Packet I/O: auto (afxdp where its XDP program loads and attaches natively on every interface, else afpacket), afpacket (packet sockets + nftables guard), afxdp (XDP program + AF_XDP sockets), xdp (afxdp, with established connections forwarded inside the XDP program) or tc (established connections forwarded by a tc ingress program, the rest through packet sockets).")
    var dataplane: String = "auto"

    @Option(help: "AF_XDP sockets (afxdp, xdp): auto (zero-copy where the driver has it, else copy), copy or zero-copy.")
    var xskMode: String = "auto"

    @Option(help: "After traffic, how long (µs) a worker keeps checking its rings, yielding the CPU between checks, before it sleeps in poll(2); saves a thread wake-up per request at light load. 0 = sleep at once (least CPU).")
    var pollSpinUs: Int = 200

    @Option(help: "A BPF object file for --dataplane afxdp/xdp/tc instead of the one built into lvsd (bpf/lvs_xdp.c, compiled by swift build).")
    var xdpObject: String?

    func run() async throws {
        // A client that goes away before its answer is written must not kill lvsd (EPIPE instead).
        signal(SIGPIPE, SIG_IGN)
        if let checkConfig { throw ExitCode(ConfigFormat.check(path: checkConfig)) }
        // First, before anything is attached: a SIGHUP or SIGTERM during start-up must not kill
        // lvsd with an XDP or tc program or the nftables table left behind.
        do { try ProcessSignals.install() } catch {
            FileHandle.standardError.write(Data("lvsd: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "lvsd")
        do {
            try await start(logger: logger)
        } catch let stop as ProcessSignals.StopDuringStartup {
            logger.notice("lvsd stopped: \(stop); what it had attached was removed")
        } catch {
            logger.critical("lvsd cannot start: \(error)")
            throw ExitCode(1)
        }
    }

    func start(logger: Logger) async throws {
        // What start-up attaches is undone, in reverse, if it stops part-way (an error, or
        // SIGTERM/SIGINT seen at one of the checkpoints between the steps).
        let undo = StartupUndo()
        defer { undo.run() }
        guard !interfaces.isEmpty else { throw ServerError("at least one --interface is required") }
        guard geteuid() == 0 else { throw ServerError("lvsd must run as root (packet sockets and nftables)") }
        let rules = try markRules.map { try MarkRuleSyntax.parse($0) }
        var cfg = EngineConfiguration()
        guard maxConnections > 0 else { throw ServerError("--max-connections must be positive, got \(maxConnections)") }
        cfg.connectionCapacity = maxConnections
        cfg.answerNeighbourRequests = !noArp
        cfg.defense = try defenseConfiguration()
        // Secret per run: the bucket hash keys and the random generator's seed (see EngineConfiguration).
        let random = try Self.randomWords(3)
        cfg.hashKey = SipHashKey(k0: random[0], k1: random[1])
        cfg.seed = random[2]
        let engine = Engine(configuration: cfg)
        let infos = try interfaces.map { try InterfaceInfo.lookup($0) }
        engine.setInterfaces(infos.map { i in
            EngineInterface(index: i.index, name: i.name, mac: i.mac,
                            addresses: i.ipv4.map { ($0, Self.prefix(of: $0, on: i.name)) } + i.ipv6.map { ($0, 64) })
        })
        engine.setMarkRules(rules)
        var keepalived: KeepalivedConfig?
        if let config {
            switch try ConfigFormat.detect(path: config) {
            case .ipvsadmRules:
                try Self.load(rulesFile: config, into: engine, now: monotonicNanoseconds())
                logger.info("rules loaded", metadata: ["file": "\(config)", "services": "\(engine.snapshot().services.count)"])
            case .keepalived:
                keepalived = try Self.loadKeepalived(config, logger: logger)
            }
        }
        try ProcessSignals.checkpoint()
        let probing = dataplane == "auto"
        guard probing || DataPlaneKind(rawValue: dataplane) != nil else {
            throw ServerError("unsupported --dataplane '\(dataplane)' (supported: auto, \(DataPlaneKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard let socketMode = AFXDPSocketMode(rawValue: xskMode) else {
            throw ServerError("unsupported --xsk-mode '\(xskMode)' (supported: \(AFXDPSocketMode.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard (0...100_000).contains(pollSpinUs) else {
            throw ServerError("--poll-spin-us must be from 0 to 100000, got \(pollSpinUs)")
        }
        let spin = UInt64(pollSpinUs) * 1000
        let director = try Director(engine: engine, logger: logger)
        // The workers hold the director unowned: it must outlive them, so the undo steps (which
        // stop them first) keep it until they have all run.
        undo.add { withExtendedLifetime(director) {} }
        if let workers, workers < 1 { throw ServerError("--workers must be at least 1, got \(workers)") }
        director.interfaceNames = interfaces
        director.requestedWorkers = workers
        var kind = DataPlaneKind(rawValue: dataplane) ?? .afxdp
        var probeResult: String?
        if probing {
            // The default: AF_XDP when the XDP program loads and attaches natively everywhere
            // (generic XDP is slower than packet sockets), else AF_PACKET. Never xdp: its XDP_TX
            // on veth needs a peer setting lvsd cannot verify (see checkXDPTransmit).
            // (Also AF_PACKET when the --fwmark rules do not fit the BPF programs' trie.)
            do {
                _ = try XDPMarkMap.entries(for: rules)
                let plane = try Self.makeAFXDP(director: director, object: Self.bpfObject(xdpObject), socketMode: socketMode,
                                               allowGeneric: false, spin: spin, noARP: noArp)
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
        let dataPlane: AnyDataPlane
        switch kind {
        case .afpacket:
            var dpConfig = DataPlaneConfiguration(interfaces: interfaces, workerCount: workers)
            dpConfig.tickInterval = 10_000_000
            dpConfig.spinNanoseconds = spin
            dataPlane = .afpacket(try DataPlane<ShardWorker>(configuration: dpConfig) { director.makeWorker($0) })
        case .afxdp, .xdp:
            let plane: AFXDPDataPlane<ShardWorker>
            if let prebuilt = director.prebuiltPlane {
                plane = prebuilt
                director.prebuiltPlane = nil
            } else {
                plane = try Self.makeAFXDP(director: director, object: Self.bpfObject(xdpObject), socketMode: socketMode,
                                           allowGeneric: true, spin: spin, noARP: noArp)
            }
            if let workers, workers > plane.workers.count {
                logger.notice("afxdp: \(plane.workers.count) worker(s), not \(workers): each worker owns whole receive queues",
                              metadata: ["queues": "\(plane.queueCounts)"])
            }
            if kind == .xdp {
                director.fastPathMap = plane.connMap
                for w in director.workers { w.fastPath = plane.connMap }
            }
            dataPlane = .afxdp(plane)
        case .tc:
            var dpConfig = DataPlaneConfiguration(interfaces: interfaces, workerCount: workers)
            dpConfig.tickInterval = 10_000_000
            dpConfig.spinNanoseconds = spin
            let plane = try TCDataPlane<ShardWorker>(configuration: dpConfig, object: Self.bpfObject(xdpObject), noARP: noArp) { director.makeWorker($0) }
            director.fastPathMap = plane.connMap
            director.fastPathKind = "tc"
            for w in director.workers { w.fastPath = plane.connMap }
            dataPlane = .tc(plane)
        }
        undo.add { dataPlane.stop() }
        try ProcessSignals.checkpoint()
        for r in rules { logger.info("fwmark rule", metadata: ["rule": "\(MarkRuleSyntax.format(r))"]) }

        var guardTable: NFTablesGuard?
        if case .afpacket = dataPlane {
            (try? NFTablesGuard.removeStale())?.forEach { logger.info("removed stale nftables table", metadata: ["table": "\($0)"]) }
            guardTable = noKernelGuard ? nil : try NFTablesGuard(interfaces: interfaces, vips: Self.vipMatches(engine.snapshot(), rules),
                                                                 marks: Self.activeMarkRules(engine.snapshot(), rules))
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
        let guardLock = NSLock()
        let server = ControlServer(path: socket, director: director, logger: logger) { [guardTable] in
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
        try ProcessSignals.checkpoint()
        try dataPlane.start()
        try ProcessSignals.checkpoint()
        if case let .afxdp(plane) = dataPlane {
            for (info, mode) in zip(plane.interfaces, plane.modes) where mode == .generic {
                logger.warning("afxdp: native XDP attach failed on \(info.name); running in generic (skb) mode, slower",
                               metadata: ["interface": "\(info.name)"])
            }
            logger.info("afxdp: XDP program attached", metadata: ["object": "\(plane.configuration.object.name)", "interfaces": "\(plane.summary)"])
        }
        director.dataplaneStatus = dataPlane.status
        if kind == .xdp, case let .afxdp(plane) = dataPlane {
            director.dataplaneStatus[0] = "data plane: xdp (established connections forwarded in XDP; the rest via AF_XDP sockets; \(plane.summary))"
            Self.checkXDPTransmit(plane.interfaces.map(\.name), logger: logger)
        }
        if let probeResult { director.dataplaneStatus.insert("data plane chosen by probing: \(probeResult)", at: 1) }
        director.dataplaneStatus.append(pollSpinUs == 0 ? "poll spin: off (workers sleep in poll(2) at once)" : "poll spin: \(pollSpinUs) µs (after traffic, workers check their rings, yielding the CPU, before they sleep in poll(2))")
        var monitor: HealthMonitor?
        if let keepalived {
            // The monitor sends its changes in batches: the guard follows once per batch.
            let backend = ChangeNotifyingBackend(execute: { director.execute($0) }) { server.notifyChange() }
            let m = HealthMonitor(config: keepalived, backend: backend, log: { logger.log($0) })
            await m.start()
            monitor = m
            try ProcessSignals.checkpoint()
            logger.info("keepalived.conf applied; health checks running", metadata: [
                "file": "\(config ?? "")", "virtual_servers": "\(keepalived.virtualServers.count)"])
        }
        var metricsEndpoint: MetricsEndpoint?
        if let metrics {
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
            try endpoint.start()
            undo.add { endpoint.stop() }
            metricsEndpoint = endpoint
        }
        try server.start()
        director.serverCounters = [server.counters] + (metricsEndpoint.map { [$0.serverCounters] } ?? [])
        undo.add { server.stop() }
        try ProcessSignals.checkpoint()
        logger.info("lvsd ready", metadata: [
            "interfaces": "\(interfaces.joined(separator: ","))", "socket": "\(socket)", "dataplane": "\(kind.rawValue)",
            "workers": "\(dataPlane.workerCount)", "max_connections": "\(maxConnections)",
            "defense": "drop_entry=\(dropEntry) drop_packet=\(dropPacket) secure_tcp=\(secureTcp) amemthresh=\(amemthresh)%",
            "kernel_guard": "\(kind == .tc ? "tc program (PACKET_OTHERHOST)" : kind != .afpacket ? "XDP redirect" : noKernelGuard ? "off" : "nftables netdev ingress")",
        ])
        let reloadPath = keepalived == nil ? nil : config
        let service = DirectorService(director: director, dataPlane: dataPlane, server: server, guardTable: guardTable, logger: logger,
                                      monitor: monitor, configPath: reloadPath, metrics: metricsEndpoint)
        server.reload = { await service.reload() }
        // Started: from here the service removes what was attached when it stops.
        undo.disarm()
        try await service.run()
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

    /// `count` random 64-bit words from getrandom(2), which blocks only until the kernel's pool
    /// is initialised at boot.
    static func randomWords(_ count: Int) throws -> [UInt64] {
        var words = [UInt64](repeating: 0, count: count)
        try words.withUnsafeMutableBytes { buffer in
            var filled = 0
            while filled < buffer.count {
                let n = getrandom(buffer.baseAddress! + filled, buffer.count - filled, 0)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ServerError("getrandom(2) failed: \(String(cString: strerror(errno)))")
                }
                filled += n
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
struct DirectorService: Service, @unchecked Sendable {
    let director: Director
    let dataPlane: AnyDataPlane
    let server: ControlServer
    let guardTable: NFTablesGuard?
    let logger: Logger
    let monitor: HealthMonitor?
    let configPath: String?
    let metrics: MetricsEndpoint?

    /// Re-reads the configuration; on any error the running configuration stays as it is.
    func reload() async -> String {
        guard let monitor, let configPath else {
            logger.warning("reload: only a keepalived.conf given with --config can be reloaded")
            return "lvsd: nothing to reload (start lvsd with --config keepalived.conf)\n"
        }
        do {
            let config = try LVSD.loadKeepalived(configPath, logger: logger)
            await monitor.reload(config)
            logger.info("configuration reloaded", metadata: ["file": "\(configPath)"])
            return "lvsd: reloaded \(configPath)\n"
        } catch {
            logger.error("reload failed, running configuration kept: \(error)")
            return "lvsd: reload failed, running configuration kept: \(error)\n"
        }
    }

    func run() async throws {
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
        logger.info("lvsd stopping")
        await monitor?.stop()
        metrics?.stop()
        server.stop()
        director.sync.stopAll()
        dataPlane.stop()
        if case .afxdp = dataPlane { logger.info("afxdp: XDP programs detached") }
        if case .tc = dataPlane { logger.info("tc: tc programs detached") }
        do { try guardTable?.remove() } catch { logger.error("cannot remove nftables guard: \(error)") }
        logger.info("lvsd stopped")
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

/// Either backend, for lvsd's control code; each worker loop stays specialised for `ShardWorker`.
enum AnyDataPlane: @unchecked Sendable {
    case afpacket(DataPlane<ShardWorker>)
    case afxdp(AFXDPDataPlane<ShardWorker>)
    case tc(TCDataPlane<ShardWorker>)

    var workerCount: Int {
        switch self {
        case .afpacket(let p): return p.workers.count
        case .afxdp(let p): return p.workers.count
        case .tc(let p): return p.workers.count
        }
    }

    func start() throws {
        switch self {
        case .afpacket(let p): try p.start()
        case .afxdp(let p): try p.start()
        case .tc(let p): try p.start()
        }
    }

    /// For afxdp, xdp and tc: detaches the BPF programs first, so traffic goes back to the kernel.
    func stop() {
        switch self {
        case .afpacket(let p): p.stop()
        case .afxdp(let p): p.stop()
        case .tc(let p): p.stop()
        }
    }

    func updateVIPs(_ vips: [VIPMatch]) throws {
        switch self {
        case .afpacket: break
        case .afxdp(let p): try p.updateVIPs(vips)
        case .tc(let p): try p.updateVIPs(vips)
        }
    }

    func updateMarkRules(_ rules: [MarkRule]) throws {
        switch self {
        case .afpacket: break
        case .afxdp(let p): try p.updateMarkRules(rules)
        case .tc(let p): try p.updateMarkRules(rules)
        }
    }

    /// Lines for `lvsadm daemon status` (the first one names the backend).
    var status: [String] {
        switch self {
        case .afpacket(let p):
            return ["data plane: afpacket (TPACKET_V2 ring, sendmmsg, PACKET_VNET_HDR)",
                    "workers: \(p.workers.count) (one connection-table shard each, PACKET_FANOUT \(p.fanoutMode))"]
        case .afxdp(let p):
            return ["data plane: afxdp (XDP redirect to AF_XDP sockets; \(p.summary))",
                    "workers: \(p.workers.count) (one connection-table shard each, one AF_XDP socket per receive queue)",
                    "BPF object: \(p.programs.first?.objectName ?? "none")"]
        case .tc(let p):
            return ["data plane: tc (established connections forwarded by a tc ingress program; the rest via packet sockets bound to IPv4, IPv6 and ARP; \(p.summary))",
                    "workers: \(p.workers.count) (one connection-table shard each, PACKET_FANOUT \(p.packets.fanoutMode))",
                    "BPF object: \(p.programs.first?.objectName ?? "none")"]
        }
    }
}

/// The undo steps of a start-up in progress, run in reverse order unless start-up completed.
final class StartupUndo: @unchecked Sendable {
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
