/// One of the kernel's IPVS run-time settings (`/proc/sys/net/ipv4/vs/NAME`, `sysctl
/// net.ipv4.vs.NAME`) that lvsd has, under the kernel's name. The raw value indexes
/// `SysctlValues` and the engine's settings words.
public enum Sysctl: Int, CaseIterable, Sendable {
    case amDroprate = 0
    case amemthresh
    case connReuseMode
    case dropEntry
    case dropPacket
    case expireNodestConn
    case expireQuiescentTemplate
    case secureTCP
    case sloppySCTP
    case sloppyTCP
    case syncRefreshPeriod
    case syncRetries

    /// The kernel's name (the file under /proc/sys/net/ipv4/vs).
    public var name: String {
        switch self {
        case .amDroprate: return "am_droprate"
        case .amemthresh: return "amemthresh"
        case .connReuseMode: return "conn_reuse_mode"
        case .dropEntry: return "drop_entry"
        case .dropPacket: return "drop_packet"
        case .expireNodestConn: return "expire_nodest_conn"
        case .expireQuiescentTemplate: return "expire_quiescent_template"
        case .secureTCP: return "secure_tcp"
        case .sloppySCTP: return "sloppy_sctp"
        case .sloppyTCP: return "sloppy_tcp"
        case .syncRefreshPeriod: return "sync_refresh_period"
        case .syncRetries: return "sync_retries"
        }
    }

    /// The values lvsd accepts.
    public var range: ClosedRange<Int> {
        switch self {
        case .amDroprate: return 2...1_000_000
        case .amemthresh: return 1...99
        case .connReuseMode: return 0...3
        case .dropEntry, .dropPacket, .secureTCP: return 0...3
        case .expireNodestConn, .expireQuiescentTemplate, .sloppySCTP, .sloppyTCP: return 0...1
        case .syncRefreshPeriod: return 0...2_147_483
        case .syncRetries: return 0...3
        }
    }

    /// lvsd's default: the kernel's, except drop_entry and secure_tcp (1, automatic: lvsd's SYN-flood
    /// defence is on by default) and amemthresh (a percentage of free connection entries here, not
    /// pages of free memory).
    public var defaultValue: Int {
        switch self {
        case .amDroprate: return 10
        case .amemthresh: return 10
        case .connReuseMode: return 1
        case .dropEntry, .secureTCP: return 1
        case .dropPacket: return 0
        case .expireNodestConn, .expireQuiescentTemplate, .sloppySCTP, .sloppyTCP: return 0
        case .syncRefreshPeriod, .syncRetries: return 0
        }
    }

    /// Whether `lvsadm daemon sysctl` may change it while lvsd runs; the others are fixed at start
    /// (each worker sizes something from them when it is made).
    public var settableAtRunTime: Bool {
        switch self {
        case .amemthresh, .syncRefreshPeriod, .syncRetries: return false
        default: return true
        }
    }

    /// One line: what the setting does (the kernel's meaning, as lvsd applies it).
    public var meaning: String {
        switch self {
        case .amDroprate: return "drop_packet 3 drops one of every N new-connection packets"
        case .amemthresh: return "the automatic defences engage while fewer than N % of a worker's connection entries are free"
        case .connReuseMode: return "a SYN on a TIME_WAIT/CLOSE entry starts afresh (bit 0); also on FIN_WAIT (bit 1, DR)"
        case .dropEntry: return "evict half-open or finished TCP entries when the table is full (0 off, 1/2 automatic, 3 always)"
        case .dropPacket: return "drop some new-connection packets (0 off, 1/2 automatic, 3 always)"
        case .expireNodestConn: return "expire a connection whose real server was deleted (or is quiesced, for a SYN) instead of dropping its packets"
        case .expireQuiescentTemplate: return "persistence templates pointing to a weight-0 real server are not used"
        case .secureTCP: return "short SYN_RECV timeout for new TCP connections (0 off, 1/2 automatic, 3 always)"
        case .sloppySCTP: return "any SCTP chunk but ABORT from an unknown flow creates a connection (mid-stream pickup)"
        case .sloppyTCP: return "any TCP packet but RST from an unknown flow creates a connection (mid-stream pickup)"
        case .syncRefreshPeriod: return "the master sync daemon re-sends a connection only when its expiry moved this many seconds (0 off)"
        case .syncRetries: return "re-sends of an unchanged connection with sync_refresh_period (0-3)"
        }
    }

    /// The setting called `name`: the kernel's short name, or its sysctl key `net.ipv4.vs.NAME`
    /// (also `net/ipv4/vs/NAME`).
    public init?(name: String) {
        var short = Substring(name)
        for prefix in ["net.ipv4.vs.", "net/ipv4/vs/"] where short.hasPrefix(prefix) {
            short = short.dropFirst(prefix.count)
        }
        guard let s = Sysctl.allCases.first(where: { $0.name == short }) else { return nil }
        self = s
    }

    /// The kernel's IPVS sysctls lvsd does not have (named in an error instead of "unknown").
    public static let unsupportedNames: Set<String> = [
        "backup_only", "cache_bypass", "conntrack", "debug_level", "est_cpulist", "est_nice",
        "ignore_tunneled", "lblc_expiration", "lblcr_expiration", "nat_icmp_send", "pmtu_disc",
        "run_estimation", "schedule_icmp", "snat_reroute", "sync_persist_mode", "sync_ports",
        "sync_qlen_max", "sync_sock_size", "sync_threshold", "sync_version",
    ]
}

/// A value for every `Sysctl`, indexed by the setting.
public struct SysctlValues: Sendable, Equatable {
    private var values: [Int]

    /// lvsd's defaults (`Sysctl.defaultValue`).
    public init() { values = Sysctl.allCases.map(\.defaultValue) }

    public subscript(_ s: Sysctl) -> Int {
        get { values[s.rawValue] }
        set { values[s.rawValue] = newValue }
    }

    /// `name = value` lines in the settings' order (the form of `lvsadm daemon sysctl`).
    public var lines: [String] { Sysctl.allCases.map { "\($0.name) = \(self[$0])" } }

    /// Every setting as an assignment, in the settings' order.
    public var assignments: [SysctlAssignment] { Sysctl.allCases.map { SysctlAssignment($0, self[$0]) } }

    /// Values from a complete list of assignments (the wire form); nil when one is missing.
    public init?(_ list: [SysctlAssignment]) {
        self.init()
        var seen = Set<Int>()
        for a in list {
            self[a.setting] = a.value
            seen.insert(a.setting.rawValue)
        }
        guard seen.count == Sysctl.allCases.count else { return nil }
    }
}

/// A setting and its value, as `name = value` gives it. Wire form: `{"name":"sloppy_tcp","value":1}`.
public struct SysctlAssignment: Sendable, Equatable, Codable {
    public var setting: Sysctl
    public var value: Int
    public init(_ setting: Sysctl, _ value: Int) {
        self.setting = setting
        self.value = value
    }

    private enum Key: String, CodingKey { case name, value }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        let name = try c.decode(String.self, forKey: .name)
        guard let s = Sysctl(name: name) else {
            throw DecodingError.dataCorruptedError(forKey: .name, in: c, debugDescription: "unknown setting \(name)")
        }
        setting = s
        value = try c.decode(Int.self, forKey: .value)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(setting.name, forKey: .name)
        try c.encode(value, forKey: .value)
    }
}

/// A bad setting name or value; the description names the file:line or the option.
public struct SysctlError: Error, Equatable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The text forms of the settings: `NAME=VALUE` (`--set-sysctl`, `lvsadm daemon sysctl`) and a
/// settings file in sysctl.conf's syntax (`name = value` lines, `#` or `;` comments, blank lines).
public enum SysctlSyntax {
    /// The setting called `name`, or an error saying it is unknown or not supported by lvsd.
    public static func setting(_ name: String) throws(SysctlError) -> Sysctl {
        if let s = Sysctl(name: name) { return s }
        let short = name.split(separator: ".").last.map(String.init) ?? name
        if Sysctl.unsupportedNames.contains(short) {
            throw SysctlError("\(name): a kernel setting lvsd does not have (see docs/settings.md)")
        }
        throw SysctlError("\(name): unknown setting (known: \(Sysctl.allCases.map(\.name).joined(separator: " ")))")
    }

    /// `value` for `setting`: a decimal integer within the setting's range.
    public static func value(_ text: String, for setting: Sysctl) throws(SysctlError) -> Int {
        let r = setting.range
        guard let v = Int(text), r.contains(v) else {
            throw SysctlError("\(setting.name): invalid value `\(text)' (an integer from \(r.lowerBound) to \(r.upperBound))")
        }
        return v
    }

    /// One `NAME=VALUE` (spaces around `=` allowed).
    public static func assignment(_ text: String) throws(SysctlError) -> SysctlAssignment {
        let sides = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard sides.count == 2 else { throw SysctlError("`\(text)': expected NAME=VALUE") }
        let name = trimmed(sides[0]), value = trimmed(sides[1])
        guard !name.isEmpty else { throw SysctlError("`\(text)': expected NAME=VALUE") }
        let s = try setting(name)
        return SysctlAssignment(s, try Self.value(value, for: s))
    }

    /// The assignments of a settings file, in order; an error names `path:line`.
    public static func file(_ contents: String, path: String) throws(SysctlError) -> [SysctlAssignment] {
        var out: [SysctlAssignment] = []
        var lineNumber = 0
        for raw in contents.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = trimmed(raw)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            do {
                out.append(try assignment(line))
            } catch {
                throw SysctlError("\(path):\(lineNumber): \(error.description)")
            }
        }
        return out
    }

    private static func trimmed(_ s: Substring) -> String {
        String(s.drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed())
    }
}
