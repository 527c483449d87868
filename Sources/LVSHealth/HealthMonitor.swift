import Glibc
import LVSModel
import KeepalivedConfig

/// One structured log line from the health monitor (real-server and quorum state changes,
/// failed IPVS requests, and every failed attempt with log_all_failures).
public struct HealthLogRecord: Sendable, Equatable, CustomStringConvertible {
    public enum Level: String, Sendable { case info, warning, error }
    public var level: Level
    public var message: String
    public var metadata: [String: String]

    public init(_ level: Level, _ message: String, _ metadata: [String: String] = [:]) {
        self.level = level
        self.message = message
        self.metadata = metadata
    }

    /// `message key=value …` with the keys sorted.
    public var description: String {
        ([message] + metadata.keys.sorted().map { "\($0)=\(metadata[$0]!)" }).joined(separator: " ")
    }
}

/// What the monitor does to the outside world; tests replace all of it.
public struct HealthEnvironment: Sendable {
    public var probe: @Sendable (ProbeTarget) async -> ProbeResult
    public var sleep: @Sendable (Duration) async throws -> Void
    public var runScript: @Sendable (String) -> Void
    /// Runs a notify or quorum script as the given user (nil: lvsd's own); default: `runScript`.
    public var runScriptAs: @Sendable (String, ScriptIdentity?) -> Void
    /// keepalived's script rules applied to a configuration before it runs (users, refused
    /// scripts); default: unchanged.
    public var prepareScripts: @Sendable (KeepalivedConfig) -> (KeepalivedConfig, [HealthLogRecord])
    /// A random delay in [0, warmup] added to the first run of each checker.
    public var jitter: @Sendable (Duration) -> Duration

    public init(probe: @escaping @Sendable (ProbeTarget) async -> ProbeResult,
                sleep: @escaping @Sendable (Duration) async throws -> Void,
                runScript: @escaping @Sendable (String) -> Void,
                jitter: @escaping @Sendable (Duration) -> Duration) {
        self.probe = probe
        self.sleep = sleep
        self.runScript = runScript
        self.runScriptAs = { command, _ in runScript(command) }
        self.prepareScripts = { ($0, []) }
        self.jitter = jitter
    }

    /// Real sockets and processes, the continuous clock, uniform warmup jitter.
    public static let live: HealthEnvironment = {
        var env = liveProbes
        env.runScriptAs = { ScriptRunner.runDetached($0, as: $1) }
        env.prepareScripts = { ScriptSecurity.prepare($0) }
        return env
    }()

    static let liveProbes = HealthEnvironment(
        probe: { await HealthProbes.run($0) },
        sleep: { try await Task.sleep(for: $0) },
        runScript: { ScriptRunner.runDetached($0, as: nil) },
        jitter: { warmup in
            let (s, a) = warmup.components
            let us = s * 1_000_000 + a / 1_000_000_000_000
            return us > 0 ? .microseconds(Int64.random(in: 0...us)) : .zero
        })
}

/// Runs the checkers of a keepalived configuration and keeps IPVS in line with their results
/// (§2): one task per checker in a task group, each with its own timeouts, so a slow or hung
/// real server never delays the others. Every change goes through a diff between what was
/// written and what the state asks for, so only the affected services and destinations are
/// touched (also on `reload`).
public actor HealthMonitor {
    public typealias Log = @Sendable (HealthLogRecord) -> Void

    /// Prints the record to stderr.
    public static let stderrLog: Log = { record in
        let line = "keepalived: \(record.level.rawValue): \(record)\n"
        fputs(line, standardError)
    }

    struct CheckerRun: Sendable {
        var vs: VirtualServerID
        var rs: RealServerIdentity
        var index: Int
        var checker: KeepalivedChecker
        var machine: CheckerMachine
        var target: ProbeTarget
    }

    let backend: ControlBackend
    let log: Log
    let env: HealthEnvironment
    private(set) var config: KeepalivedConfig
    var states: [VirtualServerID: VirtualServerState] = [:]
    var order: [VirtualServerID] = []
    var checkers: [UInt64: CheckerRun] = [:]
    private var nextToken: UInt64 = 1
    var written = IPVSTable()
    private var started = false
    private var stopped = false
    private var supervisor: Task<Void, Never>?
    private var spawner: AsyncStream<(UInt64, Duration)>.Continuation?

    public init(config: KeepalivedConfig, backend: ControlBackend, log: @escaping Log = HealthMonitor.stderrLog) {
        self.init(config: config, backend: backend, log: log, environment: .live)
    }

    public init(config unprepared: KeepalivedConfig, backend: ControlBackend, log: @escaping Log, environment: HealthEnvironment) {
        let (config, records) = environment.prepareScripts(unprepared)
        for r in records { log(r) }
        self.config = config
        self.backend = backend
        self.log = log
        self.env = environment
        for s in config.initialStates() where states[s.id] == nil {
            states[s.id] = s
            order.append(s.id)
        }
        var token: UInt64 = 1
        for id in order {
            guard let s = states[id] else { continue }
            for rs in s.config.realServers {
                for (n, c) in rs.checkers.enumerated() where c.kind.isRun {
                    checkers[token] = CheckerRun(vs: id, rs: rs.identity, index: n, checker: c,
                                                 machine: CheckerMachine(checker: c), target: Self.makeTarget(c, rs: rs, keys: s.keys))
                    token += 1
                }
            }
        }
        nextToken = token
    }

    /// Starts the checkers. With `applyInitialRequests` the start-up requests
    /// (`KeepalivedConfig.initialRequests()`) are sent first; pass false if the owner already sent them.
    public func start(applyInitialRequests: Bool = true) {
        guard !started else { return }
        started = true
        if applyInitialRequests {
            var first: [ControlRequest] = []
            if config.globals.lvsFlush { first.append(.clear) }
            if let t = config.globals.lvsTimeouts { first.append(.setTimeouts(t)) }
            apply(after: first)
        } else {
            written = desiredTable()
        }
        for id in order {
            guard let s = states[id] else { continue }
            if !s.quorumUp {
                log(HealthLogRecord(.warning, "quorum down at start", ["vs": "\(s.config.address)", "live_weight": "\(s.liveWeight)", "quorum": "\(s.config.quorum)"]))
                if let script = s.config.quorumDown { env.runScriptAs(script, config.globals.scriptRunAs) }
            }
            for rs in s.config.realServers {
                guard let st = s.servers[rs.identity] else { continue }
                if config.globals.rsInitNotifies, st.alive, let script = rs.notifyUp { env.runScriptAs(script, config.globals.scriptRunAs) }
            }
        }
        let (stream, continuation) = AsyncStream<(UInt64, Duration)>.makeStream()
        spawner = continuation
        supervisor = Task {
            await withTaskGroup(of: Void.self) { group in
                for await (token, delay) in stream {
                    group.addTask { await self.runChecker(token: token, firstDelay: delay) }
                }
                group.cancelAll()
            }
        }
        for token in checkers.keys.sorted() { launch(token) }
    }

    /// Stops every checker. With `omega` virtual servers, runs their quorum_down and the
    /// notify_down of alive real servers. With `removeServices`, deletes the services it wrote.
    public func stop(removeServices: Bool = false) {
        guard !stopped else { return }
        stopped = true
        spawner?.finish()
        supervisor?.cancel()
        for id in order {
            guard let s = states[id], s.config.omega else { continue }
            if let q = s.config.quorumDown { env.runScriptAs(q, config.globals.scriptRunAs) }
            for rs in s.config.realServers where s.servers[rs.identity]?.alive == true {
                if let n = rs.notifyDown { env.runScriptAs(n, config.globals.scriptRunAs) }
            }
        }
        if removeServices {
            send(written.serviceOrder.map { .deleteService($0) })
            written = IPVSTable()
        }
    }

    /// Applies a new configuration: unchanged checkers keep their state (§2.7), a failed real
    /// server stays out, new ones are added (unless alpha), and only differences reach IPVS.
    public func reload(_ unprepared: KeepalivedConfig) {
        let (newConfig, records) = env.prepareScripts(unprepared)
        for r in records { log(r) }
        var oldRuns: [VirtualServerID: [RealServerIdentity: [(UInt64, CheckerRun)]]] = [:]
        for (token, run) in checkers { oldRuns[run.vs, default: [:]][run.rs, default: []].append((token, run)) }
        let oldStates = states
        checkers = [:]
        states = [:]
        order = []
        config = newConfig
        var fresh: [UInt64] = []
        for var s in newConfig.initialStates() where states[s.id] == nil {
            let old = oldStates[s.id]
            for rs in s.config.realServers {
                let previous = old?.servers[rs.identity]
                var runs = oldRuns[s.id]?[rs.identity] ?? []
                var rstate = RealServerState(config: rs)
                rstate.failedCheckers = []
                rstate.dynamicWeight = previous?.dynamicWeight
                for (n, c) in rs.checkers.enumerated() where c.kind.isRun {
                    let target = Self.makeTarget(c, rs: rs, keys: s.keys)
                    var token: UInt64
                    var machine = CheckerMachine(checker: c)
                    if let k = runs.firstIndex(where: { $0.1.checker.sameProbe(as: c) }) {
                        token = runs[k].0
                        machine = runs[k].1.machine
                        machine.retry = c.timing.retry
                        runs.remove(at: k)
                    } else {
                        token = nextToken
                        nextToken += 1
                        // A new alpha checker on a live existing server does not bring it down.
                        if previous?.alive == true { machine.up = true }
                        fresh.append(token)
                    }
                    if !machine.up { rstate.failedCheckers.insert(n) }
                    checkers[token] = CheckerRun(vs: s.id, rs: rs.identity, index: n, checker: c, machine: machine, target: target)
                }
                s.servers[rs.identity] = rstate
            }
            if let old {
                s.quorumUp = old.quorumUp
                if let q = s.updateQuorum() { quorumChanged(s, up: q) }
            }
            states[s.id] = s
            order.append(s.id)
        }
        apply()
        if started && !stopped { for token in fresh { launch(token) } }
    }

    // MARK: internals

    private func launch(_ token: UInt64) {
        guard let run = checkers[token] else { return }
        spawner?.yield((token, .seconds(1) + env.jitter(run.checker.timing.warmup)))
    }

    static func makeTarget(_ c: KeepalivedChecker, rs: KeepalivedRealServer, keys: [ServiceKey]) -> ProbeTarget {
        let fallbackPort = keys.first(where: { !$0.isFwmark })?.port ?? 0
        var t = ProbeTarget(kind: c.kind, address: c.connectIP ?? rs.address,
                            port: c.connectPort ?? (rs.port != 0 ? rs.port : fallbackPort),
                            connectTimeout: c.timing.connectTimeout)
        t.bindTo = c.bindTo
        t.bindPort = c.bindPort
        t.fwmark = c.fwmark
        t.httpProtocol = c.httpProtocol
        t.virtualhost = c.virtualhost
        t.command = c.miscPath
        t.commandTimeout = c.miscTimeout ?? .seconds(60)
        t.dynamic = c.miscDynamic
        t.runAs = c.runAs
        return t
    }

    /// The target of the next attempt (HTTP_GET: the current URL), or nil if the checker is gone.
    func currentTarget(_ token: UInt64) -> ProbeTarget? {
        guard !stopped, let run = checkers[token] else { return nil }
        var t = run.target
        if !run.checker.urls.isEmpty {
            let url = run.checker.urls[min(run.machine.urlIndex, run.checker.urls.count - 1)]
            t.url = url
            t.virtualhost = url.virtualhost ?? run.checker.virtualhost
            if run.checker.enableSNI { t.serverName = t.virtualhost ?? t.address.description }
        }
        return t
    }

    private nonisolated func runChecker(token: UInt64, firstDelay: Duration) async {
        var delay = firstDelay
        while !Task.isCancelled {
            do { try await env.sleep(delay) } catch { return }
            guard let target = await currentTarget(token) else { return }
            let result = await env.probe(target)
            if Task.isCancelled { return }
            guard let next = await handle(token: token, result: result) else { return }
            delay = next
        }
    }

    /// Feeds one attempt's result into the state machines and IPVS; returns the delay before the
    /// checker's next attempt, or nil when the checker no longer exists.
    func handle(token: UInt64, result: ProbeResult) -> Duration? {
        guard !stopped, var run = checkers[token] else { return nil }
        let (changed, next) = run.machine.record(success: result.isSuccess)
        checkers[token] = run
        guard var vs = states[run.vs], var rs = vs.servers[run.rs] else { return nil }
        let where_: [String: String] = ["vs": "\(vs.config.address)", "rs": "\(run.rs)", "checker": "\(run.checker.kind)"]
        if case let .failure(reason) = result, run.checker.logAllFailures || config.globals.checkerLogAllFailures {
            log(HealthLogRecord(.info, "check failed", where_.merging(["reason": reason]) { a, _ in a }))
        }
        var touched = false
        if case let .successWithWeight(w) = result, rs.dynamicWeight != w {
            rs.dynamicWeight = w
            touched = true
            log(HealthLogRecord(.info, "real server weight changed", where_.merging(["weight": "\(w)"]) { a, _ in a }))
        }
        if let up = changed {
            let wasAlive = rs.alive
            if up { rs.failedCheckers.remove(run.index) } else { rs.failedCheckers.insert(run.index) }
            touched = true
            if wasAlive != rs.alive {
                var meta = where_
                meta["state"] = rs.alive ? "up" : "down"
                meta["weight"] = "\(rs.weight)"
                meta["inhibit"] = "\(rs.config.inhibitOnFailure)"
                if case let .failure(reason) = result { meta["reason"] = reason }
                log(HealthLogRecord(rs.alive ? .info : .warning, rs.alive ? "real server up" : "real server down", meta))
                if let script = rs.alive ? rs.config.notifyUp : rs.config.notifyDown { env.runScriptAs(script, config.globals.scriptRunAs) }
            }
        }
        vs.servers[run.rs] = rs
        if touched, let q = vs.updateQuorum() { quorumChanged(vs, up: q) }
        states[run.vs] = vs
        if touched { apply() }
        return next.duration(run.checker.timing)
    }

    private func quorumChanged(_ vs: VirtualServerState, up: Bool) {
        var meta: [String: String] = ["vs": "\(vs.config.address)", "live_weight": "\(vs.liveWeight)",
                                      "quorum": "\(vs.config.quorum)", "hysteresis": "\(vs.config.hysteresis)"]
        if let s = vs.config.sorryServer { meta["sorry_server"] = "\(s.identity)" }
        log(HealthLogRecord(up ? .info : .warning, up ? "quorum regained" : "quorum lost", meta))
        if let script = up ? vs.config.quorumUp : vs.config.quorumDown { env.runScriptAs(script, config.globals.scriptRunAs) }
    }

    func desiredTable() -> IPVSTable {
        var table = IPVSTable()
        for id in order { states[id]?.desired(into: &table) }
        return table
    }

    /// Sends `first`, then what differs between what was written and what the state asks for,
    /// as one batch (a reload of N destinations: one snapshot and at most one `nft` run in lvsd).
    private func apply(after first: [ControlRequest] = []) {
        let target = desiredTable()
        send(first + written.requests(toReach: target))
        written = target
    }

    /// Sends the requests as one batch; each one that fails is logged, the others still apply.
    private func send(_ requests: [ControlRequest]) {
        guard !requests.isEmpty else { return }
        do {
            let answers = try backend.execute(batch: ControlBatch(requests))
            for (request, response) in zip(requests, answers) {
                if case let .failed(e) = response {
                    log(HealthLogRecord(.error, "IPVS request failed", ["request": "\(request)", "errno": e.errnoName]))
                }
            }
        } catch {
            for request in requests {
                log(HealthLogRecord(.error, "IPVS request failed", ["request": "\(request)", "error": "\(error)"]))
            }
        }
    }

    /// Whether a real server is currently alive (for status output and tests).
    public func isAlive(_ address: VirtualServerAddress, proto: IPProtocolNumber, realServer: IPAddress, port: UInt16) -> Bool? {
        states[VirtualServerID(address: address, proto: proto)]?.servers[RealServerIdentity(address: realServer, port: port)]?.alive
    }

    /// Whether the quorum of a virtual server is up.
    public func quorumUp(_ address: VirtualServerAddress, proto: IPProtocolNumber) -> Bool? {
        states[VirtualServerID(address: address, proto: proto)]?.quorumUp
    }
}

extension KeepalivedChecker {
    /// Same type and same connection / URL / command: state survives a reload (§2.7).
    func sameProbe(as o: KeepalivedChecker) -> Bool {
        kind == o.kind && connectIP == o.connectIP && connectPort == o.connectPort && bindTo == o.bindTo
            && bindPort == o.bindPort && fwmark == o.fwmark && urls == o.urls && miscPath == o.miscPath
            && miscDynamic == o.miscDynamic && virtualhost == o.virtualhost && httpProtocol == o.httpProtocol
    }
}
