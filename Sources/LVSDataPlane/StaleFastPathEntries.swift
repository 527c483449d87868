import CLVSXDP
import LVSCore
import Synchronization

/// Entries of an adopted `conns` map that this lvsd does not know (`kept_unknown` after a crash:
/// connections newer than the last checkpoint; docs/restart.md). They keep forwarding in the
/// program, but no worker has them in its bookkeeping and their packets never reach lvsd, so
/// this set is what removes them:
/// - expiry: worker 0's `FastPathBook` checks them (a slice per tick, within a CPU budget) and
///   deletes an entry idle for longer than its protocol's timeout (TCP ESTABLISHED, UDP);
/// - replacement: a new connection lvsd schedules on one of their 4-tuples (or a FIN/RST it sees
///   for one) deletes the stale entry, with its NAT reply entry, before the handshake goes on;
/// - an entry gone from the map leaves the set.
/// When the set is empty, `isActive` is false and nothing costs anything any more.
///
/// Shared by every worker of a data plane (in `FastPathCounters`): the set is behind a `Mutex`,
/// the flag and counters are atomics.
public final class StaleFastPathEntries: Sendable {
    private struct State {
        var keys: Set<ConnectionKey> = []
        /// When they were adopted (CLOCK_MONOTONIC ns): an entry the program has not forwarded
        /// since it was written (last seen 0) is idle from then on.
        var adoptedAt: UInt64 = 0
    }
    private let state = Mutex(State())
    private let active = Atomic<Bool>(false)
    private let expiredCount = Atomic<UInt64>(0)
    private let replacedCount = Atomic<UInt64>(0)
    /// expired + replaced as last reported.
    private let reportedCount = Atomic<UInt64>(0)
    private let report: (@Sendable (Report) -> Void)?

    /// What the janitor reports (for the log) after a pass that changed something.
    public struct Report: Sendable, Equatable {
        public var expired: UInt64
        public var replaced: UInt64
        public var remaining: Int
    }

    /// `report` is called (on worker 0's thread) after a check that found entries expired or
    /// replaced since the last call.
    public init(report: (@Sendable (Report) -> Void)? = nil) {
        self.report = report
    }

    /// Takes `keys` (the adopted entries lvsd does not know) at time `now`.
    public func adopt(_ keys: some Sequence<ConnectionKey>, now: UInt64) {
        state.withLock { s in
            s.keys.formUnion(keys)
            s.adoptedAt = now
            active.store(!s.keys.isEmpty, ordering: .relaxed)
        }
    }

    /// Whether stale entries remain (one relaxed load).
    public var isActive: Bool { active.load(ordering: .relaxed) }
    /// Stale entries that remain.
    public var count: Int { state.withLock { $0.keys.count } }
    /// Entries deleted because they were idle for longer than their timeout.
    public var expired: UInt64 { expiredCount.load(ordering: .relaxed) }
    /// Entries deleted because lvsd saw a new connection (or a FIN/RST) on their 4-tuple.
    public var replaced: UInt64 { replacedCount.load(ordering: .relaxed) }

    /// Calls `report` if entries were expired or replaced since its last call (two relaxed loads
    /// when nothing changed).
    func reportProgress() {
        let e = expired, r = replaced
        guard e &+ r != reportedCount.load(ordering: .relaxed) else { return }
        reportedCount.store(e &+ r, ordering: .relaxed)
        report?(Report(expired: e, replaced: r, remaining: count))
    }

    /// For `lvsadm daemon status`: nil until entries were adopted.
    public var statusLine: String? {
        let (n, adopted) = state.withLock { ($0.keys.count, $0.adoptedAt != 0) }
        guard adopted else { return nil }
        return "\(n) stale entries of the previous lvsd, \(expired) expired, \(replaced) replaced"
    }

    /// The keys as they are now (the janitor checks them a slice at a time).
    func snapshot() -> [ConnectionKey] { state.withLock { Array($0.keys) } }

    /// `key` is lvsd's own now (a new connection, or an entry it is about to write): a stale
    /// entry of it is deleted with its NAT reply entry. True if there was one.
    @discardableResult
    func replace<Map: ConnectionMap>(_ key: ConnectionKey, in map: Map) -> Bool {
        let removed = state.withLock { s -> Bool in
            guard s.keys.remove(key) != nil else { return false }
            var k = XDPConnMap.key(key)
            let existed = Self.deleteEntries(&k, in: map)
            if s.keys.isEmpty { active.store(false, ordering: .relaxed) }
            return existed
        }
        if removed { replacedCount.add(1, ordering: .relaxed) }
        return removed
    }

    /// What `expire` did with a key.
    enum Outcome: Equatable { case kept, expired, gone }

    /// Deletes `key`'s entry when the program has not forwarded a packet of it for longer than
    /// `timeout` ns at `now`; a key whose entry is gone (or no longer stale) leaves the set.
    func expire<Map: ConnectionMap>(_ key: ConnectionKey, in map: Map, now: UInt64, timeout: UInt64) -> Outcome {
        let outcome = state.withLock { s -> Outcome in
            guard s.keys.contains(key) else { return .gone }
            var k = XDPConnMap.key(key)
            var result = Outcome.gone
            if let v = map.get(&k) {
                let seen = v.last_seen != 0 ? v.last_seen : s.adoptedAt
                guard now > seen, now - seen > timeout else { return .kept }
                _ = Self.deleteEntries(&k, in: map, value: v)
                result = .expired
            }
            s.keys.remove(key)
            if s.keys.isEmpty { active.store(false, ordering: .relaxed) }
            return result
        }
        if outcome == .expired { expiredCount.add(1, ordering: .relaxed) }
        return outcome
    }

    /// Deletes the `conns` entry `k` and, for a NAT connection, its `nat_replies` entry. False if
    /// there was no entry.
    private static func deleteEntries<Map: ConnectionMap>(_ k: inout clvs_conn_key, in map: Map,
                                                          value: clvs_conn_value? = nil) -> Bool {
        guard let v = value ?? map.get(&k) else { return false }
        map.delete(&k)
        if v.flags & CLVS_CONN_NAT != 0 {
            var r = XDPConnMap.replyKey(conn: k, value: v)
            map.deleteReply(&r)
        }
        return true
    }
}
