import Glibc
import CLVSXDP
import Synchronization
import LVSCore
import LVSModel

/// The BPF programs' connection map (`conns` in bpf/lvs_xdp.c): connections whose packets the
/// XDP or tc program forwards itself (`lvsd --dataplane xdp`, `tc`). Keys are built from
/// `ConnectionKey`s; values carry the rewrite (MACs, egress interface), lvsd's destination slot and
/// the last-seen time. What the programs forward is counted per destination slot in `dest_stats`.
/// BPF map calls are thread-safe, so every worker may use the same object.
///
/// `@unchecked Sendable` (`owner` is `AnyObject`): every stored property is a constant, the map
/// file descriptors are used only in BPF map system calls (which the kernel serialises), `owner`
/// is held to keep the program loaded and used only to set CLVS_SETTING_NAT_REPLIES once (its
/// settings map is behind its own lock), and `natRepliesAnnounced` is atomic.
public final class XDPConnMap: @unchecked Sendable {
    public let fd: Int32
    /// `dest_stats`: packets and bytes per destination slot and CPU.
    public let statsFD: Int32
    /// `nat_replies`: the reply tuples of NAT connections (tc only), -1 when this map holds no
    /// NAT connections (the XDP plane, or an object without the map).
    public let natRepliesFD: Int32
    /// Keeps the programs (and so the map) alive.
    let owner: AnyObject
    /// Destination slots the counters have room for.
    public static let maxDestinationSlots = UInt32(CLVS_MAX_DESTS)

    /// `nat`: the program forwards NAT connections in both directions (the tc program); the XDP
    /// program does not, so its map never gets a NAT entry.
    public init(program: XDPProgram, nat: Bool = false) {
        fd = program.connsMap
        statsFD = program.statsMap
        natRepliesFD = nat ? program.natRepliesMap : -1
        owner = program
    }

    /// The settings flag CLVS_SETTING_NAT_REPLIES was set (at the first reply entry).
    private let natRepliesAnnounced = Atomic<Bool>(false)

    /// Whether NAT connections may be written (`putNAT`, `putReply`).
    public var supportsNAT: Bool { natRepliesFD >= 0 }

    /// The map key of a connection (addresses and ports in network order).
    public static func key(_ k: ConnectionKey) -> clvs_conn_key {
        var c = clvs_conn_key()
        c.family = k.virtualAddress.isIPv4 ? 4 : 6
        c.proto = k.proto
        c.cport = k.clientPort.bigEndian
        c.vport = k.virtualPort.bigEndian
        withUnsafeMutableBytes(of: &c.caddr) { k.client.store(to: $0.baseAddress!) }
        withUnsafeMutableBytes(of: &c.vaddr) { k.virtualAddress.store(to: $0.baseAddress!) }
        return c
    }

    /// Inserts or replaces an entry (last seen zero) forwarding to destination slot `destSlot`
    /// (< `maxDestinationSlots`). 0 or -errno.
    public func put(_ key: inout clvs_conn_key, destinationMAC: MACAddress, sourceMAC: MACAddress, interface: Int32,
                    destSlot: UInt32) -> Int32 {
        var d = (UInt64(0), UInt64(0))
        var s = (UInt64(0), UInt64(0))
        return withUnsafeMutableBytes(of: &d) { dp in
            withUnsafeMutableBytes(of: &s) { sp in
                destinationMAC.store(to: dp.baseAddress!)
                sourceMAC.store(to: sp.baseAddress!)
                return clvs_conn_put(fd, &key, dp.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                     sp.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt32(bitPattern: interface), destSlot)
            }
        }
    }

    /// `put` for a NAT connection: the tc program also rewrites the destination to
    /// `server`:`serverPort`. Its replies need their own entry (`putReply`). 0 or -errno.
    public func putNAT(_ key: inout clvs_conn_key, destinationMAC: MACAddress, sourceMAC: MACAddress, interface: Int32,
                       destSlot: UInt32, server: IPAddress, serverPort: UInt16) -> Int32 {
        var d = (UInt64(0), UInt64(0))
        var s = (UInt64(0), UInt64(0))
        var a = (UInt64(0), UInt64(0))
        return withUnsafeMutableBytes(of: &d) { dp in
            withUnsafeMutableBytes(of: &s) { sp in
                withUnsafeMutableBytes(of: &a) { ap in
                    destinationMAC.store(to: dp.baseAddress!)
                    sourceMAC.store(to: sp.baseAddress!)
                    server.store(to: ap.baseAddress!)
                    return clvs_conn_put_nat(fd, &key, dp.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                             sp.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt32(bitPattern: interface),
                                             destSlot, ap.baseAddress!.assumingMemoryBound(to: UInt8.self), serverPort)
                }
            }
        }
    }

    /// The `nat_replies` key of a NAT connection's replies: from `server`:`serverPort` to the client.
    public static func replyKey(_ k: ConnectionKey, server: IPAddress, serverPort: UInt16) -> clvs_nat_reply_key {
        var r = clvs_nat_reply_key()
        r.family = k.virtualAddress.isIPv4 ? 4 : 6
        r.proto = k.proto
        r.rport = serverPort.bigEndian
        r.cport = k.clientPort.bigEndian
        withUnsafeMutableBytes(of: &r.raddr) { server.store(to: $0.baseAddress!) }
        withUnsafeMutableBytes(of: &r.caddr) { k.client.store(to: $0.baseAddress!) }
        return r
    }

    /// The `nat_replies` value: the connection's map key, the client's next hop (its MAC, the
    /// director's MAC and interface), the destination slot the replies are counted for.
    public static func replyValue(_ conn: clvs_conn_key, clientMAC: MACAddress, sourceMAC: MACAddress, interface: Int32,
                                  destSlot: UInt32) -> clvs_nat_reply_value {
        var v = clvs_nat_reply_value()
        v.conn = conn
        withUnsafeMutableBytes(of: &v.dmac) { clientMAC.store(to: $0.baseAddress!) }
        withUnsafeMutableBytes(of: &v.smac) { sourceMAC.store(to: $0.baseAddress!) }
        v.ifindex = UInt32(bitPattern: interface)
        v.dest = destSlot
        return v
    }

    /// Inserts or replaces a NAT reply entry. 0 or -errno (-ENOTSUP without `supportsNAT`).
    public func putReply(_ key: inout clvs_nat_reply_key, _ value: inout clvs_nat_reply_value) -> Int32 {
        guard supportsNAT else { return -ENOTSUP }
        guard announceNATReplies() else { return -EIO }
        return clvs_nat_reply_put(natRepliesFD, &key, &value)
    }

    /// Makes the program look NAT replies up (CLVS_SETTING_NAT_REPLIES; before, a frame it leaves
    /// alone costs no such lookup): at the first reply entry, or when `nat_replies` was adopted
    /// with entries. False if the setting could not be written.
    @discardableResult
    public func announceNATReplies() -> Bool {
        guard supportsNAT else { return false }
        if natRepliesAnnounced.load(ordering: .relaxed) { return true }
        guard let program = owner as? XDPProgram, (try? program.setSetting(CLVS_SETTING_NAT_REPLIES, true)) != nil else {
            return false
        }
        natRepliesAnnounced.store(true, ordering: .relaxed)
        return true
    }

    /// The `nat_replies` key of the NAT connection whose `conns` entry is `conn`: `value`.
    public static func replyKey(conn: clvs_conn_key, value: clvs_conn_value) -> clvs_nat_reply_key {
        var r = clvs_nat_reply_key()
        r.family = conn.family
        r.proto = conn.proto
        r.rport = value.rport
        r.cport = conn.cport
        r.raddr = value.raddr
        r.caddr = conn.caddr
        return r
    }

    public func getReply(_ key: inout clvs_nat_reply_key) -> clvs_nat_reply_value? {
        guard supportsNAT else { return nil }
        var v = clvs_nat_reply_value()
        return clvs_nat_reply_get(natRepliesFD, &key, &v) == 0 ? v : nil
    }

    public func deleteReply(_ key: inout clvs_nat_reply_key) {
        if supportsNAT { _ = clvs_nat_reply_delete(natRepliesFD, &key) }
    }

    public func get(_ key: inout clvs_conn_key) -> clvs_conn_value? {
        var v = clvs_conn_value()
        return clvs_conn_get(fd, &key, &v) == 0 ? v : nil
    }

    public func delete(_ key: inout clvs_conn_key) { _ = clvs_conn_delete(fd, &key) }

    /// Calls `body` for every entry, reading the map `batch` entries per system call (one call per
    /// entry would cost a million system calls per pass over a million connections). Falls back
    /// to key-by-key iteration where the kernel has no batch operations. False if reading failed.
    @discardableResult
    public func forEachEntry(batch: Int = 4096, _ body: (clvs_conn_key, clvs_conn_value) -> Void) -> Bool {
        let reader = XDPConnMapReader(map: self, batch: batch)
        while true {
            switch reader.next(body) {
            case .more: continue
            case .end: return true
            case .unsupported: return forEachEntryOneByOne(body)
            case .failed: return false
            }
        }
    }

    private func forEachEntryOneByOne(_ body: (clvs_conn_key, clvs_conn_value) -> Void) -> Bool {
        var keys: [clvs_conn_key] = []
        var k = clvs_conn_key(), next = clvs_conn_key()
        var started = false
        while (started ? clvs_conn_next_key(fd, &k, &next) : clvs_conn_next_key(fd, nil, &next)) == 0 {
            keys.append(next)
            k = next
            started = true
        }
        for var key in keys { if let v = get(&key) { body(key, v) } }
        return true
    }

    /// The connection key of a map key.
    public static func connectionKey(_ c: clvs_conn_key) -> ConnectionKey {
        var c = c
        let length = c.family == 4 ? 4 : 16
        let client = withUnsafeBytes(of: &c.caddr) { IPAddress(bytes: $0.baseAddress!, length: length) }
        let virtual = withUnsafeBytes(of: &c.vaddr) { IPAddress(bytes: $0.baseAddress!, length: length) }
        return ConnectionKey(proto: c.proto, client: client, clientPort: UInt16(bigEndian: c.cport),
                             virtualAddress: virtual, virtualPort: UInt16(bigEndian: c.vport))
    }

    /// Entries in the map (walks it: for status lines and tests).
    public func count() -> UInt64 { clvs_conn_count(fd) }

    /// Packets and IP bytes the programs forwarded to destination slot `slot` (and NAT replies
    /// from it) since they were loaded (all CPUs); nil if the map cannot be read.
    public func destinationCounters(_ slot: UInt32) -> FastPathTraffic? {
        var c = clvs_dest_counters()
        guard clvs_dest_stats_read(statsFD, slot, &c) == 0 else { return nil }
        return FastPathTraffic(packets: c.packets, bytes: c.bytes, outPackets: c.out_packets, outBytes: c.out_bytes)
    }
}

/// What the fast path forwarded for one destination slot: to the real server (In), and its NAT
/// replies (Out).
public struct FastPathTraffic: Sendable, Equatable {
    public var packets: UInt64
    public var bytes: UInt64
    public var outPackets: UInt64
    public var outBytes: UInt64

    public init(packets: UInt64, bytes: UInt64, outPackets: UInt64 = 0, outBytes: UInt64 = 0) {
        self.packets = packets
        self.bytes = bytes
        self.outPackets = outPackets
        self.outBytes = outBytes
    }

    /// The growth from `earlier` to this.
    func since(_ earlier: FastPathTraffic) -> FastPathTraffic {
        FastPathTraffic(packets: packets &- earlier.packets, bytes: bytes &- earlier.bytes,
                        outPackets: outPackets &- earlier.outPackets, outBytes: outBytes &- earlier.outBytes)
    }
}

/// A pass over the connection map one batch at a time, so that a worker can spread a pass over a
/// large map across its ticks instead of stalling its rings. Buffers are allocated once.
public final class XDPConnMapReader {
    public enum Step { case more, end, unsupported, failed }
    let map: XDPConnMap
    let batch: Int
    let keys: UnsafeMutablePointer<clvs_conn_key>
    let values: UnsafeMutablePointer<clvs_conn_value>
    let token: UnsafeMutablePointer<UInt8>
    var first = true

    public init(map: XDPConnMap, batch: Int = 4096) {
        self.map = map
        self.batch = batch
        keys = .allocate(capacity: batch)
        values = .allocate(capacity: batch)
        token = .allocate(capacity: Int(CLVS_BATCH_TOKEN_SIZE))
        token.initialize(repeating: 0, count: Int(CLVS_BATCH_TOKEN_SIZE))
    }

    deinit {
        keys.deallocate()
        values.deallocate()
        token.deallocate()
    }

    /// Starts the next pass from the beginning of the map.
    public func restart() { first = true }

    /// Reads the next batch and calls `body` for each of its entries. `.end` after the last batch
    /// (the next call starts a new pass); `.unsupported` if the kernel has no batch reads.
    public func next(_ body: (clvs_conn_key, clvs_conn_value) -> Void) -> Step {
        var count = UInt32(batch)
        let rc = clvs_conn_read_batch(map.fd, token, first ? 1 : 0, keys, values, &count)
        if rc < 0 {
            let wasFirst = first
            first = true
            return wasFirst && (rc == -EINVAL || rc == -EOPNOTSUPP || rc == -ENOTSUP) ? .unsupported : .failed
        }
        first = false
        for i in 0..<Int(count) { body(keys[i], values[i]) }
        if rc == 1 {
            first = true
            return .end
        }
        return .more
    }
}

/// The veth caveat of XDP transmission: frames sent with XDP_TX/redirect out of a veth reach the
/// other end only if the peer receives in NAPI mode (GRO on, or an XDP program attached there).
public enum XDPTransmitCheck {
    /// The kernel driver of `interface` ("veth", ...), "" when unknown.
    public static func driver(of interface: String) -> String {
        var buf = [CChar](repeating: 0, count: 64)
        clvs_if_driver(interface, &buf, buf.count)
        return String(cString: buf)
    }
}

extension XDPTransmitCheck {
    public enum PeerState: Equatable, Sendable {
        /// Not a veth: XDP_TX goes out of the device itself.
        case notVeth
        /// The veth peer is in this namespace and receives in NAPI mode (GRO on).
        case peerGROOn(String)
        /// The veth peer is in this namespace with GRO off: XDP_TX frames are dropped.
        case peerGROOff(String)
        /// The peer is in another namespace (or unknown): cannot be checked from here.
        case unverifiable
    }

    /// Whether frames XDP_TX'ed out of `interface` can arrive (see the type's comment).
    public static func peerState(of interface: String) -> PeerState {
        guard driver(of: interface) == "veth" else { return .notVeth }
        func read(_ path: String) -> String? {
            guard let f = fopen(path, "re") else { return nil }
            defer { fclose(f) }
            var buf = [CChar](repeating: 0, count: 64)
            guard fgets(&buf, 64, f) != nil else { return nil }
            return String(cString: buf).trimmingCharacters(in: " \n")
        }
        guard let mine = read("/sys/class/net/\(interface)/ifindex"),
              let peer = read("/sys/class/net/\(interface)/iflink"), peer != mine,
              let dir = opendir("/sys/class/net") else { return .unverifiable }
        defer { closedir(dir) }
        while let e = readdir(dir) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            guard name != ".", name != "..", name != interface else { continue }
            // Same namespace: the peer's index is our iflink and its iflink is our index.
            if read("/sys/class/net/\(name)/ifindex") == peer, read("/sys/class/net/\(name)/iflink") == mine {
                return clvs_if_gro(name) == 1 ? .peerGROOn(name) : .peerGROOff(name)
            }
        }
        return .unverifiable
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s = s.dropFirst() }
        while let c = s.last, set.contains(c) { s = s.dropLast() }
        return String(s)
    }
}
