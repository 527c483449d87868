/// A VIP as lvsd announces it (`--announce-table`): an address and a prefix length (/32 or /128
/// for a service's VIP; a `--fwmark` rule's own length for a firewall-mark service).
public struct AnnouncedPrefix: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var address: IPAddress
    public var length: Int

    public init(address: IPAddress, length: Int) {
        self.address = address
        self.length = length
    }

    /// A single address: /32 (IPv4) or /128 (IPv6).
    public init(host address: IPAddress) {
        self.init(address: address, length: address.isIPv4 ? 32 : 128)
    }

    /// "10.0.0.1/32", "2001:db8::1/128".
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPAddress(String(parts[0])), let length = Int(parts[1]),
              (0...(address.isIPv4 ? 32 : 128)).contains(length) else { return nil }
        self.init(address: address, length: length)
    }

    public var description: String { "\(address)/\(length)" }

    public static func < (a: AnnouncedPrefix, b: AnnouncedPrefix) -> Bool {
        if a.address.isIPv4 != b.address.isIPv4 { return a.address.isIPv4 }
        return (a.address, a.length) < (b.address, b.length)
    }
}

/// Why a VIP is not announced, as `lvsadm daemon status` and the metrics name it.
public enum AnnouncementWithholding: String, CaseIterable, Sendable, Codable {
    /// No virtual service has this VIP (any more).
    case noService = "no service"
    /// Its services exist, but none has a real server with weight > 0 (the health checks took
    /// the others out, or an operator set their weight to 0).
    case noAvailableRealServer = "no available real server"
    /// lvsd's data plane is not forwarding (not started yet, or stopped).
    case dataPlaneNotRunning = "data plane not running"
    /// lvsd is stopping: every route was withdrawn first (`--announce-hold`).
    case stopping
    /// The VIP is managed by a VRRP instance that is not MASTER here.
    case notOwned = "not owned (VRRP backup)"

    /// The metrics' label value: the reason with "-" for spaces, no parentheses.
    public var label: String {
        switch self {
        case .noService: return "no-service"
        case .noAvailableRealServer: return "no-available-real-server"
        case .dataPlaneNotRunning: return "data-plane-not-running"
        case .stopping: return "stopping"
        case .notOwned: return "not-owned"
        }
    }
}

/// One VIP's announcement state: announced, or withheld and why.
public struct VIPAnnouncement: Hashable, Sendable, CustomStringConvertible {
    public var prefix: AnnouncedPrefix
    /// nil: announced.
    public var withheld: AnnouncementWithholding?

    public init(prefix: AnnouncedPrefix, withheld: AnnouncementWithholding?) {
        self.prefix = prefix
        self.withheld = withheld
    }

    public var isAnnounced: Bool { withheld == nil }

    /// What each status line starts with.
    public static let statusPrefix = "announce "

    /// The `lvsadm daemon status` line: `announce 10.0.0.1/32: announced` or
    /// `announce 10.0.0.2/32: withheld (no available real server)`. `parse` reads it back
    /// (`lvsadm daemon announcements` does).
    public var description: String {
        Self.statusPrefix + "\(prefix): " + (withheld.map { "withheld (\($0.rawValue))" } ?? "announced")
    }

    /// Reads one status line written by `description`; nil for any other line.
    public static func parse(_ line: Substring) -> VIPAnnouncement? {
        guard line.hasPrefix(statusPrefix) else { return nil }
        let rest = line.dropFirst(statusPrefix.count)
        // The first ":" after the "/" (an IPv6 address has its own).
        guard let slash = rest.firstIndex(of: "/"), let colon = rest[slash...].firstIndex(of: ":"),
              let prefix = AnnouncedPrefix(String(rest[..<colon])) else { return nil }
        let state = rest[rest.index(after: colon)...].drop(while: { $0 == " " })
        if state == "announced" { return VIPAnnouncement(prefix: prefix, withheld: nil) }
        let opening = "withheld ("
        guard state.hasPrefix(opening), state.hasSuffix(")"),
              let reason = AnnouncementWithholding(rawValue: String(state.dropFirst(opening.count).dropLast())) else { return nil }
        return VIPAnnouncement(prefix: prefix, withheld: reason)
    }

    /// Every announcement line of a status text, in order.
    public static func parseStatus(_ text: String) -> [VIPAnnouncement] {
        text.split(separator: "\n").compactMap { parse($0) }
    }
}
