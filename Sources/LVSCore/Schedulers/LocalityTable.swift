import LVSModel

/// The cache shared by lblc and lblcr (spec §3.9/§3.10): entries keyed by the packet's destination
/// address in 1024 hash chains, each holding one destination slot (lblc) or a set of slots (lblcr).
///
/// Storage is pooled: entry and set-member records are reused through free lists, so memory is
/// only allocated when an entry or member is inserted and the pools have no free record.
/// The number of entries is bounded by `entryLimit`.
struct LocalityTable {
    static let bucketBits = 10
    static let bucketCount = 1 << bucketBits
    /// `tbl->max_size`: 16 entries per bucket.
    static let maxSize = bucketCount * 16
    /// New entries are refused from this many entries on (the chosen destination is still used).
    static let entryLimit = maxSize * 3 / 2
    /// Entries unused this long may be collected when the table is over `maxSize` (6 min).
    static let entryTimeout: UInt32 = 6 * 60
    /// GC timer period (s).
    static let checkInterval: UInt32 = 60
    /// Every this many quiet timer runs, a full scan against the expiration sysctl is made.
    static let fullExpirationCount = 30

    struct Entry {
        var key: IPAddress
        var lastUse: UInt32
        /// lblc: the destination slot.
        var slot: UInt32
        /// Next entry in the hash chain, or in the free list.
        var next: Int32
        /// lblcr: first member of the set, -1 when empty.
        var setHead: Int32
        var setSize: Int32
        /// lblcr: time of the last insert into / erase from the set.
        var lastMod: UInt32
    }

    struct Member {
        var slot: UInt32
        var next: Int32
    }

    var heads: [Int32] = Array(repeating: -1, count: bucketCount)
    var entries: [Entry] = []
    var freeEntry: Int32 = -1
    var members: [Member] = []
    var freeMember: Int32 = -1
    /// Live entries.
    private(set) var count = 0
    /// GC state (`tbl->counter`, `tbl->rover`) and the time of the last timer run.
    var counter = 1
    var rover = 0
    var lastCheck: UInt32?

    @inline(__always) static func bucket(_ key: IPAddress) -> Int {
        Int(kernelHash32(key.folded, bits: bucketBits))
    }

    /// True if an entry last used at `lastUse` is still fresh at `now` (`time_before(now, lastUse + timeout)`).
    @inline(__always) static func isFresh(_ lastUse: UInt32, now: UInt32, timeout: UInt32) -> Bool {
        Int32(bitPattern: now &- (lastUse &+ timeout)) < 0
    }

    mutating func removeAll() {
        for b in 0..<heads.count { heads[b] = -1 }
        entries.removeAll(keepingCapacity: true)
        members.removeAll(keepingCapacity: true)
        freeEntry = -1
        freeMember = -1
        count = 0
        counter = 1
        rover = 0
    }

    func find(_ key: IPAddress) -> Int? {
        var e = heads[Self.bucket(key)]
        while e >= 0 {
            if entries[Int(e)].key == key { return Int(e) }
            e = entries[Int(e)].next
        }
        return nil
    }

    /// Adds an entry at the head of its chain; nil when the table is full.
    mutating func insert(_ key: IPAddress, slot: UInt32, now: UInt32) -> Int? {
        guard count < Self.entryLimit else { return nil }
        let b = Self.bucket(key)
        let record = Entry(key: key, lastUse: now, slot: slot, next: heads[b], setHead: -1, setSize: 0, lastMod: now)
        let e: Int
        if freeEntry >= 0 {
            e = Int(freeEntry)
            freeEntry = entries[e].next
            entries[e] = record
        } else {
            e = entries.count
            entries.append(record)
        }
        heads[b] = Int32(e)
        count += 1
        return e
    }

    /// Unlinks entry `e` whose predecessor in the chain of bucket `b` is `previous` (-1: head).
    private mutating func unlink(_ e: Int, bucket b: Int, previous: Int32) {
        let next = entries[e].next
        if previous < 0 { heads[b] = next } else { entries[Int(previous)].next = next }
        var m = entries[e].setHead
        while m >= 0 {
            let following = members[Int(m)].next
            members[Int(m)].next = freeMember
            freeMember = m
            m = following
        }
        entries[e].setHead = -1
        entries[e].setSize = 0
        entries[e].next = freeEntry
        freeEntry = Int32(e)
        count -= 1
    }

    /// Removes the entries of bucket `b` that `shouldRemove` selects; returns how many.
    @discardableResult
    mutating func removeEntries(inBucket b: Int, where shouldRemove: (Entry) -> Bool) -> Int {
        var removed = 0
        var previous: Int32 = -1
        var e = heads[b]
        while e >= 0 {
            let next = entries[Int(e)].next
            if shouldRemove(entries[Int(e)]) {
                unlink(Int(e), bucket: b, previous: previous)
                removed += 1
            } else {
                previous = e
            }
            e = next
        }
        return removed
    }

    // MARK: lblcr sets

    /// Adds `slot` at the head of the set of entry `e` (unless `check` finds it already there).
    mutating func insertMember(_ e: Int, slot: UInt32, now: UInt32, check: Bool) {
        if check {
            var m = entries[e].setHead
            while m >= 0 {
                if members[Int(m)].slot == slot { return }
                m = members[Int(m)].next
            }
        }
        let record = Member(slot: slot, next: entries[e].setHead)
        let m: Int32
        if freeMember >= 0 {
            m = freeMember
            freeMember = members[Int(m)].next
            members[Int(m)] = record
        } else {
            m = Int32(members.count)
            members.append(record)
        }
        entries[e].setHead = m
        entries[e].setSize += 1
        entries[e].lastMod = now
    }

    /// Removes `slot` from the set of entry `e`; `lastMod` is updated only if it was a member.
    mutating func eraseMember(_ e: Int, slot: UInt32, now: UInt32) {
        var previous: Int32 = -1
        var m = entries[e].setHead
        while m >= 0 {
            let next = members[Int(m)].next
            if members[Int(m)].slot == slot {
                if previous < 0 { entries[e].setHead = next } else { members[Int(previous)].next = next }
                members[Int(m)].next = freeMember
                freeMember = m
                entries[e].setSize -= 1
                entries[e].lastMod = now
                return
            }
            previous = m
            m = next
        }
    }

    /// The set members of entry `e`, most recently inserted first (for tests).
    func memberSlots(_ e: Int) -> [UInt32] {
        var out: [UInt32] = []
        var m = entries[e].setHead
        while m >= 0 {
            out.append(members[Int(m)].slot)
            m = members[Int(m)].next
        }
        return out
    }

    /// Drops `slot` from every entry (a destination left the service; its slot may be reused).
    /// lblc entries pointing at it are removed, lblcr sets lose the member.
    mutating func forget(slot: UInt32, sets: Bool) {
        if sets {
            for b in 0..<heads.count {
                var e = heads[b]
                while e >= 0 {
                    let i = Int(e)
                    var m = entries[i].setHead
                    var previous: Int32 = -1
                    while m >= 0 {
                        let next = members[Int(m)].next
                        if members[Int(m)].slot == slot {
                            if previous < 0 { entries[i].setHead = next } else { members[Int(previous)].next = next }
                            members[Int(m)].next = freeMember
                            freeMember = m
                            entries[i].setSize -= 1
                        } else {
                            previous = m
                        }
                        m = next
                    }
                    e = entries[i].next
                }
            }
        } else {
            for b in 0..<heads.count {
                removeEntries(inBucket: b) { $0.slot == slot }
            }
        }
    }

    // MARK: garbage collection

    /// The periodic timer (`ip_vs_lblc_check_expire` / `ip_vs_lblcr_check_expire`), run at most
    /// once per `checkInterval`; `expiration` is the lblc(r)_expiration sysctl in seconds.
    mutating func expire(now: UInt32, expiration: UInt32) {
        if let last = lastCheck, now &- last < Self.checkInterval { return }
        lastCheck = now
        let mask = Self.bucketCount - 1
        if counter % Self.fullExpirationCount == 0 {
            var j = rover
            for _ in 0..<Self.bucketCount {
                j = (j + 1) & mask
                removeEntries(inBucket: j) { !Self.isFresh($0.lastUse, now: now, timeout: expiration) }
            }
            rover = j
            counter = 1
            return
        }
        if count <= Self.maxSize {
            counter += 1
            return
        }
        var goal = min((count - Self.maxSize) * 4 / 3, Self.maxSize / 2)
        var j = rover
        for _ in 0..<Self.bucketCount {
            j = (j + 1) & mask
            goal -= removeEntries(inBucket: j) { !Self.isFresh($0.lastUse, now: now, timeout: Self.entryTimeout) }
            if goal <= 0 { break }
        }
        rover = j
    }
}
