#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Fixed arrays of relaxed atomics, shared between the control side and per-worker shards.
///
/// Raw pointers (trivial values, no reference counting) to memory allocated once and never moved.
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
public final class EngineLock: @unchecked Sendable {
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
