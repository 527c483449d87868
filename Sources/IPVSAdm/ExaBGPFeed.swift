import LVSModel

/// `lvsadm daemon announcements --exabgp`: ExaBGP's `process` API fed from lvsd's announcement
/// state (`lvsd --announce-table`). ExaBGP runs lvsadm and reads its standard output: one
/// `announce route VIP/32 next-hop self` when a VIP becomes ready, one `withdraw route ...` when
/// it stops being ready. When lvsd does not answer (stopped, or dead), every VIP announced so far
/// is withdrawn, as the kernel routes are when lvsd's process ends.
public struct ExaBGPFeed: Sendable {
    /// The VIPs announced so far (what ExaBGP was told).
    public private(set) var announced: Set<AnnouncedPrefix> = []

    public init() {}

    /// The next state: `states` from lvsd's status, or nil when lvsd did not answer. Returns the
    /// lines for ExaBGP (withdrawals first, each list sorted).
    public mutating func update(_ states: [VIPAnnouncement]?) -> [String] {
        let now = Set((states ?? []).filter(\.isAnnounced).map(\.prefix))
        let lines = Self.withdrawals(announced.subtracting(now)) + Self.announcements(now.subtracting(announced))
        announced = now
        return lines
    }

    static func announcements(_ prefixes: Set<AnnouncedPrefix>) -> [String] {
        prefixes.sorted().map { "announce route \($0) next-hop self" }
    }

    static func withdrawals(_ prefixes: Set<AnnouncedPrefix>) -> [String] {
        prefixes.sorted().map { "withdraw route \($0) next-hop self" }
    }
}
