import LVSModel

/// Finds a service slot by key on the new-connection path: open addressing over raw memory,
/// a multiplicative hash of the key's words, no `Hasher`, no reference counting.
///
/// Rebuilt (and the previous storage freed) whenever services change; every use is under the
/// engine lock.
struct ServiceLookup {
    private var keys: UnsafeMutablePointer<ServiceKey>?
    private var slots: UnsafeMutablePointer<Int32>?
    private var mask = 0

    init() {}

    /// Replaces the contents with `index` (key → service slot), at most half full.
    mutating func rebuild(_ index: [ServiceKey: Int]) {
        release()
        var size = 16
        while size < index.count * 2 { size <<= 1 }
        mask = size - 1
        let k = UnsafeMutablePointer<ServiceKey>.allocate(capacity: size)
        k.initialize(repeating: ServiceKey(fwmark: 0, ipv6: false), count: size)
        let s = UnsafeMutablePointer<Int32>.allocate(capacity: size)
        s.initialize(repeating: -1, count: size)
        for (key, v) in index {
            var i = Self.hash(key) & mask
            while s[i] >= 0 { i = (i + 1) & mask }
            k[i] = key
            s[i] = Int32(v)
        }
        keys = k
        slots = s
    }

    mutating func release() {
        keys?.deallocate()
        slots?.deallocate()
        keys = nil
        slots = nil
        mask = 0
    }

    @inline(__always) static func hash(_ k: ServiceKey) -> Int {
        var h = UInt64(k.proto.rawValue) << 56 ^ UInt64(k.port) << 32 ^ UInt64(k.fwmark) ^ (k.isIPv6 ? 0x5555 : 0)
        h ^= k.address.low &* 0x9E37_79B9_7F4A_7C15
        h ^= k.address.high &* 0xC2B2_AE3D_27D4_EB4F
        h = (h ^ (h >> 29)) &* 0xBF58_476D_1CE4_E5B9
        return Int(truncatingIfNeeded: h ^ (h >> 32))
    }

    @inline(__always) func find(_ k: ServiceKey) -> Int? {
        guard let keys, let slots else { return nil }
        var i = Self.hash(k) & mask
        while slots[i] >= 0 {
            let c = keys[i]
            if c.port == k.port && c.address == k.address && c.proto == k.proto && c.fwmark == k.fwmark && c.isIPv6 == k.isIPv6 {
                return Int(slots[i])
            }
            i = (i + 1) & mask
        }
        return nil
    }
}

/// What the new-connection path reads of a service, kept in raw memory (no reference counting).
@usableFromInline struct ServiceInfo {
    var key: ServiceKey
    var flags: ServiceFlags
    var timeout: UInt32
    var netmask: UInt32
}
