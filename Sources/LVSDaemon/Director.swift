import CLVSShim
import CLVSXDP
import Dispatch
import Foundation
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
/// `dataPlane` is set by a start-up step too (before VRRP runs); `setManagedAddresses` and
/// `setOwned` hold `ownershipLock` while they update the engine and the data plane.
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
    /// The VRRP status lines (set when keepalived.conf has VRRP instances).
    var vrrpStatus: (@Sendable () -> [String])?
    /// The announcement's status lines (`--announce-table`).
    var announcementStatus: (@Sendable () -> [String])?
    /// The fast path's connection map and per-destination counters (`--dataplane xdp`, `tc`),
    /// shared by the workers' `FastPathBook`s; nil without a fast path.
    private(set) var fastPath: FastPathCounters<XDPConnMap>?

    /// Turns the fast path on: every worker writes its established connections into `map`.
    func enableFastPath(_ map: XDPConnMap, kind: String) {
        let logger = self.logger
        let stale = StaleFastPathEntries { r in
            logger.notice("restart: stale fast-path entries of the previous lvsd removed", metadata: [
                "expired": "\(r.expired)", "replaced": "\(r.replaced)", "remaining": "\(r.remaining)"])
        }
        let counters = FastPathCounters(map: map, stale: stale)
        fastPath = counters
        fastPathKind = kind
        for w in workers {
            w.fastPath = FastPathBook(shard: w.shard, counters: counters, readsFastPathCounters: w.sendsNeighbourFrames)
        }
    }
    /// The data plane (lvsd owns it): its programs follow VIP ownership (`setOwned`).
    weak var dataPlane: (any DataPlaneBackend)?
    /// Makes the engine's and the data plane's VIP ownership change together.
    private let ownershipLock = Mutex(())

    // MARK: VIP ownership (VRRP)

    /// Puts `vips` under VRRP control (engine and data plane): a newly managed address is not
    /// owned (not answered for, announced or forwarded) until `setOwned`; see
    /// `Engine.setManagedAddresses`.
    func setManagedAddresses(_ vips: Set<IPAddress>) throws {
        try ownershipLock.withLock { _ throws in
            engine.setManagedAddresses(vips)
            try dataPlane?.setNotOwned(engine.notOwnedVIPs)
        }
    }

    /// `setManagedAddresses` for VRRP's callers, which go on when the data plane refuses: the
    /// engine has the set; the failure is logged, `context` first.
    func manageAddresses(_ vips: Set<IPAddress>, context: String) {
        do { try setManagedAddresses(vips) } catch {
            logger.error("\(context): cannot set the managed addresses in the data plane: \(error)")
        }
    }

    /// Takes (`owned`, VRRP MASTER) or gives up (BACKUP, FAULT) the managed addresses among
    /// `vips`, in the engine and in the data plane's programs (their fast path stops forwarding
    /// the connections of an address given up, and starts again when it is taken). Announcing a
    /// taken address is `announce`'s.
    func setOwned(_ vips: [IPAddress], _ owned: Bool) throws {
        try ownershipLock.withLock { _ throws in
            engine.setOwned(vips, owned)
            try dataPlane?.setNotOwned(engine.notOwnedVIPs)
        }
    }

    /// Sends the gratuitous ARPs / unsolicited NAs for `vips` (those owned) on every interface or
    /// on `interface`; the number of frames sent. As keepalived does, an NA has the router flag on
    /// an interface whose `net.ipv6.conf.IF.forwarding` is set (read at each announcement).
    @discardableResult
    func announce(_ vips: [IPAddress], interface: Int32? = nil) -> Int {
        var routers: Set<String> = []
        if vips.contains(where: { !$0.isIPv4 }) {
            for ifc in engine.interfaces where Self.forwardsIPv6(ifc.name) { routers.insert(ifc.name) }
        }
        return send(engine.announcementFrames(vips, interface: interface, routerInterfaces: routers))
    }

    /// `net.ipv6.conf.NAME.forwarding` is set (false when it cannot be read).
    static func forwardsIPv6(_ name: String, procRoot: String = "/proc/sys/net/ipv6/conf") -> Bool {
        guard !name.contains("/"), let text = try? String(contentsOfFile: "\(procRoot)/\(name)/forwarding", encoding: .utf8) else {
            return false
        }
        return (Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) != 0
    }

    /// Sends frames the engine built on their interfaces (any thread); the number sent.
    @discardableResult
    func send(_ frames: [OutgoingFrame]) -> Int {
        var count = 0
        for frame in frames {
            let sent = frame.bytes.withUnsafeBytes { clvs_packet_sendto(sender, frame.interface, $0.baseAddress, $0.count) }
            if sent < 0 {
                logger.warning("cannot send neighbour frame", metadata: ["interface": "\(frame.interface)", "errno": "\(errno)"])
            } else {
                count += 1
            }
        }
        return count
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
            streamConnections { batch in
                all += batch
                return true
            }
            return .connections(all)
        }
        switch request {
        case let .startDaemon(config): return sync.start(config)
        case let .stopDaemon(role): return sync.stop(role)
        default: break
        }
        if let refused = methodRefusal(request) { return refused }
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
            if let vrrpStatus { extra += vrrpStatus().map { $0 + "\n" }.joined() }
            if let announcementStatus { extra += announcementStatus().map { $0 + "\n" }.joined() }
            if let fastPath {
                let (packets, bytes) = fastPath.totals()
                extra += "\(fastPathKind) fast path: \(fastPath.map.count()) connection(s), \(packets) packet(s), \(bytes) byte(s) forwarded in \(fastPathKind == "tc" ? "tc" : "XDP")\n"
                extra += fastPath.stale.statusLine.map { "\(fastPathKind) fast path: \($0)\n" } ?? ""
            }
            return .text(lines.joined(separator: "\n") + extra)
        }
        return response
    }

    /// The connection table in listing order (each worker's shard, then the synced connections),
    /// given to `body` in batches of at most `ShardWorker.handOverEntries` entries as the workers
    /// walk their tables (from a control thread): no list of the whole table is ever made. When
    /// `body` returns false (the client went away) the walk stops at once; returns false then.
    @discardableResult
    func streamConnections(_ body: ([ConnectionSnapshot]) -> Bool) -> Bool {
        for w in workers {
            guard w.streamConnections(body) else { return false }
        }
        let shared = engine.sharedConnections(now: monotonicNanoseconds())
        var start = 0
        while start < shared.count {
            let end = min(start + ShardWorker.handOverEntries, shared.count)
            guard body(Array(shared[start..<end])) else { return false }
            start = end
        }
        return true
    }

    /// Gratuitous ARP / NA and neighbour requests (worker 0's tick).
    func sendPendingFrames(now: UInt64) {
        send(engine.pendingFrames(now: now))
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
/// `@unchecked Sendable` (mutable fields): `listing`, `handOver` and the pace's fields belong to
/// the worker's thread; `requests` is a Mutex (a `ListingHandOver` carries its own lock);
/// `fastPath` is set by
/// lvsd's start-up before the worker's thread starts (`Director.enableFastPath`), then used on
/// that thread only; `listingRequested` is atomic.
final class ShardWorker: FrameProcessor, @unchecked Sendable {
    let shard: EngineShard
    unowned let director: Director
    let sendsNeighbourFrames: Bool
    /// Listings asked for and not started yet (one runs at a time).
    private let requests = Mutex<[ListingHandOver]>([])
    /// True while a listing is requested: one relaxed load per tick.
    private let listingRequested = Atomic<Bool>(false)
    /// This worker's part of a restart-state checkpoint (--checkpoint-interval, StateCheckpoint.swift).
    let checkpoint = CheckpointSlot()
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
        // Tunnelled frames leave through the outbox: after each batch, not only at the tick.
        if shard.outbox.count > 0 { drainOutbox() }
    }

    func setReceiveOffloads(checksumStart: Int, checksumOffset: Int, gsoSize: Int) {
        shard.receiveChecksumStart = checksumStart
        shard.receiveChecksumOffset = checksumOffset
        shard.receiveGSOSize = gsoSize
    }

    func drainOutbox() {
        let fd = director.sender
        shard.outbox.drain { bytes, ifindex in _ = clvs_packet_sendto(fd, ifindex, bytes.baseAddress, bytes.count) }
    }

    func tick(now: UInt64) {
        shard.tick(now: now)
        fastPath?.tick(now: now)
        // Frames that waited for a real server's MAC, and ICMP errors to clients.
        if shard.outbox.count > 0 { drainOutbox() }
        if listing != nil || listingRequested.load(ordering: .relaxed) { continueListing(now: now) }
        checkpoint.tick(shard, now: now)
        if sendsNeighbourFrames { director.sendPendingFrames(now: now) }
    }

    /// A listing of the shard, in slices over ticks (worker thread only), and where its entries go.
    private var listing: ConnectionListing?
    private var handOver: ListingHandOver?
    /// Worker time per tick spent on a listing (ticks are 10 ms apart: about 5 % of the worker
    /// while a listing runs). Each slice holds the engine lock for one `ConnectionListing` slice.
    static let listingBudgetPerTick: UInt64 = 500_000
    /// How long a control thread waits for a worker's next batch of a listing.
    static let listingWait: DispatchTimeInterval = .seconds(30)
    /// Entries per batch handed to the control thread. The worker walks on only while its batch
    /// is not full, and hands a batch over only once the previous one was taken: at most three
    /// batches of a listing exist at a time (the worker's, the one handed over, the one encoded).
    static let handOverEntries = 8192
    /// The pace of a listing while the director is busy: at most one entry per this many
    /// nanoseconds (after a first batch). What a listing costs downstream (lvsd's encoding,
    /// lvsadm's reading and printing: about 1.7 µs of CPU per entry together) then takes at most
    /// about a tenth of a CPU, so that `lvsadm -Lnc` run in a loop by an operator leaves a load on
    /// the director at least 90 % of its rate (bench/listing.sh); a million connections then take
    /// about 16 s per worker. An idle director lists at full speed (about 2.5 s for a million).
    static let nanosecondsPerListedEntry: UInt64 = 16_000
    /// Frames per second this shard forwards from which a listing is paced.
    static let busyFramesPerSecond: UInt64 = 10_000
    /// Entries the pace still allows the listing served, and when and at what forwarded-frame
    /// count the pace was last looked at (worker thread only).
    private var paceCredit = 0
    private var paceTime: UInt64 = 0
    private var paceForwarded: UInt64 = 0

    /// Adds what the time since the last look allows while the shard is busy; lifts the pace
    /// while it is idle (a burst when it turns busy again is at most one batch).
    private func refillPace(at t: UInt64) {
        let forwarded = shard.forwardedFrames
        let elapsed = max(t &- paceTime, 1)
        let busy = (forwarded &- paceForwarded) &* 1_000_000_000 / elapsed >= Self.busyFramesPerSecond
        if busy {
            paceCredit = min(paceCredit, Self.handOverEntries) + Int(elapsed / Self.nanosecondsPerListedEntry)
        } else {
            paceCredit = Int.max / 2
        }
        paceTime = t
        paceForwarded = forwarded
    }

    /// Walks the shard's table for the listing being served, within the tick's budget, and hands
    /// what it found over.
    private func continueListing(now: UInt64) {
        if listing == nil {
            listingRequested.store(false, ordering: .relaxed)
            guard startNextListing() else { return }
        }
        guard let out = handOver else { return }
        if out.isCancelled {
            finishListing()
            return
        }
        let started = monotonicNanoseconds()
        refillPace(at: started)
        while true {
            var complete = listing!.isComplete
            while !complete && listing!.entries.count < Self.handOverEntries && paceCredit > 0
                && monotonicNanoseconds() &- started < Self.listingBudgetPerTick {
                let before = listing!.entries.count
                complete = shard.listConnections(&listing!, now: now)
                paceCredit -= listing!.entries.count - before
            }
            // The previous batch not taken yet: this one waits (and the walk with it).
            guard out.offer(&listing!.entries, last: complete) else { return }
            if complete {
                finishListing()
                return
            }
            if paceCredit <= 0 || monotonicNanoseconds() &- started >= Self.listingBudgetPerTick { return }
        }
    }

    /// Starts the oldest listing asked for; false when none waits.
    private func startNextListing() -> Bool {
        guard let next = requests.withLock({ q in q.isEmpty ? nil : q.removeFirst() }) else { return false }
        handOver = next
        listing = ConnectionListing()
        // The first batch goes at once; the pace starts from here.
        paceTime = monotonicNanoseconds()
        paceForwarded = shard.forwardedFrames
        paceCredit = Self.handOverEntries
        return true
    }

    /// Ends the listing served, and starts the next one if one was asked for meanwhile.
    private func finishListing() {
        listing = nil
        handOver = nil
        _ = startNextListing()
    }

    /// From a control thread: this shard's connections, walked on the worker's own thread in
    /// slices over several ticks, given to `body` in batches as they are found. Returns false when
    /// `body` did (the walk is then abandoned); a worker that does not answer within
    /// `listingWait` is skipped.
    func streamConnections(_ body: ([ConnectionSnapshot]) -> Bool) -> Bool {
        let out = ListingHandOver()
        requests.withLock { $0.append(out) }
        listingRequested.store(true, ordering: .relaxed)
        var batch: [ConnectionSnapshot] = []
        while true {
            guard out.ready.wait(timeout: .now() + Self.listingWait) == .success else {
                out.cancel()
                return true
            }
            let last = out.take(&batch)
            if !batch.isEmpty && !body(batch) {
                out.cancel()
                return false
            }
            batch.removeAll(keepingCapacity: true)
            if last { return true }
        }
    }
}

/// One listing's hand-over from a worker to the control thread: one batch at a time.
final class ListingHandOver: @unchecked Sendable { // its state is behind `state`'s Mutex
    private struct State {
        var batch: [ConnectionSnapshot] = []
        var full = false
        var last = false
        var cancelled = false
    }
    private let state = Mutex(State())
    /// Signalled once per batch handed over.
    let ready = DispatchSemaphore(value: 0)

    /// From the worker: hands `entries` over (swapped with an empty array) unless the previous
    /// batch has not been taken yet; `last` marks the listing's end. False when it waits.
    func offer(_ entries: inout [ConnectionSnapshot], last: Bool) -> Bool {
        if entries.isEmpty && !last { return true }
        let handed = state.withLock { s -> Bool in
            guard !s.full else { return false }
            swap(&s.batch, &entries)
            s.full = true
            s.last = last
            return true
        }
        if handed { ready.signal() }
        return handed
    }

    /// From the control thread, after `ready`: the batch (swapped into `batch`, which must be
    /// empty), and whether it is the last.
    func take(_ batch: inout [ConnectionSnapshot]) -> Bool {
        state.withLock { s in
            swap(&s.batch, &batch)
            s.full = false
            return s.last
        }
    }

    /// From the control thread: the worker stops this listing at its next tick.
    func cancel() { state.withLock { $0.cancelled = true } }

    var isCancelled: Bool { state.withLock { $0.cancelled } }
}
