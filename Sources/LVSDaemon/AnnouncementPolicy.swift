import LVSCore
import LVSModel

/// Which VIPs are READY to be announced (issue 17), decided from what lvsd knows, without I/O:
/// a VIP is announced when lvsd's data plane runs, lvsd is not stopping, the VIP is not held by a
/// VRRP BACKUP, and at least one of its services has a real server with weight > 0 (with a
/// keepalived.conf the health checks remove a failed real server or set its weight to 0, so the
/// table says which are up). A firewall-mark service is announced through its `--fwmark` rules'
/// destinations (each with the rule's prefix length).
enum AnnouncementPolicy {
    /// What lvsd's run state adds to the table's.
    struct RunState: Equatable {
        var dataPlaneRunning: Bool
        var stopping: Bool
        /// VIPs managed by a VRRP instance that is not MASTER (`Engine.notOwnedVIPs`).
        var notOwned: Set<IPAddress> = []
    }

    /// Every VIP of `snapshot`, plus those in `previously` that are gone (withheld: no service),
    /// sorted; each announced or withheld with the first reason that applies.
    static func evaluate(_ snapshot: TableSnapshot, rules: [MarkRule], run: RunState,
                         previously: Set<AnnouncedPrefix> = []) -> [VIPAnnouncement] {
        // For each prefix: whether any of its services has an available real server.
        var available: [AnnouncedPrefix: Bool] = [:]
        for service in snapshot.services {
            let up = service.destinations.contains { $0.options.weight > 0 }
            for prefix in prefixes(of: service.key, rules: rules) {
                available[prefix] = (available[prefix] ?? false) || up
            }
        }
        var out: [VIPAnnouncement] = []
        for prefix in Set(available.keys).union(previously).sorted() {
            let reason: AnnouncementWithholding?
            if run.stopping {
                reason = .stopping
            } else if !run.dataPlaneRunning {
                reason = .dataPlaneNotRunning
            } else if let up = available[prefix] {
                if !up {
                    reason = .noAvailableRealServer
                } else if run.notOwned.contains(prefix.address) {
                    reason = .notOwned
                } else {
                    reason = nil
                }
            } else {
                reason = .noService
            }
            out.append(VIPAnnouncement(prefix: prefix, withheld: reason))
        }
        return out
    }

    /// The prefixes a service is reached at: its VIP, or a firewall-mark service's rule targets.
    static func prefixes(of key: ServiceKey, rules: [MarkRule]) -> [AnnouncedPrefix] {
        guard key.isFwmark else { return [AnnouncedPrefix(host: key.address)] }
        return rules.filter { $0.mark == key.fwmark && $0.destination.isIPv4 != key.isIPv6 }
            .map { AnnouncedPrefix(address: $0.destination, length: $0.prefixLength) }
    }
}
