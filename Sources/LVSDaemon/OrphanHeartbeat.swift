import Foundation
import Glibc
import LVSDataPlane
import LVSSystem
import Logging
import Synchronization

/// lvsd's heartbeat (`--orphan-timeout`, docs/restart.md): every timeout/4 it writes the BPF
/// programs' heartbeat map (afxdp, xdp, tc) and refreshes the nftables guard's `alive` elements
/// (afpacket). A dead lvsd writes neither, so after the timeout its leftovers stop claiming the
/// VIPs' traffic by themselves: the programs leave every frame to the kernel, the guard accepts.
///
/// `@unchecked Sendable`: `heartbeat` and `guardTable` are only read, and used from the heartbeat
/// thread alone (the BPF map write and `refreshAlive` read constants); the counters are atomics.
final class OrphanHeartbeat: @unchecked Sendable {
    /// The default `--orphan-timeout`, in seconds.
    static let defaultTimeout = 3.0
    /// The longest `--orphan-timeout` (a day), in seconds.
    static let maximumTimeout = 86_400.0
    /// The shortest non-zero one: four beats of at least 50 ms.
    static let minimumTimeout = 0.2
    /// Beats per timeout: three may be missed (a stalled thread, a slow nft) before the programs let go.
    static let beatsPerTimeout: UInt64 = 4
    /// After this many beats the mean time of the guard's refresh is logged once.
    static let reportAfterBeats: UInt64 = 20

    let timeoutNanoseconds: UInt64
    let heartbeat: BPFHeartbeat?
    let guardTable: NFTablesGuard?
    let logger: Logger
    /// Beats written, and the time the guard's refreshes took in total (ns), for the status line.
    let beats = Atomic<UInt64>(0)
    let refreshNanoseconds = Atomic<UInt64>(0)
    /// Whether the last beat failed (a failure is logged once, and its end).
    private let failing = Atomic<Bool>(false)
    private var thread: PeriodicThread?

    init(timeoutSeconds: Double, heartbeat: BPFHeartbeat?, guardTable: NFTablesGuard?, logger: Logger) {
        self.timeoutNanoseconds = UInt64(timeoutSeconds * 1e9)
        self.heartbeat = heartbeat
        self.guardTable = guardTable
        self.logger = logger
    }

    var period: UInt64 { timeoutNanoseconds / Self.beatsPerTimeout }

    /// Writes the first beat now (with a timeout of 0 the only one: the programs never let go),
    /// then every `period` on a thread of its own.
    func start() throws {
        try heartbeat?.beat(now: monotonicNanoseconds(), timeoutNanoseconds: timeoutNanoseconds)
        guard timeoutNanoseconds > 0, heartbeat != nil || guardTable != nil else { return }
        thread = try PeriodicThread(name: "lvsd-heartbeat", periodNanoseconds: period) { [self] in beat() }
    }

    /// One beat: the BPF map, then the guard's elements.
    func beat() {
        do {
            try heartbeat?.beat(now: monotonicNanoseconds(), timeoutNanoseconds: timeoutNanoseconds)
            if let guardTable {
                let started = monotonicNanoseconds()
                try guardTable.refreshAlive()
                refreshNanoseconds.add(monotonicNanoseconds() &- started, ordering: .relaxed)
            }
            let n = beats.add(1, ordering: .relaxed).newValue
            if n == Self.reportAfterBeats, guardTable != nil {
                logger.info("heartbeat: nftables guard refresh", metadata: [
                    "beats": "\(n)", "mean_us": "\(refreshNanoseconds.load(ordering: .relaxed) / n / 1000)"])
            }
            if failing.exchange(false, ordering: .relaxed) { logger.notice("heartbeat written again") }
        } catch {
            if !failing.exchange(true, ordering: .relaxed) {
                logger.error("heartbeat not written (after --orphan-timeout without one, the VIPs go back to the kernel): \(error)")
            }
        }
    }

    /// Stops the beats (idempotent): from here the leftovers expire after the timeout.
    func stop() {
        thread?.stop()
        thread = nil
    }

    /// For `lvsadm daemon status`.
    var statusLine: String {
        guard timeoutNanoseconds > 0 else { return "orphan timeout: off (a dead lvsd's programs or nftables guard keep the VIPs)" }
        let what = [heartbeat != nil ? "BPF heartbeat map" : nil, guardTable != nil ? "nftables guard's alive set" : nil].compactMap { $0 }
        return "orphan timeout: \(Double(timeoutNanoseconds) / 1e9) s (heartbeat every \(period / 1_000_000) ms: \(what.joined(separator: ", ")))"
    }
}

/// A thread that runs `body` every `periodNanoseconds` (poll(2)'s monotonic timeout on a pipe,
/// so a wall-clock step changes nothing) until `stop`, which waits for it to end.
///
/// `@unchecked Sendable`: the pipe's descriptors are constants; the thread only polls the read end.
final class PeriodicThread: @unchecked Sendable {
    private let wake: Int32
    private let wakeWriter: Int32
    private let stopping = Atomic<Bool>(false)
    private let done = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
    private var joined = false

    init(name: String, periodNanoseconds: UInt64, body: @escaping @Sendable () -> Void) throws {
        var ends: [Int32] = [-1, -1]
        try syscall("pipe") { pipe(&ends) }
        wake = ends[0]
        wakeWriter = ends[1]
        for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) } // nft runs as a child
        sem_init(done, 0, 0)
        let periodMs = Int32(clamping: max(1, periodNanoseconds / 1_000_000))
        let thread = Thread { [self] in
            var p = pollfd(fd: wake, events: Int16(POLLIN), revents: 0)
            while !stopping.load(ordering: .acquiring) {
                body()
                _ = poll(&p, 1, periodMs)
            }
            sem_post(done)
        }
        thread.name = name
        thread.start()
    }

    /// Wakes the thread and waits for it to end (idempotent; from one thread).
    func stop() {
        guard !joined else { return }
        joined = true
        stopping.store(true, ordering: .releasing)
        var one: UInt8 = 1
        _ = write(wakeWriter, &one, 1)
        while sem_wait(done) != 0 && errno == EINTR {}
        close(wake)
        close(wakeWriter)
        sem_destroy(done)
        done.deallocate()
    }
}

extension LVSD {
    /// Step 4b, right after the VIP filter: the first heartbeat, then one every timeout/4
    /// (`--orphan-timeout`); stopped first at a stop, or by the undo steps.
    func startOrphanHeartbeat() throws {
        let h = OrphanHeartbeat(timeoutSeconds: try options.validatedOrphanTimeout(), heartbeat: dataPlane.heartbeat, guardTable: guardTable, logger: logger)
        try h.start()
        undo.add { h.stop() }
        orphanHeartbeat = h
    }
}

extension DaemonOptions {
    /// `--orphan-timeout` in seconds: 0 (never) or `OrphanHeartbeat.minimumTimeout` to
    /// `maximumTimeout`; else an error naming the option.
    public func validatedOrphanTimeout() throws -> Double {
        let t = orphanTimeout
        guard t == 0 || (OrphanHeartbeat.minimumTimeout...OrphanHeartbeat.maximumTimeout).contains(t) else {
            throw ServerError("--orphan-timeout must be 0 (never) or from \(OrphanHeartbeat.minimumTimeout) to \(Int(OrphanHeartbeat.maximumTimeout)) seconds, got \(t)")
        }
        return t
    }

    /// The nftables guard's `alive` timeout in ms (0: none).
    func orphanTimeoutMs() throws -> Int { Int((try validatedOrphanTimeout() * 1000).rounded()) }
}
