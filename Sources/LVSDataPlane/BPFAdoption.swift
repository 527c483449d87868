import Glibc
import CLVSXDP
import LVSSystem

/// A restart on the BPF planes (afxdp, xdp, tc; docs/restart.md). With `--restart-guard` a stop
/// leaves lvsd's program attached to every interface (`leaveAttached`): the attachment keeps the
/// program and its maps alive, the fast path goes on forwarding the connections in `conns`, and
/// the frames meant for lvsd are dropped (XDP: no AF_XDP socket, the redirect falls back to
/// XDP_DROP; tc: marked PACKET_OTHERHOST, the kernel drops them), so the director's kernel never
/// answers for a VIP. The next lvsd finds the program through the interface (no bpffs pin: a
/// pin lives in a mount namespace, and `ip netns exec` or systemd's private mounts give each lvsd
/// its own; the attachment lives with the interface), loads its own object with the old `conns`
/// map when the layouts match, and replaces the program atomically when it attaches.
public struct BPFAdoption: Sendable {
    /// What a previous lvsd left attached, per interface (in the data plane's interface order).
    public let leftovers: [clvs_attached]
    /// The previous lvsd's `conns` map, when its layout matches this object's (else -1).
    public let connsFD: Int32
    /// Its `nat_replies` map (the tc fast path's NAT replies), adopted with `conns` when its
    /// layout matches too (else -1: the new program starts with an empty one).
    public let natRepliesFD: Int32
    /// What happened, for the log: nil when nothing was left attached.
    public let note: String?

    init(leftovers: [clvs_attached], connsFD: Int32, natRepliesFD: Int32 = -1, note: String?) {
        self.leftovers = leftovers
        self.connsFD = connsFD
        self.natRepliesFD = natRepliesFD
        self.note = note
    }

    /// Nothing to adopt (a first start).
    public static let none = BPFAdoption(leftovers: [], connsFD: -1, note: nil)

    /// Looks at what is attached to `interfaces` and takes the `conns` map of the previous lvsd's
    /// program on the first interface that has one (the programs of all interfaces share it),
    /// preferring a program of the same `kind`. A map whose layout differs from `object`'s is not
    /// taken (the note says why): the new program then starts with an empty one.
    public static func find(interfaces: [InterfaceInfo], object: BPFObject, kind: XDPProgram.Kind) -> BPFAdoption {
        let leftovers = interfaces.map { info -> clvs_attached in
            var a = clvs_attached()
            clvs_attached_lvsd(info.index, &a)
            return a
        }
        let same = leftovers.compactMap { kind == .xdp ? $0.xdp_id : $0.tc_id }.filter { $0 != 0 }
        let other = leftovers.compactMap { kind == .xdp ? $0.tc_id : $0.xdp_id }.filter { $0 != 0 }
        guard let prog = same.first ?? other.first else { return BPFAdoption(leftovers: leftovers, connsFD: -1, note: nil) }
        var theirs = clvs_map_layout(), ours = clvs_map_layout()
        let fd = clvs_prog_map(prog, connsName, &theirs)
        guard fd >= 0 else {
            return BPFAdoption(leftovers: leftovers, connsFD: -1,
                               note: "previous program \(prog) found, its conns map not: \(String(cString: strerror(-fd)))")
        }
        let rc = object.bytes.withUnsafeBytes { clvs_object_map_layout($0.baseAddress!, $0.count, connsName, &ours) }
        guard rc == 0 else {
            close(fd)
            return BPFAdoption(leftovers: leftovers, connsFD: -1, note: "conns not adopted: \(object.name) has no conns map")
        }
        if let difference = differences(theirs, ours) {
            close(fd)
            return BPFAdoption(leftovers: leftovers, connsFD: -1,
                               note: "conns of previous program \(prog) not adopted, replaced by an empty one: its layout differs (\(difference))")
        }
        let replies = adoptedNATReplies(prog, object: object)
        return BPFAdoption(leftovers: leftovers, connsFD: fd, natRepliesFD: replies.fd,
                           note: "adopted the conns map of previous program \(prog) (\(clvs_conn_count(fd)) entries)\(replies.note)")
    }

    static let connsName = "conns"
    static let natRepliesName = "nat_replies"

    /// The `nat_replies` map of program `prog` when `object` has one of the same layout (-1
    /// otherwise), and what to add to the log line.
    static func adoptedNATReplies(_ prog: UInt32, object: BPFObject) -> (fd: Int32, note: String) {
        var theirs = clvs_map_layout(), ours = clvs_map_layout()
        let fd = clvs_prog_map(prog, natRepliesName, &theirs)
        guard fd >= 0 else { return (-1, "") } // a program from before NAT in the tc fast path
        let rc = object.bytes.withUnsafeBytes { clvs_object_map_layout($0.baseAddress!, $0.count, natRepliesName, &ours) }
        if rc != 0 || differences(theirs, ours) != nil {
            close(fd)
            return (-1, "; its nat_replies not (layout differs)")
        }
        return (fd, " and its nat_replies")
    }

    /// How two layouts differ ("key 40 -> 44, max entries ..."), nil when they match.
    static func differences(_ a: clvs_map_layout, _ b: clvs_map_layout) -> String? {
        var d: [String] = []
        if a.type != b.type { d.append("type \(a.type) -> \(b.type)") }
        if a.key_size != b.key_size { d.append("key size \(a.key_size) -> \(b.key_size)") }
        if a.value_size != b.value_size { d.append("value size \(a.value_size) -> \(b.value_size)") }
        if a.max_entries != b.max_entries { d.append("max entries \(a.max_entries) -> \(b.max_entries)") }
        if a.flags != b.flags { d.append("flags \(a.flags) -> \(b.flags)") }
        return d.isEmpty ? nil : d.joined(separator: ", ")
    }

    /// Loads the object for the first interface: with the adopted `conns` when there is one.
    func loadFirst(object: BPFObject, kind: XDPProgram.Kind) throws -> XDPProgram {
        guard connsFD >= 0 else { return try XDPProgram(object: object, kind: kind) }
        var shared = clvs_xdp_prog()
        shared.prog_fd = -1; shared.tc_prog_fd = -1; shared.xsks_fd = -1; shared.vips_fd = -1
        shared.stats_fd = -1; shared.marks_fd = -1; shared.settings_fd = -1; shared.counters_fd = -1; shared.heartbeat_fd = -1
        shared.nat_replies_fd = natRepliesFD
        shared.conns_fd = connsFD
        defer { // the loaded object holds its own descriptors of the maps
            close(connsFD)
            if natRepliesFD >= 0 { close(natRepliesFD) }
        }
        return try withUnsafePointer(to: &shared) { try XDPProgram(object: object, kind: kind, adopting: $0) }
    }
}

extension XDPProgram {
    /// Attaches in XDP: replacing the previous lvsd's program atomically when one is attached
    /// (in its mode), else as `attach(to:allowGeneric:)` does.
    func attach(to interface: InterfaceInfo, allowGeneric: Bool, replacing left: clvs_attached) throws -> Mode {
        let leftMode: Mode = left.xdp_mode == UInt32(XDP_FLAGS_DRV_MODE_VALUE) ? .native : .generic
        guard left.xdp_id != 0, allowGeneric || leftMode == .native else { return try attach(to: interface, allowGeneric: allowGeneric) }
        var err = [CChar](repeating: 0, count: 256)
        try DataPlaneError.context("interface '\(interface.name)'") {
            try syscallNegatedErrno("XDP replace (\(String(cString: err)))") {
                clvs_xdp_replace(loaded, interface.index, left.xdp_id, left.xdp_mode, &err, err.count)
            }
        }
        attachedTo = interface
        mode = leftMode
        return leftMode
    }

    /// A stop for a restart (`--restart-guard`): the program stays attached (and with it its
    /// maps) when this object goes; the next lvsd replaces it.
    func leaveAttached() {
        clvs_xdp_leave_attached(loaded)
        attachedTo = nil
    }
}
