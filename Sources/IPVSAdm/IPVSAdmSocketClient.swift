import Glibc
// FoundationEssentials, not Foundation: JSON and the environment without ICU in lvsadm.
import FoundationEssentials
import LVSModel
import LVSSystem

/// `ControlBackend` over lvsd's Unix stream socket: one JSON request line, one JSON response line.
///
/// The connection is opened on the first request and reused for the following ones.
public final class SocketControlClient: ControlBackend {
    public static let defaultPath = "/run/lvsd/lvsd.sock"

    /// Requests are written with sorted keys: the same request is always the same line.
    private static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return encoder
    }

    public let path: String
    private var fd: Int32 = -1
    private var buffer: [UInt8] = []

    /// `path` nil: `$LVSD_SOCKET`, else the default path.
    public init(path: String? = nil) {
        if let path {
            self.path = path
        } else if let env = ProcessInfo.processInfo.environment["LVSD_SOCKET"], !env.isEmpty {
            self.path = env
        } else {
            self.path = Self.defaultPath
        }
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    private func connectIfNeeded() throws {
        if fd >= 0 && !peerClosed() { return }
        if fd >= 0 { close(fd); fd = -1 }
        guard let address = RawSocketAddress.unix(path: path) else {
            throw ControlTransportError(message: "cannot reach lvsd at \(path): socket path too long (is lvsd running?)")
        }
        do {
            let s = try SocketSetup.open(family: AF_UNIX, type: Int32(SOCK_STREAM.rawValue))
            do {
                try SocketSetup.connect(s, to: address)
            } catch {
                close(s)
                throw error
            }
            fd = s
        } catch let error as SystemError {
            throw ControlTransportError(message: "cannot reach lvsd at \(path): \(error.message) (is lvsd running?)")
        }
        buffer = []
    }

    /// True when lvsd has closed the idle connection (its read timeout): the next request then
    /// opens a new one. Nothing was sent on it since the last answer, so nothing is lost.
    private func peerClosed() -> Bool {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
    }

    private func fail(_ what: String) -> ControlTransportError {
        if fd >= 0 { close(fd); fd = -1 }
        return ControlTransportError(message: "lost connection to lvsd at \(path): \(what)")
    }

    private func writeAll(_ data: [UInt8]) throws {
        var offset = 0
        while offset < data.count {
            do {
                offset += try syscall("send") { data[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
            } catch let error as SystemError {
                throw fail(error.message)
            }
        }
    }

    /// Bytes asked of one `recv` (lvsd's answer to `-c` on a million entries is about 250 MB).
    static let receiveChunk = 1 << 20

    /// One recv into `chunk` (made on first use), retried on EINTR: the byte count, never 0 (a
    /// closed connection throws).
    private func receive(into chunk: inout [UInt8]) throws -> Int {
        if chunk.isEmpty { chunk = [UInt8](repeating: 0, count: Self.receiveChunk) }
        let n: Int
        do {
            n = try syscall("recv") { chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) } }
        } catch let error as SystemError {
            throw fail(error.message)
        }
        if n == 0 { throw fail("connection closed") }
        return n
    }

    private func readLine() throws -> [UInt8] {
        var scanned = 0 // bytes known to hold no newline (a long answer is scanned once)
        var chunk: [UInt8] = []
        while true {
            if let nl = buffer[scanned...].firstIndex(of: 0x0A) {
                if nl == buffer.count - 1 { // the usual case: the answer is all there is; no copy
                    var line: [UInt8] = []
                    swap(&line, &buffer)
                    line.removeLast()
                    return line
                }
                let line = Array(buffer[..<nl])
                buffer.removeSubrange(...nl)
                return line
            }
            scanned = buffer.count
            let n = try receive(into: &chunk)
            buffer.append(contentsOf: chunk[..<n])
        }
    }

    public func execute(_ request: ControlRequest) throws -> ControlResponse {
        try connectIfNeeded()
        var data = Array(try Self.encoder.encode(request))
        data.append(0x0A)
        try writeAll(data)
        return try response(to: request, line: readLine())
    }

    /// A batch goes in `.batch` requests of at most this many bytes each (lvsd refuses a request
    /// line over 1 MiB): a restore of a few thousand lines is one request.
    public static let batchBytes = 512 << 10

    /// Sends the batch as one `.batch` request, or several in order when it is over `batchBytes`
    /// (with `stopAtFirstFailure`, none after a part that failed).
    public func execute(batch: ControlBatch) throws -> [ControlResponse] {
        var answers: [ControlResponse] = []
        for part in try Self.parts(of: batch.requests, maxBytes: Self.batchBytes) {
            let got: [ControlResponse]
            do {
                got = try executeAsOneRequest(ControlBatch(part, stopAtFirstFailure: batch.stopAtFirstFailure))
            } catch let e as UnexpectedControlAnswer {
                throw IPVSAdmExecutor.unexpected(e.response)
            }
            answers += got
            if batch.stopAtFirstFailure && ControlBatch.firstFailure(got) != nil { break }
        }
        return answers
    }

    /// `requests` in order, cut into parts whose JSON takes at most `maxBytes` (a request larger
    /// than that alone is a part of its own).
    static func parts(of requests: [ControlRequest], maxBytes: Int) throws -> [[ControlRequest]] {
        let encoder = JSONEncoder()
        var parts: [[ControlRequest]] = []
        var part: [ControlRequest] = []
        var size = 0
        for request in requests {
            let bytes = try encoder.encode(request).count + 1
            if size + bytes > maxBytes && !part.isEmpty {
                parts.append(part)
                part = []
                size = 0
            }
            part.append(request)
            size += bytes
        }
        if !part.isEmpty { parts.append(part) }
        return parts
    }

    private func response(to request: ControlRequest, line: [UInt8]) throws -> ControlResponse {
        if case .connections = request, let list = ConnectionListDecoding.connections(line) {
            return .connections(list) // a million entries: JSONDecoder would take seconds of CPU
        }
        let response: ControlResponse
        do {
            response = try JSONDecoder().decode(ControlResponse.self, from: Data(line))
        } catch let mismatch as ControlProtocolMismatch {
            throw versionError(lvsd: mismatch.peerVersion)
        } catch {
            throw fail("malformed response")
        }
        if case .versionMismatch = response { throw versionError(lvsd: ControlProtocol.version) }
        return response
    }

    /// lvsd answered in another protocol version: nothing it says can be read, and the exit is 2.
    private func versionError(lvsd version: Int) -> ControlTransportError {
        if fd >= 0 { close(fd); fd = -1 }
        return ControlTransportError(message: Self.versionMessage(lvsd: version))
    }

    /// The line lvsadm prints when lvsd speaks another version of the control protocol.
    public static func versionMessage(lvsd version: Int) -> String {
        "lvsd speaks control protocol \(version), this lvsadm speaks \(ControlProtocol.version)"
    }
}

extension SocketControlClient: ConnectionStreamingBackend {
    public func streamConnections(_ body: (ConnectionSnapshot) -> Void) throws -> ControlResponse? {
        try connectIfNeeded()
        var data = Array(try Self.encoder.encode(ControlRequest.connections))
        data.append(0x0A)
        try writeAll(data)
        var stream = ConnectionListStream()
        if !buffer.isEmpty {
            buffer.withUnsafeBytes { stream.feed($0) }
            buffer = []
        }
        var chunk: [UInt8] = []
        while true {
            switch stream.next() {
            case .entry(let c):
                body(c)
            case .end:
                buffer = Array(stream.unconsumed)
                return nil
            case .notLvsdForm:
                if let fed = stream.fedSoFar { // another answer (or layout): read it whole, as `execute` does
                    buffer = Array(fed)
                    return try response(to: .connections, line: readLine())
                }
                // Entries were given already: the rest of this line goes, and the listing is asked
                // for again and read whole.
                buffer = Array(stream.unconsumed)
                _ = try readLine()
                return try execute(.connections)
            case .needMore:
                let n = try receive(into: &chunk)
                chunk.withUnsafeBytes { stream.feed(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
            }
        }
    }
}
