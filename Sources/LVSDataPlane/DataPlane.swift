import Glibc
import CLVSShim
import LVSCore

/// Settings of a `DataPlane`.
public struct DataPlaneConfiguration: Sendable {
    /// Interface names; each worker opens one socket per interface.
    public var interfaces: [String]
    /// nil = CPUs in the process affinity mask.
    public var workerCount: Int?
    /// Frames taken from one ring before transmitting.
    public var batchSize: Int = 64
    /// Upper bound between two `tick(now:)` calls, in ns (clamped to 1…100 ms).
    public var tickInterval: UInt64 = 100_000_000
    public var socket = PacketSocketOptions()
    /// PACKET_FANOUT_FLAG_DEFRAG (IPv4 fragments reach one worker, reassembled).
    public var fanoutDefrag: Bool = true
    /// After a batch, how long (ns) a worker keeps checking its rings, yielding the CPU between
    /// checks, before it sleeps in poll(2): a request/response exchange then skips the wake-up.
    /// 0 = sleep at once.
    public var spinNanoseconds: UInt64 = 0
    /// The EtherTypes each worker opens a socket for, per interface: [ETH_P_ALL] (one tap socket
    /// seeing every frame), or single types that are delivered after tc ingress (see `TCDataPlane`).
    public var receiveProtocols: [UInt16] = [3]

    public init(interfaces: [String], workerCount: Int? = nil) {
        self.interfaces = interfaces
        self.workerCount = workerCount
    }
}

/// N worker threads sharing the interfaces through one PACKET_FANOUT group per interface and
/// receive protocol: by flow hash with several workers, by CPU with one (the group then only
/// defragments, and the kernel hashes no frame).
///
/// Sockets are opened by `init` (in the calling thread's network namespace); `start()` launches the
/// threads, `stop()` stops and joins them.
public final class DataPlane<P: FrameProcessor> {
    public let configuration: DataPlaneConfiguration
    public let interfaces: [InterfaceInfo]
    public let workers: [DataPlaneWorker<P>]
    /// How each interface's fanout group spreads frames over the workers.
    public let fanoutMode: PacketSocket.FanoutMode
    private var threads: [pthread_t] = []

    /// `makeProcessor(i)` gives worker i its processor (return one shared instance if it is thread-safe).
    public init(configuration: DataPlaneConfiguration, makeProcessor: (_ worker: Int) throws -> P) throws {
        guard !configuration.interfaces.isEmpty else {
            throw DataPlaneError.invalidConfiguration("no interfaces")
        }
        let infos = try configuration.interfaces.map { try InterfaceInfo.lookup($0) }
        let n = configuration.workerCount ?? affinityCPUCount()
        guard n >= 1 else { throw DataPlaneError.invalidConfiguration("worker count \(n)") }
        guard !configuration.receiveProtocols.isEmpty else { throw DataPlaneError.invalidConfiguration("no receive protocols") }
        let protocols = configuration.receiveProtocols
        var groups = [Int32?](repeating: nil, count: infos.count * protocols.count)
        var workers: [DataPlaneWorker<P>] = []
        let mode: PacketSocket.FanoutMode = n == 1 ? .cpu : .hash
        for w in 0..<n {
            var sockets: [PacketSocket] = []
            for (i, info) in infos.enumerated() {
                for (k, proto) in protocols.enumerated() {
                    var options = configuration.socket
                    options.protocolType = proto
                    let socket = try PacketSocket(interface: info, options: options)
                    let g = i * protocols.count + k
                    groups[g] = try socket.joinFanout(group: groups[g], mode: mode, defrag: configuration.fanoutDefrag)
                    sockets.append(socket)
                }
            }
            workers.append(DataPlaneWorker(processor: try makeProcessor(w), sockets: sockets,
                                           batchSize: configuration.batchSize,
                                           tickInterval: configuration.tickInterval,
                                           spinNanoseconds: configuration.spinNanoseconds))
        }
        self.configuration = configuration
        self.fanoutMode = mode
        self.interfaces = infos
        self.workers = workers
    }

    public var isRunning: Bool { !threads.isEmpty }

    /// Starts one thread per worker (they inherit the process's CPU affinity).
    public func start() throws {
        guard threads.isEmpty else { return }
        // The first workers' sockets joined the fanout group before the others: the frames that
        // came meanwhile sit in their rings whatever their flow's hash. Processed there, a
        // connection restored at a restart (docs/restart.md) would be adopted by a worker its
        // later frames never reach. Dropped instead (TCP sends them again).
        if workers.count > 1 { for worker in workers { _ = worker.discardReceived() } }
        for (i, worker) in workers.enumerated() {
            let (tid, rc) = spawnThread { worker.run() }
            guard let tid else {
                stop()
                throw DataPlaneError.system(call: "pthread_create", errno: rc, context: "data-plane worker \(i)")
            }
            threads.append(tid)
        }
    }

    /// Stops all workers and waits for their threads (returns within about one tick interval).
    public func stop() {
        for worker in workers { worker.requestStop() }
        for tid in threads { pthread_join(tid, nil) }
        threads = []
    }

    /// Counters per interface index, summed over workers.
    public func counters() -> [Int32: InterfaceCounters] {
        var total: [Int32: InterfaceCounters] = [:]
        for worker in workers {
            for (index, c) in worker.counters() { total[index, default: InterfaceCounters()] += c }
        }
        return total
    }

    deinit { stop() }
}

/// Starts a thread running `body`; the thread, or nil and pthread_create's error.
func spawnThread(_ body: @escaping () -> Void) -> (thread: pthread_t?, error: Int32) {
    let start = Unmanaged.passRetained(ThreadStart(body)).toOpaque()
    var tid = pthread_t()
    let rc = pthread_create(&tid, nil, { arg in
        let box = Unmanaged<ThreadStart>.fromOpaque(arg!).takeRetainedValue()
        box.body()
        return nil
    }, start)
    if rc != 0 {
        Unmanaged<ThreadStart>.fromOpaque(start).release()
        return (nil, rc)
    }
    return (tid, 0)
}

final class ThreadStart {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}
