import Dispatch
import Foundation
import Glibc
import LVSCore
import LVSDataPlane
import Logging
import Synchronization

/// A worker's part of a checkpoint (`StateCheckpoint`): asked for by the checkpoint thread, walked
/// on the worker's own thread in its ticks (`EngineShard.exportState`, a slice per lock hold),
/// handed back whole.
///
/// `@unchecked Sendable`: `export` is used by the worker's thread only; `requested` is atomic,
/// `result` behind its Mutex.
final class CheckpointSlot: @unchecked Sendable {
    /// Worker time per tick a checkpoint may take (ticks are 10 ms apart: at most 5 % of the
    /// worker while one runs; a slice holds the engine lock for `StateExport.defaultSliceEntries`).
    static let budgetPerTick: UInt64 = 500_000
    /// How often a waiting checkpoint looks whether lvsd stops.
    static let cancelCheck: DispatchTimeInterval = .milliseconds(100)
    private let requested = Atomic<Bool>(false)
    private var export: StateExport?
    private let result = Mutex<[SyncConnection]?>(nil)
    private let ready = DispatchSemaphore(value: 0)

    /// From the worker's tick: one relaxed load unless a checkpoint is asked for or under way.
    @inline(__always)
    func tick(_ shard: EngineShard, now: UInt64) {
        guard export != nil || requested.load(ordering: .relaxed) else { return }
        walk(shard, now: now)
    }

    private func walk(_ shard: EngineShard, now: UInt64) {
        if export == nil {
            requested.store(false, ordering: .relaxed)
            export = StateExport()
        }
        let started = monotonicNanoseconds()
        while !export!.isComplete && monotonicNanoseconds() &- started < Self.budgetPerTick {
            shard.exportState(&export!, now: now)
        }
        guard export!.isComplete else { return }
        let entries = export!.entries
        export = nil
        result.withLock { $0 = entries }
        ready.signal()
    }

    /// From the checkpoint thread: the worker's entries, or nil when it did not answer within
    /// `timeout` or `cancelled` said so (checked every `cancelCheck`); a late answer is taken by
    /// the next call, a complete walk too.
    func collect(timeout: Duration, cancelled: () -> Bool) -> [SyncConnection]? {
        requested.store(true, ordering: .relaxed)
        let clock = ContinuousClock(), deadline = clock.now + timeout
        while ready.wait(timeout: .now() + Self.cancelCheck) != .success {
            if cancelled() || clock.now >= deadline { return nil }
        }
        return result.withLock { r in
            defer { r = nil }
            return r
        }
    }
}

/// lvsd --checkpoint-interval (docs/restart.md): every interval the restart state file is written
/// from a snapshot taken while the data plane runs, so that after a crash (kill -9, OOM) the next
/// lvsd restores what the last checkpoint held. The workers walk their own tables in slices
/// (`CheckpointSlot`); the file is a temporary one renamed over the state file, as at a stop.
///
/// `@unchecked Sendable`: the fields are constants; `thread` is set by `start` and cleared by
/// `stop`, both on the starting / stopping task; `checkers` is behind its Mutex.
final class StateCheckpoint: @unchecked Sendable {
    /// The default `--checkpoint-interval`, in seconds.
    static let defaultInterval = 5.0
    /// How long a checkpoint waits for a worker's walk.
    static let workerWait: Duration = .seconds(30)
    let director: Director
    let path: String
    let intervalNanoseconds: UInt64
    let logger: Logger
    private var thread: PeriodicThread?
    /// Set by `stop`: a checkpoint waiting for a worker gives up at once.
    private let stopping = Atomic<Bool>(false)
    /// Checkpoints written (the first one is logged at info, the others at debug).
    private let written = Atomic<UInt64>(0)
    /// The health checkers' states as last read from the monitor (an actor: read by a task of
    /// lvsd's, not from the checkpoint thread), written into each checkpoint.
    let checkers = Mutex<[CarriedCheckerState]>([])

    init(director: Director, path: String, intervalSeconds: Double, logger: Logger) {
        self.director = director
        self.path = path
        self.intervalNanoseconds = UInt64(intervalSeconds * 1e9)
        self.logger = logger
    }

    func start() throws {
        // The first one after an interval: the state just restored is in the table already.
        let first = monotonicNanoseconds() + intervalNanoseconds
        thread = try PeriodicThread(name: "lvsd-checkpoint", periodNanoseconds: intervalNanoseconds) { [self] in
            if monotonicNanoseconds() >= first { write() }
        }
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        thread?.stop()
        thread = nil
    }

    /// One checkpoint: every worker's table, then the shared tables, encoded and renamed into place.
    func write() {
        let started = monotonicNanoseconds()
        var entries: [SyncConnection] = []
        for (i, w) in director.workers.enumerated() {
            guard let part = w.checkpoint.collect(timeout: Self.workerWait, cancelled: { stopping.load(ordering: .relaxed) }) else {
                if !stopping.load(ordering: .relaxed) { logger.warning("checkpoint skipped: worker \(i) did not walk its table in time") }
                return
            }
            entries += part
        }
        entries += director.engine.exportSharedState(now: monotonicNanoseconds())
        let walked = monotonicNanoseconds()
        let contents = StateFileContents(entries: entries, counters: director.engine.exportCounters(),
                                         checkers: checkers.withLock { $0 })
        let bytes = StateFile.encode(contents)
        do {
            try StateStore.replace(path, with: bytes, temporary: path + ".checkpoint")
        } catch {
            logger.error("checkpoint not written: \(error)", metadata: ["file": "\(path)"])
            return
        }
        let n = written.add(1, ordering: .relaxed).newValue
        logger.log(level: n == 1 ? .info : .debug, "restart state checkpoint written", metadata: [
            "file": "\(path)", "entries": "\(entries.count)", "bytes": "\(bytes.count)",
            "walk_ms": "\((walked - started) / 1_000_000)", "total_ms": "\((monotonicNanoseconds() - started) / 1_000_000)"])
    }
}

extension LVSD {
    /// After start-up (the restored state is in the table): a checkpoint every
    /// `--checkpoint-interval` seconds while lvsd runs (none with 0 or without a state file).
    func startCheckpoint() throws -> StateCheckpoint? {
        let interval = try options.validatedCheckpointInterval()
        guard interval > 0, let path = options.statePath else { return nil }
        let c = StateCheckpoint(director: director, path: path, intervalSeconds: interval, logger: logger)
        try c.start()
        // The checkers' states: read from the monitor every interval, for the next checkpoint.
        let reader = Task { [monitor] in
            while !Task.isCancelled {
                if let states = await monitor?.carriedCheckerStates() {
                    c.checkers.withLock { $0 = states.map { CarriedCheckerState(label: $0.label, up: $0.up) } }
                }
                try? await Task.sleep(for: .seconds(interval))
            }
        }
        undo.add { reader.cancel(); c.stop() }
        logger.info("restart state checkpoint every \(interval) s", metadata: ["file": "\(path)"])
        return c
    }
}

extension DaemonOptions {
    /// The longest `--checkpoint-interval` (a day), in seconds; the shortest non-zero one.
    static let maximumCheckpointInterval = 86_400.0
    static let minimumCheckpointInterval = 0.1

    /// `--checkpoint-interval` in seconds: 0 (off) or 0.1 to a day; else an error naming the option.
    public func validatedCheckpointInterval() throws -> Double {
        let t = checkpointInterval
        guard t == 0 || (Self.minimumCheckpointInterval...Self.maximumCheckpointInterval).contains(t) else {
            throw ServerError("--checkpoint-interval must be 0 (off) or from \(Self.minimumCheckpointInterval) to \(Int(Self.maximumCheckpointInterval)) seconds, got \(t)")
        }
        return t
    }
}
