import LVSModel

/// The full resync (lvsd's own addition to the kernel's protocol): a backup daemon that starts
/// asks for the table (`SyncProtocol.resyncRequest`), and a master daemon with its syncid sends
/// its whole table, its own connections and templates, paced and coalesced:
/// at most one resync runs; a request that comes while one runs, or sooner than
/// `SyncRule.resyncInterval` after the last one started, queues one more (only one); further
/// requests are refused and counted. So a flood of requests costs at most one table per interval.

extension SyncRule {
    /// At least this long between the starts of two full resyncs (ticks: 5 s).
    public static let resyncInterval: UInt32 = 5 * Engine.ticksPerSecond
    /// Resync datagrams sent per second at most (about 1.5 MB/s at the default sync_maxlen).
    public static let resyncDatagramsPerSecond: UInt32 = 1000
    /// Hash buckets walked per step, and steps per call, while a resync runs: bounds the time
    /// under the engine lock (about a quarter of a millisecond per step on empty buckets) and
    /// still walks lvsd's default 4 Mi-entry table (2 Mi buckets) in 16 calls, a third of a second.
    static let resyncBucketsPerStep = 32768
    static let resyncStepsPerCall = 4
}

/// What full-resync requests did on the master (for status and metrics).
public struct ResyncCounters: Sendable, Hashable {
    /// Requests with the master's syncid.
    public var requests = 0
    /// Full resyncs started.
    public var started = 0
    /// Requests that queued a resync behind the running one (or the interval).
    public var queued = 0
    /// Requests refused: one resync already queued.
    public var refused = 0
    /// Requests for another syncid (ignored).
    public var otherSyncID = 0
    /// Datagrams sent by full resyncs.
    public var datagrams = 0
    /// Entries sent by full resyncs.
    public var entries = 0

    public init() {}

    /// (name, value) pairs for status lines and metrics labels.
    public var named: [(String, Int)] {
        [("resync-requests", requests), ("resync-started", started), ("resync-queued", queued), ("resync-refused", refused),
         ("resync-other-syncid", otherSyncID), ("resync-datagrams", datagrams), ("resync-entries", entries)]
    }
}

/// A full resync in progress: which table (templates first, then each shard's), where in it,
/// the message being filled, and when datagrams were last released.
final class ResyncWalk {
    /// 0: the template table; 1...: shard `table - 1`.
    var table = 0
    var bucket: Int? = 0
    var builder: SyncMessageBuilder
    var pending: [SyncConnection] = []
    var lastRelease: UInt32
    /// Datagrams allowed but not sent yet (fractions of the rate carried over).
    var credit: UInt32 = 1

    init(_ config: SyncDaemonSnapshot, tick: UInt32) {
        builder = SyncMessageBuilder(syncID: config.syncID, maxLength: Int(config.maxLength))
        lastRelease = tick
    }
}

/// How the master took a full-resync request.
public enum ResyncAnswer: Sendable, Hashable {
    case started, queued, refused
    /// No master daemon runs, or the request is for another syncid.
    case ignored
}

extension Engine {
    /// A full-resync request for `syncID` reached the master daemon.
    @discardableResult
    public func requestResync(syncID: UInt8, now: UInt64) -> ResyncAnswer {
        let t = Self.tick(now)
        return lock.withLock {
            guard let m = syncMaster else { return .ignored }
            guard syncID == m.config.syncID else { m.resyncCounters.otherSyncID += 1; return .ignored }
            m.resyncCounters.requests += 1
            if startResyncIfDue(m, tick: t) { return .started }
            if m.resyncQueued { m.resyncCounters.refused += 1; return .refused }
            m.resyncQueued = true
            m.resyncCounters.queued += 1
            return .queued
        }
    }

    /// What full-resync requests did since the master daemon started (zero when none runs).
    public var resyncCounters: ResyncCounters { lock.withLock { syncMaster?.resyncCounters ?? ResyncCounters() } }

    /// Whether a full resync is running or queued on the master.
    public var resyncInProgress: Bool { lock.withLock { syncMaster.map { $0.resync != nil || $0.resyncQueued } ?? false } }

    /// Starts a resync when none runs and the interval since the last start has passed. Under the lock.
    func startResyncIfDue(_ m: SyncMasterState, tick t: UInt32) -> Bool {
        guard m.resync == nil else { return false }
        if let last = m.lastResyncStart, t &- last < SyncRule.resyncInterval { return false }
        m.resync = ResyncWalk(m.config, tick: t)
        m.lastResyncStart = t
        m.resyncCounters.started += 1
        return true
    }

    /// Appends the datagrams the rate allows now to `out`: walks the tables as far as needed.
    /// Under the lock, from `takeSyncMessages`.
    func continueResync(_ m: SyncMasterState, tick t: UInt32, into out: inout [[UInt8]]) {
        if m.resync == nil && m.resyncQueued, startResyncIfDue(m, tick: t) { m.resyncQueued = false }
        guard let w = m.resync else { return }
        let elapsed = t &- w.lastRelease
        if elapsed > 0 {
            let perSecond = SyncRule.resyncDatagramsPerSecond
            w.credit = min(perSecond / 10, w.credit &+ elapsed * perSecond / Self.ticksPerSecond)
            w.lastRelease = t
        }
        var walked = 0
        while w.credit > 0 {
            // Fill the message from what was walked; walk further when that runs out.
            if !w.pending.isEmpty {
                let c = w.pending.removeLast()
                if !w.builder.fits(c) { emit(w, m, into: &out) }
                w.builder.append(c)
                m.resyncCounters.entries += 1
                continue
            }
            guard let bucket = w.bucket, walked < SyncRule.resyncBucketsPerStep * SyncRule.resyncStepsPerCall else {
                if w.bucket == nil {
                    // The end of this table: on to the next, or done.
                    if w.table < shards.count {
                        w.table += 1
                        w.bucket = 0
                        continue
                    }
                    if !w.builder.isEmpty { emit(w, m, into: &out) }
                    m.resync = nil
                }
                return
            }
            guard w.table <= shards.count else { m.resync = nil; return } // (workers never go; defensive)
            let table = w.table == 0 ? templates : shards[w.table - 1].table
            w.bucket = table.forEachLive(fromBucket: bucket, entries: Int.max, buckets: SyncRule.resyncBucketsPerStep) { _, e in
                guard let c = resyncEntry(e) else { return }
                w.pending.append(c)
            }
            walked += SyncRule.resyncBucketsPerStep
        }
    }

    private func emit(_ w: ResyncWalk, _ m: SyncMasterState, into out: inout [[UInt8]]) {
        out.append(w.builder.take())
        w.credit -= 1
        m.resyncCounters.datagrams += 1
    }

    /// An entry of this director's own table in message form; nil for what a full resync leaves
    /// out: dead entries, templates received from a peer and not used here, TCP connections in
    /// states the kernel does not sync (they follow by the usual rule).
    func resyncEntry(_ e: ConnectionEntry) -> SyncConnection? {
        if e.isDead { return nil }
        if e.isTemplate {
            if e.stateFlags & ConnectionEntry.flagSyncedTemplate != 0 { return nil }
        } else if e.proto == 6 && SyncRule.tcpStates & (1 << UInt16(e.state)) == 0 {
            return nil
        }
        return syncConnection(e)
    }
}
