import Dispatch
import Foundation
import LVSCore
import LVSModel
import Logging
import Synchronization

/// Health-gated announcement of the VIPs (`--announce-table`, issue 17): keeps one route per
/// READY VIP (`AnnouncementPolicy`) in `AnnouncementRoutes`, where the routing daemon (BIRD, FRR)
/// learns it and announces it by BGP; a route removed is a withdrawal.
///
/// Event driven: every configuration change (ipvsadm edits, `-R`, a reload, the health monitor's
/// batches, which are how health transitions reach the table) calls `changed()`, and the
/// announcer's thread re-evaluates at once; it also re-evaluates every `recheckInterval`, which
/// retries a route that `ip` failed to change and follows VRRP ownership.
///
/// Sendable: the mutable state is under `state`'s lock; `reconcile` runs one at a time
/// (`applying`'s lock), so the routes follow the evaluations in order.
final class Announcer: Sendable {
    /// The re-check period (also the retry period of a failed route change).
    static let recheckInterval: DispatchTimeInterval = .seconds(1)

    struct State {
        var dataPlaneRunning = false
        var stopping = false
        var finished = false
        /// Routes in place now.
        var installed: Set<AnnouncedPrefix> = []
        /// Every VIP seen (a VIP whose service went stays listed: withheld, no service).
        var known: Set<AnnouncedPrefix> = []
        /// The last evaluation, as status and metrics show it.
        var current: [VIPAnnouncement] = []
        /// Routes removed, per VIP, since lvsd started.
        var withdrawals: [AnnouncedPrefix: Int] = [:]
    }

    let routes: any AnnouncementRoutes
    private let table: @Sendable () -> TableSnapshot
    private let notOwned: @Sendable () -> Set<IPAddress>
    private let rules: [MarkRule]
    private let logger: Logger
    private let state = Mutex(State())
    private let applying = Mutex(())
    private let wake = DispatchSemaphore(value: 0)

    init(routes: any AnnouncementRoutes, rules: [MarkRule], logger: Logger,
         table: @escaping @Sendable () -> TableSnapshot, notOwned: @escaping @Sendable () -> Set<IPAddress> = { [] }) {
        self.routes = routes
        self.rules = rules
        self.logger = logger
        self.table = table
        self.notOwned = notOwned
    }

    /// Starts the thread that re-evaluates on `changed()` and every `recheckInterval`.
    func start() {
        let thread = Thread { [self] in
            while !state.withLock({ $0.finished }) {
                _ = wake.wait(timeout: .now() + Self.recheckInterval)
                guard !state.withLock({ $0.finished }) else { return }
                reconcile()
            }
        }
        thread.name = "lvsd-announce"
        thread.start()
    }

    /// Something that may change a VIP's readiness happened: re-evaluate now (any thread).
    func changed() { wake.signal() }

    /// The data plane forwards (true) or stopped (false); re-evaluated at once, on this thread.
    func setDataPlaneRunning(_ running: Bool) {
        state.withLock { $0.dataPlaneRunning = running }
        reconcile()
    }

    /// Withdraws every VIP now (the first step of a graceful stop); true if one was announced
    /// (then the routers need the hold time to converge).
    @discardableResult
    func withdrawAll() -> Bool {
        let hadRoutes = state.withLock { s in
            s.stopping = true
            return !s.installed.isEmpty
        }
        reconcile()
        return hadRoutes
    }

    /// Ends the thread and removes the device with every route left.
    func stop() {
        state.withLock { $0.finished = true }
        wake.signal()
        applying.withLock { _ in
            routes.close()
            state.withLock { s in
                for p in s.installed { s.withdrawals[p, default: 0] += 1 }
                s.installed = []
            }
        }
    }

    /// Evaluates every VIP and changes the routes that differ from what is installed.
    func reconcile() {
        applying.withLock { _ in
            let snapshot = table()
            let owned = notOwned()
            let (run, known, installed, finished) = state.withLock { s in
                (AnnouncementPolicy.RunState(dataPlaneRunning: s.dataPlaneRunning, stopping: s.stopping, notOwned: owned),
                 s.known, s.installed, s.finished)
            }
            guard !finished else { return }
            let evaluated = AnnouncementPolicy.evaluate(snapshot, rules: rules, run: run, previously: known)
            let wanted = Set(evaluated.filter(\.isAnnounced).map(\.prefix))
            let add = wanted.subtracting(installed).sorted(), remove = installed.subtracting(wanted).sorted()
            let failed = routes.apply(add: add, remove: remove)
            let failedSet = Set(failed.map(\.prefix))
            for f in failed {
                logger.error("announcement: cannot \(wanted.contains(f.prefix) ? "announce" : "withdraw") \(f.prefix) (retried in 1 s): \(f.error)")
            }
            let reasons = Dictionary(evaluated.map { ($0.prefix, $0.withheld) }, uniquingKeysWith: { a, _ in a })
            for p in add where !failedSet.contains(p) { logger.notice("announcement: \(p) announced") }
            for p in remove where !failedSet.contains(p) {
                logger.notice("announcement: \(p) withdrawn", metadata: ["reason": "\(reasons[p].flatMap { $0?.rawValue } ?? "")"])
            }
            state.withLock { s in
                for p in add where !failedSet.contains(p) { s.installed.insert(p) }
                for p in remove where !failedSet.contains(p) {
                    s.installed.remove(p)
                    s.withdrawals[p, default: 0] += 1
                }
                s.known.formUnion(evaluated.map(\.prefix))
                s.current = evaluated
            }
        }
    }

    /// The last evaluation and the withdrawals per VIP.
    var snapshot: (states: [VIPAnnouncement], withdrawals: [AnnouncedPrefix: Int]) {
        state.withLock { ($0.current, $0.withdrawals) }
    }

    /// The routes in place now.
    var installed: Set<AnnouncedPrefix> { state.withLock { $0.installed } }

    /// `lvsadm daemon status`'s lines: where the routes go, then one line per VIP
    /// (`VIPAnnouncement`'s format, which `lvsadm daemon announcements` reads).
    var statusLines: [String] {
        let (states, withdrawals) = snapshot
        let total = withdrawals.values.reduce(0, +)
        return ["announcement: \(routes.summary), \(states.filter(\.isAnnounced).count) of \(states.count) VIP(s) announced, \(total) withdrawal(s)"]
            + states.map(\.description)
    }
}
