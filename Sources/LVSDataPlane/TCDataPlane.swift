import Glibc
import CLVSXDP
import LVSCore
import LVSModel

/// The tc backend (`lvsd --dataplane tc`): lvsd's tc program (`lvs_tc_prog` in bpf/lvs_xdp.c) on
/// every interface's clsact ingress forwards the connections lvsd put in the connection map (NAT
/// connections in both directions: their replies through `nat_replies`), on the skb the kernel already built (no copy, no XDP conversion on veth); everything else reaches
/// AF_PACKET workers whose sockets are bound to IPv4, IPv6 and ARP, so they are served after tc
/// ingress and never see what the program forwarded (an ETH_P_ALL tap would, at a cost per frame).
/// Frames lvsd must handle are marked PACKET_OTHERHOST by the program, so the director's kernel
/// drops them instead of answering (it replaces the afpacket backend's nftables guard).
///
/// `init` loads the programs and opens the sockets in the caller's network namespace; `start()`
/// attaches the programs and starts the workers; `stop()` detaches the programs and joins them.
public final class TCDataPlane<P: FrameProcessor> {
    public let packets: DataPlane<P>
    public let programs: [XDPProgram]
    public let vipMap: XDPVIPMap
    /// The fwmark rules the programs hand to lvsd (shared by every interface's program).
    public let markMap: XDPMarkMap
    /// The connection map the tc programs forward from (shared by every interface's program).
    public let connMap: XDPConnMap
    public private(set) var isAttached = false
    /// What a previous lvsd left attached (`--restart-guard`), taken over by this one.
    public let adoption: BPFAdoption
    /// `--restart-guard`: `stop()` leaves the programs attached for the next lvsd.
    public var keepAttachedAtStop = false

    /// EtherTypes of the workers' sockets: IPv4, IPv6, ARP.
    public static var receiveProtocols: [UInt16] { [0x0800, 0x86DD, 0x0806] }

    /// With `noARP` (lvsd --no-arp) the programs leave ARP requests and neighbour solicitations for
    /// VIPs untouched, so the kernel answers for the VIPs it owns.
    public init(configuration: DataPlaneConfiguration, object: BPFObject = .builtIn, noARP: Bool = false,
                makeProcessor: (_ worker: Int) throws -> P) throws {
        guard !configuration.interfaces.isEmpty else { throw DataPlaneError.invalidConfiguration("no interfaces") }
        let infos = try configuration.interfaces.map { try InterfaceInfo.lookup($0) }
        let adoption = BPFAdoption.find(interfaces: infos, object: object, kind: .tc)
        var programs: [XDPProgram] = [try adoption.loadFirst(object: object, kind: .tc)]
        for _ in infos.dropFirst() {
            programs.append(try XDPProgram(object: object, kind: .tc, sharingVIPsOf: programs.first))
        }
        self.adoption = adoption
        try programs[0].setNoARP(noARP)
        var config = configuration
        config.receiveProtocols = Self.receiveProtocols
        packets = try DataPlane(configuration: config, makeProcessor: makeProcessor)
        self.programs = programs
        vipMap = XDPVIPMap(program: programs[0])
        markMap = XDPMarkMap(program: programs[0])
        connMap = XDPConnMap(program: programs[0], nat: true)
        // Adopted NAT replies (a restart): the program looks them up at once.
        if adoption.natRepliesFD >= 0 { connMap.announceNATReplies() }
    }

    public var interfaces: [InterfaceInfo] { packets.interfaces }
    public var workers: [DataPlaneWorker<P>] { packets.workers }
    public var isRunning: Bool { packets.isRunning }

    /// Sets which frames the programs hand to lvsd (the map is shared; no reload).
    public func updateVIPs(_ vips: [VIPMatch]) throws { try vipMap.update(vips: vips) }

    /// Sets the fwmark rules (those whose mark has a service) the programs hand to lvsd.
    public func updateMarkRules(_ rules: [MarkRule]) throws { try markMap.update(rules: rules) }

    /// VIP ownership: the programs answer no ARP/ND for `addresses` and forward none of their
    /// connections (see `XDPVIPMap.setNotOwned`).
    public func setNotOwned(_ addresses: Set<IPAddress>) throws { try vipMap.setNotOwned(addresses) }

    /// Attaches the programs (on failure none stays attached), then starts the workers.
    public func start() throws {
        guard !packets.isRunning else { return }
        if !isAttached {
            do {
                // BPF_TC_F_REPLACE: a previous lvsd's filter (same handle) is replaced atomically.
                for (program, info) in zip(programs, packets.interfaces) { try program.attachTC(to: info) }
                // A previous lvsd's XDP program (another plane): this one's tc program guards now.
                for (i, info) in packets.interfaces.enumerated() where i < adoption.leftovers.count && adoption.leftovers[i].xdp_id != 0 {
                    _ = clvs_xdp_detach_stale(info.index)
                }
            } catch {
                detach()
                throw error
            }
            isAttached = true
        }
        do { try packets.start() } catch {
            detach()
            throw error
        }
    }

    /// Detaches the programs (traffic goes back to the kernel), then stops the workers; with
    /// `keepAttachedAtStop` the programs stay attached for the next lvsd (`BPFAdoption`).
    public func stop() {
        if keepAttachedAtStop { for p in programs { p.leaveAttached() } }
        detach()
        packets.stop()
    }

    public func detach() {
        for p in programs { p.detachTC() }
        isAttached = false
    }

    /// One line for logs and `lvsadm daemon status`.
    public var summary: String {
        packets.interfaces.map { "\($0.name): tc ingress \(isAttached ? "attached" : "detached")" }.joined(separator: "; ")
    }

    public func counters() -> [Int32: InterfaceCounters] { packets.counters() }

    deinit { stop() }
}
