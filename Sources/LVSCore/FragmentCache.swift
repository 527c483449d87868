#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
        var destSlot: UInt32
        var expires: UInt32
    }
    static let size = 1024
    let entries: UnsafeMutablePointer<Entry>

    init() {
        entries = .allocate(capacity: Self.size)
        entries.initialize(repeating: Entry(source: .zero, destination: .zero, id: 0, proto: 0, destSlot: 0, expires: 0), count: Self.size)
    }
    func deallocate() { entries.deallocate() }

    @inline(__always) func index(_ f: ParsedFrame) -> Int {
        var h = UInt32(truncatingIfNeeded: f.source.low) &* 0x9E37_79B1
        h ^= f.fragmentID &* 0x85EB_CA6B
        h ^= UInt32(truncatingIfNeeded: f.destination.low)
        return Int((h ^ (h >> 15)) % UInt32(Self.size))
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

