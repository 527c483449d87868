import LVSModel

/// The ipvsadm commands, in the order of ipvsadm's `cmdnames[]` (the index into the legality matrix).
public enum IPVSAdmCommand: Int, Sendable, CaseIterable {
    case addService = 0
    case editService
    case deleteService
    case flush
    case list
    case addServer
    case deleteServer
    case editServer
    case setTimeouts
    case startDaemon
    case stopDaemon
    case restore
    case save
    case zero

    /// The name used inside validation messages.
    public var name: String {
        switch self {
        case .addService: return "add-service"
        case .editService: return "edit-service"
        case .deleteService: return "delete-service"
        case .flush: return "flush"
        case .list: return "list"
        case .addServer: return "add-server"
        case .deleteServer: return "delete-server"
        case .editServer: return "edit-server"
        case .setTimeouts: return "set"
        case .startDaemon: return "start-daemon"
        case .stopDaemon: return "stop-daemon"
        case .restore: return "restore"
        case .save: return "save"
        case .zero: return "zero"
        }
    }
}

/// One bit per option, in ipvsadm's option bit order (the row order of the legality matrix).
public enum IPVSAdmOption: Int, Sendable, CaseIterable {
    case numeric = 0
    case connection
    case serviceAddress
    case scheduler
    case persistent
    case netmask
    case realServer
    case forwardingMethod
    case weight
    case uThreshold
    case lThreshold
    case mcastInterface
    case timeout
    case daemon
    case stats
    case rate
    case thresholds
    case persistentConn
    case nosort
    case syncID
    case exact
    case ops
    case pe
    case schedFlags
    case mcastGroup
    case mcastPort
    case mcastTTL
    case syncMaxlen
    case tunInfo
    case tunType
    case tunPort
    case tunNocsum
    case tunCsum
    case tunRemcsum

    public var bit: UInt64 { 1 << UInt64(rawValue) }

    /// The name used inside validation messages.
    public var name: String {
        switch self {
        case .numeric: return "numeric"
        case .connection: return "connection"
        case .serviceAddress: return "service-address"
        case .scheduler: return "scheduler"
        case .persistent: return "persistent"
        case .netmask: return "netmask"
        case .realServer: return "real-server"
        case .forwardingMethod: return "forwarding-method"
        case .weight: return "weight"
        case .uThreshold: return "u-threshold"
        case .lThreshold: return "l-threshold"
        case .mcastInterface: return "mcast-interface"
        case .timeout: return "timeout"
        case .daemon: return "daemon"
        case .stats: return "stats"
        case .rate: return "rate"
        case .thresholds: return "thresholds"
        case .persistentConn: return "persistent-conn"
        case .nosort: return "nosort"
        case .syncID: return "syncid"
        case .exact: return "exact"
        case .ops: return "ops"
        case .pe: return "pe"
        case .schedFlags: return "sched-flags"
        case .mcastGroup: return "mcast-group"
        case .mcastPort: return "mcast-port"
        case .mcastTTL: return "mcast-ttl"
        case .syncMaxlen: return "sync-maxlen"
        case .tunInfo: return "tun-info"
        case .tunType: return "tun-type"
        case .tunPort: return "tun-port"
        case .tunNocsum: return "tun-nocsum"
        case .tunCsum: return "tun-csum"
        case .tunRemcsum: return "tun-remcsum"
        }
    }
}

/// A set of `IPVSAdmOption` bits.
public struct IPVSAdmOptionSet: Hashable, Sendable {
    public var bits: UInt64 = 0
    public init() {}
    public func contains(_ o: IPVSAdmOption) -> Bool { bits & o.bit != 0 }
    public func containsAny(_ os: [IPVSAdmOption]) -> Bool { os.contains { contains($0) } }
    public mutating func insert(_ o: IPVSAdmOption) { bits |= o.bit }
}

/// Output format flags (ipvsadm's FMT_*).
public struct IPVSAdmFormat: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let numeric = IPVSAdmFormat(rawValue: 0x0001)
    public static let rule = IPVSAdmFormat(rawValue: 0x0002)
    public static let stats = IPVSAdmFormat(rawValue: 0x0004)
    public static let rate = IPVSAdmFormat(rawValue: 0x0008)
    public static let thresholds = IPVSAdmFormat(rawValue: 0x0010)
    public static let persistentConn = IPVSAdmFormat(rawValue: 0x0020)
    public static let nosort = IPVSAdmFormat(rawValue: 0x0040)
    public static let exact = IPVSAdmFormat(rawValue: 0x0080)
    public static let tunInfo = IPVSAdmFormat(rawValue: 0x0100)
}

/// The legality matrix (`commands_v_options`): `+` required, `x` illegal, `1` exclusive group, ` ` optional.
enum IPVSAdmMatrix {
    static func entry(_ cmd: IPVSAdmCommand, _ opt: IPVSAdmOption) -> Character {
        let allowed: [IPVSAdmOption: Character]
        switch cmd {
        case .addService, .editService:
            allowed = [.serviceAddress: "+", .scheduler: " ", .persistent: " ", .netmask: " ",
                       .ops: " ", .pe: " ", .schedFlags: " "]
        case .deleteService:
            allowed = [.serviceAddress: "+"]
        case .flush, .setTimeouts, .restore:
            allowed = [:]
        case .list:
            allowed = [.numeric: " ", .connection: "1", .serviceAddress: "1", .timeout: "1", .daemon: "1",
                       .stats: " ", .rate: " ", .thresholds: " ", .persistentConn: " ", .nosort: " ",
                       .syncID: " ", .exact: " ", .tunInfo: " "]
        case .addServer, .editServer:
            allowed = [.serviceAddress: "+", .realServer: "+", .forwardingMethod: " ", .weight: " ",
                       .uThreshold: " ", .lThreshold: " ", .tunType: " ", .tunPort: " ", .tunNocsum: " ",
                       .tunCsum: " ", .tunRemcsum: " "]
        case .deleteServer:
            allowed = [.serviceAddress: "+", .realServer: "+"]
        case .startDaemon:
            allowed = [.mcastInterface: " ", .syncID: " ", .mcastGroup: " ", .mcastPort: " ",
                       .mcastTTL: " ", .syncMaxlen: " "]
        case .stopDaemon:
            allowed = [.syncID: " "]
        case .save:
            allowed = [.numeric: " "]
        case .zero:
            allowed = [.serviceAddress: " "]
        }
        return allowed[opt] ?? "x"
    }

    /// Tunnel sub-matrix (`tunnel_types_v_options`) for tun-port, tun-nocsum, tun-csum, tun-remcsum.
    static func tunnelEntry(_ type: TunnelType, _ opt: IPVSAdmOption) -> Character {
        let row: [Character]
        switch type {
        case .ipip: row = ["x", "x", "x", "x"]
        case .gue: row = ["+", "1", "1", "1"]
        case .gre: row = ["x", "1", "1", "x"]
        }
        switch opt {
        case .tunPort: return row[0]
        case .tunNocsum: return row[1]
        case .tunCsum: return row[2]
        case .tunRemcsum: return row[3]
        default: return " "
        }
    }

    static let tunnelOptions: [IPVSAdmOption] = [.tunPort, .tunNocsum, .tunCsum, .tunRemcsum]
}

extension TunnelType {
    /// ipvsadm's `tunnames[]`.
    public var ipvsadmName: String {
        switch self {
        case .ipip: return "ipip"
        case .gue: return "gue"
        case .gre: return "gre"
        }
    }
}

/// A fully parsed and validated ipvsadm command line (ipvsadm's `ipvs_command_entry` plus options/format).
public struct IPVSAdmInvocation: Sendable, Equatable {
    public var command: IPVSAdmCommand
    public var options = IPVSAdmOptionSet()
    public var format: IPVSAdmFormat = []

    // Service (`ce.svc`).
    public var serviceIsIPv6 = false
    /// Address family was set by a selector (ipvsadm's af starts as AF_UNSPEC).
    public var serviceFamilySet = false
    public var serviceProtocol: UInt8 = 0
    public var serviceAddress: IPAddress = .ipv4Zero
    public var servicePort: UInt16 = 0
    public var fwmark: UInt32 = 0
    public var serviceOptions = ServiceOptions(scheduler: "", flags: [], timeout: 0, netmask: 0xFFFF_FFFF)

    // Destination (`ce.dest`).
    public var destination = DestinationOptions(address: .ipv4Zero, port: 0)
    public var destinationIsIPv6 = false
    public var destinationFamilySet = false

    // `--set`.
    public var timeouts = IPVSTimeouts(tcp: 0, tcpFin: 0, udp: 0)

    // Daemon.
    public var daemon = SyncDaemonSnapshot(role: "", interface: "", syncID: 0, maxLength: 0, group: "", port: 0, ttl: 0)

    public init(command: IPVSAdmCommand) { self.command = command }

    /// The selected service as a model key (nil when no service option was given).
    public var serviceKey: ServiceKey? {
        guard options.contains(.serviceAddress) else { return nil }
        if fwmark != 0 { return ServiceKey(fwmark: fwmark, ipv6: serviceIsIPv6) }
        let proto = IPProtocolNumber(rawValue: serviceProtocol) ?? .tcp
        return ServiceKey(proto: proto, address: serviceAddress, port: servicePort)
    }
}

/// What a command line asks for.
public enum IPVSAdmParsed: Sendable, Equatable {
    case run(IPVSAdmInvocation)
    case help
    case version
}

/// A parse/validation outcome that ends processing of the line: the text for stderr and the exit code.
public struct IPVSAdmFailure: Error, Equatable, Sendable {
    /// Complete stderr text (including the trailing newline).
    public var stderr: String
    public var exitCode: Int32
    /// True when ipvsadm calls exit() (fail/tryhelp), false when the line just returns -1 (popt errors).
    public var terminates: Bool

    public init(stderr: String, exitCode: Int32, terminates: Bool = true) {
        self.stderr = stderr
        self.exitCode = exitCode
        self.terminates = terminates
    }

    /// ipvsadm's `fail(2, ...)`: the message plus a newline.
    static func fail(_ message: String, code: Int32 = 2) -> IPVSAdmFailure {
        IPVSAdmFailure(stderr: message + "\n", exitCode: code)
    }

    /// ipvsadm's `tryhelp_exit(argv0, -1)`.
    static func tryHelp(_ program: String) -> IPVSAdmFailure {
        IPVSAdmFailure(stderr: "Try `\(program) -h' or '\(program) --help' for more information.\n", exitCode: 255)
    }
}
