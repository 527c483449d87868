import CLVSShim
import Foundation
import Glibc
import LVSControl
import LVSCore
import Logging
import NIOCore
import NIOPosix
import Synchronization
import LVSModel
import LVSSystem
import IPVSAdm

/// The root-only Unix control socket: one JSON request per line, one JSON response per line.
///
/// Clients are served concurrently (swift-nio, one event loop) within `ServerLimits.control`:
/// a client that sends nothing or does not read its answer is closed after a timeout and holds
/// no one else up; requests run off the event loop, one at a time per client.
///
/// `@unchecked Sendable` (mutable fields): `listener` and `channel` are written only by `start`
/// and `stop`, which lvsd calls one after the other (start-up, then shutdown or the start-up's
/// undo), never at once; `reload` is behind a Mutex; the NIO handlers and the request queues
/// read only constants.
final class ControlServer: @unchecked Sendable {
    let path: String
    let director: Director
    let logger: Logger
    let onChange: () -> Void
    private var listener: Int32 = -1
    /// Set by lvsd once it runs (after `start`): re-reads the configuration file (the `.reload`
    /// request and SIGHUP).
    var reload: (@Sendable () async -> String)? {
        get { reloadHandler.withLock { $0 } }
        set { reloadHandler.withLock { $0 = newValue } }
    }
    private let reloadHandler = Mutex<(@Sendable () async -> String)?>(nil)
    private var channel: Channel?
    /// Requests other than listings, in arrival order (the engine's configuration is changed by one at a time).
    private let queue = DispatchQueue(label: "lvsd-control")
    /// Connection listings (long on a big table).
    private let listQueue = DispatchQueue(label: "lvsd-control-list")
    let counters = ServerCounters(name: "control socket", limits: .control)

    init(path: String, director: Director, logger: Logger, onChange: @escaping () -> Void) {
        self.path = path
        self.director = director
        self.logger = logger
        self.onChange = onChange
    }

    /// Binds the socket (mode 0600 in a 0700 directory, close-on-exec) and starts accepting.
    func start() throws {
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) }
        unlink(path)
        guard let address = RawSocketAddress.unix(path: path) else { throw ServerError("control socket path too long: \(path)") }
        do {
            listener = try SocketSetup.open(family: AF_UNIX, type: Int32(SOCK_STREAM.rawValue), name: "socket(AF_UNIX)")
            let oldMask = umask(0o177)
            defer { umask(oldMask) }
            try SocketSetup.bind(listener, to: address)
        } catch {
            throw ServerError("cannot bind control socket \(path): \(error)")
        }
        chmod(path, 0o600)
        do {
            try SocketSetup.listen(listener, backlog: 64)
        } catch {
            throw ServerError("control socket \(path): \(error)")
        }
        let counters = self.counters
        do {
            channel = try ServerBootstrap(group: ServerLoop.group)
                .childChannelOption(ChannelOptions.autoRead, value: false)
                .childChannelInitializer { [self] child in
                    ServerLoop.setCloseOnExec(child)
                    let admitted = counters.admit()
                    if admitted { child.closeFuture.whenComplete { _ in counters.release() } }
                    let uid = ServerLoop.descriptor(child).map { clvs_peer_uid($0) } ?? -1
                    return child.eventLoop.makeCompletedFuture {
                        try child.pipeline.syncOperations.addHandler(ControlHandler(server: self, admitted: admitted, root: uid == 0))
                    }
                }
                .withBoundSocket(listener).wait()
        } catch {
            throw ServerError("control socket \(path): \(error)")
        }
        listener = -1 // the channel owns it now
    }

    func stop() {
        try? channel?.close().wait()
        channel = nil
        if listener >= 0 { close(listener); listener = -1 }
        unlink(path)
    }

    /// Executes one request line and encodes the answer (on `queue` or `listQueue`, not the event loop).
    fileprivate func answer(_ line: ByteBuffer) -> ByteBuffer {
        let response: ControlResponse
        do {
            let request = try JSONDecoder().decode(ControlRequest.self, from: Data(line.readableBytesView))
            if case .reload = request {
                response = .text(runReload())
            } else if case .restart = request {
                response = .text(InPlaceRestart.request())
            } else {
                response = director.execute(request)
                // Once per request, and once per batch whatever its size.
                if request.changedConfiguration(response) { onChange() }
            }
        } catch let mismatch as ControlProtocolMismatch {
            response = .versionMismatch(requested: mismatch.peerVersion)
        } catch {
            response = .text("lvsd: malformed control request: \(error)\n")
        }
        if case .connections(let list) = response {
            // A million entries: JSONEncoder would take seconds of CPU.
            let bytes = ConnectionListEncoding.responseLine(list)
            var out = ByteBufferAllocator().buffer(capacity: bytes.count)
            out.writeBytes(bytes)
            return out
        }
        return Self.encode(response)
    }

    /// Bytes of a listing encoded before they are written to the client: the answer goes out in
    /// chunks of about this size, the next one encoded while the previous one is written.
    static let listingChunkBytes = 512 << 10

    /// The most bytes of a listing answer held at once (encoded and not yet written), over all
    /// listings so far: at most about two chunks, whatever the table's size.
    let listingPeakQueuedBytes = Atomic<Int>(0)

    /// Whether `line` is the `.connections` request (decoded, so that anything else goes the
    /// usual way).
    fileprivate static func isListingRequest(_ line: ByteBuffer) -> Bool {
        (try? JSONDecoder().decode(ControlRequest.self, from: Data(line.readableBytesView))) == .connections
    }

    /// Streams the `.connections` answer (on the listing queue): the entries are encoded as the
    /// workers hand them over, in chunks of `listingChunkBytes`; `write` sends a chunk (`last`:
    /// the end of the answer) and its future succeeds once the chunk is written. A chunk waits
    /// for the previous one to be written (the client's reading paces the walk: bounded memory);
    /// a failed write (the client went away) stops the workers' walk at once.
    fileprivate func streamListing(write: (ByteBuffer, _ last: Bool) -> EventLoopFuture<Void>) {
        var out: [UInt8] = []
        out.reserveCapacity(Self.listingChunkBytes + Self.listingChunkSlack)
        ConnectionListEncoding.appendHeader(to: &out)
        var first = true
        var previous: EventLoopFuture<Void>?
        var previousBytes = 0
        func send(last: Bool) -> Bool {
            _ = listingPeakQueuedBytes.max(previousBytes + out.count, ordering: .relaxed)
            if let previous {
                guard (try? previous.wait()) != nil else { return false }
            }
            previousBytes = out.count
            previous = write(ByteBuffer(bytes: out), last)
            out.removeAll(keepingCapacity: true)
            return true
        }
        let complete = director.streamConnections { batch in
            for c in batch {
                ConnectionListEncoding.appendEntry(c, first: first, to: &out)
                first = false
                if out.count >= Self.listingChunkBytes {
                    guard send(last: false) else { return false }
                }
            }
            return true
        }
        guard complete else { return }
        ConnectionListEncoding.appendTrailer(to: &out)
        _ = send(last: true)
    }

    /// Room past a chunk's size for the entry that crosses it (an entry is at most a few hundred bytes).
    static let listingChunkSlack = 4096

    /// One response line.
    fileprivate static func encode(_ response: ControlResponse) -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let data = (try? encoder.encode(response)) ?? Data(#"{"answer":"text","text":"lvsd: cannot encode the answer\n","version":1}"#.utf8)
        var out = ByteBufferAllocator().buffer(capacity: data.count + 1)
        out.writeBytes(data)
        out.writeInteger(UInt8(ascii: "\n"))
        return out
    }

    /// Runs `work` off the event loop: connection listings on their own queue, so a long listing
    /// does not hold up other requests; everything else in order on one queue, as before.
    fileprivate func schedule(listing: Bool, _ work: @escaping @Sendable () -> Void) {
        if listing {
            listQueue.async { Self.atLowPriority(work) }
        } else {
            queue.async(execute: work)
        }
    }

    /// Niceness of the thread that gathers and encodes a connection listing (seconds of CPU for a
    /// million entries): the data-plane workers and whatever else shares the CPU come first.
    static let listingNiceness: Int32 = 19

    /// Runs `work` with this thread's niceness at `listingNiceness`, then restores it (on Linux
    /// the nice value is per thread: `who` 0 is the calling thread).
    static func atLowPriority(_ work: () -> Void) {
        let which = __priority_which_t(PRIO_PROCESS.rawValue)
        errno = 0
        let before = getpriority(which, 0)
        let restore = errno == 0 ? before : 0
        setpriority(which, 0, listingNiceness)
        defer { setpriority(which, 0, restore) }
        work()
    }

    /// Called by the health monitor's backend when services changed.
    func notifyChange() { onChange() }

    /// Runs the async reload from this (plain) thread and waits for it.
    private func runReload() -> String {
        guard let reload else { return "lvsd: reload is not available\n" }
        return waitForTask { await reload() } ?? ""
    }

}

struct ServerError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Whether a client connection is still open, readable from any thread.
final class OpenFlag: Sendable {
    private let value = Atomic<Bool>(true)
    var isOpen: Bool { value.load(ordering: .relaxed) }
    func close() { value.store(false, ordering: .relaxed) }
}

/// One control client: reads one request line at a time (no read ahead while a request runs or
/// its answer is written), within the read timeout, size limit and write timeout.
final class ControlHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let server: ControlServer
    private let admitted: Bool
    private let root: Bool
    private let writer: TimedWriter
    private var buffer = ByteBuffer()
    private var busy = false
    private var draining = false
    /// False once the connection is closed (read by the request queues).
    private let open = OpenFlag()
    private var readDeadline: Scheduled<Void>?
    /// The listing chunk being written: succeeded once written, failed if the connection closes first.
    private var chunkWritten: EventLoopPromise<Void>?

    init(server: ControlServer, admitted: Bool, root: Bool) {
        self.server = server
        self.admitted = admitted
        self.root = root
        writer = TimedWriter(timeout: server.counters.limits.writeTimeout, counters: server.counters)
    }

    func channelActive(context: ChannelHandlerContext) {
        let limits = server.counters.limits
        if !admitted {
            finish(context, "lvsd: too many control clients (\(limits.maxClients) at once); try again later\n")
        } else if !root {
            finish(context, "permission denied: lvsd accepts root only\n")
        } else {
            awaitRequest(context)
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        open.close()
        chunkWritten?.fail(ChannelError.ioOnClosedChannel)
        chunkWritten = nil
        readDeadline?.cancel()
        writer.disarm()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !draining else { return }
        var bytes = unwrapInboundIn(data)
        buffer.writeBuffer(&bytes) // bounded: reads are asked for one at a time (autoRead off)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if draining {
            context.read()
        } else if !busy {
            nextRequest(context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    /// Waits for the next request within the read timeout.
    private func awaitRequest(_ context: ChannelHandlerContext) {
        readDeadline?.cancel()
        let channel = context.channel, counters = server.counters
        readDeadline = context.eventLoop.scheduleTask(in: counters.limits.readTimeout) {
            counters.readTimeouts.wrappingAdd(1, ordering: .relaxed)
            channel.close(promise: nil)
        }
        nextRequest(context)
    }

    /// Runs the next complete line, or reads more.
    private func nextRequest(_ context: ChannelHandlerContext) {
        let limits = server.counters.limits
        guard let nl = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > limits.maxRequestBytes {
                server.counters.oversized.wrappingAdd(1, ordering: .relaxed)
                finish(context, "lvsd: control request longer than \(limits.maxRequestBytes) bytes refused\n")
            } else {
                context.read()
            }
            return
        }
        let length = nl - buffer.readerIndex
        if length > limits.maxRequestBytes {
            server.counters.oversized.wrappingAdd(1, ordering: .relaxed)
            finish(context, "lvsd: control request longer than \(limits.maxRequestBytes) bytes refused\n")
            return
        }
        let line = buffer.readSlice(length: length)!
        buffer.moveReaderIndex(forwardBy: 1)
        buffer.discardReadBytes()
        readDeadline?.cancel()
        readDeadline = nil
        busy = true
        let listing = ControlProtocol.connectionsRequestLine.withUTF8Buffer { line.readableBytesView.starts(with: $0) }
        let server = self.server, loop = context.eventLoop, open = self.open
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        server.schedule(listing: listing) {
            // A client that left before its turn costs nothing (connect, send, close in a loop
            // must not pile up work).
            guard open.isOpen else { return }
            if listing && ControlServer.isListingRequest(line) {
                server.streamListing { chunk, last in
                    let promise = loop.makePromise(of: Void.self)
                    loop.execute {
                        let (handler, context) = bound.value
                        guard context.channel.isActive else {
                            promise.fail(ChannelError.ioOnClosedChannel)
                            return
                        }
                        handler.writeChunk(chunk, last: last, promise: promise, context: context)
                    }
                    return promise.futureResult
                }
                return
            }
            let answer = server.answer(line)
            loop.execute {
                let (handler, context) = bound.value
                guard context.channel.isActive else { return }
                handler.writer.write(answer, context: context) {
                    handler.busy = false
                    handler.awaitRequest(context)
                }
            }
        }
    }

    /// Writes one chunk of a streamed listing (on the event loop): `promise` succeeds once it is
    /// written; after the `last` chunk the next request is read.
    fileprivate func writeChunk(_ chunk: ByteBuffer, last: Bool, promise: EventLoopPromise<Void>, context: ChannelHandlerContext) {
        chunkWritten = promise
        writer.write(chunk, context: context) { [self] in
            chunkWritten?.succeed(())
            chunkWritten = nil
            if last {
                busy = false
                awaitRequest(context)
            }
        }
    }

    /// How long a refused client may still send (its request is read and dropped, so that its
    /// write does not fail before it has read why it was refused).
    static let drainTime: TimeAmount = .seconds(2)

    /// Answers with `text`, closes the sending side, drops what the client still sends, and closes.
    private func finish(_ context: ChannelHandlerContext, _ text: String) {
        busy = true
        readDeadline?.cancel()
        let channel = context.channel
        writer.write(ControlServer.encode(.text(text)), context: context) { [self] in
            channel.close(mode: .output, promise: nil)
            draining = true
            buffer.clear()
            readDeadline = context.eventLoop.scheduleTask(in: Self.drainTime) { channel.close(promise: nil) }
            context.read()
        }
    }
}
