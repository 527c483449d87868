import LVSModel

/// Tags of the popt option table (what `poptGetNextOpt` returns).
enum IPVSAdmTag: Sendable, Equatable {
    // Commands.
    case addService, editService, deleteService, clear, list, zero, restore, save
    case addServer, editServer, deleteServer, set, startDaemon, stopDaemon, help, version
    // Options.
    case tcpService, udpService, sctpService, fwmarkService, ipv6
    case scheduler, persistent, netmask, realServer, gatewaying, ipip, masquerading
    case weight, uThreshold, lThreshold, connection, numeric, mcastInterface, syncID
    case timeout, daemon, stats, rate, thresholds, persistentConn, nosort, sort, exact, ops, pe
    case schedFlags, mcastGroup, mcastPort, mcastTTL, syncMaxlen
    case tunType, tunPort, tunNocsum, tunCsum, tunRemcsum, tunInfo
}

enum IPVSAdmArgKind { case none, required, optional }

struct IPVSAdmOptionSpec {
    var long: String
    var short: Character?
    var arg: IPVSAdmArgKind
    var tag: IPVSAdmTag
}

/// The option table, as ipvsadm registers it with popt.
let ipvsadmOptionTable: [IPVSAdmOptionSpec] = [
    .init(long: "add-service", short: "A", arg: .none, tag: .addService),
    .init(long: "edit-service", short: "E", arg: .none, tag: .editService),
    .init(long: "delete-service", short: "D", arg: .none, tag: .deleteService),
    .init(long: "clear", short: "C", arg: .none, tag: .clear),
    .init(long: "list", short: "L", arg: .none, tag: .list),
    .init(long: "list", short: "l", arg: .none, tag: .list),
    .init(long: "zero", short: "Z", arg: .none, tag: .zero),
    .init(long: "restore", short: "R", arg: .none, tag: .restore),
    .init(long: "save", short: "S", arg: .none, tag: .save),
    .init(long: "add-server", short: "a", arg: .none, tag: .addServer),
    .init(long: "edit-server", short: "e", arg: .none, tag: .editServer),
    .init(long: "delete-server", short: "d", arg: .none, tag: .deleteServer),
    .init(long: "set", short: nil, arg: .none, tag: .set),
    .init(long: "start-daemon", short: nil, arg: .required, tag: .startDaemon),
    .init(long: "stop-daemon", short: nil, arg: .required, tag: .stopDaemon),
    .init(long: "help", short: "h", arg: .none, tag: .help),
    .init(long: "version", short: "v", arg: .none, tag: .version),
    .init(long: "tcp-service", short: "t", arg: .required, tag: .tcpService),
    .init(long: "udp-service", short: "u", arg: .required, tag: .udpService),
    .init(long: "sctp-service", short: nil, arg: .required, tag: .sctpService),
    .init(long: "fwmark-service", short: "f", arg: .required, tag: .fwmarkService),
    .init(long: "ipv6", short: "6", arg: .none, tag: .ipv6),
    .init(long: "scheduler", short: "s", arg: .required, tag: .scheduler),
    .init(long: "persistent", short: "p", arg: .optional, tag: .persistent),
    .init(long: "netmask", short: "M", arg: .required, tag: .netmask),
    .init(long: "real-server", short: "r", arg: .required, tag: .realServer),
    .init(long: "masquerading", short: "m", arg: .none, tag: .masquerading),
    .init(long: "ipip", short: "i", arg: .none, tag: .ipip),
    .init(long: "gatewaying", short: "g", arg: .none, tag: .gatewaying),
    .init(long: "weight", short: "w", arg: .required, tag: .weight),
    .init(long: "u-threshold", short: "x", arg: .required, tag: .uThreshold),
    .init(long: "l-threshold", short: "y", arg: .required, tag: .lThreshold),
    .init(long: "connection", short: "c", arg: .none, tag: .connection),
    .init(long: "numeric", short: "n", arg: .none, tag: .numeric),
    .init(long: "mcast-interface", short: nil, arg: .required, tag: .mcastInterface),
    .init(long: "syncid", short: nil, arg: .required, tag: .syncID),
    .init(long: "timeout", short: nil, arg: .none, tag: .timeout),
    .init(long: "daemon", short: nil, arg: .none, tag: .daemon),
    .init(long: "stats", short: nil, arg: .none, tag: .stats),
    .init(long: "rate", short: nil, arg: .none, tag: .rate),
    .init(long: "thresholds", short: nil, arg: .none, tag: .thresholds),
    .init(long: "persistent-conn", short: nil, arg: .none, tag: .persistentConn),
    .init(long: "nosort", short: nil, arg: .none, tag: .nosort),
    .init(long: "sort", short: nil, arg: .none, tag: .sort),
    .init(long: "exact", short: "X", arg: .none, tag: .exact),
    .init(long: "ops", short: "o", arg: .none, tag: .ops),
    .init(long: "pe", short: nil, arg: .required, tag: .pe),
    .init(long: "sched-flags", short: "b", arg: .required, tag: .schedFlags),
    .init(long: "mcast-group", short: nil, arg: .required, tag: .mcastGroup),
    .init(long: "mcast-port", short: nil, arg: .required, tag: .mcastPort),
    .init(long: "mcast-ttl", short: nil, arg: .required, tag: .mcastTTL),
    .init(long: "sync-maxlen", short: nil, arg: .required, tag: .syncMaxlen),
    .init(long: "tun-type", short: nil, arg: .required, tag: .tunType),
    .init(long: "tun-port", short: nil, arg: .required, tag: .tunPort),
    .init(long: "tun-nocsum", short: nil, arg: .none, tag: .tunNocsum),
    .init(long: "tun-csum", short: nil, arg: .none, tag: .tunCsum),
    .init(long: "tun-remcsum", short: nil, arg: .none, tag: .tunRemcsum),
    .init(long: "tun-info", short: nil, arg: .none, tag: .tunInfo),
]

/// A popt-like scanner: short clusters, `--long[=value]`, optional arguments, argument permutation, `--`.
struct PoptScanner {
    enum Result: Equatable {
        case option(IPVSAdmTag, String?)
        case end
        /// A popt error: the offending argv word and popt's error text.
        case error(badOption: String, message: String)
    }

    let argv: [String]
    private(set) var next = 1
    private var cluster: Substring = ""
    private var onlyPositionals = false
    private(set) var leftovers: [String] = []

    init(argv: [String]) { self.argv = argv }

    /// The argv word popt blames (`poptBadOption`): the last word consumed.
    var lastWord: String { next - 1 < argv.count && next >= 1 ? argv[next - 1] : "" }

    private mutating func takeArgument(_ kind: IPVSAdmArgKind) -> (String?, Bool) {
        if next >= argv.count {
            return (nil, kind == .optional)
        }
        let word = argv[next]
        if kind == .optional && word.hasPrefix("-") { return (nil, true) }
        next += 1
        return (word, true)
    }

    mutating func nextOption() -> Result {
        while true {
            if let c = cluster.first {
                cluster = cluster.dropFirst()
                guard let spec = ipvsadmOptionTable.first(where: { $0.short == c }) else {
                    cluster = ""
                    return .error(badOption: lastWord, message: "unknown option")
                }
                if spec.arg == .none { return .option(spec.tag, nil) }
                if !cluster.isEmpty {
                    var attached = cluster
                    if attached.first == "=" { attached = attached.dropFirst() }
                    cluster = ""
                    return .option(spec.tag, String(attached))
                }
                let (value, ok) = takeArgument(spec.arg)
                if !ok { return .error(badOption: lastWord, message: "missing argument") }
                return .option(spec.tag, value)
            }
            guard next < argv.count else { return .end }
            let word = argv[next]
            next += 1
            if onlyPositionals { leftovers.append(word); continue }
            if word == "--" { onlyPositionals = true; continue }
            if !word.hasPrefix("-") || word == "-" { leftovers.append(word); continue }
            if word.hasPrefix("--") {
                let body = word.dropFirst(2)
                var name = body
                var value: String?
                if let eq = body.firstIndex(of: "=") {
                    name = body[..<eq]
                    value = String(body[body.index(after: eq)...])
                }
                guard let spec = ipvsadmOptionTable.first(where: { $0.long == name }) else {
                    return .error(badOption: word, message: "unknown option")
                }
                if spec.arg == .none {
                    if value != nil { return .error(badOption: word, message: "option does not take an argument") }
                    return .option(spec.tag, nil)
                }
                if let value { return .option(spec.tag, value) }
                let (arg, ok) = takeArgument(spec.arg)
                if !ok { return .error(badOption: lastWord, message: "missing argument") }
                return .option(spec.tag, arg)
            }
            cluster = word.dropFirst()
        }
    }

    /// The next leftover positional argument (`poptGetArg`).
    mutating func nextArgument() -> String? {
        leftovers.isEmpty ? nil : leftovers.removeFirst()
    }
}

/// ipvsadm's `parse_options` + `process_options` validation, without executing anything.
public struct IPVSAdmParser {
    public var program: String
    public var resolver: IPVSAdmNameResolver

    static let maxTimeout: Int64 = 86400 * 31
    static let defaultPersistentTimeout: UInt32 = 360

    public init(program: String, resolver: IPVSAdmNameResolver = SystemNameResolver()) {
        self.program = program
        self.resolver = resolver
    }

    private static let serviceAddr = 1
    private static let servicePort = 2

    /// ipvsadm's `parse_service`: returns the SERVICE_ADDR|SERVICE_PORT bits (0 on failure).
    func parseService(_ text: String, proto: UInt8, into address: inout IPAddress, port: inout UInt16,
                      isIPv6: inout Bool) -> Int {
        if text.isEmpty || text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) { return 0 }
        var buf = Substring(text)
        var portText: Substring?
        if buf.first == "[" {
            buf = buf.dropFirst()
            guard let close = buf.firstIndex(of: "]") else { return 0 }
            let after = buf[buf.index(after: close)...]
            guard after.first == ":" else { return 0 }
            portText = after.dropFirst()
            buf = buf[..<close]
        }
        var result = 0
        if let v6 = IPAddress(String(buf)), !v6.isIPv4 {
            address = v6
            isIPv6 = true
        } else {
            // Not IPv6: the port (if any) is after the last colon of what is left.
            portText = nil
            if let colon = buf.lastIndex(of: ":") {
                portText = buf[buf.index(after: colon)...]
                buf = buf[..<colon]
            }
            if let v4 = CNumber.inetAton(String(buf)) {
                address = IPAddress(ipv4: v4)
            } else if let v4 = resolver.resolveHost(String(buf)) {
                address = IPAddress(ipv4: v4)
            } else {
                return 0
            }
            isIPv6 = false
        }
        result |= Self.serviceAddr
        if let p = portText {
            result |= Self.servicePort
            if let n = CNumber.inRange(String(p), 0, 65535) {
                port = UInt16(n)
            } else if let name = Self.protocolName(proto), let n = resolver.resolveService(String(p), protocol: name) {
                port = n
            } else {
                return 0
            }
        }
        return result
    }

    static func protocolName(_ proto: UInt8) -> String? {
        switch proto {
        case IPProtocolNumber.tcp.rawValue: return "tcp"
        case IPProtocolNumber.udp.rawValue: return "udp"
        case IPProtocolNumber.sctp.rawValue: return "sctp"
        default: return nil
        }
    }

    private func setOption(_ inv: inout IPVSAdmInvocation, _ opt: IPVSAdmOption) throws(IPVSAdmFailure) {
        if inv.options.contains(opt) { throw .fail("multiple '\(opt.name)' options specified") }
        inv.options.insert(opt)
    }

    private func parseTimeout(_ text: String?, min: Int64) throws(IPVSAdmFailure) -> UInt32 {
        guard let text else { return Self.defaultPersistentTimeout }
        guard let v = CNumber.inRange(text, min, Self.maxTimeout) else {
            throw .fail("invalid timeout value `\(text)' specified")
        }
        return UInt32(v)
    }

    private func number(_ text: String, _ min: Int64, _ max: Int64, _ message: String) throws(IPVSAdmFailure) -> Int64 {
        guard let v = CNumber.inRange(text, min, max) else { throw .fail(message) }
        return v
    }

    /// Parses one command line (`argv[0]` included) the way ipvsadm's `process_options` validates it.
    public func parse(_ argv: [String], readingStdin: Bool = false) throws(IPVSAdmFailure) -> IPVSAdmParsed {
        var scanner = PoptScanner(argv: argv)
        let first = scanner.nextOption()
        guard case .option(let firstTag, let firstArg) = first else { throw .tryHelp(program) }

        let command: IPVSAdmCommand
        var inv: IPVSAdmInvocation
        switch firstTag {
        case .addService: command = .addService
        case .editService: command = .editService
        case .deleteService: command = .deleteService
        case .clear: command = .flush
        case .list: command = .list
        case .zero: command = .zero
        case .restore: command = .restore
        case .save: command = .save
        case .addServer: command = .addServer
        case .editServer: command = .editServer
        case .deleteServer: command = .deleteServer
        case .set: command = .setTimeouts
        case .startDaemon: command = .startDaemon
        case .stopDaemon: command = .stopDaemon
        case .help: return .help
        case .version: return .version
        default: throw .tryHelp(program)
        }
        inv = IPVSAdmInvocation(command: command)
        switch firstTag {
        case .save: inv.format.insert(.rule)
        case .startDaemon:
            guard firstArg == "master" || firstArg == "backup" else {
                throw .fail("illegal start-daemon parameter specified")
            }
            inv.daemon.role = firstArg!
        case .stopDaemon:
            guard firstArg == "master" || firstArg == "backup" else {
                throw .fail("illegal start_daemon specified")
            }
            inv.daemon.role = firstArg!
        default: break
        }

        var schedFlagsArg = ""
        loop: while true {
            let r = scanner.nextOption()
            switch r {
            case .end:
                break loop
            case .error(let bad, let message):
                throw IPVSAdmFailure(stderr: "\(bad): \(message)\n", exitCode: 255, terminates: false)
            case .option(let tag, let arg):
                let a = arg ?? ""
                switch tag {
                case .tcpService, .udpService, .sctpService:
                    try setOption(&inv, .serviceAddress)
                    inv.serviceProtocol = tag == .tcpService ? IPProtocolNumber.tcp.rawValue
                        : tag == .udpService ? IPProtocolNumber.udp.rawValue : IPProtocolNumber.sctp.rawValue
                    var v6 = inv.serviceIsIPv6
                    let parsed = parseService(a, proto: inv.serviceProtocol, into: &inv.serviceAddress,
                                              port: &inv.servicePort, isIPv6: &v6)
                    if parsed & Self.serviceAddr == 0 {
                        throw .fail("illegal virtual server address[:port] specified")
                    }
                    inv.serviceIsIPv6 = v6
                    inv.serviceFamilySet = true
                    if v6 { inv.serviceOptions.netmask = 128 }
                case .fwmarkService:
                    try setOption(&inv, .serviceAddress)
                    inv.serviceIsIPv6 = false
                    inv.serviceFamilySet = true
                    inv.serviceProtocol = IPProtocolNumber.tcp.rawValue
                    guard let v = CNumber.strtolWhole(a), v > 0, v <= Int64(UInt32.max) else {
                        throw .fail("invalid fwmark value `\(a)' specified")
                    }
                    inv.fwmark = UInt32(v)
                case .scheduler:
                    try setOption(&inv, .scheduler)
                    inv.serviceOptions.scheduler = String(a.utf8.prefix(15)) ?? a
                case .persistent:
                    try setOption(&inv, .persistent)
                    inv.serviceOptions.flags.insert(.persistent)
                    inv.serviceOptions.timeout = try parseTimeout(arg, min: 1)
                case .netmask:
                    try setOption(&inv, .netmask)
                    if !(inv.serviceFamilySet && inv.serviceIsIPv6) {
                        if let m = CNumber.inetAton(a) ?? resolver.resolveHost(a) {
                            inv.serviceOptions.netmask = m
                        } else {
                            throw .fail("illegal virtual server persistent mask specified")
                        }
                    } else {
                        let m = CNumber.atoi(a)
                        guard m >= 1 && m <= 128 else { throw .fail("illegal ipv6 netmask specified") }
                        inv.serviceOptions.netmask = UInt32(m)
                    }
                case .realServer:
                    try setOption(&inv, .realServer)
                    var addr = inv.serviceAddress
                    var port = inv.servicePort
                    var v6 = inv.serviceIsIPv6
                    let parsed = parseService(a, proto: inv.serviceProtocol, into: &addr, port: &port, isIPv6: &v6)
                    inv.destination.address = addr
                    inv.destination.port = port
                    inv.destinationIsIPv6 = v6
                    inv.destinationFamilySet = parsed != 0 || inv.serviceFamilySet
                    if parsed & Self.serviceAddr == 0 {
                        throw .fail("illegal real server address[:port] specified")
                    }
                    if parsed == Self.serviceAddr { inv.destination.port = inv.servicePort }
                case .ipip:
                    try setOption(&inv, .forwardingMethod)
                    inv.destination.method = .tunnel
                case .gatewaying:
                    try setOption(&inv, .forwardingMethod)
                    inv.destination.method = .directRoute
                case .masquerading:
                    try setOption(&inv, .forwardingMethod)
                    inv.destination.method = .masquerade
                case .weight:
                    try setOption(&inv, .weight)
                    inv.destination.weight = Int32(try number(a, 0, Int64(Int32.max), "illegal weight specified"))
                case .uThreshold:
                    try setOption(&inv, .uThreshold)
                    inv.destination.upperThreshold = UInt32(try number(a, 0, Int64(Int32.max), "illegal u_threshold specified"))
                case .lThreshold:
                    try setOption(&inv, .lThreshold)
                    inv.destination.lowerThreshold = UInt32(try number(a, 0, Int64(Int32.max), "illegal l_threshold specified"))
                case .connection:
                    try setOption(&inv, .connection)
                case .numeric:
                    try setOption(&inv, .numeric)
                    inv.format.insert(.numeric)
                case .mcastInterface:
                    try setOption(&inv, .mcastInterface)
                    inv.daemon.interface = String(a.utf8.prefix(15)) ?? a
                case .syncID:
                    try setOption(&inv, .syncID)
                    inv.daemon.syncID = UInt8(try number(a, 0, 255, "illegal syncid specified"))
                case .timeout:
                    try setOption(&inv, .timeout)
                case .daemon:
                    try setOption(&inv, .daemon)
                case .stats:
                    try setOption(&inv, .stats)
                    inv.format.insert(.stats)
                case .rate:
                    try setOption(&inv, .rate)
                    inv.format.insert(.rate)
                case .thresholds:
                    try setOption(&inv, .thresholds)
                    inv.format.insert(.thresholds)
                case .persistentConn:
                    try setOption(&inv, .persistentConn)
                    inv.format.insert(.persistentConn)
                case .nosort:
                    try setOption(&inv, .nosort)
                    inv.format.insert(.nosort)
                case .sort:
                    break
                case .exact:
                    try setOption(&inv, .exact)
                    inv.format.insert(.exact)
                case .ipv6:
                    if inv.fwmark != 0 {
                        inv.serviceIsIPv6 = true
                        inv.serviceOptions.netmask = 128
                    } else {
                        throw .fail("-6 used before -f\n")
                    }
                case .ops:
                    try setOption(&inv, .ops)
                    inv.serviceOptions.flags.insert(.onePacket)
                case .pe:
                    try setOption(&inv, .pe)
                    inv.serviceOptions.persistenceEngine = String(a.utf8.prefix(15)) ?? a
                case .schedFlags:
                    try setOption(&inv, .schedFlags)
                    schedFlagsArg = String(a.utf8.prefix(127)) ?? a
                case .mcastGroup:
                    try setOption(&inv, .mcastGroup)
                    if a.contains(":") {
                        guard let g = IPAddress(a), !g.isIPv4, (g.high >> 56) == 0xFF else {
                            throw .fail("invalid IPv6 mcast-group `\(a)'")
                        }
                        inv.daemon.group = g.description
                    } else {
                        guard let g = IPAddress(a), g.isIPv4, (g.ipv4Value >> 28) == 0xE else {
                            throw .fail("invalid IPv4 mcast-group `\(a)'")
                        }
                        inv.daemon.group = g.description
                    }
                case .mcastPort:
                    try setOption(&inv, .mcastPort)
                    inv.daemon.port = UInt16(try number(a, 1, 65535, "illegal mcast-port specified"))
                case .mcastTTL:
                    try setOption(&inv, .mcastTTL)
                    inv.daemon.ttl = UInt8(try number(a, 1, 255, "illegal mcast-ttl specified"))
                case .syncMaxlen:
                    try setOption(&inv, .syncMaxlen)
                    inv.daemon.maxLength = UInt32(try number(a, 1, 65535 - 28, "illegal sync-maxlen specified"))
                case .tunType:
                    try setOption(&inv, .tunType)
                    switch a {
                    case "ipip": inv.destination.tunnelType = .ipip
                    case "gue": inv.destination.tunnelType = .gue
                    case "gre": inv.destination.tunnelType = .gre
                    default: throw .fail("illegal tunnel type specified")
                    }
                case .tunPort:
                    try setOption(&inv, .tunPort)
                    inv.destination.tunnelPort = UInt16(try number(a, 1, 65535, "illegal tunnel port specified"))
                case .tunNocsum:
                    try setOption(&inv, .tunNocsum)
                    inv.destination.tunnelFlags = 0
                case .tunCsum:
                    try setOption(&inv, .tunCsum)
                    inv.destination.tunnelFlags = 1
                case .tunRemcsum:
                    try setOption(&inv, .tunRemcsum)
                    inv.destination.tunnelFlags = 2
                case .tunInfo:
                    try setOption(&inv, .tunInfo)
                    inv.format.insert(.tunInfo)
                default:
                    // A second command (or -h/-v) after the first one.
                    throw .fail("invalid option `\(scanner.lastWord)'")
                }
            }
        }

        if command == .setTimeouts {
            if let t1 = scanner.nextArgument(), let t2 = scanner.nextArgument(), let t3 = scanner.nextArgument() {
                inv.timeouts = IPVSTimeouts(tcp: try parseTimeout(t1, min: 0), tcpFin: try parseTimeout(t2, min: 0),
                                            udp: try parseTimeout(t3, min: 0))
            } else {
                throw .fail("--set option requires 3 timeout values")
            }
        }
        if let extra = scanner.nextArgument() { throw .fail("unexpected argument \(extra)") }

        if !schedFlagsArg.isEmpty {
            inv.serviceOptions.flags.formUnion(try parseSchedFlags(schedFlagsArg, scheduler: inv.serviceOptions.scheduler))
        }

        try checkMatrix(inv)
        try postParse(&inv, readingStdin: readingStdin)
        return .run(inv)
    }

    func parseSchedFlags(_ text: String, scheduler: String) throws(IPVSAdmFailure) -> ServiceFlags {
        let sched = scheduler.isEmpty ? "wlc" : scheduler
        var flags: ServiceFlags = []
        for flag in text.split(separator: ",") {
            switch flag {
            case "flag-1": flags.insert(.sched1)
            case "flag-2": flags.insert(.sched2)
            case "flag-3": flags.insert(.sched3)
            case "sh-fallback", "sh-port", "mh-fallback", "mh-port":
                flags.insert(flag.hasSuffix("fallback") ? .fallback : .hashPort)
                if !flag.hasPrefix(sched + "-") || (sched != "sh" && sched != "mh") {
                    throw .fail("incompatible scheduler flag `\(flag)'")
                }
            case "mh-sorted": // lvsd's own (docs/compatibility.md): flag-3, which the kernel's mh ignores
                flags.insert(.sortedTable)
                if sched != "mh" { throw .fail("incompatible scheduler flag `\(flag)'") }
            default:
                throw .fail("invalid scheduler flag `\(flag)'")
            }
        }
        return flags
    }

    /// `generic_opt_check`: the legality matrix, in bit order.
    func checkMatrix(_ inv: IPVSAdmInvocation) throws(IPVSAdmFailure) {
        var earlier: IPVSAdmOption?
        for opt in IPVSAdmOption.allCases {
            let e = IPVSAdmMatrix.entry(inv.command, opt)
            if !inv.options.contains(opt) {
                if e == "+" {
                    throw .fail("You need to supply the '\(opt.name)' option for the '\(inv.command.name)' command")
                }
            } else {
                if e == "x" {
                    throw .fail("Illegal '\(opt.name)' option with the '\(inv.command.name)' command")
                }
                if e == "1" {
                    if let earlier {
                        throw .fail("The option '\(opt.name)' conflicts with the '\(earlier.name)' option in the '\(inv.command.name)' command")
                    }
                    earlier = opt
                }
            }
        }
    }

    /// `tunnel_opt_check`.
    func checkTunnel(_ inv: IPVSAdmInvocation) throws(IPVSAdmFailure) {
        let type = inv.destination.tunnelType
        var earlier: IPVSAdmOption?
        for opt in IPVSAdmMatrix.tunnelOptions {
            let e = IPVSAdmMatrix.tunnelEntry(type, opt)
            if !inv.options.contains(opt) {
                if e == "+" {
                    throw .fail("You need to supply the '\(opt.name)' option for the '\(type.ipvsadmName)' tunnel type")
                }
            } else {
                if e == "x" {
                    throw .fail("Illegal '\(opt.name)' option with the '\(type.ipvsadmName)' tunnel type")
                }
                if e == "1" {
                    if let earlier {
                        throw .fail("The option '\(opt.name)' conflicts with the '\(earlier.name)' option in the '\(type.ipvsadmName)' tunnel type")
                    }
                    earlier = opt
                }
            }
        }
    }

    /// The semantic rules of `process_options` after the matrix check.
    func postParse(_ inv: inout IPVSAdmInvocation, readingStdin: Bool) throws(IPVSAdmFailure) {
        switch inv.command {
        case .addService, .editService:
            if inv.fwmark == 0 && inv.servicePort == 0 && !inv.serviceOptions.flags.contains(.persistent) {
                throw .fail("Zero port specified for non-persistent service")
            }
            if inv.serviceOptions.flags.contains(.onePacket) && inv.fwmark == 0
                && inv.serviceProtocol != IPProtocolNumber.udp.rawValue {
                throw .fail("One-Packet Scheduling is only for UDP virtual services")
            }
            if inv.serviceOptions.scheduler.isEmpty { inv.serviceOptions.scheduler = "wlc" }
        case .startDaemon:
            if inv.daemon.interface.isEmpty { inv.daemon.interface = "eth0" }
        case .addServer, .editServer:
            let method = inv.destination.method
            if inv.fwmark == 0 && (method == .tunnel || method == .directRoute) {
                inv.destination.port = inv.servicePort
            }
            if (inv.destinationIsIPv6 != inv.serviceIsIPv6 || inv.destinationFamilySet != inv.serviceFamilySet)
                && method != .tunnel {
                throw .fail("Different address family is allowed only for tunneling servers")
            }
            if inv.options.containsAny([.tunType, .tunPort, .tunNocsum, .tunCsum, .tunRemcsum]) && method != .tunnel {
                throw .fail("Tunnel options conflict with forward method")
            }
            try checkTunnel(inv)
        case .list:
            let o = inv.options
            if (o.containsAny([.connection, .timeout, .daemon]) && o.containsAny([.stats, .rate, .thresholds]))
                || (o.containsAny([.timeout, .daemon]) && o.contains(.persistentConn)) {
                throw .fail("options conflicts in the list command")
            }
        case .restore:
            if readingStdin { throw .tryHelp(program) }
        default:
            break
        }
    }
}
