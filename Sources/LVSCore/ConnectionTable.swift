import Glibc
import LVSModel

/// One connection or persistence template: 64 bytes, no references.
///
/// The kernel spends about 300 bytes on a `struct ip_vs_conn`; here the service is implied by
/// the destination slot and the expiry timer is a 32-bit deadline on a timer wheel (refreshes
/// that move the deadline later are lazy; moves to an earlier deadline re-slot in O(1)).
public struct ConnectionEntry: Sendable {
    /// Client address words (host order, IPv4-mapped for IPv4).
    public var c0: UInt32, c1: UInt32, c2: UInt32, c3: UInt32
    /// Virtual address words (for fwmark templates: the mark as an IPv4-mapped address).
    public var v0: UInt32, v1: UInt32, v2: UInt32, v3: UInt32
    /// Destination slot (low bits, `destMask`) and the connection's forwarding method (high 2
    /// bits, `methodShift`; DR is 0, so a DR entry's word is its slot): see `dest` and `method`.
    public var destWord: UInt32
    /// Normal entry: controlling template index + 1 (0 = none). Template: number of controlled entries.
    public var control: UInt32
    /// Deadline in engine ticks.
    public var expires: UInt32
    /// Next entry in the same wheel slot (index + 1, 0 = end).
    public var wheelNext: UInt32
    /// Previous entry in the wheel slot (index + 1), or `0x8000_0000 | slot` at the head of slot.
    public var wheelPrev: UInt32
    /// Next entry in the same hash bucket, or in the free list (index + 1, 0 = end).
    public var hashNext: UInt32
    public var cport: UInt16
    public var vport: UInt16
    /// Input packets seen (the kernel's `in_pkts`, for the sync daemon's sending rule); wraps at
    /// `packetCounterWrap`, a multiple of sync_period, so `inPackets % 50` stays exact.
    /// The destination port is not stored: see `Engine.destinationPort(of:)`.
    public var inPackets: UInt16
    public var proto: UInt8
    /// Low 4 bits: TCP state (0 for UDP/templates); high 4 bits: `ConnectionEntry.flag*`.
    public var stateFlags: UInt8

    public static let flagTemplate: UInt8 = 0x10
    /// Counted as inactive on its destination.
    public static let flagInactive: UInt8 = 0x20
    /// Unhashed and unbound; waiting for the wheel to free it.
    public static let flagDead: UInt8 = 0x40
    /// Template: a controlled TCP connection reached ESTABLISHED.
    public static let flagAssured: UInt8 = 0x80

    public static let packetCounterWrap: UInt16 = 65000

    /// `destWord`'s slot bits: slots stay far below (at most 65,536 destinations).
    public static let destMask: UInt32 = 0x3FFF_FFFF
    /// `destWord`'s method bits (`ConnectionMethod`), above the slot.
    public static let methodShift: UInt32 = 30
    public static let methodMask: UInt32 = ~destMask

    /// A `destWord`: destination slot `slot`, sent by `method`.
    @inlinable @inline(__always) public static func destWord(_ slot: UInt32, _ method: ConnectionMethod) -> UInt32 {
        slot & destMask | method.rawValue << methodShift
    }

    /// The method bits of a `destWord`.
    @inlinable @inline(__always) public static func method(ofDestWord w: UInt32) -> ConnectionMethod {
        ConnectionMethod(rawValue: w >> methodShift) ?? .directRoute
    }

    /// Destination slot.
    @inlinable public var dest: UInt32 {
        get { destWord & Self.destMask }
        set { destWord = destWord & Self.methodMask | newValue & Self.destMask }
    }

    /// How the connection's packets reach its real server: its destination's method when it was
    /// created (the kernel's `ip_vs_bind_dest`); an edit of the destination changes new
    /// connections' only.
    @inlinable public var method: ConnectionMethod {
        get { Self.method(ofDestWord: destWord) }
        set { destWord = destWord & Self.destMask | newValue.rawValue << Self.methodShift }
    }

    @inlinable public var state: UInt8 {
        get { stateFlags & 0x0F }
        set { stateFlags = (stateFlags & 0xF0) | (newValue & 0x0F) }
    }
    @inlinable public var isTemplate: Bool { stateFlags & Self.flagTemplate != 0 }
    @inlinable public var isDead: Bool { stateFlags & Self.flagDead != 0 }
    @inlinable public var isInactive: Bool { stateFlags & Self.flagInactive != 0 }

    public var client: IPAddress {
        IPAddress(high: UInt64(c0) << 32 | UInt64(c1), low: UInt64(c2) << 32 | UInt64(c3))
    }
    public var virtualAddress: IPAddress {
        IPAddress(high: UInt64(v0) << 32 | UInt64(v1), low: UInt64(v2) << 32 | UInt64(v3))
    }
}

/// The lookup key of a connection: (protocol, client address and port, virtual address and port).
public struct ConnectionKey: Sendable, Hashable {
    public var proto: UInt8
    public var client: IPAddress
    public var clientPort: UInt16
    public var virtualAddress: IPAddress
    public var virtualPort: UInt16

    @inlinable public init(proto: UInt8, client: IPAddress, clientPort: UInt16, virtualAddress: IPAddress, virtualPort: UInt16) {
        self.proto = proto
        self.client = client
        self.clientPort = clientPort
        self.virtualAddress = virtualAddress
        self.virtualPort = virtualPort
    }
}

/// The packet path's view of a connection table: raw pointers and constants only, so using it
/// involves no reference counting.
public struct ConnectionTableView {
    @usableFromInline let entries: UnsafeMutablePointer<ConnectionEntry>
    @usableFromInline let buckets: UnsafeMutablePointer<UInt32>
    @usableFromInline let bucketMask: UInt32
    /// The secret key of the bucket hash.
    @usableFromInline let key: SipHashKey
    @usableFromInline let wheel: UnsafeMutablePointer<UInt32>
    /// The wheel slot number (absolute, in slot units) processed last.
    @usableFromInline let cursor: UnsafeMutablePointer<UInt32>
    /// NAT connections by their reply's tuple (`ReplyIndex.swift`).
    @usableFromInline let replies: ReplyIndexView

    @inlinable public subscript(index: UInt32) -> ConnectionEntry {
        unsafeAddress { UnsafePointer(entries + Int(index)) }
        nonmutating unsafeMutableAddress { entries + Int(index) }
    }

    /// The bucket of a key: SipHash-1-3 (the kernel's `hsiphash` on 64-bit machines) keyed with
    /// this table's secret 128-bit key, over the client address and port, the virtual port, the
    /// low word of the virtual address and the protocol, packed without overlap (13 bytes for an
    /// IPv4 client, 25 for IPv6). Without the key nobody can choose keys that share a bucket.
    @inlinable @inline(__always)
    func bucket(proto: UInt8, client: IPAddress, cport: UInt16, vlow: UInt32, vport: UInt16) -> UInt32 {
        let h: UInt64
        if client.isIPv4 {
            let m0 = client.low << 32 | UInt64(vlow)
            h = key.sipHash13(m0, last: Self.ipv4MessageLength | UInt64(proto) << 32 | UInt64(cport) << 16 | UInt64(vport))
        } else {
            let m2 = UInt64(vlow) << 32 | UInt64(cport) << 16 | UInt64(vport)
            h = key.sipHash13(client.high, client.low, m2, last: Self.ipv6MessageLength | UInt64(proto))
        }
        return UInt32(truncatingIfNeeded: h) & bucketMask
    }

    /// Message lengths in the top byte of SipHash's final word: they keep IPv4 and IPv6 apart.
    @usableFromInline static let ipv4MessageLength: UInt64 = 13 << 56
    @usableFromInline static let ipv6MessageLength: UInt64 = 25 << 56

    /// Finds a live entry (normal or template) with exactly this key.
    @inlinable @inline(__always)
    public func lookup(_ k: ConnectionKey, template: Bool) -> UInt32? {
        lookup(k, template: template,
               bucket: bucket(proto: k.proto, client: k.client, cport: k.clientPort, vlow: k.virtualAddress.words.3, vport: k.virtualPort))
    }

    /// `lookup` in a bucket already computed for this key (by the batch prefetch).
    @inlinable @inline(__always)
    func lookup(_ k: ConnectionKey, template: Bool, bucket: UInt32) -> UInt32? {
        let c = k.client.words, v = k.virtualAddress.words
        var i = buckets[Int(bucket)]
        let ports = UInt32(k.clientPort) | UInt32(k.virtualPort) << 16
        while i != 0 {
            let e = entries + Int(i - 1)
            if UInt32(e.pointee.cport) | UInt32(e.pointee.vport) << 16 == ports && e.pointee.c3 == c.3 && e.pointee.v3 == v.3
                && e.pointee.proto == k.proto && e.pointee.c2 == c.2 && e.pointee.v2 == v.2
                && e.pointee.c0 == c.0 && e.pointee.c1 == c.1 && e.pointee.v0 == v.0 && e.pointee.v1 == v.1
                && e.pointee.isTemplate == template {
                return i - 1
            }
            i = e.pointee.hashNext
        }
        return nil
    }

    /// Puts an entry on the wheel slot of its deadline (or the farthest slot, to be revisited).
    @inlinable func schedule(_ index: UInt32) {
        let deadlineSlot = entries[Int(index)].expires / ConnectionTable.ticksPerSlot
        var delta = deadlineSlot &- cursor.pointee
        if Int32(bitPattern: delta) <= 0 { delta = 1 }
        if delta >= UInt32(ConnectionTable.wheelSlots) { delta = UInt32(ConnectionTable.wheelSlots - 1) }
        let slot = Int((cursor.pointee &+ delta) % UInt32(ConnectionTable.wheelSlots))
        let head = wheel[slot]
        entries[Int(index)].wheelNext = head
        entries[Int(index)].wheelPrev = 0x8000_0000 | UInt32(slot)
        if head != 0 { entries[Int(head - 1)].wheelPrev = index + 1 }
        wheel[slot] = index + 1
    }

    /// Takes an entry off its wheel slot in O(1).
    @inlinable func unschedule(_ index: UInt32) {
        let e = entries[Int(index)]
        if e.wheelPrev & 0x8000_0000 != 0 {
            wheel[Int(e.wheelPrev & 0x7FFF_FFFF)] = e.wheelNext
        } else {
            entries[Int(e.wheelPrev - 1)].wheelNext = e.wheelNext
        }
        if e.wheelNext != 0 { entries[Int(e.wheelNext - 1)].wheelPrev = e.wheelPrev }
    }

    /// Moves an entry whose deadline became earlier to the right wheel slot.
    @inlinable public func reschedule(_ index: UInt32) {
        unschedule(index)
        schedule(index)
    }
}

/// A bounded connection table: preallocated entries, chained hash buckets, and a timer wheel.
///
/// Memory: `capacity * 64` bytes of entries plus one 4-byte bucket per two entries plus a fixed
/// wheel: 66 bytes per connection. Pages are touched only when used.
/// When all entries are in use `insert` returns nil (the engine refuses the new connection and
/// counts it); existing connections are unaffected.
///
/// `@unchecked Sendable` (its storage is raw memory): a shard's table is created on the control
/// thread and then used by that shard's worker thread; other threads only look keys up and read
/// `count` under the engine lock (`Engine.connectionCount`, the sync backup's lookup), and every
/// change to the chains, the wheel or `count` (insert, expiry, removal) is made under that lock
/// too. The worker changes an entry's timer and state without the lock, never its key or links.
/// The engine's `templates` and `synced` tables are used under the engine lock only.
public final class ConnectionTable: @unchecked Sendable {
    public let capacity: Int
    public let view: ConnectionTableView
    @usableFromInline var entries: UnsafeMutablePointer<ConnectionEntry> { view.entries }
    @usableFromInline var buckets: UnsafeMutablePointer<UInt32> { view.buckets }
    @usableFromInline var bucketMask: UInt32 { view.bucketMask }
    @usableFromInline var wheel: UnsafeMutablePointer<UInt32> { view.wheel }
    @usableFromInline var wheelCursor: UInt32 {
        get { view.cursor.pointee }
        set { view.cursor.pointee = newValue }
    }
    /// Entries never used yet start here (so untouched pages stay unmapped).
    @usableFromInline var highWater: UInt32 = 0
    @usableFromInline var freeHead: UInt32 = 0
    public private(set) var count: Int = 0

    /// Timer wheel: `wheelSlots` lists, each `ticksPerSlot` ticks wide.
    public static let wheelSlots = 16384
    public static let ticksPerSlot: UInt32 = 10

    /// `key` keys the bucket hash: a secret random key in lvsd (see `EngineConfiguration.hashKey`),
    /// so nobody outside can aim keys at one bucket; a fixed one makes a test repeatable.
    /// `replyTotal`: an atomic word that counts the NAT connections of this table's reply index
    /// together with other tables' (the engine's, for its shards).
    public init(capacity: Int, key: SipHashKey = .fixedDefault, replyTotal: (AtomicWords, Int)? = nil) {
        precondition(capacity > 0 && capacity < Int(UInt32.max / 2), "connection table capacity out of range")
        self.capacity = capacity
        var b = 1
        while b * 2 < capacity { b <<= 1 }
        let entries = Self.mapZeroed(capacity * MemoryLayout<ConnectionEntry>.stride)
            .bindMemory(to: ConnectionEntry.self, capacity: capacity)
        let buckets = Self.mapZeroed(b * 4).bindMemory(to: UInt32.self, capacity: b)
        let wheel = UnsafeMutableRawPointer(calloc(Self.wheelSlots, 4)!).bindMemory(to: UInt32.self, capacity: Self.wheelSlots)
        let cursor = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
        cursor.initialize(to: 0)
        view = ConnectionTableView(entries: entries, buckets: buckets, bucketMask: UInt32(b - 1), key: key, wheel: wheel, cursor: cursor,
                                   replies: ReplyIndexView(capacity: capacity, bucketCount: b, total: replyTotal))
    }

    /// Anonymous zeroed memory, touched lazily, backed by transparent huge pages where the kernel
    /// allows (random lookups in a large table would otherwise miss the TLB on most packets).
    static func mapZeroed(_ bytes: Int) -> UnsafeMutableRawPointer {
        let size = (bytes + 0x1F_FFFF) & ~0x1F_FFFF
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            fatalError("connection table: cannot reserve \(size) bytes of memory")
        }
        _ = madvise(p, size, MADV_HUGEPAGE)
        return p
    }

    static func unmap(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        munmap(p, (bytes + 0x1F_FFFF) & ~0x1F_FFFF)
    }

    deinit {
        Self.unmap(view.entries, capacity * MemoryLayout<ConnectionEntry>.stride)
        Self.unmap(view.buckets, (Int(view.bucketMask) + 1) * 4)
        free(view.wheel)
        view.cursor.deallocate()
        view.replies.deallocate(capacity: capacity)
    }

    public var bucketCount: Int { Int(bucketMask) + 1 }

    /// Bytes reserved per connection: the entry plus its share of buckets.
    public var bytesPerConnection: Int {
        MemoryLayout<ConnectionEntry>.stride + (bucketCount * 4) / capacity
    }

    @inlinable public subscript(index: UInt32) -> ConnectionEntry {
        _read { yield entries[Int(index)] }
        _modify { yield &entries[Int(index)] }
    }

    @inlinable func bucket(proto: UInt8, client: IPAddress, cport: UInt16, vlow: UInt32, vport: UInt16) -> UInt32 {
        view.bucket(proto: proto, client: client, cport: cport, vlow: vlow, vport: vport)
    }

    /// Finds a live entry (normal or template) with exactly this key.
    @inlinable public func lookup(_ k: ConnectionKey, template: Bool) -> UInt32? { view.lookup(k, template: template) }

    @usableFromInline func schedule(_ index: UInt32) { view.schedule(index) }

    /// Moves an entry whose deadline became earlier to the right wheel slot.
    @inlinable public func reschedule(_ index: UInt32) { view.reschedule(index) }

    /// Inserts a new entry (its packets sent by `method`); nil when the table is full.
    public func insert(_ k: ConnectionKey, dest: UInt32, method: ConnectionMethod = .directRoute, stateFlags: UInt8, control: UInt32,
                       expires: UInt32, inPackets: UInt16 = 0) -> UInt32? {
        let index: UInt32
        if freeHead != 0 {
            index = freeHead - 1
            freeHead = entries[Int(index)].hashNext
        } else if Int(highWater) < capacity {
            index = highWater
            highWater += 1
        } else {
            return nil
        }
        let c = k.client.words, v = k.virtualAddress.words
        let b = Int(bucket(proto: k.proto, client: k.client, cport: k.clientPort, vlow: v.3, vport: k.virtualPort))
        (entries + Int(index)).initialize(to: ConnectionEntry(
            c0: c.0, c1: c.1, c2: c.2, c3: c.3, v0: v.0, v1: v.1, v2: v.2, v3: v.3,
            destWord: ConnectionEntry.destWord(dest, method), control: control, expires: expires, wheelNext: 0, wheelPrev: 0, hashNext: buckets[b],
            cport: k.clientPort, vport: k.virtualPort, inPackets: inPackets, proto: k.proto, stateFlags: stateFlags))
        buckets[b] = index + 1
        count += 1
        schedule(index)
        return index
    }

    /// Removes an entry from its hash chain and marks it dead; the wheel frees it later.
    public func unhash(_ index: UInt32) {
        let e = entries[Int(index)]
        guard !e.isDead else { return }
        let b = Int(bucket(proto: e.proto, client: e.client, cport: e.cport, vlow: e.v3, vport: e.vport))
        if buckets[b] == index + 1 {
            buckets[b] = e.hashNext
        } else {
            var i = buckets[b]
            while i != 0 {
                if entries[Int(i - 1)].hashNext == index + 1 {
                    entries[Int(i - 1)].hashNext = e.hashNext
                    break
                }
                i = entries[Int(i - 1)].hashNext
            }
        }
        entries[Int(index)].stateFlags |= ConnectionEntry.flagDead
        entries[Int(index)].hashNext = 0
        if view.replies.count != 0 { view.replies.unlink(index) }
    }

    /// What the owner decides for an entry whose deadline has passed.
    public enum ExpiryDecision { case free, keep }

    /// Advances the wheel to `nowTick`, calling `decide` for each entry whose deadline has passed.
    /// Entries whose deadline moved later are re-slotted without a call. O(expired + re-slotted).
    public func advance(to nowTick: UInt32, _ decide: (UInt32) -> ExpiryDecision) {
        let target = nowTick / Self.ticksPerSlot
        var steps = Int(Int32(bitPattern: target &- wheelCursor))
        if steps <= 0 { return }
        if steps > Self.wheelSlots { // a long pause: one full lap sees everything
            wheelCursor = target &- UInt32(Self.wheelSlots)
            steps = Self.wheelSlots
        }
        for _ in 0..<steps {
            wheelCursor &+= 1
            let slot = Int(wheelCursor % UInt32(Self.wheelSlots))
            var i = wheel[slot]
            wheel[slot] = 0
            while i != 0 {
                let index = i - 1
                i = entries[Int(index)].wheelNext
                if i != 0 { entries[Int(i - 1)].wheelPrev = 0x8000_0000 | UInt32(slot) }
                if Int32(bitPattern: entries[Int(index)].expires &- nowTick) > 0 {
                    schedule(index)
                    continue
                }
                switch decide(index) {
                case .keep:
                    schedule(index)
                case .free:
                    unhash(index)
                    entries[Int(index)].hashNext = freeHead
                    freeHead = index + 1
                    count -= 1
                }
            }
        }
    }

    /// Unhashes an entry, takes it off the wheel and frees it at once (not from inside `advance`).
    public func remove(_ index: UInt32) {
        unhash(index)
        view.unschedule(index)
        entries[Int(index)].hashNext = freeHead
        freeHead = index + 1
        count -= 1
    }

    /// Calls `body` for every live (hashed) entry: for listings, not for the packet path.
    public func forEachLive(_ body: (UInt32, ConnectionEntry) -> Void) {
        var next = 0
        while let b = forEachLive(fromBucket: next, entries: Int.max, buckets: Int.max, body) { next = b }
    }

    /// Part of a walk: whole buckets from `start` on, until at least `entryLimit` entries or
    /// `bucketLimit` buckets were visited. Returns the bucket to continue from, or nil at the end.
    /// An entry that stays in the table from the first part to the last is visited exactly once.
    @discardableResult
    public func forEachLive(fromBucket start: Int, entries entryLimit: Int, buckets bucketLimit: Int,
                            _ body: (UInt32, ConnectionEntry) -> Void) -> Int? {
        let end = Int(bucketMask) + 1
        var b = start, seen = 0, scanned = 0
        while b < end && seen < entryLimit && scanned < bucketLimit {
            var i = buckets[b]
            while i != 0 {
                let e = entries[Int(i - 1)]
                body(i - 1, e)
                seen += 1
                i = e.hashNext
            }
            b += 1
            scanned += 1
        }
        return b < end ? b : nil
    }
}
