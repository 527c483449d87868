/// The 128-bit key of the kernel's `hsiphash` on 64-bit machines (two `unsigned long` words).
public struct SipHashKey: Sendable, Equatable {
    public var k0: UInt64
    public var k1: UInt64
    @inlinable public init(k0: UInt64, k1: UInt64) {
        self.k0 = k0
        self.k1 = k1
    }
}

/// One SipHash round over the four state words.
@inline(__always) @usableFromInline
func sipRound(_ v0: inout UInt64, _ v1: inout UInt64, _ v2: inout UInt64, _ v3: inout UInt64) {
    v0 &+= v1; v1 = v1.rotatedLeft(13); v1 ^= v0; v0 = v0.rotatedLeft(32)
    v2 &+= v3; v3 = v3.rotatedLeft(16); v3 ^= v2
    v0 &+= v3; v3 = v3.rotatedLeft(21); v3 ^= v0
    v2 &+= v1; v1 = v1.rotatedLeft(17); v1 ^= v2; v2 = v2.rotatedLeft(32)
}

extension UInt64 {
    @inline(__always) @usableFromInline func rotatedLeft(_ n: UInt64) -> UInt64 {
        (self << n) | (self >> (64 - n))
    }
}

/// SipHash-1-3's four state words: one compression round per message word, three finalisation
/// rounds (the kernel's `hsiphash` on 64-bit machines).
@usableFromInline struct SipHash13State {
    @usableFromInline var v0, v1, v2, v3: UInt64

    @inline(__always) @usableFromInline init(_ key: SipHashKey) {
        v0 = 0x736f_6d65_7073_6575 ^ key.k0
        v1 = 0x646f_7261_6e64_6f6d ^ key.k1
        v2 = 0x6c79_6765_6e65_7261 ^ key.k0
        v3 = 0x7465_6462_7974_6573 ^ key.k1
    }

    /// Absorbs one 64-bit message word.
    @inline(__always) @usableFromInline mutating func absorb(_ m: UInt64) {
        v3 ^= m
        sipRound(&v0, &v1, &v2, &v3)
        v0 ^= m
    }

    /// The three finalisation rounds and the 64-bit result.
    @inline(__always) @usableFromInline mutating func finish() -> UInt64 {
        v2 ^= 0xff
        sipRound(&v0, &v1, &v2, &v3)
        sipRound(&v0, &v1, &v2, &v3)
        sipRound(&v0, &v1, &v2, &v3)
        return (v0 ^ v1) ^ (v2 ^ v3)
    }
}

/// The kernel's 64-bit `hsiphash` of a 4-byte little-endian input: SipHash-1-3 truncated to 32 bits.
@inlinable public func hsiphash32(_ value: UInt32, key: SipHashKey) -> UInt32 {
    var state = SipHash13State(key)
    state.absorb((UInt64(4) << 56) | UInt64(value))
    return UInt32(truncatingIfNeeded: state.finish())
}

extension SipHashKey {
    /// SipHash-1-3 of a message given as whole 64-bit words `m` and the final word `last` (the
    /// message length in bytes in its top byte, the remaining bytes below it), as `hsiphash` does on
    /// 64-bit machines; the full 64-bit result. The caller packs its fields without overlap, so
    /// distinct inputs are distinct messages and only the key decides where they land.
    @inlinable @inline(__always)
    func sipHash13(_ m0: UInt64, last: UInt64) -> UInt64 {
        var state = SipHash13State(self)
        state.absorb(m0)
        state.absorb(last)
        return state.finish()
    }

    /// SipHash-1-3 of three whole words and the final word (see the two-word form).
    @inlinable @inline(__always)
    func sipHash13(_ m0: UInt64, _ m1: UInt64, _ m2: UInt64, last: UInt64) -> UInt64 {
        var state = SipHash13State(self)
        state.absorb(m0)
        state.absorb(m1)
        state.absorb(m2)
        state.absorb(last)
        return state.finish()
    }

    /// A key for table number `index` derived from this one (each hashed table gets its own).
    public func derived(_ index: UInt64) -> SipHashKey {
        let salt = (index &+ 1) &* 0x9E37_79B9_7F4A_7C15
        return SipHashKey(k0: k0 ^ salt, k1: k1 ^ salt.rotatedLeft(29) ^ 0xD1B5_4A32_D192_ED03)
    }

    /// The fixed key tests and benchmarks use unless they inject another; lvsd replaces it with
    /// 16 bytes from getrandom(2) at start.
    public static let fixedDefault = SipHashKey(k0: 0x5EED_CAFE_F00D_0001, k1: 0x0123_4567_89AB_CDEF)
}
