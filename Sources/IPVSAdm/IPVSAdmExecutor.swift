import LVSModel

/// Where the executor writes and reads: injectable so tests capture the exact bytes.
public struct IPVSAdmIO {
    public var writeOut: (String) -> Void
    public var writeErr: (String) -> Void
    /// The next line of stdin without its newline, nil at end of input.
    public var readLine: () -> String?
    /// Writes bytes to standard output (a long connection listing, in one go); nil: `writeOut`.
    public var writeOutBytes: (([UInt8]) -> Void)?

    public init(writeOut: @escaping (String) -> Void, writeErr: @escaping (String) -> Void,
                readLine: @escaping () -> String?, writeOutBytes: (([UInt8]) -> Void)? = nil) {
        self.writeOut = writeOut
        self.writeErr = writeErr
        self.readLine = readLine
        self.writeOutBytes = writeOutBytes
    }
}

/// A transport-level failure talking to lvsd (not an IPVS error): one line for stderr, exit 2.
public struct ControlTransportError: Error, Equatable, Sendable {
    public var message: String
    public init(message: String) { self.message = message }
}

/// Runs ipvsadm command lines against a `ControlBackend`.
public struct IPVSAdmExecutor {
    public var backend: ControlBackend
    public var io: IPVSAdmIO
    public var resolver: IPVSAdmNameResolver

    /// Ends the whole run (ipvsadm's exit()).
    private struct ExitNow: Error { var code: Int32 }

    public init(backend: ControlBackend, io: IPVSAdmIO, resolver: IPVSAdmNameResolver = SystemNameResolver()) {
        self.backend = backend
        self.io = io
        self.resolver = resolver
    }

    static func baseName(_ path: String) -> String {
        let parts = path.split(separator: "/")
        return parts.last.map(String.init) ?? path
    }

    /// Runs one invocation (`arguments[0]` is the program name) and returns the process exit code.
    public func run(_ arguments: [String]) -> Int32 {
        let program = arguments.first ?? "ipvsadm"
        do {
            if arguments.count <= 1 {
                try listAll(format: [])
                return 0
            }
            return try processOptions(arguments, program: program, readingStdin: false)
        } catch let e as ExitNow {
            return e.code
        } catch let e as ControlTransportError {
            io.writeErr("\(Self.baseName(program)): \(e.message)\n")
            return 2
        } catch {
            io.writeErr("\(Self.baseName(program)): \(error)\n")
            return 2
        }
    }

    /// ipvsadm's `process_options`: 0 on success, 255 when the operation failed (-1).
    private func processOptions(_ argv: [String], program: String, readingStdin: Bool) throws -> Int32 {
        let parser = IPVSAdmParser(program: program, resolver: resolver)
        let parsed: IPVSAdmParsed
        do {
            parsed = try parser.parse(argv, readingStdin: readingStdin)
        } catch {
            io.writeErr(error.stderr)
            if error.terminates { throw ExitNow(code: error.exitCode) }
            return error.exitCode
        }
        switch parsed {
        case .help:
            io.writeOut(IPVSAdmHelp.usage(program: program))
            throw ExitNow(code: 0)
        case .version:
            io.writeOut(IPVSAdmHelp.versionLine)
            throw ExitNow(code: 0)
        case .run(let inv):
            return try execute(inv, program: program)
        }
    }

    private func request(_ r: ControlRequest) throws -> ControlResponse {
        try backend.execute(r)
    }

    /// An answer of the wrong kind. lvsd's own text (a refusal: root only, too many clients, a
    /// request too long) is shown as it is.
    static func unexpected(_ response: ControlResponse) -> ControlTransportError {
        if case .text(let t) = response, !t.isEmpty {
            return ControlTransportError(message: String(t.reversed().drop(while: { $0 == "\n" }).reversed()))
        }
        return ControlTransportError(message: "unexpected response from lvsd")
    }

    /// Bytes of one chunk of a connection listing's output, and the room left for one more line.
    static let outputChunkBytes = 4 << 20
    static let outputChunkRoom = 4096

    /// A listing failure: message to stderr, exit 1.
    private func listFailure(_ error: IPVSError) -> ExitNow {
        io.writeErr(Self.message(for: error, command: .list) + "\n")
        return ExitNow(code: 1)
    }

    private func snapshot() throws -> TableSnapshot {
        switch try request(.snapshot) {
        case .snapshot(let s): return s
        case .failed(let e): throw listFailure(e)
        case let other: throw Self.unexpected(other)
        }
    }

    private func listAll(format: IPVSAdmFormat) throws {
        let s = try snapshot()
        io.writeOut(IPVSAdmFormatter(resolver: resolver).listAll(s, format: format))
    }

    public static func sameService(_ a: ServiceKey, _ b: ServiceKey) -> Bool {
        if a.isFwmark || b.isFwmark { return a.fwmark == b.fwmark && a.isIPv6 == b.isIPv6 }
        return a.proto == b.proto && a.address == b.address && a.port == b.port
    }

    private func execute(_ inv: IPVSAdmInvocation, program: String) throws -> Int32 {
        let formatter = IPVSAdmFormatter(resolver: resolver)
        switch inv.command {
        case .list:
            if inv.options.contains(.connection) {
                let answer: ControlResponse
                if let write = io.writeOutBytes, let streaming = backend as? ConnectionStreamingBackend {
                    // Lines gather in chunks (no copies of a growing 100 MB buffer); they are written
                    // once the whole answer is read, as a line lvsd did not write in its form is
                    // read anew.
                    var chunks: [[UInt8]] = [Array(formatter.connectionHeader(format: inv.format).utf8)]
                    var current: [UInt8] = []
                    current.reserveCapacity(Self.outputChunkBytes)
                    let numeric = inv.format.contains(.numeric)
                    let other = try streaming.streamConnections { c in
                        formatter.appendConnection(c, numeric: numeric, to: &current)
                        if current.count > Self.outputChunkBytes - Self.outputChunkRoom {
                            chunks.append(current)
                            current = []
                            current.reserveCapacity(Self.outputChunkBytes)
                        }
                    }
                    guard let other else {
                        chunks.append(current)
                        for chunk in chunks { write(chunk) }
                        return 0
                    }
                    answer = other
                } else {
                    answer = try request(.connections)
                }
                switch answer {
                case .connections(let list):
                    if let write = io.writeOutBytes {
                        write(formatter.connectionListing(list, format: inv.format))
                    } else {
                        io.writeOut(formatter.connections(list, format: inv.format))
                    }
                case .failed(let e): throw listFailure(e)
                case let other: throw Self.unexpected(other)
                }
            } else if let key = inv.serviceKey {
                let s = try snapshot()
                guard let svc = s.services.first(where: { Self.sameService($0.key, key) }) else {
                    throw listFailure(.noSuchService)
                }
                io.writeOut(formatter.listService(svc, format: inv.format))
            } else if inv.options.contains(.timeout) {
                io.writeOut(formatter.timeouts(try snapshot().timeouts))
            } else if inv.options.contains(.daemon) {
                io.writeOut(formatter.daemons(try snapshot().daemons))
            } else {
                try listAll(format: inv.format)
            }
            return 0
        case .save:
            try listAll(format: inv.format.union(.rule))
            return 0
        case .restore:
            var result: Int32 = 0
            while let line = io.readLine() {
                let tokens = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
                    .map(String.init).filter { $0 != "ipvsadm" }
                if tokens.isEmpty { continue }
                result = try processOptions([program] + tokens, program: program, readingStdin: true)
            }
            return result
        default:
            break
        }

        let req: ControlRequest
        let key = inv.serviceKey
        switch inv.command {
        case .addService: req = .addService(key!, inv.serviceOptions)
        case .editService: req = .editService(key!, inv.serviceOptions)
        case .deleteService: req = .deleteService(key!)
        case .flush: req = .clear
        case .addServer: req = .addDestination(key!, inv.destination)
        case .editServer: req = .editDestination(key!, inv.destination)
        case .deleteServer: req = .deleteDestination(key!, address: inv.destination.address, port: inv.destination.port)
        case .zero: req = .zero(key)
        case .setTimeouts: req = .setTimeouts(inv.timeouts)
        case .startDaemon: req = .startDaemon(inv.daemon)
        case .stopDaemon: req = .stopDaemon(inv.daemon.role)
        case .list, .save, .restore: return 0
        }
        switch try request(req) {
        case .ok:
            return 0
        case .failed(let e):
            io.writeErr(Self.message(for: e, command: inv.command) + "\n")
            return 255
        case let other:
            throw Self.unexpected(other)
        }
    }

    /// libipvs `ipvs_strerror`: the per-operation table, then the generic rows, then `strerror`.
    public static func message(for error: IPVSError, command: IPVSAdmCommand) -> String {
        let errno = error.errnoName
        switch (command, errno) {
        case (.addService, "EEXIST"): return "Service already exists"
        case (.addService, "ENOENT"), (.editService, "ENOENT"): return "Scheduler or persistence engine not found"
        case (.editService, "ESRCH"), (.deleteService, "ESRCH"), (.zero, "ESRCH"): return "No such service"
        case (.addServer, "ESRCH"), (.editServer, "ESRCH"), (.deleteServer, "ESRCH"): return "Service not defined"
        case (.addServer, "EEXIST"): return "Destination already exists"
        case (.editServer, "ENOENT"), (.deleteServer, "ENOENT"): return "No such destination"
        case (.startDaemon, "EEXIST"): return "Daemon has already run"
        case (.stopDaemon, "ESRCH"): return "No daemon is running"
        case (.list, "ESRCH"), (.save, "ESRCH"): return "No such service"
        default: break
        }
        switch errno {
        case "EINVAL": return "Invalid operation.  Possibly wrong module version, address not unicast, ..."
        case "ENOMEM": return "Memory allocation problem"
        case "EEXIST": return "File exists"
        case "ENOENT": return "No such file or directory"
        case "ESRCH": return "No such process"
        case "ERANGE": return "Numerical result out of range"
        case "ENODEV": return "No such device"
        default: return errno
        }
    }
}
