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
        return try perform(parsed, program: program)
    }

    private func perform(_ parsed: IPVSAdmParsed, program: String) throws -> Int32 {
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
            return try restore(program: program)
        default:
            break
        }
        guard let req = Self.request(for: inv) else { return 0 }
        return try outcome(try request(req), command: inv.command)
    }

    /// The request a changing command sends (nil: a listing, `-S`, `-R`).
    static func request(for inv: IPVSAdmInvocation) -> ControlRequest? {
        let key = inv.serviceKey
        switch inv.command {
        case .addService: return .addService(key!, inv.serviceOptions)
        case .editService: return .editService(key!, inv.serviceOptions)
        case .deleteService: return .deleteService(key!)
        case .flush: return .clear
        case .addServer: return .addDestination(key!, inv.destination)
        case .editServer: return .editDestination(key!, inv.destination)
        case .deleteServer: return .deleteDestination(key!, address: inv.destination.address, port: inv.destination.port)
        case .zero: return .zero(key)
        case .setTimeouts: return .setTimeouts(inv.timeouts)
        case .startDaemon: return .startDaemon(inv.daemon)
        case .stopDaemon: return .stopDaemon(inv.daemon.role)
        case .list, .save, .restore: return nil
        }
    }

    /// The exit code of a changing command answered `response` (its error on stderr).
    private func outcome(_ response: ControlResponse, command: IPVSAdmCommand) throws -> Int32 {
        switch response {
        case .ok:
            return 0
        case .failed(let e):
            io.writeErr(Self.message(for: e, command: command) + "\n")
            return 255
        case let other:
            throw Self.unexpected(other)
        }
    }

    /// `-R`: one command per line of stdin. Consecutive table changes go to lvsd as one batch (one
    /// snapshot and at most one `nft` run there, not one per line); any other line (a listing, a
    /// daemon, a parse error) first sends what gathered, so everything is applied and written in
    /// the lines' order. As ipvsadm, a failing line does not stop the others, its error is written
    /// in its place, and the exit code is the last line's; a parse error that ends ipvsadm ends
    /// the restore there, after the lines before it.
    private func restore(program: String) throws -> Int32 {
        try runLines(program: program, stopAtFirstFailure: false) {
            while let line = io.readLine() {
                let tokens = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
                    .map(String.init).filter { $0 != "ipvsadm" }
                if !tokens.isEmpty { return tokens }
            }
            return nil
        }.result
    }

    /// Runs command lines (without the program name) as `-R` does, table changes in batches, but
    /// stops at the first line that fails, as lvsd's rules-file loader does: nil when every line
    /// succeeded, else the failing line's index in `lines` and its exit code (its error is on
    /// stderr as ipvsadm writes it). Each line counts as its own run: `-h` prints and goes on.
    public func runStoppingAtFailure(_ lines: [[String]], program: String = "ipvsadm") -> (line: Int, code: Int32)? {
        var index = 0
        do {
            return try runLines(program: program, stopAtFirstFailure: true) {
                guard index < lines.count else { return nil }
                index += 1
                return lines[index - 1]
            }.failure
        } catch let e as ControlTransportError {
            io.writeErr("\(Self.baseName(program)): \(e.message)\n")
            return (max(0, index - 1), 2)
        } catch {
            io.writeErr("\(Self.baseName(program)): \(error)\n")
            return (max(0, index - 1), 2)
        }
    }

    /// The loop of `restore` and `runStoppingAtFailure`: the exit code of the last line, and with
    /// `stopAtFirstFailure` the first failing line (counted from 0) and its code.
    private func runLines(program: String, stopAtFirstFailure: Bool,
                          next: () -> [String]?) throws -> (result: Int32, failure: (line: Int, code: Int32)?) {
        var result: Int32 = 0
        var failure: (line: Int, code: Int32)?
        var pending: [(request: ControlRequest, command: IPVSAdmCommand, line: Int)] = []
        func finish(_ line: Int, _ code: Int32) {
            result = code
            if stopAtFirstFailure && code != 0 && failure == nil { failure = (line, code) }
        }
        func send() throws {
            guard !pending.isEmpty else { return }
            let answers = try backend.execute(batch: ControlBatch(pending.map(\.request), stopAtFirstFailure: stopAtFirstFailure))
            let stoppedEarly = stopAtFirstFailure && ControlBatch.firstFailure(answers)?.index == answers.count - 1
            guard answers.count == pending.count || stoppedEarly else {
                throw ControlTransportError(message: "lvsd answered \(answers.count) of \(pending.count) requests")
            }
            for (answer, p) in zip(answers, pending) { finish(p.line, try outcome(answer, command: p.command)) }
            pending = []
        }
        var line = -1
        while failure == nil, let tokens = next() {
            line += 1
            let parser = IPVSAdmParser(program: program, resolver: resolver)
            let parsed: IPVSAdmParsed
            do {
                // (A rules file's lines are each a command line of their own: `-R` there reads nothing.)
                parsed = try parser.parse([program] + tokens, readingStdin: !stopAtFirstFailure)
            } catch {
                try send()
                if failure != nil { break }
                io.writeErr(error.stderr)
                if error.terminates && !stopAtFirstFailure { throw ExitNow(code: error.exitCode) }
                finish(line, error.exitCode)
                continue
            }
            if case let .run(inv) = parsed, let request = Self.request(for: inv), request.isBatchable {
                pending.append((request, inv.command, line))
                continue
            }
            try send()
            if failure != nil { break }
            do {
                finish(line, try perform(parsed, program: program))
            } catch let e as ExitNow where stopAtFirstFailure {
                finish(line, e.code)
            }
        }
        if failure == nil { try send() }
        return (result, failure)
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
