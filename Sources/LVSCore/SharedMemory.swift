import Glibc
import Synchronization

/// Fixed arrays of relaxed atomics, shared between the control side and per-worker shards.
///
/// Raw pointers (trivial values, no reference counting) to memory allocated once and never moved.
///
/// `@unchecked Sendable` (a raw pointer is not Sendable): every word is an `Atomic<UInt64>`, and
/// every access goes through `load`, `store`, `bump` or `add`, so any thread may use a copy.
/// `bump` is a load and a store: only the one thread that owns a word (its shard) bumps it.
/// `deallocate` runs once, after every thread using the words has stopped.
public struct AtomicWords: @unchecked Sendable {
    @usableFromInline let base: UnsafeMutablePointer<Atomic<UInt64>>
    public let count: Int

    public init(count: Int) {
        self.count = count
        base = .allocate(capacity: count)
        for i in 0..<count { (base + i).initialize(to: Atomic(0)) }
    }

    public func deallocate() {
        base.deinitialize(count: count)
        base.deallocate()
    }

    @inlinable @inline(__always) public func load(_ i: Int) -> UInt64 { base[i].load(ordering: .relaxed) }
    @inlinable @inline(__always) public func store(_ i: Int, _ v: UInt64) { base[i].store(v, ordering: .relaxed) }
    /// Single-writer increment: a load and a store, no read-modify-write instruction.
    @inlinable @inline(__always) public func bump(_ i: Int, by v: UInt64) {
        base[i].store(base[i].load(ordering: .relaxed) &+ v, ordering: .relaxed)
    }
    /// Multi-writer add (atomic read-modify-write).
    @inlinable @inline(__always) public func add(_ i: Int, _ v: Int64) {
        base[i].wrappingAdd(UInt64(bitPattern: v), ordering: .relaxed)
    }
    @inlinable @inline(__always) public func signed(_ i: Int) -> Int64 { Int64(bitPattern: load(i)) }
}

/// A plain pthread mutex: taken on the new-connection, expiry and control paths, never on the
/// path of an existing connection.
public final class EngineLock {
    /// The mutex itself, for holders that must not touch the reference (the packet path).
    public let mutex: UnsafeMutablePointer<pthread_mutex_t>
    public init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }
    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }
    @inline(__always) public func lock() { pthread_mutex_lock(mutex) }
    @inline(__always) public func unlock() { pthread_mutex_unlock(mutex) }
    @inline(__always) public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

// MARK: Layouts of the word arrays
//
// Named offsets into the arrays of `AtomicWords` (each index is a multiply-add of constants the
// compiler folds: no cost on the packet path). Slots are below 2^32, so the index arithmetic
// cannot overflow and wraps (`&*`, `&+`) instead of checking.

/// The words of a shard's `counters`: the engine-wide counts, then one word per `DropReason`.
@usableFromInline
enum ShardCounter: Int {
    case forwarded = 0, passed, replies, newConnections
    /// Frames kept until a real server's MAC is known (`EngineShard.hold`; not reported).
    case held
    /// drop_entry evictions; secure_tcp short SYN_RECV timeouts.
    case dropEntryEvictions, secureTCPShortened
    /// The first per-`DropReason` word (word 7 is unused).
    @usableFromInline static let dropBase = 8
    /// Words in a shard's `counters`.
    static var count: Int { dropBase + DropReason.allCases.count }
    /// The word counting drops for `reason`.
    @inlinable @inline(__always) static func drop(_ reason: DropReason) -> Int { dropBase &+ Int(reason.rawValue) }
}

/// One service's or destination's statistics in a shard's `serviceCounters` / `destCounters`
/// (single writer), `width` words per slot.
@usableFromInline
enum StatsWord: Int {
    case conns = 0, inPackets, outPackets, inBytes, outBytes
    @usableFromInline static let width = 5
    /// The word `word` of slot `slot`.
    @inlinable @inline(__always) static func index(_ slot: Int, _ word: StatsWord) -> Int { slot &* width &+ word.rawValue }
}

/// One destination's connection counts in `Engine.destCounts` (multi-writer), `width` per slot.
@usableFromInline
enum DestCount: Int {
    case active = 0, inactive, persistent
    @usableFromInline static let width = 3
    /// The count `count` of destination slot `slot`.
    @inlinable @inline(__always) static func index(_ slot: UInt32, _ count: DestCount) -> Int { Int(slot) &* width &+ count.rawValue }
    /// Where an entry counts: `.inactive` or `.active`.
    @inlinable @inline(__always) static func connection(inactive: Bool) -> DestCount { inactive ? .inactive : .active }
}

extension AtomicWords {
    /// In `Engine.destCounts`: one connection of destination `slot` moves from count `from` to `to`.
    @inlinable @inline(__always) func moveConnection(_ slot: UInt32, from: DestCount, to: DestCount) {
        add(DestCount.index(slot, from), -1)
        add(DestCount.index(slot, to), 1)
    }
}

/// One interface's words in `Engine.interfaceTable`: its ifindex and its MAC (0: slot unused).
@usableFromInline
enum InterfaceWord: Int {
    case ifindex = 0, mac
    @usableFromInline static let width = 2
    /// The word `word` of interface slot `slot`.
    @inlinable @inline(__always) static func index(_ slot: Int, _ word: InterfaceWord) -> Int { slot &* width &+ word.rawValue }
}

/// `Engine.vipFilter`: a 256-bit filter of the VIPs (`bitWords` words, bit `Engine.filterBit`),
/// then one word: non-zero while fwmark rules exist (every address may then be virtual).
@usableFromInline
enum VIPFilterWord {
    @usableFromInline static let bitWords = 4
    @usableFromInline static let markRules = 4
    @usableFromInline static let count = 5
}

/// `Engine.ownershipFilter`: word `count` holds how many managed VIP addresses this director does
/// not own (0: it owns every address, and the packet path stops at that one load); then a
/// 1024-bit filter of those addresses (`bitWords` words from `firstBitWord`, bit
/// `Engine.ownershipBit`). A frame whose address has its bit set is checked exactly, under the lock.
@usableFromInline
enum OwnershipWord {
    @usableFromInline static let count = 0
    @usableFromInline static let firstBitWord = 1
    @usableFromInline static let bitWords = 16
    @usableFromInline static let words = firstBitWord + bitWords
    /// The word holding filter bit `bit`, and the bit's mask in it.
    @inlinable @inline(__always) static func word(ofBit bit: Int) -> Int { firstBitWord &+ bit >> 6 }
    @inlinable @inline(__always) static func mask(ofBit bit: Int) -> UInt64 { 1 << UInt64(bit & 63) }
}
