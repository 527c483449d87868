import Glibc
import CLVSXDP
import LVSCore
import LVSModel
import LVSSystem

/// Settings of an `AFXDPDataPlane`.
public struct AFXDPConfiguration: Sendable {
    public var interfaces: [String]
    /// nil = CPUs in the process affinity mask; never more than the smallest receive-queue count
    /// of the interfaces (each worker owns whole queues on every interface).
    public var workerCount: Int?
    /// lvsd's BPF object (built in, or --xdp-object).
    public var object: BPFObject
    /// Fall back to generic (skb) XDP when native attach fails.
    public var allowGenericMode: Bool = true
    public var batchSize: Int = 64
    public var tickInterval: UInt64 = 100_000_000
    public var socket = AFXDPSocketOptions()
    /// After a batch, how long (ns) a worker keeps checking its rings, yielding the CPU between
    /// checks, before it sleeps in poll(2): a request/response exchange then skips the wake-up.
    /// 0 = sleep at once.
    public var spinNanoseconds: UInt64 = 0
    /// lvsd --no-arp: the program leaves ARP requests and neighbour solicitations for VIPs to the
    /// kernel (which then answers for the VIPs it owns).
    public var noARP = false

    public init(interfaces: [String], object: BPFObject = .builtIn, workerCount: Int? = nil) {
        self.interfaces = interfaces
        self.object = object
        self.workerCount = workerCount
    }
}

/// The AF_XDP backend: lvsd's XDP program on every interface redirects VIP traffic (and ARP/ND for
/// VIPs) to one AF_XDP socket per receive queue; worker w owns queues q ≡ w (mod workers) of every
/// interface. Other traffic goes to the kernel as usual; ARP/NS/NA frames not redirected are also
/// copied to worker 0 through a packet tap so real-server MACs are learnt.
///
/// `init` loads the program and opens the sockets in the caller's network namespace; `start()`
/// attaches the programs and starts the threads; `stop()` detaches the programs and joins them.
public final class AFXDPDataPlane<P: FrameProcessor> {
    public let configuration: AFXDPConfiguration
    public let interfaces: [InterfaceInfo]
    public let workers: [AFXDPWorker<P>]
    public let programs: [XDPProgram]
    public let vipMap: XDPVIPMap
    /// The fwmark rules the programs send to lvsd (shared by every interface's program).
    public let markMap: XDPMarkMap
    /// The fast path's connection map (shared by every interface's program; empty unless filled).
    public let connMap: XDPConnMap
    public let queueCounts: [Int]
    /// Per interface: every socket on it bound in zero-copy mode.
    public let zeroCopy: [Bool]
    public private(set) var modes: [XDPProgram.Mode] = []
    private var threads: [pthread_t] = []
    /// What a previous lvsd left attached (`--restart-guard`), taken over by this one.
    public let adoption: BPFAdoption
    /// `--restart-guard`: `stop()` leaves the programs attached for the next lvsd.
    public var keepAttachedAtStop = false

    public init(configuration: AFXDPConfiguration, makeProcessor: (_ worker: Int) throws -> P) throws {
        guard !configuration.interfaces.isEmpty else { throw DataPlaneError.invalidConfiguration("no interfaces") }
        let infos = try configuration.interfaces.map { try InterfaceInfo.lookup($0) }
        let adoption = BPFAdoption.find(interfaces: infos, object: configuration.object, kind: .xdp)
        var programs: [XDPProgram] = [try adoption.loadFirst(object: configuration.object, kind: .xdp)]
        for _ in infos.dropFirst() {
            programs.append(try XDPProgram(object: configuration.object, sharingVIPsOf: programs.first))
        }
        try programs[0].setNoARP(configuration.noARP)
        let queues = infos.map { Int(clvs_if_rx_queues($0.name)) }
        let wanted = configuration.workerCount ?? affinityCPUCount()
        guard wanted >= 1 else { throw DataPlaneError.invalidConfiguration("worker count \(wanted)") }
        let n = min(wanted, queues.min()!)
        var workers: [AFXDPWorker<P>] = []
        var zeroCopy = [Bool](repeating: true, count: infos.count)
        for w in 0..<n {
            var sockets: [AFXDPSocket] = []
            for (i, info) in infos.enumerated() {
                for q in stride(from: w, to: queues[i], by: n) {
                    let socket = try AFXDPSocket(interface: info, queue: q, xsksMap: programs[i].xsksMap, options: configuration.socket)
                    if !socket.isZeroCopy { zeroCopy[i] = false }
                    sockets.append(socket)
                }
            }
            var taps: [(fd: Int32, ifindex: Int32)] = []
            if w == 0 {
                for info in infos {
                    let fd: Int32
                    do {
                        fd = try syscallNegatedErrno("socket(AF_PACKET) neighbour tap") { clvs_neighbour_tap_open(info.index) }
                    } catch let error as SystemError {
                        for t in taps { close(t.fd) }
                        throw DataPlaneError(error, context: "interface '\(info.name)'")
                    }
                    taps.append((fd, info.index))
                }
            }
            workers.append(AFXDPWorker(processor: try makeProcessor(w), sockets: sockets, taps: taps,
                                       batchSize: configuration.batchSize, tickInterval: configuration.tickInterval,
                                       spinNanoseconds: configuration.spinNanoseconds))
        }
        self.configuration = configuration
        self.adoption = adoption
        self.interfaces = infos
        self.programs = programs
        self.queueCounts = queues
        self.zeroCopy = zeroCopy
        self.workers = workers
        self.vipMap = XDPVIPMap(program: programs[0])
        self.markMap = XDPMarkMap(program: programs[0])
        self.connMap = XDPConnMap(program: programs[0])
    }

    public var isRunning: Bool { !threads.isEmpty }

    /// Sets what the XDP programs redirect (the map is shared; no reload).
    public func updateVIPs(_ vips: [VIPMatch]) throws { try vipMap.update(vips: vips) }

    /// Sets the fwmark rules (those whose mark has a service) the XDP programs redirect.
    public func updateMarkRules(_ rules: [MarkRule]) throws { try markMap.update(rules: rules) }

    /// VIP ownership: the programs answer no ARP/ND for `addresses` and forward none of their
    /// connections (see `XDPVIPMap.setNotOwned`).
    public func setNotOwned(_ addresses: Set<IPAddress>) throws { try vipMap.setNotOwned(addresses) }

    /// Attaches the programs (native, else generic) and starts one thread per worker.
    public func start() throws {
        guard threads.isEmpty else { return }
        if modes.isEmpty { try attach() }
        for (i, worker) in workers.enumerated() {
            let (tid, rc) = spawnThread { worker.run() }
            guard let tid else {
                stop()
                throw DataPlaneError.system(call: "pthread_create", errno: rc, context: "AF_XDP worker \(i)")
            }
            threads.append(tid)
        }
    }

    /// Detaches the XDP programs (traffic goes back to the kernel), then stops the workers; with
    /// `keepAttachedAtStop` the programs stay attached for the next lvsd (`BPFAdoption`).
    public func stop() {
        if keepAttachedAtStop {
            for p in programs { p.leaveAttached() }
            modes = []
        }
        detach()
        for worker in workers { worker.requestStop() }
        for tid in threads { pthread_join(tid, nil) }
        threads = []
    }

    /// Attaches the programs (native, else generic when allowed) without starting the workers;
    /// on failure nothing stays attached.
    public func attach() throws {
        guard modes.isEmpty else { return }
        do {
            for (i, info) in interfaces.enumerated() {
                let left = i < adoption.leftovers.count ? adoption.leftovers[i] : clvs_attached()
                modes.append(try programs[i].attach(to: info, allowGeneric: configuration.allowGenericMode, replacing: left))
                // A previous lvsd's tc program (another plane): this one's XDP program guards now.
                if left.tc_id != 0 { _ = clvs_tc_detach_stale(info.index) }
            }
        } catch {
            detach()
            throw error
        }
    }

    public func detach() {
        for p in programs { p.detach() }
        modes = []
    }

    /// One line for logs and `lvsadm daemon status`: mode and queues per interface.
    public var summary: String {
        interfaces.enumerated().map { i, info in
            "\(info.name): \(i < modes.count ? modes[i].rawValue : "detached") XDP, \(queueCounts[i]) queue(s), "
                + (zeroCopy[i] ? "zero-copy" : "copy mode")
        }.joined(separator: "; ")
    }

    public func counters() -> [Int32: InterfaceCounters] {
        var total: [Int32: InterfaceCounters] = [:]
        for worker in workers {
            for (index, c) in worker.counters() { total[index, default: InterfaceCounters()] += c }
        }
        return total
    }

    deinit { stop() }
}
