import CLVSShim  // MSG_DONTWAIT: see clvs_shim.h (a build may give Glibc's socket enum to the shim's module)
import Glibc
import LVSModel
import LVSSystem
import LVSVRRP

/// Where VRRP adverts come from and go to: real raw sockets (`VRRPSockets`) or a fake in tests.
protocol VRRPTransport: AnyObject {
    /// Joins the advert group(s) on an interface (idempotent).
    func join(interface: String, group: IPAddress) throws
    /// Sends one VRRP message (IP protocol 112, TTL / hop limit 255).
    func send(interface: String, source: IPAddress, destination: IPAddress, message: [UInt8]) throws
    /// Waits up to `timeoutMilliseconds` for adverts; returns those that arrived (possibly none).
    func receive(timeoutMilliseconds: Int32) -> [VRRPReceived]
    func close()
}

/// IP protocol 112 over raw sockets, one per family, shared by every instance.
///
/// - IPv4: the kernel hands the IP header over, so TTL, source and destination are read from it;
///   IP_PKTINFO gives the receiving interface. Sends carry IP_PKTINFO (source address and
///   interface), with IP_MULTICAST_TTL and IP_TTL at 255.
/// - IPv6: IPV6_RECVHOPLIMIT and IPV6_RECVPKTINFO give the hop limit, the destination and the
///   interface; sends carry IPV6_PKTINFO, with both hop limits at 255. The kernel neither fills nor
///   checks the checksum (no IPV6_CHECKSUM): the router does both, as for IPv4.
/// - Multicast loop is off: lvsd never hears its own adverts.
final class VRRPSockets: VRRPTransport {
    static let protocolNumber: Int32 = 112
    /// SOCK_RAW (not imported from Glibc's enum here).
    static let rawSocketType: Int32 = 3
    static let requiredHopLimit: Int32 = 255
    /// Largest VRRP datagram read (an advert is at most 8 + 255 × 16 + 8 bytes).
    static let bufferLength = 4_200 + 60
    private static let controlLength = 256

    private var ipv4: Int32 = -1
    private var ipv6: Int32 = -1
    private var joined: Set<String> = []
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferLength, alignment: 8)
    private let control = UnsafeMutableRawBufferPointer.allocate(byteCount: controlLength, alignment: 8)

    init() {}

    deinit {
        close()
        buffer.deallocate()
        control.deallocate()
    }

    func close() {
        if ipv4 >= 0 { Glibc.close(ipv4); ipv4 = -1 }
        if ipv6 >= 0 { Glibc.close(ipv6); ipv6 = -1 }
    }

    private func socket(ipv6 v6: Bool) throws -> Int32 {
        if v6, ipv6 >= 0 { return ipv6 }
        if !v6, ipv4 >= 0 { return ipv4 }
        let family = v6 ? AF_INET6 : AF_INET
        let fd = try SocketSetup.open(family: family, type: Self.rawSocketType, protocol: Self.protocolNumber,
                                      name: "socket(\(v6 ? "AF_INET6" : "AF_INET"), SOCK_RAW, 112)")
        do {
            if v6 {
                try SocketSetup.setOption(fd, Int32(IPPROTO_IPV6), IPV6_RECVHOPLIMIT, Int32(1), name: "IPV6_RECVHOPLIMIT")
                try SocketSetup.setOption(fd, Int32(IPPROTO_IPV6), IPV6_RECVPKTINFO, Int32(1), name: "IPV6_RECVPKTINFO")
                try SocketSetup.setOption(fd, Int32(IPPROTO_IPV6), IPV6_MULTICAST_HOPS, Self.requiredHopLimit, name: "IPV6_MULTICAST_HOPS")
                try SocketSetup.setOption(fd, Int32(IPPROTO_IPV6), IPV6_UNICAST_HOPS, Self.requiredHopLimit, name: "IPV6_UNICAST_HOPS")
                try SocketSetup.setOption(fd, Int32(IPPROTO_IPV6), IPV6_MULTICAST_LOOP, Int32(0), name: "IPV6_MULTICAST_LOOP")
                ipv6 = fd
            } else {
                try SocketSetup.setOption(fd, Int32(IPPROTO_IP), IP_PKTINFO, Int32(1), name: "IP_PKTINFO")
                try SocketSetup.setOption(fd, Int32(IPPROTO_IP), IP_MULTICAST_TTL, Self.requiredHopLimit, name: "IP_MULTICAST_TTL")
                try SocketSetup.setOption(fd, Int32(IPPROTO_IP), IP_TTL, Self.requiredHopLimit, name: "IP_TTL")
                try SocketSetup.setOption(fd, Int32(IPPROTO_IP), IP_MULTICAST_LOOP, Int32(0), name: "IP_MULTICAST_LOOP")
                ipv4 = fd
            }
            return fd
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    func join(interface: String, group: IPAddress) throws {
        let key = "\(interface) \(group)"
        let fd = try socket(ipv6: !group.isIPv4)
        guard !joined.contains(key) else { return }
        let index = Int32(bitPattern: if_nametoindex(interface))
        guard index > 0 else { throw SystemError(call: "if_nametoindex(\(interface))", errno: ENODEV) }
        if group.isIPv4 {
            var m = ip_mreqn()
            m.imr_multiaddr.s_addr = group.ipv4Value.bigEndian
            m.imr_ifindex = index
            try SocketSetup.setOption(fd, Int32(IPPROTO_IP), IP_ADD_MEMBERSHIP, m, name: "IP_ADD_MEMBERSHIP(\(group) on \(interface))")
        } else {
            let m = IPv6Membership(group: group.raw6, interfaceIndex: UInt32(index))
            try SocketSetup.setOption(fd, Int32(IPPROTO_IPV6), IPV6_ADD_MEMBERSHIP, m, name: "IPV6_ADD_MEMBERSHIP(\(group) on \(interface))")
        }
        joined.insert(key)
    }

    func send(interface: String, source: IPAddress, destination: IPAddress, message: [UInt8]) throws {
        let v6 = !destination.isIPv4
        let fd = try socket(ipv6: v6)
        let index = Int32(bitPattern: if_nametoindex(interface))
        guard index > 0 else { throw SystemError(call: "if_nametoindex(\(interface))", errno: ENODEV) }
        if destination.isMulticast {
            // The outgoing interface of multicast is the socket's, not the packet info's.
            if v6 {
                try SocketSetup.setOption(fd, Int32(IPPROTO_IPV6), IPV6_MULTICAST_IF, index, name: "IPV6_MULTICAST_IF")
            } else {
                var m = ip_mreqn()
                m.imr_ifindex = index
                m.imr_address.s_addr = source.ipv4Value.bigEndian
                try SocketSetup.setOption(fd, Int32(IPPROTO_IP), IP_MULTICAST_IF, m, name: "IP_MULTICAST_IF")
            }
        }
        let target: RawSocketAddress
        if v6 {
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_addr = destination.in6
            sa.sin6_scope_id = destination.isLinkScoped ? UInt32(index) : 0
            target = .ipv6(sa)
        } else {
            target = .ipv4(address: destination.ipv4Value, port: 0)
        }
        control.initializeMemory(as: UInt8.self, repeating: 0)
        let controlUsed: Int
        if v6 {
            let info = IPv6PacketInfo(address: source.raw6, interfaceIndex: UInt32(index))
            controlUsed = Self.storeControl(control, level: Int32(IPPROTO_IPV6), type: IPV6_PKTINFO, info)
        } else {
            var info = in_pktinfo()
            info.ipi_ifindex = index
            info.ipi_spec_dst.s_addr = source.ipv4Value.bigEndian
            controlUsed = Self.storeControl(control, level: Int32(IPPROTO_IP), type: IP_PKTINFO, info)
        }
        var bytes = message
        let sent = bytes.withUnsafeMutableBytes { payload -> Int in
            target.withSockaddr { sa, length -> Int in
                var io = iovec(iov_base: payload.baseAddress, iov_len: payload.count)
                return withUnsafeMutablePointer(to: &io) { iov -> Int in
                    var h = msghdr()
                    h.msg_name = UnsafeMutableRawPointer(mutating: sa)
                    h.msg_namelen = length
                    h.msg_iov = iov
                    h.msg_iovlen = 1
                    h.msg_control = control.baseAddress
                    h.msg_controllen = controlUsed
                    return sendmsg(fd, &h, 0)
                }
            }
        }
        if sent < 0 { throw SystemError(call: "sendmsg(VRRP to \(destination) on \(interface))", errno: errno) }
    }

    /// Writes one control message at the start of `control`; returns the bytes used.
    private static func storeControl<T>(_ control: UnsafeMutableRawBufferPointer, level: Int32, type: Int32, _ value: T) -> Int {
        let header = MemoryLayout<cmsghdr>.stride
        let length = header + MemoryLayout<T>.size
        var h = cmsghdr()
        h.cmsg_len = length
        h.cmsg_level = level
        h.cmsg_type = type
        control.storeBytes(of: h, as: cmsghdr.self)
        withUnsafeBytes(of: value) { control.baseAddress!.advanced(by: header).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        return (length + 7) & ~7
    }

    func receive(timeoutMilliseconds: Int32) -> [VRRPReceived] {
        var fds: [pollfd] = []
        if ipv4 >= 0 { fds.append(pollfd(fd: ipv4, events: Int16(POLLIN), revents: 0)) }
        if ipv6 >= 0 { fds.append(pollfd(fd: ipv6, events: Int16(POLLIN), revents: 0)) }
        guard !fds.isEmpty else {
            if timeoutMilliseconds > 0 { usleep(UInt32(timeoutMilliseconds) * 1000) }
            return []
        }
        guard poll(&fds, nfds_t(fds.count), timeoutMilliseconds) > 0 else { return [] }
        var out: [VRRPReceived] = []
        for p in fds where p.revents & Int16(POLLIN) != 0 {
            // Drain what is queued, bounded so one busy socket cannot starve the timers.
            for _ in 0..<64 {
                guard let r = readOne(p.fd, ipv6: p.fd == ipv6) else { break }
                if let r { out.append(r) }
            }
        }
        return out
    }

    /// One datagram: nil when none is queued, `.some(nil)` for one that is not usable (too short
    /// an IP header: the router never sees it).
    private func readOne(_ fd: Int32, ipv6 v6: Bool) -> VRRPReceived?? {
        var from = sockaddr_storage()
        var io = iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
        let n: Int = withUnsafeMutablePointer(to: &from) { fromPointer in
            withUnsafeMutablePointer(to: &io) { iov in
                var h = msghdr()
                h.msg_name = UnsafeMutableRawPointer(fromPointer)
                h.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
                h.msg_iov = iov
                h.msg_iovlen = 1
                h.msg_control = control.baseAddress
                h.msg_controllen = control.count
                let n = recvmsg(fd, &h, Int32(MSG_DONTWAIT))
                controlLengthRead = n >= 0 ? h.msg_controllen : 0
                return n
            }
        }
        guard n >= 0 else { return nil }
        var ifindex: Int32 = 0
        var hopLimit: UInt8 = 0
        var destination = IPAddress.zero
        forEachControl { level, type, data in
            if level == Int32(IPPROTO_IP), type == IP_PKTINFO {
                ifindex = data.load(as: in_pktinfo.self).ipi_ifindex
            } else if level == Int32(IPPROTO_IPV6), type == IPV6_PKTINFO {
                let info = data.loadUnaligned(as: IPv6PacketInfo.self)
                ifindex = Int32(bitPattern: info.interfaceIndex)
                destination = IPAddress(raw6: info.address)
            } else if level == Int32(IPPROTO_IPV6), type == IPV6_HOPLIMIT {
                hopLimit = UInt8(truncatingIfNeeded: data.load(as: Int32.self))
            }
        }
        var name = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
        let interface = if_indextoname(UInt32(bitPattern: ifindex), &name) != nil ? String(cString: name) : ""
        if v6 {
            let sa = withUnsafeBytes(of: &from) { $0.load(as: sockaddr_in6.self) }
            return .some(VRRPReceived(interface: interface, source: IPAddress(in6: sa.sin6_addr), destination: destination,
                                      hopLimit: hopLimit, payload: Array(buffer[0..<n])))
        }
        // IPv4: the header is in front of the message.
        guard n >= 20 else { return .some(nil) }
        let headerLength = Int(buffer[0] & 0x0F) * 4
        guard headerLength >= 20, n >= headerLength else { return .some(nil) }
        let ttl = buffer[8]
        let source = IPAddress(ipv4: UInt32(bigEndian: buffer.loadUnaligned(fromByteOffset: 12, as: UInt32.self)))
        let dst = IPAddress(ipv4: UInt32(bigEndian: buffer.loadUnaligned(fromByteOffset: 16, as: UInt32.self)))
        return .some(VRRPReceived(interface: interface, source: source, destination: dst, hopLimit: ttl,
                                  payload: Array(buffer[headerLength..<n])))
    }

    private var controlLengthRead = 0

    /// Walks the control messages of the last `recvmsg`.
    private func forEachControl(_ body: (Int32, Int32, UnsafeRawPointer) -> Void) {
        let header = MemoryLayout<cmsghdr>.stride
        var offset = 0
        while offset + header <= controlLengthRead {
            let h = control.load(fromByteOffset: offset, as: cmsghdr.self)
            guard h.cmsg_len >= header, offset + h.cmsg_len <= controlLengthRead else { return }
            body(h.cmsg_level, h.cmsg_type, UnsafeRawPointer(control.baseAddress!.advanced(by: offset + header)))
            offset += (h.cmsg_len + 7) & ~7
        }
    }
}

/// `struct ipv6_mreq` (RFC 3493): a group and an interface index.
struct IPv6Membership: BitwiseCopyable {
    /// The 16 address bytes in network order (in6_addr is a union, not BitwiseCopyable).
    var group: IPv6RawAddress
    var interfaceIndex: UInt32
}

/// `struct in6_pktinfo` (RFC 3542), which Glibc exports only with _GNU_SOURCE.
struct IPv6PacketInfo: BitwiseCopyable {
    var address: IPv6RawAddress
    var interfaceIndex: UInt32
}

/// An IPv6 address's 16 bytes as they lie in memory (network order), 4-byte aligned like in6_addr.
typealias IPv6RawAddress = (UInt32, UInt32, UInt32, UInt32)

extension IPAddress {
    var raw6: IPv6RawAddress {
        var r: IPv6RawAddress = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &r) { store(to: $0.baseAddress!) }
        return r
    }

    init(raw6 r: IPv6RawAddress) {
        var r = r
        self = withUnsafeBytes(of: &r) { IPAddress(bytes: $0.baseAddress!, length: 16) }
    }

    /// The address as `in6_addr` (IPv6 only).
    var in6: in6_addr {
        var a = in6_addr()
        withUnsafeMutableBytes(of: &a) { store(to: $0.baseAddress!) }
        return a
    }

    init(in6 a: in6_addr) {
        var a = a
        self = withUnsafeBytes(of: &a) { IPAddress(bytes: $0.baseAddress!, length: 16) }
    }

    /// 224.0.0.0/4 or ff00::/8.
    var isMulticast: Bool { isIPv4 ? ipv4Value >> 28 == 0xE : high >> 56 == 0xFF }

    /// fe80::/10, or a multicast address of link-local scope (ff02::/16): needs an interface.
    var isLinkScoped: Bool { !isIPv4 && (high >> 54 == 0x3FA || high >> 48 == 0xFF02) }
}
