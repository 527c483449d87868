import Glibc
import CLVSShim
import LVSCore
import LVSModel
import LVSSystem

/// A network interface of the caller's network namespace.
public struct InterfaceInfo: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var index: Int32
    public var mac: MACAddress
    public var mtu: Int
    public var ipv4: [IPAddress]
    public var ipv6: [IPAddress]

    public init(name: String, index: Int32, mac: MACAddress, mtu: Int, ipv4: [IPAddress] = [], ipv6: [IPAddress] = []) {
        self.name = name
        self.index = index
        self.mac = mac
        self.mtu = mtu
        self.ipv4 = ipv4
        self.ipv6 = ipv6
    }

    public var description: String {
        "\(name)#\(index) \(mac) mtu \(mtu) \((ipv4 + ipv6).map(\.description).joined(separator: " "))"
    }

    /// Looks an interface up by name; throws `.noSuchInterface(name)` when it does not exist.
    public static func lookup(_ name: String) throws -> InterfaceInfo {
        var index: Int32 = 0
        var mtu: Int32 = 0
        var mac = [UInt8](repeating: 0, count: 6)
        do {
            try syscall("ioctl(SIOCGIF*)") { name.withCString { clvs_if_info($0, &index, &mac, &mtu) } }
        } catch let error as SystemError {
            if [ENODEV, ENXIO, ENAMETOOLONG].contains(error.errno) { throw DataPlaneError.noSuchInterface(name) }
            throw DataPlaneError(error, context: "interface '\(name)'")
        }
        var info = InterfaceInfo(name: name, index: index, mac: MACAddress(bytes: mac), mtu: Int(mtu))
        try info.loadAddresses()
        return info
    }

    /// Looks an interface up by index.
    public static func lookup(index: Int32) throws -> InterfaceInfo {
        var buffer = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
        guard if_indextoname(UInt32(index), &buffer) != nil else {
            throw DataPlaneError.noSuchInterface("#\(index)")
        }
        return try lookup(String(cString: buffer))
    }

    /// Fills `ipv4` and `ipv6` from getifaddrs.
    public mutating func loadAddresses() throws {
        var list: UnsafeMutablePointer<ifaddrs>?
        try DataPlaneError.context("interface '\(name)'") { try syscall("getifaddrs") { getifaddrs(&list) } }
        defer { freeifaddrs(list) }
        ipv4 = []
        ipv6 = []
        var cursor = list
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let sa = entry.pointee.ifa_addr, String(cString: entry.pointee.ifa_name) == name else { continue }
            switch Int32(sa.pointee.sa_family) {
            case AF_INET:
                let raw = UnsafeRawPointer(sa)
                ipv4.append(IPAddress(bytes: raw + MemoryLayout<sockaddr_in>.offset(of: \sockaddr_in.sin_addr)!, length: 4))
            case AF_INET6:
                let raw = UnsafeRawPointer(sa)
                ipv6.append(IPAddress(bytes: raw + MemoryLayout<sockaddr_in6>.offset(of: \sockaddr_in6.sin6_addr)!, length: 16))
            default:
                break
            }
        }
    }
}

/// Number of CPUs in this process's affinity mask (honours `taskset`).
public func affinityCPUCount() -> Int { Int(clvs_affinity_cpu_count()) }
