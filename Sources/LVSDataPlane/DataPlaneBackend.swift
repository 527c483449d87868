import LVSCore
import LVSModel

/// What lvsd's control code needs of a packet I/O backend, whichever it is: afpacket
/// (`DataPlane`), afxdp and xdp (`AFXDPDataPlane`), tc (`TCDataPlane`), in-memory
/// (`InMemoryDataPlane`, for tests).
///
/// Held as one value at setup and in the control paths only: every backend's worker loops stay
/// specialised for their concrete `FrameProcessor`, so the packet path never goes through it.
public protocol DataPlaneBackend: AnyObject {
    /// The backend's name as `--dataplane` spells it.
    var kindName: String { get }
    var workerCount: Int { get }
    /// Starts the workers (attaching BPF programs first where the backend has them).
    func start() throws
    /// Detaches BPF programs first (traffic goes back to the kernel), then stops the workers.
    func stop()
    /// True when the backend's own program keeps the director's kernel off VIP traffic (XDP
    /// redirect, tc PACKET_OTHERHOST); false when lvsd needs the nftables guard.
    var filtersVIPTraffic: Bool { get }
    /// What the backend's programs hand to lvsd (no-op without programs).
    func updateVIPs(_ vips: [VIPMatch]) throws
    /// The fwmark rules (those whose mark has a service) the programs hand to lvsd.
    func updateMarkRules(_ rules: [MarkRule]) throws
    /// VIP ownership (VRRP): the VIP addresses the backend's programs must neither answer ARP/ND
    /// for nor forward connections of in their fast path (no-op without programs: the engine
    /// decides alone, `Engine.setOwned`).
    func setNotOwned(_ addresses: Set<IPAddress>) throws
    /// The connection map a BPF program forwards established connections from, where it has one.
    var connectionMap: XDPConnMap? { get }
    /// The BPF programs' heartbeat map (lvsd --orphan-timeout), where the backend has programs.
    var heartbeat: BPFHeartbeat? { get }
    /// Lines for `lvsadm daemon status` (the first one names the backend).
    var statusLines: [String] { get }
}

extension DataPlaneBackend {
    public var filtersVIPTraffic: Bool { false }
    public func updateVIPs(_ vips: [VIPMatch]) throws {}
    public func updateMarkRules(_ rules: [MarkRule]) throws {}
    public func setNotOwned(_ addresses: Set<IPAddress>) throws {}
    public var connectionMap: XDPConnMap? { nil }
}

extension DataPlane: DataPlaneBackend {
    public var kindName: String { "afpacket" }
    public var workerCount: Int { workers.count }
    public var statusLines: [String] {
        ["data plane: afpacket (TPACKET_V2 ring, sendmmsg, PACKET_VNET_HDR)",
         "workers: \(workers.count) (one connection-table shard each, PACKET_FANOUT \(fanoutMode))"]
    }
}

extension AFXDPDataPlane: DataPlaneBackend {
    public var kindName: String { "afxdp" }
    public var workerCount: Int { workers.count }
    public var filtersVIPTraffic: Bool { true }
    public var connectionMap: XDPConnMap? { connMap }
    public var statusLines: [String] {
        ["data plane: afxdp (XDP redirect to AF_XDP sockets; \(summary))",
         "workers: \(workers.count) (one connection-table shard each, one AF_XDP socket per receive queue)",
         "BPF object: \(programs.first?.objectName ?? "none")"]
    }
}

extension TCDataPlane: DataPlaneBackend {
    public var kindName: String { "tc" }
    public var workerCount: Int { workers.count }
    public var filtersVIPTraffic: Bool { true }
    public var connectionMap: XDPConnMap? { connMap }
    public var statusLines: [String] {
        ["data plane: tc (established connections forwarded by a tc ingress program; the rest via packet sockets bound to IPv4, IPv6 and ARP; \(summary))",
         "workers: \(workers.count) (one connection-table shard each, PACKET_FANOUT \(packets.fanoutMode))",
         "BPF object: \(programs.first?.objectName ?? "none")"]
    }
}

extension InMemoryDataPlane: DataPlaneBackend {
    public var kindName: String { "in-memory" }
    public var workerCount: Int { 1 }
    /// Nothing reaches a kernel: lvsd installs no nftables guard for it.
    public var filtersVIPTraffic: Bool { true }
    /// Frames are fed by the caller (`feed`): there is nothing to start or stop.
    public func start() throws {}
    public func stop() {}
    public var statusLines: [String] {
        ["data plane: in-memory (frames fed by the caller; nothing on the wire)", "workers: 1"]
    }
}
