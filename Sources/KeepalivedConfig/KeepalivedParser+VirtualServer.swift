import LVSModel

extension KeepalivedParser {
    // MARK: virtual_server

    mutating func parseVirtualServer(_ h: KeepalivedLine) {
        guard let first = arg(h) else { skipBlockIfAny(); return }
        var vs: KeepalivedVirtualServer
        switch first {
        case "fwmark":
            guard let t = arg(h, 2), let m = integer(h, t, 0...UInt64(UInt32.max)) else { skipBlockIfAny(); return }
            vs = KeepalivedVirtualServer(address: .fwmark(UInt32(m)))
        case "group":
            guard let name = arg(h, 2) else { skipBlockIfAny(); return }
            vs = KeepalivedVirtualServer(address: .group(name))
        default:
            guard let a = IPAddress(first), let p = port(h, 2) else {
                error(h, "Invalid virtual server ip address/port \(h.words.dropFirst().joined(separator: "/")) - skipping")
                skipBlockIfAny()
                return
            }
            vs = KeepalivedVirtualServer(address: .address(a, port: p ?? 0))
        }
        vs.file = h.file
        vs.line = h.line
        var protocolSet = false, schedulerSet = false, methodSet = false
        var sorryMethod: KeepalivedMethod?
        var weightSet = false
        guard openBlock(h) else { return }
        while let l = next(in: h) {
            switch l.keyword {
            case "lvs_sched", "lb_algo":
                guard let v = arg(l) else { continue }
                if Self.schedulers.contains(v) { vs.scheduler = v; schedulerSet = true }
                else { error(l, "Invalid lvs_scheduler '\(v)' - ignoring") }
            case "lvs_method", "lb_kind":
                if let m = method(l, for: "virtual server") { vs.method = m; methodSet = true }
            case "protocol":
                guard let v = arg(l) else { continue }
                switch v.uppercased() {
                case "TCP": vs.proto = .tcp; protocolSet = true
                case "UDP": vs.proto = .udp; protocolSet = true
                case "SCTP": vs.proto = .sctp; protocolSet = true
                default: error(l, "unknown protocol '\(v)' for virtual server")
                }
            case "persistence_timeout":
                if l.words.count < 2 { vs.persistenceTimeout = 360; continue }
                if let v = integer(l, l.words[1], 1...2_678_400) { vs.persistenceTimeout = UInt32(v) }
            case "persistence_granularity":
                guard let v = arg(l) else { continue }
                if let mask = IPAddress(v), mask.isIPv4 {
                    vs.persistenceGranularity = mask.ipv4Value
                } else if let len = integer(l, v, 1...128) {
                    vs.persistenceGranularity = UInt32(len)
                } else { continue }
                if vs.persistenceTimeout == nil { vs.persistenceTimeout = 360 }
            case "persistence_engine": if let v = arg(l) { vs.persistenceEngine = v }
            case "ops": vs.onePacket = true
            case "sh-port", "mh-port", "sh-fallback", "mh-fallback":
                let sched = String(l.keyword.prefix(2))
                guard vs.scheduler == sched && schedulerSet else {
                    warn(l, "'\(l.keyword)' ignored: scheduler \(sched) not set before it")
                    continue
                }
                vs.schedulerFlags.insert(l.keyword.hasSuffix("port") ? .hashPort : .fallback)
            case "mh-sorted": // lvsd's own (docs/compatibility.md); keepalived itself knows it as flag-3
                guard vs.scheduler == "mh" && schedulerSet else {
                    warn(l, "'mh-sorted' ignored: scheduler mh not set before it")
                    continue
                }
                vs.schedulerFlags.insert(.sortedTable)
            case "flag-1": vs.schedulerFlags.insert(.sched1)
            case "flag-2": vs.schedulerFlags.insert(.sched2)
            case "flag-3": vs.schedulerFlags.insert(.sched3)
            case "hashed": break
            case "delay_loop": if let t = timer(l, min: 1) { vs.delayLoop = t }
            case "connect_timeout": if let t = timer(l) { vs.connectTimeout = t }
            case "retry": if let v = integerArg(l, 1...UInt64(UInt32.max)) { vs.retry = UInt32(v) }
            case "delay_before_retry": if let t = timer(l) { vs.delayBeforeRetry = t }
            case "warmup": if let t = timer(l) { vs.warmup = t }
            case "inhibit_on_failure": vs.inhibitOnFailure = bool(l) ?? vs.inhibitOnFailure
            case "alpha": vs.alpha = true
            case "omega": vs.omega = true
            case "quorum":
                if let t = arg(l) {
                    if let v = integer(l, t, 1...UInt64(UInt32.max)) { vs.quorum = UInt32(v) } else { vs.quorum = 1 }
                }
            case "hysteresis": if let v = integerArg(l, 0...UInt64(UInt32.max)) { vs.hysteresis = UInt32(v) }
            case "quorum_up": vs.quorumUp = script(l)
            case "quorum_down": vs.quorumDown = script(l)
            case "sorry_server":
                guard let t = arg(l), let a = address(l, t), let p = port(l, 2) else { continue }
                var s = KeepalivedRealServer(address: a, port: p ?? 0)
                s.configuredPort = p
                s.file = l.file
                s.line = l.line
                vs.sorryServer = s
            case "sorry_server_inhibit":
                if vs.sorryServer == nil { warn(l, "sorry_server_inhibit before sorry_server - ignored") } else { vs.sorryServerInhibit = true }
            case "sorry_server_lvs_method": sorryMethod = method(l, for: "sorry server")
            case "virtualhost": if let v = arg(l) { vs.virtualhost = v }
            case "ha_suspend":
                vs.haSuspend = true
                warn(l, "ha_suspend parsed but not applied: checkers always run")
            case "weight":
                if let v = integerArg(l, 1...UInt64(Int32.max)) { vs.weight = Int32(v); weightSet = true }
            case "ip_family":
                guard let v = arg(l) else { continue }
                switch v {
                case "inet": vs.ipv6Family = false
                case "inet6": vs.ipv6Family = true
                default: error(l, "unknown ip_family '\(v)'")
                }
            case "smtp_alert", "snmp_name": break
            case "real_server":
                if let rs = parseRealServer(l) { vs.realServers.append(rs) }
            default:
                unknown(l, in: "virtual_server")
            }
        }
        _ = weightSet
        finishVirtualServer(&vs, h, protocolSet: protocolSet, schedulerSet: schedulerSet, methodSet: methodSet, sorryMethod: sorryMethod)
    }

    /// keepalived's defaults and post-parse fixes (§1.7, §1.8, §1.9).
    mutating func finishVirtualServer(_ vs: inout KeepalivedVirtualServer, _ h: KeepalivedLine, protocolSet: Bool, schedulerSet: Bool, methodSet: Bool, sorryMethod: KeepalivedMethod?) {
        let name = "virtual server \(vs.address)"
        var isFwmark = false
        var vsPort: UInt16 = 0
        var vsIPv6: Bool?
        switch vs.address {
        case .fwmark:
            isFwmark = true
            if protocolSet { warn(h, "\(name): protocol specified for fwmark - protocol will be ignored") }
            vs.proto = .tcp
            if vs.haSuspend { warn(h, "\(name): ha_suspend is not allowed with fwmark - clearing"); vs.haSuspend = false }
            vsIPv6 = vs.ipv6Family
        case let .address(a, p):
            vsPort = p
            vsIPv6 = !a.isIPv4
            if !protocolSet { warn(h, "\(name): no protocol set - defaulting to UDP") }
            if p == 0 && vs.persistenceTimeout == nil {
                warn(h, "\(name): zero port only valid for persistent services - setting persistence 360")
                vs.persistenceTimeout = 360
            }
        case let .group(g):
            if !protocolSet { warn(h, "\(name): no protocol set - defaulting to UDP") }
            if config.groups[g] == nil { error(h, "\(name): virtual_server_group \(g) is not defined (it must come first) - skipping"); return }
        }
        if !schedulerSet { warn(h, "\(name): no scheduler set - defaulting to wlc") }
        if !methodSet { warn(h, "\(name): no forwarding method set, setting default NAT") }
        if vs.onePacket && !isFwmark && vs.proto != .udp {
            warn(h, "\(name): ops is only valid for UDP services - clearing")
            vs.onePacket = false
        }

        // Real servers: inherit VS settings, port rules, duplicates, family.
        var seen = Set<RealServerIdentity>()
        var kept: [KeepalivedRealServer] = []
        for var rs in vs.realServers {
            let rl = KeepalivedLine(file: rs.file, line: rs.line, words: ["real_server"], raw: "real_server")
            rs.method = rs.configuredMethod ?? vs.method
            rs.weight = rs.configuredWeight ?? vs.weight
            rs.inhibitOnFailure = rs.configuredInhibit ?? vs.inhibitOnFailure
            rs.alpha = rs.configuredAlpha ?? vs.alpha
            rs.virtualhost = rs.virtualhost ?? vs.virtualhost
            guard fixPort(&rs, vs: vs, vsPort: vsPort, isFwmark: isFwmark, rl: rl, what: "real server") else { continue }
            if let six = vsIPv6, six == rs.address.isIPv4, rs.method.method != .tunnel {
                error(rl, "real server \(rs.address.bracketed) address family does not match \(name) - skipping")
                continue
            }
            if seen.contains(rs.identity) {
                warn(rl, "real server \(rs.identity) is duplicated - removing second rs")
                continue
            }
            seen.insert(rs.identity)
            rs.checkers = rs.checkers.map { resolve($0, rs: rs, vs: vs) }
            kept.append(rs)
        }
        vs.realServers = kept
        if var s = vs.sorryServer {
            s.method = sorryMethod ?? vs.method
            s.weight = 1
            let sl = KeepalivedLine(file: s.file, line: s.line, words: ["sorry_server"], raw: "sorry_server")
            if fixPort(&s, vs: vs, vsPort: vsPort, isFwmark: isFwmark, rl: sl, what: "sorry server") { vs.sorryServer = s } else { vs.sorryServer = nil }
        }
        if vs.realServers.isEmpty {
            warn(h, "\(name) has no real servers - removing")
            return
        }
        if vs.method.method == .masquerade || vs.realServers.contains(where: { $0.method.method == .masquerade }) {
            warn(h, "\(name): NAT real servers need the afpacket or tc data plane (lvsd refuses them on afxdp and xdp)")
        }
        let total = vs.realServers.reduce(UInt64(0)) { $0 + UInt64(max(0, $1.weight)) }
        if total > 0 && UInt64(vs.quorum) > total {
            warn(h, "\(name): quorum \(vs.quorum) exceeds the total weight - reducing quorum to \(total)")
            vs.quorum = UInt32(total)
        }
        if vs.hysteresis >= vs.quorum {
            let h2 = vs.quorum - 1
            warn(h, "\(name): hysteresis \(vs.hysteresis) >= quorum \(vs.quorum) - setting hysteresis to \(h2)")
            vs.hysteresis = h2
        }
        config.virtualServers.append(vs)
    }

    /// §1.8 port rules. Returns false when the server must be skipped.
    mutating func fixPort(_ rs: inout KeepalivedRealServer, vs: KeepalivedVirtualServer, vsPort: UInt16, isFwmark: Bool, rl: KeepalivedLine, what: String) -> Bool {
        let nat = rs.method.method == .masquerade
        if isFwmark {
            if !nat {
                if let p = rs.configuredPort, p != 0 { warn(rl, "\(what) \(rs.address.bracketed):\(p) has port specified - clearing") }
                rs.port = 0
            } else { rs.port = rs.configuredPort ?? 0 }
            return true
        }
        if case .group = vs.address {
            // The port follows each group entry (DR/TUN), or stays as given (NAT).
            rs.port = rs.configuredPort ?? 0
            return true
        }
        if nat {
            rs.port = rs.configuredPort ?? vsPort
        } else {
            if let p = rs.configuredPort, p != vsPort {
                warn(rl, "\(what) \(rs.address.bracketed):\(p) and virtual server port \(vsPort): ports don't match - resetting")
            }
            rs.port = vsPort
        }
        return true
    }

    /// Resolves a checker's timing: checker, then real server, then virtual server, then type default.
    func resolve(_ c: KeepalivedChecker, rs: KeepalivedRealServer, vs: KeepalivedVirtualServer) -> KeepalivedChecker {
        var c = c
        var t = CheckerTiming()
        t.delayLoop = c.configuredDelayLoop ?? rs.configuredDelayLoop ?? vs.delayLoop
        t.connectTimeout = c.configuredConnectTimeout ?? rs.configuredConnectTimeout ?? vs.connectTimeout
        let typeRetry: UInt32
        let typeDelay: Duration
        switch c.kind {
        case .misc: typeRetry = 0; typeDelay = .seconds(1)
        case .http, .ssl: typeRetry = 1; typeDelay = .seconds(3)
        case .unsupported("DNS_CHECK"): typeRetry = 3; typeDelay = t.delayLoop
        default: typeRetry = 1; typeDelay = .seconds(1)
        }
        t.retry = c.configuredRetry ?? rs.configuredRetry ?? vs.retry ?? typeRetry
        t.delayBeforeRetry = c.configuredDelayBeforeRetry ?? rs.configuredDelayBeforeRetry ?? vs.delayBeforeRetry ?? typeDelay
        t.warmup = c.configuredWarmup ?? rs.configuredWarmup ?? vs.warmup ?? t.delayLoop
        t.alpha = c.configuredAlpha ?? rs.alpha
        c.timing = t
        if c.kind == .misc && c.miscTimeout == nil { c.miscTimeout = vs.delayLoop }
        if c.virtualhost == nil { c.virtualhost = rs.virtualhost }
        return c
    }

    // MARK: real_server

    mutating func parseRealServer(_ h: KeepalivedLine) -> KeepalivedRealServer? {
        guard let t = arg(h) else { skipBlockIfAny(); return nil }
        guard let a = IPAddress(t), let p = port(h, 2) else {
            error(h, "Invalid real server ip address/port \(h.words.dropFirst().joined(separator: "/")) - skipping")
            skipBlockIfAny()
            return nil
        }
        var rs = KeepalivedRealServer(address: a, port: p ?? 0)
        rs.configuredPort = p
        rs.file = h.file
        rs.line = h.line
        guard openBlock(h) else { return rs }
        while let l = next(in: h) {
            switch l.keyword {
            case "weight": if let v = integerArg(l, 0...UInt64(Int32.max)) { rs.configuredWeight = Int32(v) }
            case "lvs_method": if let m = method(l, for: "real server") { rs.configuredMethod = m }
            case "uthreshold": if let v = integerArg(l, 0...UInt64(UInt32.max)) { rs.upperThreshold = UInt32(v) }
            case "lthreshold": if let v = integerArg(l, 0...UInt64(UInt32.max)) { rs.lowerThreshold = UInt32(v) }
            case "inhibit_on_failure": rs.configuredInhibit = bool(l)
            case "alpha": rs.configuredAlpha = bool(l)
            case "notify_up": rs.notifyUp = script(l)
            case "notify_down": rs.notifyDown = script(l)
            case "retry": if let v = integerArg(l, 1...UInt64(UInt32.max)) { rs.configuredRetry = UInt32(v) }
            case "delay_before_retry": rs.configuredDelayBeforeRetry = timer(l)
            case "warmup": rs.configuredWarmup = timer(l)
            case "connect_timeout": rs.configuredConnectTimeout = timer(l)
            case "delay_loop": rs.configuredDelayLoop = timer(l, min: 1)
            case "virtualhost": if let v = arg(l) { rs.virtualhost = v }
            case "smtp_alert": break
            case "TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK":
                if let c = parseChecker(l) { rs.checkers.append(c) }
            case _ where Self.unsupportedCheckers.contains(l.keyword):
                warn(l, "\(l.keyword) is not supported - checker ignored (the real server is not checked by it)")
                skipBlockIfAny()
                rs.checkers.append(KeepalivedChecker(kind: .unsupported(l.keyword)))
            default:
                unknown(l, in: "real_server")
            }
        }
        return rs
    }

    // MARK: checkers

    mutating func parseChecker(_ h: KeepalivedLine) -> KeepalivedChecker? {
        let kind: CheckerKind
        switch h.keyword {
        case "TCP_CHECK": kind = .tcp
        case "HTTP_GET": kind = .http
        case "SSL_GET": kind = .ssl
        default: kind = .misc
        }
        var c = KeepalivedChecker(kind: kind)
        guard openBlock(h) else { return nil }
        let isHTTP = kind == .http || kind == .ssl
        while let l = next(in: h) {
            switch l.keyword {
            case "connect_ip" where kind != .misc: if let t = arg(l) { c.connectIP = address(l, t) }
            case "connect_port" where kind != .misc: if let v = integerArg(l, 1...65535) { c.connectPort = UInt16(v) }
            case "bindto" where kind != .misc: if let t = arg(l) { c.bindTo = address(l, t) }
            case "bind_port" where kind != .misc: if let v = integerArg(l, 1...65535) { c.bindPort = UInt16(v) }
            case "bind_if" where kind != .misc: c.bindInterface = arg(l)
            case "connect_timeout" where kind != .misc: c.configuredConnectTimeout = timer(l)
            case "fwmark" where kind != .misc: if let v = integerArg(l, 0...UInt64(UInt32.max)) { c.fwmark = UInt32(v) }
            case "retry": if let v = integerArg(l, 0...UInt64(UInt32.max)) { c.configuredRetry = UInt32(v) }
            case "nb_get_retry" where isHTTP:
                warn(l, "nb_get_retry is deprecated - use retry")
                if let v = integerArg(l, 0...UInt64(UInt32.max)) { c.configuredRetry = UInt32(v) }
            case "nb_get_retry":
                warn(l, "unknown keyword 'nb_get_retry' in \(h.keyword) - ignored, retry keeps its default (keepalived accepts it only in HTTP_GET/SSL_GET)")
            case "delay_before_retry": c.configuredDelayBeforeRetry = timer(l)
            case "warmup": c.configuredWarmup = timer(l)
            case "delay_loop": c.configuredDelayLoop = timer(l, min: 1)
            case "alpha": c.configuredAlpha = bool(l)
            case "log_all_failures": c.logAllFailures = bool(l) ?? false
            case "url" where isHTTP:
                if let u = parseURL(l, checker: h.keyword) { c.urls.append(u) }
            case "virtualhost" where isHTTP: c.virtualhost = arg(l)
            case "http_protocol" where isHTTP:
                guard let v = arg(l) else { continue }
                if ["1.0", "1.0C", "1.0c", "1.1"].contains(v) { c.httpProtocol = v.uppercased() } else { error(l, "invalid http_protocol '\(v)'") }
            case "fast_recovery" where isHTTP: c.fastRecovery = bool(l) ?? false
            case "enable_sni" where kind == .ssl: c.enableSNI = bool(l) ?? false
            case "sni_name" where kind == .ssl: c.sniName = arg(l)
            case "tls_compliant" where kind == .ssl: break
            case "misc_path" where kind == .misc:
                let words = KeepalivedLexer.shellWords(rest(of: l))
                if words.isEmpty { _ = arg(l); continue }
                c.miscPath = words.count == 1 ? words[0] : rest(of: l)
            case "misc_timeout" where kind == .misc:
                if let v = integerArg(l, 1...UInt64(UInt32.max)) { c.miscTimeout = .seconds(Int64(v)) }
            case "misc_dynamic" where kind == .misc: c.miscDynamic = bool(l) ?? false
            case "user" where kind == .misc:
                if arg(l) != nil {
                    c.user = Array(l.words.dropFirst())
                }
            default:
                unknown(l, in: h.keyword)
            }
        }
        if isHTTP && c.urls.isEmpty {
            error(h, "\(h.keyword) has no url with a path - checker removed")
            return nil
        }
        if kind == .misc && c.miscPath == nil {
            error(h, "MISC_CHECK has no misc_path - checker removed")
            return nil
        }
        return c
    }

    mutating func parseURL(_ h: KeepalivedLine, checker: String) -> KeepalivedURL? {
        var u = KeepalivedURL(path: "")
        guard openBlock(h) else { return nil }
        while let l = next(in: h) {
            switch l.keyword {
            case "path": if let v = arg(l) { u.path = v }
            case "digest":
                guard let v = arg(l) else { continue }
                if v.count == 32 && v.allSatisfy({ $0.isHexDigit }) { u.digest = v.lowercased() } else { error(l, "invalid digest '\(v)' (32 hex digits expected)") }
            case "status_code":
                for item in l.words.dropFirst() {
                    let parts = item.split(separator: "-", omittingEmptySubsequences: false)
                    let nums = parts.map { Int($0) }
                    if parts.count <= 2, nums.allSatisfy({ $0 != nil && (100...599).contains($0!) }) {
                        let lo = nums[0]!, hi = nums.last!!
                        if lo <= hi { u.statusCodes.append(lo...hi); continue }
                    }
                    error(l, "Invalid \(checker) status code '\(item)'")
                }
                if l.words.count < 2 { _ = arg(l) }
            case "virtualhost": u.virtualhost = arg(l)
            case "regex", "regex_no_match", "regex_options", "regex_min_offset", "regex_max_offset", "regex_stack":
                warn(l, "\(l.keyword) is not supported - ignored")
            case "tls_compliant": break
            default:
                unknown(l, in: "url")
            }
        }
        if u.path.isEmpty {
            error(h, "url without path - removed")
            return nil
        }
        return u
    }
}
