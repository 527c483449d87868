import LVSModel
import LVSVRRP

/// One message from reading a keepalived.conf: where it is, and how serious.
public struct KeepalivedDiagnostic: Sendable, Equatable, CustomStringConvertible {
    public enum Severity: String, Sendable, Equatable {
        /// keepalived only warns (or we tolerate and note it); the configuration still loads.
        case warning
        /// keepalived -t reports it as an error; at run time the item is skipped.
        case error
    }

    public var severity: Severity
    public var file: String
    public var line: Int
    public var message: String

    public init(_ severity: Severity, file: String, line: Int, _ message: String) {
        self.severity = severity
        self.file = file
        self.line = line
        self.message = message
    }

    /// `keepalived.conf:12: unknown keyword 'lb_algoo' in virtual_server`
    public var description: String {
        "\(file):\(line): \(severity == .warning ? "warning: " : "")\(message)"
    }
}

/// Thrown by the loader when keepalived would refuse to start (exit code 2).
public struct KeepalivedLoadError: Error, CustomStringConvertible, Sendable {
    public var diagnostics: [KeepalivedDiagnostic]
    public var message: String
    public var description: String { message }
}

/// The `global_defs` keys that matter to LVS.
public struct KeepalivedGlobals: Sendable, Equatable {
    public var routerID: String?
    /// `lvs_timeouts tcp S tcpfin S udp S` (0 keeps a value).
    public var lvsTimeouts: IPVSTimeouts?
    public var lvsFlush = false
    public var lvsFlushOnStop = false
    /// The raw arguments of `lvs_sync_daemon` (applied through `KeepalivedConfig.vrrp.lvsSyncDaemon`).
    public var lvsSyncDaemon: [String]?
    public var checkerLogAllFailures = false
    public var rsInitNotifies = false
    public var enableScriptSecurity = false
    public var scriptUser: [String]?
    /// Who runs notify and quorum scripts (and MISC_CHECKs without `user`), resolved from
    /// `script_user` when the checkers start (`ScriptSecurity.prepare`); nil: nobody may.
    public var scriptRunAs: ScriptIdentity?
    public init() {}
}

/// A forwarding method as written in `lvs_method` / `lb_kind`.
public struct KeepalivedMethod: Sendable, Hashable {
    public var method: ForwardMethod
    public var tunnelType: TunnelType = .ipip
    public var tunnelPort: UInt16 = 0
    /// 0 nocsum, 1 csum, 2 remcsum.
    public var tunnelFlags: UInt8 = 0
    public init(_ method: ForwardMethod) { self.method = method }
}

/// The header of a `virtual_server` block.
public enum VirtualServerAddress: Sendable, Hashable, CustomStringConvertible {
    case address(IPAddress, port: UInt16)
    case fwmark(UInt32)
    case group(String)

    public var description: String {
        switch self {
        case let .address(a, p): return "\(a.bracketed):\(p)"
        case let .fwmark(m): return "FWM \(m)"
        case let .group(g): return "group \(g)"
        }
    }
}

/// One entry of a `virtual_server_group`, ranges already expanded.
public enum VirtualServerGroupEntry: Sendable, Hashable {
    case address(IPAddress, port: UInt16)
    case fwmark(UInt32, ipv6: Bool)
}

public struct VirtualServerGroup: Sendable, Equatable {
    public var name: String
    public var entries: [VirtualServerGroupEntry]
    public init(name: String, entries: [VirtualServerGroupEntry] = []) {
        self.name = name
        self.entries = entries
    }
}

/// A `url { }` block of HTTP_GET / SSL_GET.
public struct KeepalivedURL: Sendable, Hashable {
    public var path: String
    /// Lower-case hex MD5 of the body, if configured.
    public var digest: String?
    /// Accepted status ranges (inclusive); empty means 200–299.
    public var statusCodes: [ClosedRange<Int>]
    public var virtualhost: String?
    public init(path: String, digest: String? = nil, statusCodes: [ClosedRange<Int>] = [], virtualhost: String? = nil) {
        self.path = path
        self.digest = digest
        self.statusCodes = statusCodes
        self.virtualhost = virtualhost
    }

    public func accepts(status: Int) -> Bool {
        if statusCodes.isEmpty { return (200...299).contains(status) }
        return statusCodes.contains { $0.contains(status) }
    }
}

public enum CheckerKind: Sendable, Hashable, CustomStringConvertible {
    case tcp, http, ssl, misc
    /// SMTP_CHECK, DNS_CHECK, UDP_CHECK, PING_CHECK, FILE_CHECK, BFD_CHECK: parsed, not run.
    case unsupported(String)

    public var description: String {
        switch self {
        case .tcp: return "TCP_CHECK"
        case .http: return "HTTP_GET"
        case .ssl: return "SSL_GET"
        case .misc: return "MISC_CHECK"
        case let .unsupported(n): return n
        }
    }
}

/// Resolved timing of one checker (checker, then real server, then virtual server, then type default).
public struct CheckerTiming: Sendable, Hashable {
    public var delayLoop: Duration = .seconds(60)
    public var connectTimeout: Duration = .seconds(5)
    public var retry: UInt32 = 1
    public var delayBeforeRetry: Duration = .seconds(1)
    public var warmup: Duration = .seconds(60)
    public var alpha = false
    public init() {}
}

/// One checker block of a real server.
public struct KeepalivedChecker: Sendable, Hashable {
    public var kind: CheckerKind
    public var connectIP: IPAddress?
    public var connectPort: UInt16?
    public var bindTo: IPAddress?
    public var bindPort: UInt16?
    public var bindInterface: String?
    public var fwmark: UInt32 = 0
    public var logAllFailures = false
    // As configured (nil = inherit); resolved into `timing` after parsing.
    public var configuredConnectTimeout: Duration?
    public var configuredRetry: UInt32?
    public var configuredDelayBeforeRetry: Duration?
    public var configuredWarmup: Duration?
    public var configuredDelayLoop: Duration?
    public var configuredAlpha: Bool?
    public var timing = CheckerTiming()
    // HTTP_GET / SSL_GET
    public var urls: [KeepalivedURL] = []
    public var virtualhost: String?
    /// "1.0", "1.0C" or "1.1".
    public var httpProtocol = "1.0"
    public var fastRecovery = false
    public var enableSNI = false
    public var sniName: String?
    // MISC_CHECK
    public var miscPath: String?
    public var miscTimeout: Duration?
    public var miscDynamic = false
    public var user: [String]?
    /// MISC_CHECK: who runs the script, resolved by `ScriptSecurity.prepare`.
    public var runAs: ScriptIdentity?

    public init(kind: CheckerKind) { self.kind = kind }
}

/// A `real_server IP [PORT] { }` block (or the sorry server, with no checkers).
public struct KeepalivedRealServer: Sendable, Hashable {
    public var address: IPAddress
    /// The port IPVS gets: DR/TUN use the VS port (0 for fwmark); NAT may differ.
    public var port: UInt16
    public var weight: Int32
    public var method: KeepalivedMethod
    public var upperThreshold: UInt32 = 0
    public var lowerThreshold: UInt32 = 0
    public var inhibitOnFailure = false
    public var alpha = false
    public var notifyUp: String?
    public var notifyDown: String?
    public var checkers: [KeepalivedChecker] = []
    public var virtualhost: String?
    public var file = ""
    public var line = 0
    // As configured (nil = inherit from the VS).
    public var configuredPort: UInt16?
    public var configuredWeight: Int32?
    public var configuredMethod: KeepalivedMethod?
    public var configuredInhibit: Bool?
    public var configuredAlpha: Bool?
    public var configuredRetry: UInt32?
    public var configuredDelayBeforeRetry: Duration?
    public var configuredWarmup: Duration?
    public var configuredConnectTimeout: Duration?
    public var configuredDelayLoop: Duration?

    public init(address: IPAddress, port: UInt16 = 0, weight: Int32 = 1, method: KeepalivedMethod = KeepalivedMethod(.masquerade)) {
        self.address = address
        self.port = port
        self.weight = weight
        self.method = method
    }

    /// (address, port): the identity of a real server within its virtual server.
    public var identity: RealServerIdentity { RealServerIdentity(address: address, port: port) }
}

public struct RealServerIdentity: Sendable, Hashable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16
    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }
    public var description: String { "\(address.bracketed):\(port)" }
}

/// A `virtual_server` block.
public struct KeepalivedVirtualServer: Sendable, Hashable {
    public var address: VirtualServerAddress
    /// nil when `protocol` was not given (an address VS then defaults to UDP).
    public var proto: IPProtocolNumber = .udp
    public var scheduler = "wlc"
    public var method = KeepalivedMethod(.masquerade)
    /// Persistence timeout in seconds (nil = not persistent).
    public var persistenceTimeout: UInt32?
    /// IPv4 netmask (host order) or IPv6 prefix length.
    public var persistenceGranularity: UInt32?
    public var persistenceEngine: String?
    public var onePacket = false
    public var schedulerFlags: ServiceFlags = []
    public var delayLoop: Duration = .seconds(60)
    public var connectTimeout: Duration = .seconds(5)
    public var retry: UInt32?
    public var delayBeforeRetry: Duration?
    public var warmup: Duration?
    public var inhibitOnFailure = false
    public var alpha = false
    public var omega = false
    public var quorum: UInt32 = 1
    public var hysteresis: UInt32 = 0
    public var quorumUp: String?
    public var quorumDown: String?
    public var sorryServer: KeepalivedRealServer?
    public var sorryServerInhibit = false
    public var virtualhost: String?
    public var haSuspend = false
    public var weight: Int32 = 1
    public var ipv6Family: Bool?
    public var realServers: [KeepalivedRealServer] = []
    public var file = ""
    public var line = 0

    public init(address: VirtualServerAddress) { self.address = address }
}

/// A block we read but do not act on (static routes, track files and the like).
public struct KeepalivedIgnoredBlock: Sendable, Equatable {
    public var keyword: String
    public var name: String?
    public var file: String
    public var line: Int
}

/// The LVS part of a keepalived.conf, with keepalived's defaults and post-parse fixes applied.
public struct KeepalivedConfig: Sendable, Equatable {
    public var globals = KeepalivedGlobals()
    public var groups: [String: VirtualServerGroup] = [:]
    public var virtualServers: [KeepalivedVirtualServer] = []
    /// Blocks that are parsed but not applied (static_ipaddress, track_file, …).
    public var ignoredBlocks: [KeepalivedIgnoredBlock] = []
    /// vrrp_instance, vrrp_sync_group, vrrp_script and the global VRRP settings, with keepalived's
    /// defaults and cross checks applied.
    public var vrrp = VRRPConfiguration()
    public init() {}

    /// The IPVS services one virtual server stands for (several for a group).
    public func serviceKeys(of vs: KeepalivedVirtualServer) -> [ServiceKey] {
        switch vs.address {
        case let .address(a, port):
            return [ServiceKey(proto: vs.proto, address: a, port: port)]
        case let .fwmark(m):
            var k = ServiceKey(fwmark: m, ipv6: vs.ipv6Family ?? false)
            if let family = vs.ipv6Family { k.isIPv6 = family }
            else if let rs = vs.realServers.first { k = ServiceKey(fwmark: m, ipv6: !rs.address.isIPv4) }
            return [k]
        case let .group(name):
            guard let g = groups[name] else { return [] }
            return g.entries.map { e in
                switch e {
                case let .address(a, port): return ServiceKey(proto: vs.proto, address: a, port: port)
                case let .fwmark(m, v6): return ServiceKey(fwmark: m, ipv6: v6)
                }
            }
        }
    }
}
