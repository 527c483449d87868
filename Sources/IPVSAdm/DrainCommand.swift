import LVSModel

/// `lvsadm drain`: the command line, parsed.
public struct DrainInvocation: Sendable, Equatable {
    public var service: ServiceKey
    public var serverAddress: IPAddress
    public var serverPort: UInt16
    /// Seconds to wait at most; nil waits for ever.
    public var timeout: UInt32?
    public var thenDelete: Bool

    public init(service: ServiceKey, serverAddress: IPAddress, serverPort: UInt16, timeout: UInt32? = nil,
                thenDelete: Bool = false) {
        self.service = service
        self.serverAddress = serverAddress
        self.serverPort = serverPort
        self.timeout = timeout
        self.thenDelete = thenDelete
    }

    /// `192.168.1.31:80` / `[2001:db8::31]:80`.
    public var serverText: String { "\(serverAddress.bracketed):\(serverPort)" }
}

/// What `lvsadm drain` arguments ask for.
public enum DrainParsed: Sendable, Equatable {
    case run(DrainInvocation)
    case help
}

/// The exit codes of `lvsadm drain`.
public enum DrainExit {
    /// No connection left (and deleted with `--then-delete`).
    public static let drained: Int32 = 0
    /// Usage errors and lvsd unreachable (as the other lvsadm commands).
    public static let usage: Int32 = 2
    /// The timeout passed with connections left (deleted all the same with `--then-delete`).
    public static let timedOut: Int32 = 3
    /// Someone else (a reload, a health checker, another lvsadm) set the weight back while waiting.
    public static let weightChanged: Int32 = 4
    /// Interrupted by a signal: 128 + its number (the weight stays 0).
    public static let signalBase: Int32 = 128
    /// No such service or real server, or lvsd refused the change (ipvsadm's code).
    public static let failed: Int32 = 255
}

/// The grammar of `lvsadm drain` (the words after `drain`).
public struct DrainParser {
    public var program: String
    public var resolver: IPVSAdmNameResolver

    public init(program: String = "lvsadm", resolver: IPVSAdmNameResolver = SystemNameResolver()) {
        self.program = program
        self.resolver = resolver
    }

    private func usageError(_ message: String) -> IPVSAdmFailure {
        IPVSAdmFailure(stderr: "\(program) drain: \(message)\nTry `\(program) drain -h' for more information.\n",
                       exitCode: DrainExit.usage)
    }

    /// Parses the words after `drain`.
    public func parse(_ words: [String]) throws(IPVSAdmFailure) -> DrainParsed {
        var proto: UInt8?
        var serviceText: String?
        var fwmark: UInt32 = 0
        var ipv6Mark = false
        var serverText: String?
        var timeout: UInt32?
        var thenDelete = false
        var i = 0
        func value(_ name: String, _ inline: String?) throws(IPVSAdmFailure) -> String {
            if let inline { return inline }
            i += 1
            guard i < words.count else { throw usageError("option \(name) needs a value") }
            return words[i]
        }
        while i < words.count {
            var word = words[i]
            var inline: String?
            if word.hasPrefix("--"), let eq = word.firstIndex(of: "=") {
                inline = String(word[word.index(after: eq)...])
                word = String(word[..<eq])
            }
            switch word {
            case "-h", "--help":
                return .help
            case "-t", "--tcp-service", "-u", "--udp-service", "--sctp-service":
                guard proto == nil && fwmark == 0 else { throw usageError("more than one service given") }
                switch word {
                case "-t", "--tcp-service": proto = IPProtocolNumber.tcp.rawValue
                case "-u", "--udp-service": proto = IPProtocolNumber.udp.rawValue
                default: proto = IPProtocolNumber.sctp.rawValue
                }
                serviceText = try value(word, inline)
            case "-f", "--fwmark-service":
                guard proto == nil && fwmark == 0 else { throw usageError("more than one service given") }
                let text = try value(word, inline)
                guard let v = CNumber.strtolWhole(text), v > 0, v <= Int64(UInt32.max) else {
                    throw usageError("invalid fwmark value `\(text)' specified")
                }
                fwmark = UInt32(v)
            case "-6", "--ipv6":
                ipv6Mark = true
            case "-r", "--real-server":
                guard serverText == nil else { throw usageError("more than one real server given") }
                serverText = try value(word, inline)
            case "--timeout":
                let text = try value(word, inline)
                guard let v = CNumber.inRange(text, 0, IPVSAdmParser.maxTimeout) else {
                    throw usageError("invalid timeout `\(text)' (whole seconds, 0 to \(IPVSAdmParser.maxTimeout))")
                }
                timeout = UInt32(v)
            case "--then-delete":
                thenDelete = true
            default:
                throw usageError("unexpected argument `\(words[i])'")
            }
            i += 1
        }
        let ipvsadm = IPVSAdmParser(program: program, resolver: resolver)
        let service: ServiceKey
        var defaultPort: UInt16 = 0
        if fwmark != 0 {
            service = ServiceKey(fwmark: fwmark, ipv6: ipv6Mark)
        } else if let proto, let serviceText {
            if ipv6Mark { throw usageError("-6 is for a fwmark service (-f)") }
            var address = IPAddress.ipv4Zero
            var port: UInt16 = 0
            var v6 = false
            guard ipvsadm.parseService(serviceText, proto: proto, into: &address, port: &port, isIPv6: &v6) != 0 else {
                throw usageError("illegal virtual server address[:port] specified")
            }
            service = ServiceKey(proto: IPProtocolNumber(rawValue: proto) ?? .tcp, address: address, port: port)
            defaultPort = port
        } else {
            throw usageError("a service is needed (-t, -u, --sctp-service or -f)")
        }
        guard let serverText else { throw usageError("a real server is needed (-r)") }
        var address = service.isIPv6 ? IPAddress.zero : IPAddress.ipv4Zero
        var port = defaultPort
        var v6 = service.isIPv6
        let bits = ipvsadm.parseService(serverText, proto: service.isFwmark ? 0 : service.proto.rawValue,
                                        into: &address, port: &port, isIPv6: &v6)
        guard bits != 0 else { throw usageError("illegal real server address[:port] specified") }
        return .run(DrainInvocation(service: service, serverAddress: address, serverPort: port,
                                    timeout: timeout, thenDelete: thenDelete))
    }

    /// `lvsadm drain -h`.
    public func help() -> String {
        let p = program
        return """
        Usage:
          \(p) drain -t|-u|--sctp-service service-address -r server-address [--timeout seconds] [--then-delete]
          \(p) drain -f fwmark [-6] -r server-address [--timeout seconds] [--then-delete]

        Drains a real server: sets its weight to 0 (as `\(p) -e ... -w 0`, its other options as
        they are), so that its established connections go on and no new ones come; waits until
        its ActiveConn is 0 (for a UDP service, where every entry is inactive: ActiveConn and
        InActConn), or until the timeout has passed; then, with --then-delete, deletes it.
        A persistent service still sends a client with a template to the server: set
        expire_quiescent_template to end those templates.

        Options:
          --timeout seconds   give up waiting after this many seconds (default: wait for ever)
          --then-delete       delete the real server once drained (or at the timeout)
          -h, --help          this text

        Progress: on a terminal, one line per second with the connections left; otherwise a
        line at the start and one at the end. Ctrl-C stops waiting and leaves the weight at 0.

        Exit status: 0 drained, 3 timeout (connections left; deleted with --then-delete),
        4 the weight was set again by someone else meanwhile, 128+N stopped by signal N
        (130: Ctrl-C), 255 no such service or real server (ipvsadm's messages),
        2 usage error or lvsd not reachable.

        """
    }
}

/// How `DrainRunner` waits, tells time and learns of Ctrl-C (injected: tests run on a fake clock).
public struct DrainEnvironment {
    /// Monotonic seconds.
    public var now: () -> Double
    /// Sleeps up to this many seconds (a signal may end it early).
    public var sleep: (Double) -> Void
    /// The number of a signal that asked to stop (SIGINT, SIGTERM), nil while none did.
    public var interruption: () -> Int32?
    /// Standard output is a terminal: one progress line per poll.
    public var isTerminal: Bool

    public init(now: @escaping () -> Double, sleep: @escaping (Double) -> Void,
                interruption: @escaping () -> Int32?, isTerminal: Bool) {
        self.now = now
        self.sleep = sleep
        self.interruption = interruption
        self.isTerminal = isTerminal
    }
}

/// Runs `lvsadm drain` against a `ControlBackend`: an edit to weight 0, polls of the snapshot
/// (the request `-Ln` uses), and with `--then-delete` a delete, only once drained or timed out.
public struct DrainRunner {
    public var backend: ControlBackend
    public var io: IPVSAdmIO
    public var environment: DrainEnvironment
    public var resolver: IPVSAdmNameResolver
    /// Seconds between two looks at the counters.
    public var pollInterval: Double = 1

    public init(backend: ControlBackend, io: IPVSAdmIO, environment: DrainEnvironment,
                resolver: IPVSAdmNameResolver = SystemNameResolver()) {
        self.backend = backend
        self.io = io
        self.environment = environment
        self.resolver = resolver
    }

    /// Runs `lvsadm drain WORDS...` (`words` without `drain`) and returns the exit code.
    public func run(_ words: [String], program: String = "lvsadm") -> Int32 {
        let parser = DrainParser(program: program, resolver: resolver)
        let parsed: DrainParsed
        do {
            parsed = try parser.parse(words)
        } catch {
            io.writeErr(error.stderr)
            return error.exitCode
        }
        switch parsed {
        case .help:
            io.writeOut(parser.help())
            return 0
        case .run(let inv):
            do {
                return try drain(inv, program: program)
            } catch let e as ControlTransportError {
                io.writeErr("\(program): \(e.message)\n")
                return DrainExit.usage
            } catch {
                io.writeErr("\(program): \(error)\n")
                return DrainExit.usage
            }
        }
    }

    /// The real server's counters now: nil service or nil destination when absent.
    private func look(_ inv: DrainInvocation) throws -> (service: ServiceSnapshot?, destination: DestinationSnapshot?) {
        let snapshot: TableSnapshot
        switch try backend.execute(.snapshot) {
        case .snapshot(let s): snapshot = s
        case .failed(let e): throw ControlTransportError(message: IPVSAdmExecutor.message(for: e, command: .list))
        case let other: throw IPVSAdmExecutor.unexpected(other)
        }
        guard let service = snapshot.services.first(where: { IPVSAdmExecutor.sameService($0.key, inv.service) }) else {
            return (nil, nil)
        }
        let destination = service.destinations.first {
            $0.options.address == inv.serverAddress && $0.options.port == inv.serverPort
        }
        return (service, destination)
    }

    /// The connections a drain waits for: ActiveConn; a UDP service counts every entry as
    /// inactive (as the kernel), so there it is ActiveConn + InActConn.
    static func remaining(_ d: DestinationSnapshot, service: ServiceKey) -> UInt32 {
        if !service.isFwmark && service.proto == .udp { return d.activeConns &+ d.inactConns }
        return d.activeConns
    }

    static func counts(_ d: DestinationSnapshot) -> String {
        "\(d.activeConns) active, \(d.inactConns) inactive, \(d.persistConns) persistent"
    }

    static func seconds(_ s: Double) -> String {
        let tenths = Int((s * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)s"
    }

    private func fail(_ error: IPVSError, command: IPVSAdmCommand) -> Int32 {
        io.writeErr(IPVSAdmExecutor.message(for: error, command: command) + "\n")
        return DrainExit.failed
    }

    private func drain(_ inv: DrainInvocation, program: String) throws -> Int32 {
        let env = environment
        let name = "\(inv.serverText) of \(inv.service)"
        let first = try look(inv)
        guard first.service != nil else { return fail(.noSuchService, command: .editServer) }
        guard let before = first.destination else { return fail(.noSuchDestination, command: .editServer) }
        var options = before.options
        options.weight = 0
        switch try backend.execute(.editDestination(inv.service, options)) {
        case .ok: break
        case .failed(let e): return fail(e, command: .editServer)
        case let other: throw IPVSAdmExecutor.unexpected(other)
        }
        let start = env.now()
        let deadline = inv.timeout.map { start + Double($0) }
        let limit = inv.timeout.map { "timeout \($0)s" } ?? "no timeout"
        io.writeOut("drain \(name): weight 0 (was \(before.options.weight)), waiting for "
                    + "\(Self.remaining(before, service: inv.service)) connections "
                    + "(\(Self.counts(before))), \(limit)\n")
        var last = before
        while true {
            let now = try look(inv)
            let elapsed = Self.seconds(env.now() - start)
            guard let d = now.destination else {
                io.writeOut("drain \(name): no longer in the table after \(elapsed) (deleted by someone else); "
                            + "nothing left to drain\n")
                return DrainExit.drained
            }
            last = d
            if d.options.weight != 0 {
                io.writeErr("\(program): drain \(name): the weight was set to \(d.options.weight) by someone else "
                            + "after \(elapsed) (a reload, a health checker, another lvsadm?); stopped waiting, "
                            + "\(Self.counts(d))\n")
                return DrainExit.weightChanged
            }
            if Self.remaining(d, service: inv.service) == 0 { break }
            if let signal = env.interruption() {
                io.writeOut("drain \(name): interrupted after \(elapsed) with \(Self.counts(d)); "
                            + "the weight stays 0, the real server is not deleted\n")
                return DrainExit.signalBase + signal
            }
            let clock = env.now()
            if let deadline, clock >= deadline {
                io.writeOut("drain \(name): timeout after \(elapsed) with \(Self.counts(d))"
                            + (inv.thenDelete ? "; deleting it all the same\n" : "; the weight stays 0\n"))
                if inv.thenDelete, let code = try delete(inv) { return code }
                return DrainExit.timedOut
            }
            if env.isTerminal {
                io.writeOut("drain \(name): \(Self.remaining(d, service: inv.service)) left after \(elapsed) "
                            + "(\(Self.counts(d)))\n")
            }
            env.sleep(deadline.map { min(pollInterval, max(0, $0 - clock)) } ?? pollInterval)
        }
        let elapsed = Self.seconds(env.now() - start)
        if inv.thenDelete {
            if let code = try delete(inv) { return code }
            io.writeOut("drain \(name): drained after \(elapsed) (\(Self.counts(last))); deleted\n")
        } else {
            io.writeOut("drain \(name): drained after \(elapsed) (\(Self.counts(last))); weight 0\n")
        }
        return DrainExit.drained
    }

    /// Deletes the real server: nil when done, else the exit code (its error written).
    private func delete(_ inv: DrainInvocation) throws -> Int32? {
        switch try backend.execute(.deleteDestination(inv.service, address: inv.serverAddress, port: inv.serverPort)) {
        case .ok: return nil
        case .failed(let e): return fail(e, command: .deleteServer)
        case let other: throw IPVSAdmExecutor.unexpected(other)
        }
    }
}
