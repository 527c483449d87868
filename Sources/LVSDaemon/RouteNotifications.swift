import CLVSShim
import Glibc
import LVSSystem

/// What reading the route-notification socket brought.
enum RouteNotice: Equatable, Sendable {
    /// Nothing queued, or only messages that change no route.
    case none
    /// A route, an address or a link changed (an MTU, a link going down): the routes may have.
    case changed
    /// The kernel dropped notifications (ENOBUFS): what changed is unknown.
    case overflowed

    /// The stronger of two notices (overflowed > changed > none).
    func joined(_ other: RouteNotice) -> RouteNotice {
        switch (self, other) {
        case (.overflowed, _), (_, .overflowed): .overflowed
        case (.changed, _), (_, .changed): .changed
        default: .none
        }
    }
}

/// The kernel's rtnetlink notifications of route, address and link changes (IPv4 and IPv6), on
/// a NETLINK_ROUTE socket in lvsd's network namespace. `drain` reads without blocking; the owner
/// polls `fd`. Tests hand in the other end of a socketpair and their own `receive`.
///
/// Not Sendable: one thread (the tunnel route watcher's) owns it.
final class RouteNotificationSocket {
    /// The multicast groups: routes, interface addresses (IPv4, IPv6) and links.
    static let groups = clvs_rtmgrp_ipv4_route | clvs_rtmgrp_ipv6_route | clvs_rtmgrp_link | clvs_rtmgrp_ipv4_ifaddr | clvs_rtmgrp_ipv6_ifaddr
    /// The socket's receive buffer: a burst larger than this is an overflow (ENOBUFS).
    static let receiveBufferBytes: Int32 = 1 << 20
    /// One read: the kernel's notifications come in datagrams up to a page or so each.
    static let readBytes = 1 << 16
    /// The message types that may change a route's answer.
    static let routeChanging: Set<UInt16> = [clvs_rtm_newroute, clvs_rtm_delroute, clvs_rtm_newaddr, clvs_rtm_deladdr, clvs_rtm_newlink, clvs_rtm_dellink]

    /// The read function: recv(2) of one datagram into the buffer, its length; throws a
    /// `SystemError` (EAGAIN when nothing is queued, ENOBUFS after an overflow).
    typealias Receive = (Int32, UnsafeMutableRawBufferPointer) throws -> Int

    let fd: Int32
    private let closesFD: Bool
    private let receive: Receive
    private let buffer: UnsafeMutableRawBufferPointer

    init(fd: Int32, closesFD: Bool, receive: @escaping Receive = RouteNotificationSocket.receiveNonBlocking) {
        self.fd = fd
        self.closesFD = closesFD
        self.receive = receive
        buffer = .allocate(byteCount: Self.readBytes, alignment: MemoryLayout<clvs_nlmsghdr>.alignment)
    }

    deinit {
        buffer.deallocate()
        if closesFD { Glibc.close(fd) }
    }

    /// A NETLINK_ROUTE socket bound to `groups`.
    static func open() throws -> RouteNotificationSocket {
        let fd = try SocketSetup.open(family: AF_NETLINK, type: Int32(SOCK_RAW.rawValue), protocol: clvs_netlink_route,
                                      name: "socket(AF_NETLINK, NETLINK_ROUTE)")
        do {
            // SO_RCVBUFFORCE (CAP_NET_ADMIN) passes net.core.rmem_max; without it, SO_RCVBUF (capped).
            if (try? SocketSetup.setOption(fd, SOL_SOCKET, SO_RCVBUFFORCE, receiveBufferBytes, name: "SO_RCVBUFFORCE")) == nil {
                try SocketSetup.setOption(fd, SOL_SOCKET, SO_RCVBUF, receiveBufferBytes, name: "SO_RCVBUF")
            }
            var address = clvs_sockaddr_nl()
            address.nl_family = sa_family_t(AF_NETLINK)
            address.nl_groups = groups
            try syscall("bind(AF_NETLINK)") {
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<clvs_sockaddr_nl>.size)) }
                }
            }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return RouteNotificationSocket(fd: fd, closesFD: true)
    }

    /// recv(2) with MSG_DONTWAIT.
    static func receiveNonBlocking(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try syscall("recv(NETLINK_ROUTE)") { Glibc.recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT)) }
    }

    /// Reads every queued datagram: `.changed` when one carries a route-changing message,
    /// `.overflowed` when the kernel reported lost notifications. Throws other read errors (the
    /// socket is then of no more use).
    func drain() throws -> RouteNotice {
        var notice = RouteNotice.none
        while true {
            do {
                let n = try receive(fd, buffer)
                if n == 0 { return notice }
                notice = notice.joined(Self.classify(UnsafeRawBufferPointer(rebasing: buffer[..<n])))
            } catch let e as SystemError where e.errno == EAGAIN || e.errno == EWOULDBLOCK {
                return notice
            } catch let e as SystemError where e.errno == ENOBUFS {
                notice = .overflowed  // the socket stays usable: read on
            }
        }
    }

    /// The notice one datagram of netlink messages gives (a truncated message ends the walk).
    static func classify(_ datagram: UnsafeRawBufferPointer) -> RouteNotice {
        let header = MemoryLayout<clvs_nlmsghdr>.size
        var offset = 0
        while offset + header <= datagram.count {
            let length = Int(datagram.loadUnaligned(fromByteOffset: offset + NetlinkHeader.length, as: UInt32.self))
            let type = datagram.loadUnaligned(fromByteOffset: offset + NetlinkHeader.type, as: UInt16.self)
            guard length >= header, offset + length <= datagram.count else { break }
            if routeChanging.contains(type) { return .changed }
            offset += NetlinkHeader.aligned(length)
        }
        return .none
    }
}

/// nlmsghdr's fields (byte offsets) and NLMSG_ALIGN.
enum NetlinkHeader {
    static let length = 0
    static let type = 4
    static let alignment = 4
    static func aligned(_ n: Int) -> Int { (n + alignment - 1) & ~(alignment - 1) }
}

/// When the tunnel routes are looked up again: a notice schedules a pass `coalesce` after it
/// (notices until then join that pass: one pass per burst), and a pass comes at the latest
/// `refresh` after the last one (the safety refresh, for notifications lost); notice-driven passes
/// are at least `spacing` apart, so a table that changes all the time (a BGP feed) costs at most
/// one pass per `spacing`. Pure: the caller gives the times (monotonic nanoseconds).
struct RouteRefreshSchedule: Sendable {
    let coalesce: UInt64
    let refresh: UInt64
    let spacing: UInt64
    /// When the pass that notices asked for is due (nil: none asked for).
    private(set) var requested: UInt64?
    /// When the last pass was made (or the schedule started).
    private(set) var lastPass: UInt64

    init(coalesce: UInt64, refresh: UInt64, spacing: UInt64 = 0, now: UInt64) {
        self.coalesce = coalesce
        self.refresh = refresh
        self.spacing = spacing
        lastPass = now
    }

    /// A notice read at `now`: `.changed` and `.overflowed` ask for a pass (the first of a burst
    /// sets its time).
    mutating func note(_ notice: RouteNotice, at now: UInt64) {
        guard notice != .none, requested == nil else { return }
        requested = max(now &+ coalesce, lastPass &+ spacing)
    }

    /// When the next pass is due.
    var nextPass: UInt64 { min(requested ?? .max, lastPass.addingReportingOverflow(refresh).overflow ? .max : lastPass &+ refresh) }

    /// True when a pass is due at `now`: the caller makes it, the schedule starts again from `now`.
    mutating func take(at now: UInt64) -> Bool {
        guard now >= nextPass else { return false }
        requested = nil
        lastPass = now
        return true
    }
}
