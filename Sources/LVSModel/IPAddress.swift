import Glibc

/// An IPv4 or IPv6 address held as 128 bits in network order.
///
/// IPv4 addresses are stored IPv4-mapped (`::ffff:a.b.c.d`) so that one fixed-size value
/// serves both families on the packet path.
public struct IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Bytes 0...7 of the address, big-endian.
    public var high: UInt64
    /// Bytes 8...15 of the address, big-endian.
    public var low: UInt64

    @inlinable public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// An IPv4 address from its host-order 32-bit value.
    @inlinable public init(ipv4 value: UInt32) {
        self.high = 0
        self.low = 0x0000_FFFF_0000_0000 | UInt64(value)
    }

    // Computed and inlinable, not stored: a stored static of another module is read through its
    // addressor, which keeps the packet path's frame initializers from folding to constants.
    /// `::`.
    @inlinable public static var zero: IPAddress { IPAddress(high: 0, low: 0) }
    /// `0.0.0.0` (IPv4-mapped).
    @inlinable public static var ipv4Zero: IPAddress { IPAddress(ipv4: 0) }

    @inlinable public var isIPv4: Bool { high == 0 && (low >> 32) == 0xFFFF }

    /// The host-order IPv4 value (only meaningful when `isIPv4`).
    @inlinable public var ipv4Value: UInt32 { UInt32(truncatingIfNeeded: low) }

    /// The four 32-bit words in host order, as the kernel folds them.
    @inlinable public var words: (UInt32, UInt32, UInt32, UInt32) {
        (UInt32(truncatingIfNeeded: high >> 32), UInt32(truncatingIfNeeded: high),
         UInt32(truncatingIfNeeded: low >> 32), UInt32(truncatingIfNeeded: low))
    }

    /// The address folded to 32 bits as sh/dh/mh/lblc do: the IPv4 value, or the XOR of the IPv6 words.
    @inlinable public var folded: UInt32 {
        if isIPv4 { return ipv4Value }
        let w = words
        return w.0 ^ w.1 ^ w.2 ^ w.3
    }

    /// Reads an address of `length` 4 or 16 bytes from raw memory (network order).
    @inlinable public init(bytes p: UnsafeRawPointer, length: Int) {
        if length == 4 {
            self.init(ipv4: UInt32(bigEndian: p.loadUnaligned(as: UInt32.self)))
        } else {
            self.init(high: UInt64(bigEndian: p.loadUnaligned(as: UInt64.self)),
                      low: UInt64(bigEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
    }

    /// Writes the address (4 bytes for IPv4, else 16) to raw memory in network order.
    @inlinable public func store(to p: UnsafeMutableRawPointer) {
        if isIPv4 {
            p.storeBytes(of: ipv4Value.bigEndian, as: UInt32.self)
        } else {
            p.storeBytes(of: high.bigEndian, as: UInt64.self)
            p.storeBytes(of: low.bigEndian, toByteOffset: 8, as: UInt64.self)
        }
    }

    /// The address with all but the first `prefix` bits cleared (IPv4 prefixes count from the IPv4 part).
    @inlinable public func masked(prefix: Int) -> IPAddress {
        if isIPv4 {
            let p = max(0, min(32, prefix))
            let mask: UInt32 = p == 0 ? 0 : ~UInt32(0) << UInt32(32 - p)
            return IPAddress(ipv4: ipv4Value & mask)
        }
        let p = max(0, min(128, prefix))
        let hm: UInt64 = p >= 64 ? ~0 : (p == 0 ? 0 : ~UInt64(0) << UInt64(64 - p))
        let lm: UInt64 = p <= 64 ? 0 : (p == 128 ? ~0 : ~UInt64(0) << UInt64(128 - p))
        return IPAddress(high: high & hm, low: low & lm)
    }

    /// IPv4 address masked with a dotted netmask value (host order).
    @inlinable public func masked(ipv4Mask: UInt32) -> IPAddress {
        IPAddress(ipv4: ipv4Value & ipv4Mask)
    }

    @inlinable public static func < (a: IPAddress, b: IPAddress) -> Bool {
        (a.high, a.low) < (b.high, b.low)
    }

    /// Parses a numeric IPv4 (strict dotted quad) or IPv6 address.
    public init?(_ text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self.init(ipv4: UInt32(bigEndian: v4.s_addr))
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            let parsed = withUnsafeBytes(of: &v6) { IPAddress(bytes: $0.baseAddress!, length: 16) }
            if parsed.isIPv4 { return nil } // mapped addresses are reserved for IPv4
            self = parsed
            return
        }
        return nil
    }

    /// `a.b.c.d` for IPv4, the compressed `inet_ntop` form for IPv6.
    public var description: String {
        if isIPv4 {
            let v = ipv4Value
            return "\(v >> 24).\((v >> 16) & 0xFF).\((v >> 8) & 0xFF).\(v & 0xFF)"
        }
        var raw = in6_addr()
        withUnsafeMutableBytes(of: &raw) { store(to: $0.baseAddress!) }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        _ = inet_ntop(AF_INET6, &raw, &buffer, socklen_t(buffer.count))
        return String(cString: buffer)
    }

    /// The form used in `host:port` text: IPv6 in brackets.
    public var bracketed: String { isIPv4 ? description : "[\(description)]" }
}

/// An Ethernet MAC address in the low 48 bits.
public struct MACAddress: Hashable, Sendable, CustomStringConvertible {
    public var value: UInt64

    @inlinable public init(value: UInt64) { self.value = value & 0xFFFF_FFFF_FFFF }

    @inlinable public static var zero: MACAddress { MACAddress(value: 0) }
    @inlinable public static var broadcast: MACAddress { MACAddress(value: 0xFFFF_FFFF_FFFF) }

    @inlinable public init(bytes p: UnsafeRawPointer) {
        let hi = UInt64(UInt16(bigEndian: p.loadUnaligned(as: UInt16.self)))
        let lo = UInt64(UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self)))
        self.value = hi << 32 | lo
    }

    @inlinable public func store(to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: UInt16(truncatingIfNeeded: value >> 32).bigEndian, as: UInt16.self)
        p.storeBytes(of: UInt32(truncatingIfNeeded: value).bigEndian, toByteOffset: 2, as: UInt32.self)
    }

    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var v: UInt64 = 0
        for part in parts {
            guard part.count == 2 || part.count == 1, let b = UInt8(part, radix: 16) else { return nil }
            v = v << 8 | UInt64(b)
        }
        self.value = v
    }

    public var description: String {
        (0..<6).map { i -> String in
            let b = UInt8(truncatingIfNeeded: value >> UInt64(40 - 8 * i))
            let s = String(b, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined(separator: ":")
    }

    @inlinable public var isMulticast: Bool { (value >> 40) & 1 == 1 }
}

extension IPAddress: Codable {
    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        if text == "0.0.0.0" { self = .ipv4Zero; return }
        guard let a = IPAddress(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad address \(text)"))
        }
        self = a
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

extension MACAddress: Codable {
    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let m = MACAddress(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad MAC \(text)"))
        }
        self = m
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
