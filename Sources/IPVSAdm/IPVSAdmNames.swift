import Glibc
import LVSModel

/// Host and service name lookups used by the ipvsadm grammar and listings (injectable for tests).
public protocol IPVSAdmNameResolver {
    /// `gethostbyname`: the first IPv4 address of a host name (host order), nil if none.
    func resolveHost(_ name: String) -> UInt32?
    /// `getservbyname(name, proto)`: the port of a service name for "tcp"/"udp"/"sctp".
    func resolveService(_ name: String, protocol: String) -> UInt16?
    /// `gethostbyaddr`: the host name of an address, nil if unknown.
    func hostName(for address: IPAddress) -> String?
    /// `getservbyport(port, proto)`: the service name, nil if unknown.
    func serviceName(for port: UInt16, protocol: String) -> String?
}

/// Lookups through the C library (files, DNS, ... as nsswitch says).
public struct SystemNameResolver: IPVSAdmNameResolver {
    public init() {}

    public func resolveHost(_ name: String) -> UInt32? {
        guard let entry = gethostbyname(name) else { return nil }
        guard entry.pointee.h_addrtype == AF_INET, entry.pointee.h_length == 4,
              let list = entry.pointee.h_addr_list, let first = list[0] else { return nil }
        let raw = UnsafeRawPointer(first)
        return UInt32(bigEndian: raw.loadUnaligned(as: UInt32.self))
    }

    public func resolveService(_ name: String, protocol proto: String) -> UInt16? {
        guard let entry = getservbyname(name, proto) else { return nil }
        return UInt16(bigEndian: UInt16(truncatingIfNeeded: entry.pointee.s_port))
    }

    public func hostName(for address: IPAddress) -> String? {
        var storage = [UInt8](repeating: 0, count: 16)
        let length: Int = address.isIPv4 ? 4 : 16
        storage.withUnsafeMutableBytes { address.store(to: $0.baseAddress!) }
        let family = address.isIPv4 ? AF_INET : AF_INET6
        let entry = storage.withUnsafeBytes { gethostbyaddr($0.baseAddress, socklen_t(length), family) }
        guard let e = entry, let name = e.pointee.h_name else { return nil }
        return String(cString: name)
    }

    public func serviceName(for port: UInt16, protocol proto: String) -> String? {
        guard let entry = getservbyport(Int32(port.bigEndian), proto), let name = entry.pointee.s_name else { return nil }
        return String(cString: name)
    }
}

/// Resolves nothing: every lookup fails (numeric forms only).
public struct NumericOnlyResolver: IPVSAdmNameResolver {
    public init() {}
    public func resolveHost(_ name: String) -> UInt32? { nil }
    public func resolveService(_ name: String, protocol: String) -> UInt16? { nil }
    public func hostName(for address: IPAddress) -> String? { nil }
    public func serviceName(for port: UInt16, protocol: String) -> String? { nil }
}

/// Small C-library-compatible numeric helpers used by the grammar.
enum CNumber {
    /// `strtol(s, &end, 10)` requiring the whole string to be consumed; nil on junk or overflow of Int64.
    static func strtolWhole(_ s: String) -> Int64? {
        var bytes = Array(s.utf8)[...]
        while let b = bytes.first, b == 0x20 || (b >= 0x09 && b <= 0x0D) { bytes = bytes.dropFirst() }
        var negative = false
        if let b = bytes.first, b == 0x2B || b == 0x2D {
            negative = b == 0x2D
            bytes = bytes.dropFirst()
        }
        guard !bytes.isEmpty else { return nil }
        var value: Int64 = 0
        for b in bytes {
            guard b >= 0x30 && b <= 0x39 else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int64(b - 0x30))
            if o1 || o2 { return nil }
            value = a
        }
        return negative ? -value : value
    }

    /// ipvsadm's `string_to_number(s, min, max)`.
    static func inRange(_ s: String, _ min: Int64, _ max: Int64) -> Int64? {
        guard let v = strtolWhole(s), v >= min, v <= max else { return nil }
        return v
    }

    /// `atoi`: leading blanks, optional sign, then digits up to the first non-digit.
    static func atoi(_ s: String) -> Int64 {
        var bytes = Array(s.utf8)[...]
        while let b = bytes.first, b == 0x20 || (b >= 0x09 && b <= 0x0D) { bytes = bytes.dropFirst() }
        var negative = false
        if let b = bytes.first, b == 0x2B || b == 0x2D {
            negative = b == 0x2D
            bytes = bytes.dropFirst()
        }
        var value: Int64 = 0
        for b in bytes {
            guard b >= 0x30 && b <= 0x39 else { break }
            value = value &* 10 &+ Int64(b - 0x30)
            if value > Int64(Int32.max) + 1 { break }
        }
        return negative ? -value : value
    }

    /// `inet_aton`: accepts the classic a, a.b, a.b.c, a.b.c.d forms (decimal, octal, hex parts).
    static func inetAton(_ s: String) -> UInt32? {
        var addr = in_addr()
        guard inet_aton(s, &addr) != 0 else { return nil }
        return UInt32(bigEndian: addr.s_addr)
    }
}
