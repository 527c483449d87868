import Dispatch
import Glibc
import NIOCore
import NIOPosix
import Synchronization

/// Limits of one of lvsd's servers (control socket, metrics endpoint).
struct ServerLimits: Sendable {
    /// Clients served at once; one more is told so and closed (counted as refused).
    var maxClients: Int
    /// A complete request must arrive within this, counted from the connection or from the end
    /// of the previous answer; else the connection is closed (counted as a read timeout).
    var readTimeout: TimeAmount
    /// An answer that makes no progress (the client does not read) for this long is dropped with
    /// its connection (counted as a write timeout).
    var writeTimeout: TimeAmount
    /// Largest request accepted; a longer one is answered with an error and the connection closed.
    var maxRequestBytes: Int

    /// The control socket: one JSON line per request (the largest real request is a few hundred bytes).
    static let control = ServerLimits(maxClients: 16, readTimeout: .seconds(10), writeTimeout: .seconds(10),
                                      maxRequestBytes: 1 << 20)
    /// The metrics endpoint: an HTTP GET (head and body together).
    static let metrics = ServerLimits(maxClients: 16, readTimeout: .seconds(5), writeTimeout: .seconds(10),
                                      maxRequestBytes: 64 << 10)
}

/// What a server has done, for `lvsadm daemon status`.
final class ServerCounters: Sendable {
    let name: String
    let limits: ServerLimits
    let clients = Atomic<Int>(0)
    let accepted = Atomic<UInt64>(0)
    let refused = Atomic<UInt64>(0)
    let readTimeouts = Atomic<UInt64>(0)
    let writeTimeouts = Atomic<UInt64>(0)
    let oversized = Atomic<UInt64>(0)

    init(name: String, limits: ServerLimits) {
        self.name = name
        self.limits = limits
    }

    /// Takes a client slot; false when `maxClients` are served already (counted as refused).
    func admit() -> Bool {
        let now = clients.wrappingAdd(1, ordering: .relaxed).newValue
        if now > limits.maxClients {
            clients.wrappingSubtract(1, ordering: .relaxed)
            refused.wrappingAdd(1, ordering: .relaxed)
            return false
        }
        accepted.wrappingAdd(1, ordering: .relaxed)
        return true
    }

    func release() { clients.wrappingSubtract(1, ordering: .relaxed) }

    /// One `daemon status` line.
    var statusLine: String {
        let l = limits
        return "\(name): \(clients.load(ordering: .relaxed)) client(s) now, \(accepted.load(ordering: .relaxed)) served, "
            + "\(refused.load(ordering: .relaxed)) refused at the limit of \(l.maxClients), "
            + "\(readTimeouts.load(ordering: .relaxed)) read timeout(s) (\(l.readTimeout.nanoseconds / 1_000_000_000) s), "
            + "\(writeTimeouts.load(ordering: .relaxed)) write timeout(s) (\(l.writeTimeout.nanoseconds / 1_000_000_000) s), "
            + "\(oversized.load(ordering: .relaxed)) request(s) over \(l.maxRequestBytes) bytes\n"
    }
}

/// The event loop both servers run on (one thread: requests are executed on other queues).
enum ServerLoop {
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// Marks an accepted socket close-on-exec (NIO accepts without SOCK_CLOEXEC), so scripts that
    /// lvsd runs do not inherit client connections.
    static func setCloseOnExec(_ channel: Channel) {
        _ = try? channel.pipeline.syncOperations.withUnsafeTransportIfAvailable(of: NIOBSDSocket.Handle.self) { fd in
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }

    /// The accepted socket's descriptor (for SO_PEERCRED).
    static func descriptor(_ channel: Channel) -> Int32? {
        (try? channel.pipeline.syncOperations.withUnsafeTransportIfAvailable(of: NIOBSDSocket.Handle.self) { $0 }) ?? nil
    }
}

/// Writes an answer in slices and closes the connection when no slice completes within
/// `timeout` (a client that does not read). Lives on the channel's event loop.
final class TimedWriter {
    /// Bytes per write: progress is seen per slice.
    static let sliceBytes = 256 << 10

    private let timeout: TimeAmount
    private let counters: ServerCounters
    private var deadline: Scheduled<Void>?
    private var pending = 0

    init(timeout: TimeAmount, counters: ServerCounters) {
        self.timeout = timeout
        self.counters = counters
    }

    /// Writes `buffer`; `done` runs once all of it is written (not if the connection fails).
    func write(_ buffer: ByteBuffer, context: ChannelHandlerContext, done: @escaping () -> Void) {
        var rest = buffer
        var slices: [ByteBuffer] = []
        while rest.readableBytes > Self.sliceBytes { slices.append(rest.readSlice(length: Self.sliceBytes)!) }
        slices.append(rest)
        pending = slices.count
        arm(context)
        let loop = context.eventLoop
        for slice in slices {
            let promise = loop.makePromise(of: Void.self)
            // On the event loop (where `write` runs): the writer, `context` and `done` stay there.
            promise.futureResult.assumeIsolated().whenComplete { [self] result in
                guard case .success = result else { disarm(); return }
                pending -= 1
                if pending == 0 {
                    disarm()
                    done()
                } else {
                    arm(context)
                }
            }
            context.write(NIOAny(slice), promise: promise)
        }
        context.flush()
    }

    private func arm(_ context: ChannelHandlerContext) {
        deadline?.cancel()
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: timeout) { [counters] in
            counters.writeTimeouts.wrappingAdd(1, ordering: .relaxed)
            channel.close(promise: nil)
        }
    }

    func disarm() {
        deadline?.cancel()
        deadline = nil
    }
}

/// Runs `body` in a Task and waits for its result on this plain (non-async) thread, up to
/// `timeout`: nil when it did not finish in time (its late result is then dropped).
func waitForTask<T: Sendable>(timeout: DispatchTime = .distantFuture, _ body: @escaping @Sendable () async -> T) -> T? {
    let result = TaskResult<T>()
    Task {
        let value = await body()
        result.value.withLock { $0 = value }
        result.done.signal()
    }
    guard result.done.wait(timeout: timeout) == .success else { return nil }
    return result.value.withLock { $0 }
}

/// `waitForTask`'s result, written by the task and read by the waiting thread under its Mutex.
private final class TaskResult<T: Sendable>: Sendable {
    let value = Mutex<T?>(nil)
    let done = DispatchSemaphore(value: 0)
}

