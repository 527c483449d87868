import Glibc
import LVSModel

/// Maps non-first fragments to the destination chosen for their first fragment.
///
/// Direct-mapped, fixed size: a collision replaces the older entry (its later fragments are then
/// dropped, counted as `fragment`).
@usableFromInline struct FragmentCache {
    struct Entry {
        var source: IPAddress
        var destination: IPAddress
        var id: UInt32
        var proto: UInt8
        /// The first fragment's destination slot and method (`ConnectionEntry.destWord`).
        var destSlot: UInt32
        var expires: UInt32
    }
    static let size = 1024
    let entries: UnsafeMutablePointer<Entry>
    /// Secret key of the slot hash, so nobody can aim first fragments at one slot.
    let key: SipHashKey

    init(key: SipHashKey) {
        self.key = key
        entries = .allocate(capacity: Self.size)
        entries.initialize(repeating: Entry(source: .zero, destination: .zero, id: 0, proto: 0, destSlot: 0, expires: 0), count: Self.size)
    }
    func deallocate() { entries.deallocate() }

    /// Bytes hashed (source address, low half of the destination, identification) in the top byte.
    static let messageLength: UInt64 = 28 << 56

    @inline(__always) func index(_ f: ParsedFrame) -> Int {
        let h = key.sipHash13(f.source.high, f.source.low, f.destination.low,
                              last: Self.messageLength | UInt64(f.fragmentID))
        return Int(h % UInt64(Self.size))
    }

    func remember(_ f: ParsedFrame, destSlot: UInt32, now: UInt32) {
        entries[index(f)] = Entry(source: f.source, destination: f.destination, id: f.fragmentID, proto: f.proto,
                                  destSlot: destSlot, expires: now &+ 30 * Engine.ticksPerSecond)
    }

    func find(_ f: ParsedFrame, now: UInt32) -> UInt32? {
        let e = entries[index(f)]
        guard e.id == f.fragmentID, e.proto == f.proto, e.source == f.source, e.destination == f.destination,
              Int32(bitPattern: e.expires &- now) > 0 else { return nil }
        return e.destSlot
    }
}

