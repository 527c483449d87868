import Glibc
import LVSCore
import LVSModel

/// A virtual service the director's own kernel must not see: destination address, IP protocol
/// (6 TCP, 17 UDP, 132 SCTP) and port (0 = every port of that protocol).
public struct VIPMatch: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var proto: UInt8
    public var port: UInt16

    public init(address: IPAddress, proto: UInt8, port: UInt16) {
        self.address = address
        self.proto = proto
        self.port = port
    }

    public var description: String { "\(proto):\(address.bracketed):\(port)" }
}

/// Keeps the director's kernel away from load-balanced traffic: a `netdev lvsd_<pid>` table with an
/// ingress chain per interface that drops frames to the VIP tuples, and one that drops frames the
/// active fwmark rules match (prefix, protocol, port range: one rule each). lvsd's ETH_P_ALL packet
/// taps run before netdev ingress, so lvsd still receives them; the kernel neither answers (RST,
/// port unreachable) nor forwards them.
///
/// Every change is one `nft -f -` transaction, and an update that changes nothing runs none (a batch
/// of control changes that keeps the VIPs, e.g. real servers added or reweighted, costs no `nft`).
/// `nft` runs from the calling thread, so it acts in that thread's network namespace.
public final class NFTablesGuard {
    /// Runs one `nft -f -` script (tests count them with a runner of their own).
    public typealias Runner = (String) throws -> Void

    public let table: String
    public let interfaces: [String]
    public private(set) var vips: [VIPMatch]
    /// The fwmark rules whose frames are dropped (those whose mark has a service).
    public private(set) var marks: [MarkRule]
    public private(set) var isInstalled = false
    /// lvsd --orphan-timeout in ms: the guard drops only while lvsd refreshes it (`refreshAlive`,
    /// NFTablesGuard+Orphan.swift); 0: for as long as the table exists.
    public let orphanTimeoutMs: Int
    let runner: Runner

    /// Installs the table (replacing one of the same name).
    public init(interfaces: [String], vips: [VIPMatch], marks: [MarkRule] = [], pid: Int32 = getpid(),
                orphanTimeoutMs: Int = 0, runner: @escaping Runner = NFTablesGuard.nft) throws {
        guard !interfaces.isEmpty else { throw DataPlaneError.invalidConfiguration("NFTablesGuard needs an interface") }
        for name in interfaces { _ = try InterfaceInfo.lookup(name) } // clear error naming a missing interface
        self.table = "lvsd_\(pid)"
        self.interfaces = interfaces
        self.vips = vips
        self.marks = marks
        self.runner = runner
        self.orphanTimeoutMs = orphanTimeoutMs
        try runner(Self.ruleset(table: table, interfaces: interfaces, vips: vips, marks: marks, orphanTimeoutMs: orphanTimeoutMs))
        isInstalled = true
    }

    /// Replaces the VIP rules atomically (one transaction: flush the sets and refill them, and the
    /// fwmark chains when `marks` is given). Nothing runs when they are what is installed.
    public func update(vips: [VIPMatch], marks: [MarkRule]? = nil) throws {
        if Set(vips) == Set(self.vips) && (marks == nil || marks == self.marks) { return }
        var script = Self.elements(table: table, vips: vips, flush: true)
        if let marks {
            script += Self.markRules(table: table, interfaceCount: interfaces.count, marks: marks, flush: true, orphanTimeoutMs: orphanTimeoutMs)
        }
        try runner(script)
        self.vips = vips
        if let marks { self.marks = marks }
    }

    /// Deletes the table. Idempotent.
    public func remove() throws {
        guard isInstalled else { return }
        try runner("delete table netdev \(table)\n")
        isInstalled = false
    }

    /// Deletes `netdev lvsd_<pid>` tables whose process no longer exists; returns their names.
    @discardableResult
    public static func removeStale() throws -> [String] {
        let listing = try ExternalCommand.check(["nft", "list", "tables", "netdev"])
        var removed: [String] = []
        for line in listing.split(separator: "\n") {
            let words = line.split(separator: " ")
            guard words.count == 3, words[0] == "table", words[1] == "netdev", words[2].hasPrefix("lvsd_"),
                  let pid = Int32(words[2].dropFirst(5)), pid > 0 else { continue }
            if processEnded(pid) {
                try nft("delete table netdev \(words[2])\n")
                removed.append(String(words[2]))
            }
        }
        return removed
    }

    /// Whether `pid` has ended: no such process, or a zombie (exited, not yet reaped by its
    /// parent: a restart's next lvsd may start before that).
    public static func processEnded(_ pid: Int32) -> Bool {
        if kill(pid, 0) != 0 && errno == ESRCH { return true }
        // /proc/PID/stat: "PID (COMM) STATE ..."; COMM may hold spaces and parentheses, so the
        // state is the first field after the last ')'.
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0, let close = buffer[0..<n].lastIndex(of: UInt8(ascii: ")")), close + 2 < n else { return false }
        return buffer[close + 2] == UInt8(ascii: "Z")
    }

    /// The full ruleset text for `nft -f` (public for tests and `--dry-run` style output).
    public static func ruleset(table: String, interfaces: [String], vips: [VIPMatch], marks: [MarkRule] = [],
                               orphanTimeoutMs: Int = 0) -> String {
        var s = """
        table netdev \(table) {}
        delete table netdev \(table)
        table netdev \(table) {
          set vip4 { type ipv4_addr . inet_proto . inet_service; }
          set vip6 { type ipv6_addr . inet_proto . inet_service; }
          set vip4any { type ipv4_addr . inet_proto; }
          set vip6any { type ipv6_addr . inet_proto; }

        """
        s += aliveSet(orphanTimeoutMs: orphanTimeoutMs)
        for (i, name) in interfaces.enumerated() {
            s += """
              chain ingress\(i) {
                type filter hook ingress device "\(name)" priority -300; policy accept;
                ip daddr . meta l4proto . th dport @vip4 counter drop
                ip daddr . meta l4proto @vip4any counter drop
                ip6 daddr . meta l4proto . th dport @vip6 counter drop
                ip6 daddr . meta l4proto @vip6any counter drop
              }
              chain marks\(i) {
                type filter hook ingress device "\(name)" priority -300; policy accept;
              }

            """
        }
        s += "}\n"
        s = withAliveRules(s, orphanTimeoutMs: orphanTimeoutMs)
        s += aliveElements(table: table, interfaces: interfaces, orphanTimeoutMs: orphanTimeoutMs, flush: false)
        s += elements(table: table, vips: vips, flush: false)
        s += markRules(table: table, interfaceCount: interfaces.count, marks: marks, flush: false)
        return s
    }

    /// The fwmark chains' rules: per rule, its prefix, protocol (a rule without one: TCP, UDP and
    /// SCTP, the protocols lvsd balances) and port range. (Rules, not an interval set: nested
    /// prefixes would be overlapping elements, which nftables refuses.)
    static func markRules(table: String, interfaceCount: Int, marks: [MarkRule], flush: Bool, orphanTimeoutMs: Int = 0) -> String {
        var s = ""
        for i in 0..<interfaceCount {
            if flush { s += "flush chain netdev \(table) marks\(i)\n" + aliveRule(table: table, chain: "marks\(i)", orphanTimeoutMs: orphanTimeoutMs) }
            for r in marks {
                let family = r.destination.isIPv4 ? "ip" : "ip6"
                var rule = "\(family) daddr \(r.destination.masked(prefix: r.prefixLength))/\(r.prefixLength)"
                if let proto = r.proto {
                    rule += " meta l4proto \(proto.rawValue) th dport "
                    rule += r.portLow == r.portHigh ? "\(r.portLow)" : "\(r.portLow)-\(r.portHigh)"
                } else {
                    rule += " meta l4proto { 6, 17, 132 }"
                }
                s += "add rule netdev \(table) marks\(i) \(rule) counter drop\n"
            }
        }
        return s
    }

    static func elements(table: String, vips: [VIPMatch], flush: Bool) -> String {
        var s = ""
        if flush {
            for set in ["vip4", "vip6", "vip4any", "vip6any"] { s += "flush set netdev \(table) \(set)\n" }
        }
        var groups: [String: [String]] = [:]
        for v in Set(vips).sorted(by: { ($0.address, $0.proto, $0.port) < ($1.address, $1.proto, $1.port) }) {
            let set = (v.address.isIPv4 ? "vip4" : "vip6") + (v.port == 0 ? "any" : "")
            let element = v.port == 0 ? "\(v.address) . \(v.proto)" : "\(v.address) . \(v.proto) . \(v.port)"
            groups[set, default: []].append(element)
        }
        for set in ["vip4", "vip6", "vip4any", "vip6any"] {
            guard let list = groups[set], !list.isEmpty else { continue }
            s += "add element netdev \(table) \(set) { \(list.joined(separator: ", ")) }\n"
        }
        return s
    }

    /// Runs `nft -f -` with `script` on stdin.
    public static func nft(_ script: String) throws {
        try ExternalCommand.check(["nft", "-f", "-"], input: script)
    }
}
