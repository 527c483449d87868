import Glibc
import CLVSXDP
import LVSCore
import LVSModel
import LVSSystem
import Synchronization

/// Geometry of each AF_XDP socket's UMEM and rings.
public struct AFXDPSocketOptions: Sendable {
    /// Slots of each ring (rx, tx, fill, completion); a power of two.
    public var ringSize: Int = 2048
    /// UMEM frames: half may wait in the fill ring, the rest carry transmissions and copies.
    public var frameCount: Int = 4096
    /// Bytes per UMEM frame (one MTU-sized frame with the kernel's 256-byte headroom).
    public var frameSize: Int = 4096
    /// Zero-copy where the driver has it, else copy (`.auto`); or insist on one.
    public var mode: AFXDPSocketMode = .auto

    public init() {}
}

/// How an AF_XDP socket binds: `zeroCopy` needs driver support (not veth), `copy` works everywhere.
public enum AFXDPSocketMode: String, Sendable, CaseIterable {
    case auto
    case copy
    case zeroCopy = "zero-copy"

    var shimValue: Int32 {
        switch self {
        case .auto: Int32(CLVS_XSK_AUTO)
        case .copy: Int32(CLVS_XSK_COPY)
        case .zeroCopy: Int32(CLVS_XSK_ZEROCOPY)
        }
    }
}

/// One AF_XDP socket (zero-copy or copy mode) on one receive queue of one interface, with its own UMEM,
/// registered in the XDP program's `xsks` map at its queue index.
public final class AFXDPSocket {
    public let interface: InterfaceInfo
    public let queue: Int
    public let options: AFXDPSocketOptions
    /// The libxdp state (rings, UMEM); stable address for the worker's raw pointers.
    public let xsk: UnsafeMutablePointer<clvs_xsk>

    public init(interface: InterfaceInfo, queue: Int, xsksMap: Int32, options: AFXDPSocketOptions = AFXDPSocketOptions()) throws {
        guard options.ringSize > 0, options.ringSize & (options.ringSize - 1) == 0,
              options.frameSize >= 2048, options.frameSize & (options.frameSize - 1) == 0,
              options.frameCount >= 2 * options.ringSize else {
            throw DataPlaneError.invalidConfiguration("AF_XDP ring \(options.ringSize), frames \(options.frameCount) x \(options.frameSize)")
        }
        // Open first, store last: a throw after every property is set would run deinit.
        let xsk = UnsafeMutablePointer<clvs_xsk>.allocate(capacity: 1)
        var err = [CChar](repeating: 0, count: 256)
        do {
            // The call that failed is named in `err` ("xsk_socket__create: ...").
            try syscallNegatedErrno(String(cString: err).split(separator: ":").first.map(String.init) ?? "xsk") {
                clvs_xsk_open(xsk, interface.name, UInt32(queue), UInt32(options.frameCount), UInt32(options.frameSize),
                              UInt32(options.ringSize), xsksMap, options.mode.shimValue, &err, err.count)
            }
        } catch let error as SystemError {
            xsk.deallocate()
            let mode = options.mode == .zeroCopy ? " in zero-copy mode" : ""
            throw DataPlaneError(error, context: "AF_XDP socket on '\(interface.name)' queue \(queue)\(mode)")
        }
        self.interface = interface
        self.queue = queue
        self.options = options
        self.xsk = xsk
    }

    public var fd: Int32 { xsk.pointee.fd }
    /// Bound with XDP_ZEROCOPY (the driver DMAs into the UMEM), else copy mode.
    public var isZeroCopy: Bool { xsk.pointee.zerocopy != 0 }

    deinit {
        clvs_xsk_close(xsk)
        xsk.deallocate()
    }
}

/// lvsd's BPF object (`BPFObject`) loaded for one interface with its XDP program (afxdp, xdp)
/// or its tc program (tc): its own `xsks` map; the VIP, connection and counter maps shared by all
/// interfaces.
public final class XDPProgram {
    public enum Mode: String, Sendable { case native, generic }

    /// The object's name (the built-in object, or the file given with --xdp-object).
    public let objectName: String
    let prog: UnsafeMutablePointer<clvs_xdp_prog>
    public internal(set) var attachedTo: InterfaceInfo?
    public internal(set) var mode: Mode?

    /// Which program of the object is loaded into the kernel.
    public enum Kind: Sendable { case xdp, tc }
    public let kind: Kind

    /// Loads the object; with `sharingVIPsOf` it uses that program's maps (VIPs, connections,
    /// destination counters, fwmark rules, settings, frame counters); else with `adopting` the
    /// maps whose descriptors it holds (>= 0: a previous lvsd's `conns`, see `BPFAdoption`).
    public init(object: BPFObject, kind: Kind = .xdp, sharingVIPsOf other: XDPProgram? = nil,
                adopting: UnsafePointer<clvs_xdp_prog>? = nil) throws {
        // Load first, store last: a throw after every property is set would run deinit.
        let prog = UnsafeMutablePointer<clvs_xdp_prog>.allocate(capacity: 1)
        var err = [CChar](repeating: 0, count: 256)
        let which = kind == .xdp ? CLVS_PROG_XDP : CLVS_PROG_TC
        let rc = object.bytes.withUnsafeBytes { raw -> Int32 in
            guard let base = raw.baseAddress else { return -EINVAL }
            if let other { return clvs_xdp_load(prog, base, raw.count, object.name, Int32(which), other.prog, &err, err.count) }
            return clvs_xdp_load(prog, base, raw.count, object.name, Int32(which), adopting, &err, err.count)
        }
        guard rc == 0 else {
            prog.deallocate()
            throw DataPlaneError.invalidConfiguration("cannot load BPF object \(object.name): \(String(cString: err))")
        }
        self.objectName = object.name
        self.kind = kind
        self.prog = prog
    }

    /// The loaded program (for `BPFAdoption`: replacing a previous lvsd's, leaving it attached).
    var loaded: UnsafeMutablePointer<clvs_xdp_prog> { prog }

    public var xsksMap: Int32 { prog.pointee.xsks_fd }
    public var vipsMap: Int32 { prog.pointee.vips_fd }
    public var connsMap: Int32 { prog.pointee.conns_fd }
    public var statsMap: Int32 { prog.pointee.stats_fd }
    public var marksMap: Int32 { prog.pointee.marks_fd }
    public var settingsMap: Int32 { prog.pointee.settings_fd }
    public var countersMap: Int32 { prog.pointee.counters_fd }
    /// `nat_replies` (the tc fast path's NAT replies), -1 in an object without it.
    public var natRepliesMap: Int32 { prog.pointee.nat_replies_fd }
    /// The loaded program's descriptor (the XDP or the tc program, by `kind`).
    public var programFD: Int32 { kind == .xdp ? prog.pointee.prog_fd : prog.pointee.tc_prog_fd }

    /// The flags (CLVS_SETTING_*) last written to the settings map by this object.
    private let settingFlags = Mutex<UInt32>(0)

    /// With `noARP` (lvsd --no-arp) ARP requests and neighbour solicitations for VIPs go to the
    /// kernel instead of lvsd. The settings map is shared: this sets it for every interface.
    public func setNoARP(_ noARP: Bool) throws {
        try DataPlaneError.context("--no-arp") { try setSetting(CLVS_SETTING_NO_ARP, noARP) }
    }

    /// Sets or clears one flag of the (shared) settings map, keeping the others.
    func setSetting(_ flag: UInt32, _ on: Bool) throws {
        try settingFlags.withLock { flags throws in
            let wanted = on ? flags | flag : flags & ~flag
            try syscallNegatedErrno("bpf_map_update_elem(settings)") { clvs_settings_set(settingsMap, wanted) }
            flags = wanted
        }
    }

    /// The frames the programs handled, by what they did (`stats`, summed over the CPUs).
    public func frameCounters() throws -> XDPFrameCounters {
        var out = [UInt64](repeating: 0, count: Int(CLVS_STAT_COUNT.rawValue))
        try DataPlaneError.context("BPF frame counters") {
            try syscallNegatedErrno("bpf_map_lookup_elem(stats)") { clvs_xdp_counters_read(countersMap, &out) }
        }
        return XDPFrameCounters(service: out[Int(CLVS_STAT_SERVICE.rawValue)], address: out[Int(CLVS_STAT_ADDRESS.rawValue)],
                                neighbour: out[Int(CLVS_STAT_NEIGHBOUR.rawValue)], passed: out[Int(CLVS_STAT_PASSED.rawValue)],
                                fast: out[Int(CLVS_STAT_FAST.rawValue)], natReply: out[Int(CLVS_STAT_NAT_REPLY.rawValue)])
    }

    /// Runs the loaded program once on `frame` (BPF_PROG_TEST_RUN: nothing is sent) and returns
    /// its action (XDP_* or TC_ACT_*). For tests.
    public func testRun(_ frame: [UInt8]) throws -> UInt32 {
        try testRunFrame(frame).action
    }

    /// `testRun`, also returning the frame as the program left it (rewritten MACs, TTL, ...).
    public func testRunFrame(_ frame: [UInt8]) throws -> (action: UInt32, frame: [UInt8]) {
        var action: UInt32 = 0
        // Room for the frame plus what a program could add in front (none of lvsd's does).
        var out = [UInt8](repeating: 0, count: frame.count + 256)
        var outLength = UInt32(out.count)
        try DataPlaneError.context("\(frame.count)-byte frame") {
            try syscallNegatedErrno("BPF_PROG_TEST_RUN") {
                frame.withUnsafeBytes { input in
                    out.withUnsafeMutableBytes { output in
                        clvs_prog_test_run(programFD, input.baseAddress!, UInt32(input.count), &action, output.baseAddress, &outLength)
                    }
                }
            }
        }
        return (action, Array(out.prefix(Int(outLength))))
    }

    /// Runs the loaded program `repeat` times on `frame` (BPF_PROG_TEST_RUN, nothing is sent; a
    /// rewrite carries over from one run to the next, so an IPv4 TTL of 255 allows 254 forwards):
    /// the last action and the kernel's mean time per run in ns. For measurements.
    public func timedRun(_ frame: [UInt8], repeat count: UInt32) throws -> (action: UInt32, nanoseconds: UInt32) {
        var action: UInt32 = 0, duration: UInt32 = 0
        try DataPlaneError.context("\(frame.count)-byte frame") {
            try syscallNegatedErrno("BPF_PROG_TEST_RUN") {
                frame.withUnsafeBytes { clvs_prog_test_run_timed(programFD, $0.baseAddress!, UInt32($0.count), count, &action, &duration) }
            }
        }
        return (action, duration)
    }

    /// Attaches in native (driver) mode, else in generic mode when allowed.
    public func attach(to interface: InterfaceInfo, allowGeneric: Bool = true) throws -> Mode {
        var err = [CChar](repeating: 0, count: 256)
        try DataPlaneError.context("interface '\(interface.name)'") {
            try syscallNegatedErrno("XDP attach (\(String(cString: err)))") {
                clvs_xdp_attach(prog, interface.index, allowGeneric ? 1 : 0, &err, err.count)
            }
        }
        attachedTo = interface
        let m: Mode = prog.pointee.mode == UInt32(XDP_FLAGS_DRV_MODE_VALUE) ? .native : .generic
        mode = m
        return m
    }

    /// Attaches the tc program (`kind == .tc`) to the interface's clsact ingress.
    public func attachTC(to interface: InterfaceInfo) throws {
        var err = [CChar](repeating: 0, count: 256)
        try DataPlaneError.context("interface '\(interface.name)'") {
            try syscallNegatedErrno("tc attach (\(String(cString: err)))") { clvs_tc_attach(prog, interface.index, &err, err.count) }
        }
        attachedTo = interface
    }

    /// Takes the tc program off its interface (idempotent); the maps stay until deinit.
    public func detachTC() {
        clvs_tc_detach(prog)
        attachedTo = nil
    }

    /// Detaches the program (idempotent); the maps stay until deinit.
    public func detach() {
        guard attachedTo != nil else { return }
        clvs_xdp_close(prog)
        attachedTo = nil
    }

    deinit {
        clvs_xdp_close(prog)
        prog.deallocate()
    }
}

/// XDP_FLAGS_DRV_MODE from <linux/if_link.h> (not imported into Swift through CLVSXDP).
let XDP_FLAGS_DRV_MODE_VALUE: Int32 = 1 << 2

/// The VIP map of the XDP program: what it redirects to lvsd. Updated in place (no reload).
///
/// Also the programs' side of VIP ownership (VRRP): the address entry of a VIP this director does
/// not own carries CLVS_VIP_NOT_OWNED, and the settings flag CLVS_SETTING_SOME_NOT_OWNED is set
/// while one does; the programs then answer no ARP/ND for it and forward none of its connections.
/// (Entries stay in `conns`: the fast path forwards them again as soon as the address is owned.)
/// Used from the control thread (`update`) and from whoever drives VRRP (`setNotOwned`): the
/// state is behind a Mutex, and each call writes the map while holding it.
public final class XDPVIPMap {
    let fd: Int32
    /// The program whose settings map holds CLVS_SETTING_SOME_NOT_OWNED (and keeps the maps alive).
    let program: XDPProgram
    private struct State {
        var entries: Set<VIPMatch> = []
        var notOwned: Set<IPAddress> = []
    }
    private let state = Mutex(State())

    public init(program: XDPProgram) {
        fd = program.vipsMap
        self.program = program
    }

    /// The entries the map holds (services and address entries).
    public var entries: Set<VIPMatch> { state.withLock { $0.entries } }

    /// The addresses whose entry says they are not owned (once they are VIPs).
    public var notOwned: Set<IPAddress> { state.withLock { $0.notOwned } }

    /// Makes the map hold exactly `vips` (plus one address entry per VIP address, for fragments,
    /// ICMP errors and ARP/ND): adds first, then removes, so a kept service never disappears.
    public func update(vips: [VIPMatch]) throws {
        try state.withLock { s throws in
            var wanted = Set(vips)
            for v in vips { wanted.insert(VIPMatch(address: v.address, proto: 0, port: 0)) }
            for v in wanted.subtracting(s.entries) { try set(v, flags: Self.flags(v, s.notOwned)) }
            for v in s.entries.subtracting(wanted) { try set(v, flags: 0) }
            s.entries = wanted
        }
    }

    /// VIP ownership: the address entries of `addresses` say not owned, every other one owned.
    /// On a release the settings flag goes on before the entries change; on a takeover it goes off
    /// after them, so the programs never miss an address that is not owned.
    public func setNotOwned(_ addresses: Set<IPAddress>) throws {
        try state.withLock { s throws in
            if !addresses.isEmpty { try program.setSetting(CLVS_SETTING_SOME_NOT_OWNED, true) }
            for a in addresses.symmetricDifference(s.notOwned) {
                let entry = VIPMatch(address: a, proto: 0, port: 0)
                guard s.entries.contains(entry) else { continue }
                try set(entry, flags: Self.flags(entry, addresses))
            }
            s.notOwned = addresses
            if addresses.isEmpty { try program.setSetting(CLVS_SETTING_SOME_NOT_OWNED, false) }
        }
    }

    /// An entry's value: present, and not owned for the address entry of an address in `notOwned`.
    static func flags(_ v: VIPMatch, _ notOwned: Set<IPAddress>) -> UInt8 {
        var f = UInt8(CLVS_VIP_PRESENT)
        if v.proto == 0 && v.port == 0 && notOwned.contains(v.address) { f |= UInt8(CLVS_VIP_NOT_OWNED) }
        return f
    }

    /// Writes one entry (`flags` CLVS_VIP_*), or deletes it (`flags` 0).
    func set(_ v: VIPMatch, flags: UInt8) throws {
        var bytes = [UInt8](repeating: 0, count: 16)
        bytes.withUnsafeMutableBytes { v.address.store(to: $0.baseAddress!) }
        try DataPlaneError.context("VIP \(v)") {
            try syscallNegatedErrno(flags != 0 ? "bpf_map_update_elem(vips)" : "bpf_map_delete_elem(vips)") {
                clvs_vip_set(fd, v.address.isIPv4 ? 4 : 6, bytes, v.proto, v.port, flags)
            }
        }
    }
}
