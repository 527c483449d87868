import LVSModel

/// printf-style padding helpers (`%-Ns`, `%Ns`).
enum Pad {
    static func left(_ s: String, _ width: Int) -> String {
        let n = s.count
        return n >= width ? s : s + String(repeating: " ", count: width - n)
    }
    static func right(_ s: String, _ width: Int) -> String {
        let n = s.count
        return n >= width ? s : String(repeating: " ", count: width - n) + s
    }
    static func truncate(_ s: String, _ length: Int) -> String {
        s.count > length ? String(s.prefix(length)) : s
    }
}

/// The listing and save output of ipvsadm (`list_all`, `print_service_entry`, `list_conn`, ...).
public struct IPVSAdmFormatter {
    public var resolver: IPVSAdmNameResolver

    public init(resolver: IPVSAdmNameResolver = SystemNameResolver()) {
        self.resolver = resolver
    }

    // MARK: Names

    static func protocolLookupName(_ proto: IPProtocolNumber) -> String? {
        switch proto {
        case .tcp: return "tcp"
        case .udp: return "udp"
        case .sctp: return "sctp"
        default: return nil
        }
    }

    /// `addrport_to_anyname`: `a.b.c.d:port` / `[v6]:port`, names unless numeric; at most 59 characters.
    public func addressPort(_ address: IPAddress, _ port: UInt16, proto: IPProtocolNumber?, numeric: Bool) -> String {
        let open = address.isIPv4 ? "" : "["
        let close = address.isIPv4 ? "" : "]"
        let text: String
        if numeric {
            text = "\(open)\(address.description)\(close):\(port)"
        } else {
            let host = resolver.hostName(for: address) ?? address.description
            var service: String?
            if let p = proto, let name = Self.protocolLookupName(p) {
                service = resolver.serviceName(for: port, protocol: name)
            }
            text = "\(open)\(host)\(close):\(service ?? String(port))"
        }
        return Pad.truncate(text, 59)
    }

    // MARK: Numbers

    /// `print_largenum`.
    public static func largeNumber(_ n: UInt64, exact: Bool) -> String {
        if exact {
            let digits = String(n)
            return Pad.right(digits, max(9, digits.count + 1))
        }
        if n < 100_000_000 { return Pad.right(String(n), 9) }
        if n < 1_000_000_000 { return Pad.right(String(n / 1000), 8) + "K" }
        if n < 100_000_000_000 { return Pad.right(String(n / 1_000_000), 8) + "M" }
        if n < 100_000_000_000_000 { return Pad.right(String(n / 1_000_000_000), 8) + "G" }
        return Pad.right(String(n / 1_000_000_000_000), 8) + "T"
    }

    // MARK: Sorting

    /// `(int)(a - b)` on unsigned 32-bit values, as libipvs compares.
    @inline(__always) static func wrapped(_ a: UInt32, _ b: UInt32) -> Int32 {
        Int32(bitPattern: a &- b)
    }

    static func addressWords(_ a: IPAddress) -> [UInt32] {
        let w = a.words
        return [w.0, w.1, w.2, w.3]
    }

    static func compareAddresses(_ a: IPAddress, _ b: IPAddress, firstIsIPv6: Bool) -> Int32 {
        if firstIsIPv6 {
            let wa = addressWords(a), wb = addressWords(b)
            for i in 0..<4 {
                let r = wrapped(wa[i], wb[i])
                if r != 0 { return r }
            }
            return 0
        }
        // IPv4: the first 32 bits of the address union (an IPv6 peer contributes its first word).
        let va = a.isIPv4 ? a.ipv4Value : addressWords(a)[0]
        let vb = b.isIPv4 ? b.ipv4Value : addressWords(b)[0]
        return wrapped(va, vb)
    }

    /// `ipvs_cmp_services`.
    public static func compareServices(_ s1: ServiceSnapshot, _ s2: ServiceSnapshot) -> Int32 {
        var r = wrapped(s1.key.fwmark, s2.key.fwmark)
        if r != 0 { return r }
        let af1: Int32 = s1.key.isIPv6 ? 10 : 2
        let af2: Int32 = s2.key.isIPv6 ? 10 : 2
        r = af1 - af2
        if r != 0 { return r }
        r = Int32(s1.key.proto.rawValue) - Int32(s2.key.proto.rawValue)
        if r != 0 { return r }
        r = compareAddresses(s1.key.address, s2.key.address, firstIsIPv6: s1.key.isIPv6)
        if r != 0 { return r }
        return Int32(s1.key.port) - Int32(s2.key.port)
    }

    /// `ipvs_cmp_dests`.
    public static func compareDestinations(_ d1: DestinationSnapshot, _ d2: DestinationSnapshot) -> Int32 {
        let r = compareAddresses(d1.options.address, d2.options.address, firstIsIPv6: !d1.options.address.isIPv4)
        if r != 0 { return r }
        return Int32(d1.options.port) - Int32(d2.options.port)
    }

    /// glibc's `qsort` (a top-down merge sort), so a non-transitive comparison orders exactly as ipvsadm does.
    public static func mergeSort<T>(_ items: [T], by cmp: (T, T) -> Int32) -> [T] {
        var a = items
        var tmp = items
        func sort(_ lo: Int, _ n: Int) {
            if n <= 1 { return }
            let n1 = n / 2
            let n2 = n - n1
            sort(lo, n1)
            sort(lo + n1, n2)
            var i = lo, j = lo + n1, k = 0
            let iEnd = lo + n1, jEnd = lo + n
            while i < iEnd && j < jEnd {
                if cmp(a[i], a[j]) <= 0 { tmp[k] = a[i]; i += 1 } else { tmp[k] = a[j]; j += 1 }
                k += 1
            }
            while i < iEnd { tmp[k] = a[i]; i += 1; k += 1 }
            // The rest of the second half is already in place.
            for m in 0..<k { a[lo + m] = tmp[m] }
        }
        sort(0, a.count)
        return a
    }

    // MARK: Listings

    /// `IP Virtual Server version 1.2.1 (size=4096)`.
    public func header(_ snapshot: TableSnapshot) -> String {
        "IP Virtual Server version \(snapshot.version) (size=\(snapshot.connectionTableSize))\n"
    }

    /// `print_title`.
    public func title(_ format: IPVSAdmFormat) -> String {
        let prot = Pad.left("Prot LocalAddress:Port", 33)
        if format.contains(.stats) {
            return prot + " " + ["Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"].map { Pad.right($0, 8) }
                .joined(separator: " ") + "\n  -> RemoteAddress:Port\n"
        }
        if format.contains(.rate) {
            return prot + " " + ["CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"].map { Pad.right($0, 8) }
                .joined(separator: " ") + "\n  -> RemoteAddress:Port\n"
        }
        if format.contains(.thresholds) {
            return prot + " " + ["Uthreshold", "Lthreshold", "ActiveConn", "InActConn"].map { Pad.left($0, 10) }
                .joined(separator: " ") + "\n  -> RemoteAddress:Port\n"
        }
        if format.contains(.persistentConn) {
            return prot + " " + Pad.left("Weight", 9) + " " + Pad.left("PersistConn", 11) + " "
                + Pad.left("ActiveConn", 10) + " " + Pad.left("InActConn", 10) + "\n  -> RemoteAddress:Port\n"
        }
        if format.contains(.tunInfo) {
            return "Prot LocalAddress:Port Scheduler Flags\n"
                + "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n"
        }
        if format.contains(.rule) { return "" }
        return "Prot LocalAddress:Port Scheduler Flags\n"
            + "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
    }

    /// `list_all`: header (unless rule format), title and every service (sorted unless `--nosort`).
    public func listAll(_ snapshot: TableSnapshot, format: IPVSAdmFormat) -> String {
        var out = format.contains(.rule) ? "" : header(snapshot)
        var services = snapshot.services
        if !format.contains(.nosort) { services = Self.mergeSort(services, by: Self.compareServices) }
        out += title(format)
        for s in services { out += serviceEntry(s, format: format) }
        return out
    }

    /// `list_service`: title and one service, no header.
    public func listService(_ service: ServiceSnapshot, format: IPVSAdmFormat) -> String {
        title(format) + serviceEntry(service, format: format)
    }

    func schedFlagsText(_ options: ServiceOptions) -> String {
        var names: [String] = []
        let f = options.flags
        switch options.scheduler {
        case "sh", "mh":
            let s = options.scheduler
            if f.contains(.sched1) { names.append("\(s)-fallback") }
            if f.contains(.sched2) { names.append("\(s)-port") }
            if f.contains(.sched3) { names.append("flag-3") }
        default:
            if f.contains(.sched1) { names.append("flag-1") }
            if f.contains(.sched2) { names.append("flag-2") }
            if f.contains(.sched3) { names.append("flag-3") }
        }
        return names.joined(separator: ",")
    }

    static func dottedMask(_ m: UInt32) -> String {
        "\(m >> 24).\((m >> 16) & 0xFF).\((m >> 8) & 0xFF).\(m & 0xFF)"
    }

    static func tunnelFlagOption(_ flags: UInt8) -> String {
        switch flags {
        case 1: return "--tun-csum"
        case 2: return "--tun-remcsum"
        default: return "--tun-nocsum"
        }
    }

    static func tunnelFlagName(_ flags: UInt8) -> String {
        switch flags {
        case 1: return "+c"
        case 2: return "r+c"
        default: return "-c"
        }
    }

    static func forwardSwitch(_ m: ForwardMethod) -> String {
        switch m {
        case .masquerade: return "-m"
        case .tunnel: return "-i"
        case .local, .directRoute: return "-g"
        }
    }

    /// `print_service_entry`: the service line and its destinations.
    public func serviceEntry(_ svc: ServiceSnapshot, format: IPVSAdmFormat) -> String {
        let rule = format.contains(.rule)
        let numeric = format.contains(.numeric)
        let key = svc.key
        let opts = svc.options
        var name: String
        if key.isFwmark {
            let mark = Int32(bitPattern: key.fwmark)
            name = rule ? "-f \(mark)" : "FWM  \(mark)"
            if key.isIPv6 { name += rule ? " -6" : " IPv6" }
        } else {
            let v = addressPort(key.address, key.port, proto: key.proto, numeric: numeric)
            if rule {
                let sw: String
                switch key.proto {
                case .tcp: sw = "-t"
                case .udp: sw = "-u"
                case .sctp: sw = "--sctp-service"
                default: sw = "--xxx-service"
                }
                name = "\(sw) \(v)"
            } else {
                name = Pad.left(key.proto.listName, 4) + " " + v
                if !key.isIPv6 { name = Pad.truncate(name, 33) }
            }
        }

        var out = ""
        let persistent = opts.flags.contains(.persistent)
        let pe = opts.persistenceEngine ?? ""
        if rule {
            out += "-A \(name) -s \(opts.scheduler)"
            if persistent {
                out += " -p \(opts.timeout)"
                if !key.isIPv6 && opts.netmask != 0xFFFF_FFFF { out += " -M \(Self.dottedMask(opts.netmask))" }
                if key.isIPv6 && opts.netmask != 128 { out += " -M \(opts.netmask)" }
            }
            if !pe.isEmpty { out += " --pe \(pe)" }
            if opts.flags.contains(.onePacket) { out += " -o" }
            if !opts.flags.intersection(.schedMask).isEmpty { out += " -b " + schedFlagsText(opts) }
        } else if format.contains(.stats) {
            let s = svc.stats
            out += Pad.left(name, 33) + [s.conns, s.inPackets, s.outPackets, s.inBytes, s.outBytes]
                .map { Self.largeNumber($0, exact: format.contains(.exact)) }.joined()
        } else if format.contains(.rate) {
            let r = svc.rates
            out += Pad.left(name, 33) + [r.cps, r.inPPS, r.outPPS, r.inBPS, r.outBPS]
                .map { Self.largeNumber($0, exact: format.contains(.exact)) }.joined()
        } else {
            out += "\(name) \(opts.scheduler)"
            if !opts.flags.intersection(.schedMask).isEmpty { out += " (" + schedFlagsText(opts) + ")" }
            if persistent {
                out += " persistent \(opts.timeout)"
                if !key.isIPv6 && opts.netmask != 0xFFFF_FFFF { out += " mask \(Self.dottedMask(opts.netmask))" }
                if key.isIPv6 && opts.netmask != 128 { out += " mask \(Int32(bitPattern: opts.netmask))" }
                if !pe.isEmpty { out += " pe \(pe)" }
            }
            if opts.flags.contains(.onePacket) { out += " ops" }
        }
        out += "\n"

        var dests = svc.destinations
        if !format.contains(.nosort) { dests = Self.mergeSort(dests, by: Self.compareDestinations) }
        for d in dests {
            let o = d.options
            var dname = addressPort(o.address, o.port, proto: key.proto, numeric: numeric)
            if !rule && o.address.isIPv4 { dname = Pad.truncate(dname, 28) }
            if rule {
                out += "-a \(name) -r \(dname) \(Self.forwardSwitch(o.method)) -w \(o.weight)"
                if o.method == .tunnel {
                    out += " --tun-type \(o.tunnelType.ipvsadmName)"
                    if o.tunnelType == .gue { out += " --tun-port \(o.tunnelPort)" }
                    if o.tunnelType != .ipip { out += " " + Self.tunnelFlagOption(o.tunnelFlags) }
                }
                out += "\n"
            } else if format.contains(.stats) {
                let s = d.stats
                out += "  -> " + Pad.left(dname, 28) + [s.conns, s.inPackets, s.outPackets, s.inBytes, s.outBytes]
                    .map { Self.largeNumber($0, exact: format.contains(.exact)) }.joined() + "\n"
            } else if format.contains(.rate) {
                let r = d.rates
                out += "  -> " + Pad.left(dname, 28) + " " + Pad.right(String(r.cps), 8) + " "
                    + Pad.right(String(r.inPPS), 8) + " " + Pad.right(String(r.outPPS), 8)
                    + Self.largeNumber(r.inBPS, exact: format.contains(.exact))
                    + Self.largeNumber(r.outBPS, exact: format.contains(.exact)) + "\n"
            } else if format.contains(.thresholds) {
                out += "  -> " + Pad.left(dname, 28) + " " + [o.upperThreshold, o.lowerThreshold, d.activeConns, d.inactConns]
                    .map { Pad.left(String($0), 10) }.joined(separator: " ") + "\n"
            } else if format.contains(.persistentConn) {
                out += "  -> " + Pad.left(dname, 28) + " " + Pad.left(String(o.weight), 9) + " "
                    + Pad.left(String(d.persistConns), 11) + " " + Pad.left(String(d.activeConns), 10) + " "
                    + Pad.left(String(d.inactConns), 10) + "\n"
            } else if format.contains(.tunInfo) {
                var info = "n/a"
                if o.method == .tunnel {
                    switch o.tunnelType {
                    case .ipip: info = "ipip"
                    case .gue: info = "gue:\(o.tunnelPort):\(Self.tunnelFlagName(o.tunnelFlags))"
                    case .gre: info = "gre:\(Self.tunnelFlagName(o.tunnelFlags))"
                    }
                }
                out += "  -> " + Pad.left(dname, 28) + " " + Pad.left(o.method.listName, 7) + " " + Pad.left(info, 13)
                    + " " + Pad.left(String(o.weight), 6) + " " + Pad.left(String(d.activeConns), 10) + " "
                    + Pad.left(String(d.inactConns), 10) + "\n"
            } else {
                out += "  -> " + Pad.left(dname, 28) + " " + Pad.left(o.method.listName, 7) + " "
                    + Pad.left(String(o.weight), 6) + " " + Pad.left(String(d.activeConns), 10) + " "
                    + Pad.left(String(d.inactConns), 10) + "\n"
            }
        }
        return out
    }

    // MARK: Connections, timeouts, daemons

    /// `list_conn`: the connection table in the given (hash) order.
    public func connections(_ conns: [ConnectionSnapshot], format: IPVSAdmFormat) -> String {
        String(decoding: connectionListing(conns, format: format), as: UTF8.self)
    }

    /// The header lines of `list_conn`.
    func connectionHeader(format: IPVSAdmFormat) -> String {
        var out = "IPVS connection entries\n"
        if format.contains(.persistentConn) {
            out += "pro expire " + Pad.left("state", 11) + " " + Pad.left("source", 18) + " " + Pad.left("virtual", 18)
                + " " + Pad.left("destination", 18) + " " + Pad.left("pe name", 16) + " pe_data\n"
        } else {
            out += "pro expire " + Pad.left("state", 11) + " " + Pad.left("source", 18) + " " + Pad.left("virtual", 18)
                + " destination\n"
        }
        return out
    }

    /// One entry of `list_conn` with its newline, built from strings (names, or anything the
    /// byte writer of `connectionListing` does not take).
    func connectionLine(_ c: ConnectionSnapshot, numeric: Bool) -> String {
        let proto: IPProtocolNumber?
        switch c.protocolName {
        case "TCP": proto = .tcp
        case "UDP": proto = .udp
        case "SCTP": proto = .sctp
        default: proto = nil
        }
        let m = c.expiresSeconds / 60, s = c.expiresSeconds % 60
        let expire = (m < 10 ? "0" : "") + String(m) + ":" + (s < 10 ? "0" : "") + String(s)
        let cname = addressPort(c.clientAddress, c.clientPort, proto: proto, numeric: numeric)
        let vname = addressPort(c.virtualAddress, c.virtualPort, proto: proto, numeric: numeric)
        let dname = addressPort(c.destinationAddress, c.destinationPort, proto: proto, numeric: numeric)
        return Pad.left(c.protocolName, 3) + " " + Pad.left(expire, 6) + " " + Pad.left(c.state, 11) + " "
            + Pad.left(cname, 18) + " " + Pad.left(vname, 18) + " " + dname + "\n"
    }

    /// `list_timeout`.
    public func timeouts(_ t: IPVSTimeouts) -> String {
        "Timeout (tcp tcpfin udp): \(t.tcp) \(t.tcpFin) \(t.udp)\n"
    }

    /// `list_daemon`: master first, then backup.
    public func daemons(_ list: [SyncDaemonSnapshot]) -> String {
        var out = ""
        for role in ["master", "backup"] {
            for d in list where d.role == role {
                out += "\(role) sync daemon (mcast=\(d.interface), syncid=\(d.syncID)"
                if d.maxLength != 0 { out += ", maxlen=\(d.maxLength)" }
                if !d.group.isEmpty { out += ", group=\(d.group)" }
                if d.port != 0 { out += ", port=\(d.port)" }
                if d.ttl != 0 { out += ", ttl=\(d.ttl)" }
                out += ")\n"
            }
        }
        return out
    }
}
