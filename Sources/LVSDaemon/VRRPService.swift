import Dispatch
import Foundation
import Glibc
import Logging
import LVSDataPlane
import LVSModel
import LVSVRRP
import Synchronization

/// What lvsd does for the VRRP router's actions. Closures, so that tests record them.
struct VRRPHooks: Sendable {
    /// Own (`true`) or release the addresses: ARP/ND answers and forwarding, engine and fast path.
    var setOwned: @Sendable (_ instance: String, _ addresses: [VRRPAddress], _ owned: Bool) -> Void
    /// Sends `count` gratuitous ARPs / unsolicited NAs for each address now.
    var announce: @Sendable (_ addresses: [VRRPAddress], _ count: Int) -> Void
    /// Starts a notify script (keepalived's arguments); does not wait for it.
    var runScript: @Sendable (_ command: VRRPScriptCommand, _ arguments: [String]) -> Void
    /// Runs a `vrrp_script` check once: true when it exits 0 within its timeout.
    var checkScript: @Sendable (_ script: VRRPScriptSettings) async -> Bool
    /// The sync daemon tied to an instance (`lvs_sync_daemon`): MASTER (true) or not.
    var syncRole: @Sendable (_ instance: String, _ master: Bool) -> Void
    /// A reload changes the addresses VRRP manages (every address of every instance): called
    /// before the router's actions, so that an added address is not owned until taken.
    var setManaged: @Sendable (_ addresses: Set<IPAddress>) -> Void = { _ in }
}

/// The link state and primary addresses of an interface, as the router needs them.
struct VRRPInterfaceState: Equatable, Sendable {
    var up: Bool
    var ipv4: IPAddress?
    var ipv6LinkLocal: IPAddress?

    /// Reads them with getifaddrs (in lvsd's network namespace); nil when the interface is gone.
    static func read(_ name: String) -> VRRPInterfaceState? {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return nil }
        defer { freeifaddrs(list) }
        var found = false
        var state = VRRPInterfaceState(up: false, ipv4: nil, ipv6LinkLocal: nil)
        var p = list
        while let a = p {
            defer { p = a.pointee.ifa_next }
            guard String(cString: a.pointee.ifa_name) == name else { continue }
            found = true
            let flags = Int32(bitPattern: a.pointee.ifa_flags)
            state.up = flags & Int32(IFF_UP) != 0 && flags & Int32(IFF_RUNNING) != 0
            guard let sa = a.pointee.ifa_addr else { continue }
            switch Int32(sa.pointee.sa_family) {
            case AF_INET where state.ipv4 == nil:
                let v = UnsafeRawPointer(sa).load(as: sockaddr_in.self)
                state.ipv4 = IPAddress(ipv4: UInt32(bigEndian: v.sin_addr.s_addr))
            case AF_INET6 where state.ipv6LinkLocal == nil:
                let v = IPAddress(in6: UnsafeRawPointer(sa).load(as: sockaddr_in6.self).sin6_addr)
                if v.high >> 54 == 0x3FA { state.ipv6LinkLocal = v }
            default: break
            }
        }
        return found ? state : nil
    }
}

/// lvsd's VRRP speaker: one thread owns the `VRRPRouter` (which is not thread-safe), reads adverts
/// from the transport, runs the router's timers, and performs its actions through `VRRPHooks`.
/// Other threads talk to it through `inbox` (script results, reloads, stop) and read `statusLines`.
///
/// `@unchecked Sendable`: `router`, `transport`, `interfaceStates`, `instanceInterfaces` and
/// `lastSendError` are used only by the service thread (and by `start` before it runs); the rest
/// is in Mutexes or immutable.
final class VRRPService: @unchecked Sendable {
    /// How often link state and addresses are read (track_interface, the adverts' source).
    static let interfacePollInterval: UInt64 = 250_000_000
    /// The longest the thread waits for an advert before it looks at its timers and inbox again.
    static let maximumWaitMilliseconds: Int32 = 50

    /// The running configuration (replaced by `reload` on the service thread).
    var configuration: VRRPConfiguration { current.withLock { $0 } }
    private let current: Mutex<VRRPConfiguration>
    private let router: VRRPRouter
    private let transport: any VRRPTransport
    private let hooks: VRRPHooks
    private let logger: Logger
    private let clock: @Sendable () -> UInt64
    private let readInterface: @Sendable (String) -> VRRPInterfaceState?

    private enum Message {
        /// A check's result; ignored unless the script still has these settings.
        case scriptResult(VRRPScriptSettings, Bool)
        case reload(VRRPConfiguration, VRRPReloadReply)
    }
    private let inbox = Mutex<[Message]>([])
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let published = Mutex<(status: [VRRPInstanceStatus], rejections: [VRRPRejection: Int])>(([], [:]))
    private var interfaceStates: [String: VRRPInterfaceState] = [:]
    private var lastInterfacePoll: UInt64 = 0
    private var lastSendError: UInt64 = 0
    /// The running check loops, by script name, with the settings each runs.
    private let scriptTasks = Mutex<[String: (settings: VRRPScriptSettings, task: Task<Void, Never>)]>([:])
    /// Each instance's interface (the default device of its addresses), removed ones included.
    private var instanceInterfaces: [String: String] = [:]
    /// Between `start` and `stop` (read by `reload` on the caller's thread).
    private let started = Atomic<Bool>(false)

    init(configuration: VRRPConfiguration, transport: any VRRPTransport, hooks: VRRPHooks, logger: Logger,
         clock: @escaping @Sendable () -> UInt64 = { monotonicNanoseconds() },
         readInterface: @escaping @Sendable (String) -> VRRPInterfaceState? = { VRRPInterfaceState.read($0) }) {
        current = Mutex(configuration)
        self.transport = transport
        self.hooks = hooks
        self.logger = logger
        self.clock = clock
        self.readInterface = readInterface
        router = VRRPRouter(configuration: configuration, now: clock())
    }

    /// Every interface the instances use or track.
    var interfaces: [String] {
        var names: [String] = []
        for i in configuration.instances {
            for n in [i.interface] + i.trackInterfaces.map(\.name) + (i.virtualAddresses + i.excludedAddresses).compactMap(\.device)
            where !names.contains(n) { names.append(n) }
        }
        for g in configuration.syncGroups { for t in g.trackInterfaces where !names.contains(t.name) { names.append(t.name) } }
        return names
    }

    /// Joins the advert groups, reads the interfaces, and starts the thread and the script checks.
    /// Throws (naming the interface) when a socket cannot be set up.
    func start() throws {
        try join(configuration)
        for i in configuration.instances { instanceInterfaces[i.name] = i.interface }
        let now = clock()
        pollInterfaces(now: now, force: true)
        perform(router.start(now: now))
        publish()
        started.store(true, ordering: .releasing)
        let thread = Thread { [self] in
            run()
            finished.signal()
        }
        thread.name = "lvsd-vrrp"
        thread.start()
        updateScriptChecks()
    }

    /// Joins the advert groups of every instance (idempotent: a reload joins the new ones).
    private func join(_ configuration: VRRPConfiguration) throws {
        for i in configuration.instances where i.unicastPeers.isEmpty {
            let group = i.multicastGroup ?? (i.isIPv6 ? Self.groupIPv6 : Self.groupIPv4)
            try transport.join(interface: i.interface, group: group)
        }
        for i in configuration.instances where !i.unicastPeers.isEmpty {
            // Unicast: the socket must exist to receive; joining the group is harmless and opens it.
            try transport.join(interface: i.interface, group: i.isIPv6 ? Self.groupIPv6 : Self.groupIPv4)
        }
    }

    /// One check loop per tracked `vrrp_script`: a loop whose script is unchanged goes on (its
    /// rise/fall state is the router's), a new or changed one starts, a removed one stops.
    private func updateScriptChecks() {
        let c = configuration
        let tracked = c.scripts.filter { script in
            c.instances.contains { $0.trackScripts.contains { $0.name == script.name } }
                || c.syncGroups.contains { $0.trackScripts.contains { $0.name == script.name } }
        }
        scriptTasks.withLock { tasks in
            for (name, running) in tasks where !tracked.contains(running.settings) {
                running.task.cancel()
                tasks[name] = nil
            }
            for script in tracked where tasks[script.name] == nil {
                tasks[script.name] = (script, Task { [self] in await checkLoop(script) })
            }
        }
    }

    static let groupIPv4 = IPAddress("224.0.0.18")!
    static let groupIPv6 = IPAddress("ff02::12")!

    /// Leaves VRRP as keepalived does at shutdown: each MASTER sends a priority-0 advert and releases
    /// its addresses, notify_stop runs. Waits for the thread (bounded: it ends within one wait).
    func stop() {
        guard started.exchange(false, ordering: .acquiringAndReleasing) else { return }
        stopping.store(true, ordering: .releasing)
        finished.wait()
        // After the thread: a reload it applied last may have started a check loop.
        scriptTasks.withLock { tasks in
            for running in tasks.values { running.task.cancel() }
            tasks.removeAll()
        }
        transport.close()
    }

    private func run() {
        while !stopping.load(ordering: .acquiring) {
            let now = clock()
            for m in inbox.withLock({ m -> [Message] in defer { m.removeAll() }; return m }) {
                switch m {
                case let .scriptResult(script, ok):
                    guard configuration.scripts.contains(script) else { continue }
                    perform(router.setScriptResult(script.name, success: ok, now: now))
                case let .reload(new, reply):
                    reply.finish(applyReload(new, now: now))
                }
            }
            pollInterfaces(now: now, force: false)
            perform(router.advance(now: now))
            var wait = Self.maximumWaitMilliseconds
            if let next = router.nextDeadline {
                let due = next > now ? (next - now + 999_999) / 1_000_000 : 0
                wait = Int32(min(UInt64(wait), due))
            }
            for packet in transport.receive(timeoutMilliseconds: wait) {
                perform(router.receive(packet, now: clock()))
            }
            publish()
        }
        perform(router.shutdown(now: clock()))
        publish()
        for m in inbox.withLock({ m -> [Message] in defer { m.removeAll() }; return m }) {
            if case let .reload(_, reply) = m { reply.finish(.failure(ServerError("VRRP: lvsd is stopping; nothing applied"))) }
        }
    }

    /// Applies a new VRRP configuration (keepalived's reload semantics, `VRRPRouter.reload`) on
    /// the service thread, and waits for it at most `timeout`: what was done, or why nothing was.
    func reload(_ new: VRRPConfiguration, timeout: DispatchTimeInterval = .seconds(5)) -> Result<VRRPReloadSummary, ServerError> {
        guard started.load(ordering: .acquiring) else { return .failure(ServerError("VRRP is not running; nothing applied")) }
        let reply = VRRPReloadReply()
        inbox.withLock { $0.append(.reload(new, reply)) }
        return reply.wait(timeout: timeout)
            ?? .failure(ServerError("VRRP: the reload was not applied within \(timeout) (it may still be)"))
    }

    /// The service thread's part of `reload`: joins the new instances' groups (any failure: nothing
    /// is applied), the new managed addresses, the new interfaces' state, then the router.
    private func applyReload(_ new: VRRPConfiguration, now: UInt64) -> Result<VRRPReloadSummary, ServerError> {
        let summary = VRRPRouter.reloadSummary(from: configuration, to: new)
        if summary.unchanged {
            logger.info("reload: VRRP unchanged")
            return .success(summary)
        }
        do {
            try join(new)
        } catch {
            logger.error("reload: VRRP not applied (the running instances are kept): \(error)")
            return .failure(ServerError("VRRP: \(error); the running instances are kept"))
        }
        current.withLock { $0 = new }
        for i in new.instances { instanceInterfaces[i.name] = i.interface }
        hooks.setManaged(LVSD.vrrpAddresses(new))
        pollInterfaces(now: now, force: true)
        perform(router.reload(configuration: new, now: now))
        updateScriptChecks()
        publish()
        logger.notice("reload: \(summary.description)", metadata: [
            "kept": "\(summary.kept.joined(separator: ","))", "changed": "\(summary.changed.joined(separator: ","))",
            "added": "\(summary.added.joined(separator: ","))", "removed": "\(summary.removed.joined(separator: ","))"])
        return .success(summary)
    }

    /// Reads link state and addresses every `interfacePollInterval`; tells the router what changed.
    private func pollInterfaces(now: UInt64, force: Bool) {
        guard force || now &- lastInterfacePoll >= Self.interfacePollInterval else { return }
        lastInterfacePoll = now
        for name in interfaces {
            let state = readInterface(name) ?? VRRPInterfaceState(up: false, ipv4: nil, ipv6LinkLocal: nil)
            guard force || interfaceStates[name] != state else { continue }
            if let old = interfaceStates[name], old.up != state.up {
                logger.notice("VRRP: interface \(name) is \(state.up ? "up" : "down")")
            }
            interfaceStates[name] = state
            perform(router.setInterface(name, up: state.up, primaryIPv4: state.ipv4, primaryIPv6LinkLocal: state.ipv6LinkLocal, now: now))
        }
    }

    /// Performs the router's actions in order.
    private func perform(_ actions: [VRRPAction]) {
        for a in actions {
            switch a {
            case let .send(_, interface, source, destination, message):
                do {
                    try transport.send(interface: interface, source: source, destination: destination, message: message)
                } catch {
                    // Logged at most once a second (a down interface fails every advert).
                    let now = clock()
                    if now &- lastSendError >= 1_000_000_000 {
                        lastSendError = now
                        logger.warning("VRRP: cannot send an advert: \(error)")
                    }
                }
            case let .stateChanged(instance, from, to, priority):
                logger.notice("VRRP instance \(instance): \(from.rawValue) -> \(to.rawValue)", metadata: ["priority": "\(priority)"])
            case let .takeAddresses(instance, addresses):
                hooks.setOwned(instance, onDevice(addresses, of: instance), true)
            case let .releaseAddresses(instance, addresses):
                hooks.setOwned(instance, onDevice(addresses, of: instance), false)
            case let .announce(_, addresses, count):
                hooks.announce(addresses, count)
            case let .runScript(command, arguments):
                hooks.runScript(command, arguments)
            case let .syncRole(instance, master):
                hooks.syncRole(instance, master)
            }
        }
    }

    /// The addresses with their device named (`dev`, else the instance's interface).
    private func onDevice(_ addresses: [VRRPAddress], of instance: String) -> [VRRPAddress] {
        guard let interface = instanceInterfaces[instance] else { return addresses }
        return addresses.map { a in
            var a = a
            if a.device == nil { a.device = interface }
            return a
        }
    }

    private func publish() {
        let s = router.status, r = router.rejections
        published.withLock { $0 = (s, r) }
    }

    /// Runs one `vrrp_script` every interval until stopped; each result goes to the router.
    private func checkLoop(_ script: VRRPScriptSettings) async {
        while !Task.isCancelled {
            let ok = await hooks.checkScript(script)
            inbox.withLock { $0.append(.scriptResult(script, ok)) }
            try? await Task.sleep(nanoseconds: script.interval)
        }
    }

    /// Each instance's state, and the adverts ignored by reason.
    var status: (instances: [VRRPInstanceStatus], rejections: [VRRPRejection: Int]) {
        published.withLock { ($0.status, $0.rejections) }
    }

    /// `lvsadm daemon status` lines: one per instance, then the ignored adverts.
    var statusLines: [String] {
        let (instances, rejections) = status
        var lines = instances.map(Self.statusLine)
        let ignored = VRRPRejection.allCases.compactMap { r in rejections[r].flatMap { $0 > 0 ? "\(r.rawValue) \($0)" : nil } }
        lines.append("vrrp adverts ignored: " + (ignored.isEmpty ? "none" : ignored.joined(separator: ", ")))
        return lines
    }

    static func statusLine(_ s: VRRPInstanceStatus) -> String {
        var line = "vrrp instance \(s.name) state \(s.state.rawValue) priority \(s.configuredPriority) effective \(s.effectivePriority)"
            + " vrid \(s.virtualRouterID) interface \(s.interface) transitions \(s.transitions)"
        if s.state == .backup, let m = s.masterAddress { line += " master \(m)" }
        line += " adverts-sent \(s.advertsSent) adverts-received \(s.advertsReceived)"
        return line
    }
}

/// The answer to one `VRRPService.reload`, handed from the service thread to the caller.
final class VRRPReloadReply: Sendable {
    private let outcome = Mutex<Result<VRRPReloadSummary, ServerError>?>(nil)
    private let done = DispatchSemaphore(value: 0)

    func finish(_ result: Result<VRRPReloadSummary, ServerError>) {
        outcome.withLock { $0 = result }
        done.signal()
    }

    /// The outcome, or nil when it did not come within `timeout`.
    func wait(timeout: DispatchTimeInterval) -> Result<VRRPReloadSummary, ServerError>? {
        guard done.wait(timeout: .now() + timeout) == .success else { return nil }
        return outcome.withLock { $0 }
    }
}
