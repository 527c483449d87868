import CLVSShim
import CLVSXDP
import Dispatch
import Glibc
import LVSControl
import LVSCore
import LVSDataPlane
import Logging
import Synchronization
import LVSModel
import LVSSystem

/// The director: one shared `Engine`, one `ShardWorker` per data-plane worker.
///
/// Configuration requests are applied directly to the engine (it takes its lock; the next packet
/// sees them). Listing the connection table asks each worker for its shard, on its own thread.
///
/// `@unchecked Sendable` (mutable fields): `workers`, `fastPath`, `fastPathKind`,
/// `dataplaneStatus`, `serverCounters`, `interfaceNames`, `requestedWorkers` and
/// `prebuiltPlane` are written only by lvsd's start-up steps, which run one after the other on
/// the starting task and finish each before the workers (`workers`, `fastPath`) or the control
/// socket (the others) start to read them; after start-up they are only read.
/// `lastNeighbourCheck`, `reportedUnreachable` and `unresolvedSince` belong to worker 0's thread
/// (`sendPendingFrames`, from its tick). `engine`, `sender` and `sync` are constants.
final class Director: @unchecked Sendable {
    let engine: Engine
    let logger: Logger
    let sender: Int32
    private(set) var workers: [ShardWorker] = []
    /// The connection sync daemons (master and backup threads).
    let sync: SyncDaemons
    /// `lvsadm daemon status` lines about the data plane: the first replaces EngineControl's
    /// "data plane:" line, the others are appended (set once the data plane exists).
    var dataplaneStatus: [String] = []
    /// The fast path's connection map and per-destination counters (`--dataplane xdp`, `tc`),
    /// shared by the workers' `FastPathBook`s; nil without a fast path.
    private(set) var fastPath: FastPathCounters<XDPConnMap>?

    /// Turns the fast path on: every worker writes its established connections into `map`.
    func enableFastPath(_ map: XDPConnMap, kind: String) {
        let counters = FastPathCounters(map: map)
        fastPath = counters
        fastPathKind = kind
        for w in workers {
            w.fastPath = FastPathBook(shard: w.shard, counters: counters, readsFastPathCounters: w.sendsNeighbourFrames)
        }
    }
    /// The control and metrics servers' counters, one status line each.
    var serverCounters: [ServerCounters] = []
    /// Which program forwards from `fastPathMap`: "xdp" or "tc" (names the status line).
    var fastPathKind = "xdp"
    private var lastNeighbourCheck: UInt64 = 0
    private var reportedUnreachable: Set<String> = []
    /// When each real server was first seen unresolved (a warning needs 3 s without an answer).
    private var unresolvedSince: [String: UInt64] = [:]

    init(engine: Engine, logger: Logger) throws {
        self.engine = engine
        self.logger = logger
        sync = SyncDaemons(engine: engine, logger: logger)
        do {
            sender = try syscall("socket(AF_PACKET)") { clvs_packet_open_sender() }
        } catch let error as SystemError {
            throw DataPlaneError(error, context: "neighbour sender")
        }
    }

    deinit { close(sender) }

    /// The interfaces and worker count lvsd was started with.
    var interfaceNames: [String] = []
    var requestedWorkers: Int?
    /// An AF_XDP data plane built (and attached) while probing, handed over once.
    var prebuiltPlane: AFXDPDataPlane<ShardWorker>?

    /// Forgets the workers of a data plane that was built and discarded before it ran.
    func resetWorkers() {
        workers.removeAll()
        engine.discardExtraShards()
    }

    /// The processor for data-plane worker `index` (worker 0 uses the engine's built-in shard).
    func makeWorker(_ index: Int) -> ShardWorker {
        let shard = index == 0 ? engine.primary! : engine.makeShard()
        let w = ShardWorker(shard: shard, director: self, sendsNeighbourFrames: index == 0)
        workers.append(w)
        return w
    }

    /// Executes one control request (from the control socket thread).
    func execute(_ request: ControlRequest) -> ControlResponse {
        let now = monotonicNanoseconds()
        if case .connections = request {
            var all: [ConnectionSnapshot] = []
            for w in workers { all += w.collectConnections() }
            return .connections(all + engine.sharedConnections(now: now))
        }
        switch request {
        case let .startDaemon(config): return sync.start(config)
        case let .stopDaemon(role): return sync.stop(role)
        default: break
        }
        let response = EngineControl.execute(request, on: engine, now: now)
        if case let .failed(e) = response {
            logger.debug("control request refused", metadata: ["request": "\(request)", "error": "\(e.errnoName)"])
        }
        if case .text(let t) = response, case .status = request {
            // EngineControl describes the afpacket backend on its first line: say what really runs.
            var lines = t.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if let first = lines.first, first.hasPrefix("data plane:"), let mine = dataplaneStatus.first { lines[0] = mine }
            var extra = dataplaneStatus.dropFirst().map { $0 + "\n" }.joined()
            extra += serverCounters.map(\.statusLine).joined()
            if let fastPath {
                let (packets, bytes) = fastPath.totals()
                extra += "\(fastPathKind) fast path: \(fastPath.map.count()) connection(s), \(packets) packet(s), \(bytes) byte(s) forwarded in \(fastPathKind == "tc" ? "tc" : "XDP")\n"
            }
            return .text(lines.joined(separator: "\n") + extra)
        }
        return response
    }

    /// Gratuitous ARP / NA and neighbour requests (worker 0's tick).
    func sendPendingFrames(now: UInt64) {
        for frame in engine.pendingFrames(now: now) {
            let sent = frame.bytes.withUnsafeBytes { clvs_packet_sendto(sender, frame.interface, $0.baseAddress, $0.count) }
            if sent < 0 {
                logger.warning("cannot send neighbour frame", metadata: ["interface": "\(frame.interface)", "errno": "\(errno)"])
            }
        }
        // Once per destination: say so when a real server does not answer ARP/ND.
        if now &- lastNeighbourCheck >= 1_000_000_000 {
            lastNeighbourCheck = now
            var still: [String: UInt64] = [:]
            for d in engine.unresolvedDestinations() {
                let name = "\(d.address.bracketed):\(d.port)"
                let since = unresolvedSince[name] ?? now
                still[name] = since
                if now &- since >= 3_000_000_000 && reportedUnreachable.insert(name).inserted {
                    logger.warning("real server does not answer ARP/ND; DR needs it on a directly connected network; its packets are dropped (neighbour-unresolved)",
                                   metadata: ["real_server": "\(name)"])
                }
            }
            unresolvedSince = still
        }
    }
}

/// One data-plane worker's processor: frames go straight to its engine shard.
///
/// `@unchecked Sendable` (mutable fields): `listing` and `listingWaiters` belong to the worker's
/// thread; `collected` is read and written only under `requests`' lock; `fastPath` is set by
/// lvsd's start-up before the worker's thread starts (`Director.enableFastPath`), then used on
/// that thread only; `listingRequested` is atomic.
final class ShardWorker: FrameProcessor, @unchecked Sendable {
    let shard: EngineShard
    unowned let director: Director
    let sendsNeighbourFrames: Bool
    private let requests = Mutex<[DispatchSemaphore]>([])
    private var collected: [ConnectionSnapshot] = []
    /// True while a listing is requested: one relaxed load per tick.
    private let listingRequested = Atomic<Bool>(false)
    /// `--dataplane xdp`, `tc`: the fast-path bookkeeping (map writes, counters, the read-back
    /// pass), on this worker's thread; nil without a fast path.
    var fastPath: FastPathBook<XDPConnMap>? {
        didSet { if fastPath == nil { oldValue?.detach() } }
    }

    init(shard: EngineShard, director: Director, sendsNeighbourFrames: Bool) {
        self.shard = shard
        self.director = director
        self.sendsNeighbourFrames = sendsNeighbourFrames
    }

    @inline(__always)
    func process(_ frame: UnsafeMutableRawBufferPointer, interface: Int32, now: UInt64) -> Verdict {
        shard.process(frame, interface: interface, now: now)
    }

    @inline(__always)
    func prefetch(_ frame: UnsafeRawBufferPointer) { shard.prefetch(frame) }

    @inline(__always)
    func prefetchDone() { shard.prefetchEntries() }

    func afterBatch(now: UInt64) {
        fastPath?.afterBatch()
    }

    func tick(now: UInt64) {
        shard.tick(now: now)
        fastPath?.tick(now: now)
        // Frames that waited for a real server's MAC, and ICMP errors to clients.
        if shard.outbox.count > 0 {
            let fd = director.sender
            shard.outbox.drain { bytes, ifindex in _ = clvs_packet_sendto(fd, ifindex, bytes.baseAddress, bytes.count) }
        }
        if listing != nil || listingRequested.load(ordering: .relaxed) { continueListing(now: now) }
        if sendsNeighbourFrames { director.sendPendingFrames(now: now) }
    }

    /// A listing of the shard, in slices over ticks (worker thread only), and who waits for it.
    private var listing: ConnectionListing?
    private var listingWaiters: [DispatchSemaphore] = []
    /// Worker time per tick spent on a listing (ticks are 10 ms apart: about 5 % of the worker
    /// while a listing runs). Each slice holds the engine lock for one `ConnectionListing` slice.
    static let listingBudgetPerTick: UInt64 = 500_000
    /// How long a control request waits for a worker's listing (1 M entries take a few seconds).
    static let listingWait: DispatchTimeInterval = .seconds(30)

    /// Walks the shard's table for the waiting listing requests, within the tick's budget.
    private func continueListing(now: UInt64) {
        if listing == nil {
            listingRequested.store(false, ordering: .relaxed)
            listingWaiters = requests.withLock { q -> [DispatchSemaphore] in
                let taken = q
                q.removeAll()
                return taken
            }
            guard !listingWaiters.isEmpty else { return }
            listing = ConnectionListing()
        }
        let started = monotonicNanoseconds()
        var complete = false
        repeat {
            complete = shard.listConnections(&listing!, now: now)
        } while !complete && monotonicNanoseconds() &- started < Self.listingBudgetPerTick
        guard complete else { return }
        let entries = listing!.entries
        listing = nil
        requests.withLock { _ in collected = entries }
        for s in listingWaiters { s.signal() }
        listingWaiters = []
    }

    /// From the control thread: this shard's connections, read on the worker's own thread (in
    /// slices over several ticks for a big table).
    func collectConnections() -> [ConnectionSnapshot] {
        let done = DispatchSemaphore(value: 0)
        requests.withLock { $0.append(done) }
        listingRequested.store(true, ordering: .relaxed)
        guard done.wait(timeout: .now() + Self.listingWait) == .success else { return [] }
        return requests.withLock { _ in collected }
    }
}
