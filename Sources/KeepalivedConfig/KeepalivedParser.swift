import LVSModel

/// Entry point: reads a keepalived.conf (with its includes) into a `KeepalivedConfig`.
public enum KeepalivedLoader {
    /// Loads `path`. Throws `KeepalivedLoadError` when the file cannot be read or keepalived would
    /// refuse to start (a keyword missing its parameter); otherwise returns the configuration and
    /// every warning and error (errors are skipped items, as keepalived does at run time).
    /// `configID` selects `@ID` lines (default: first label of the host name).
    public static func load(path: String, configID: String? = nil) throws -> (KeepalivedConfig, [KeepalivedDiagnostic]) {
        var lexer = KeepalivedLexer(configID: configID ?? KeepalivedLexer.defaultConfigID())
        let lines = try lexer.lex(file: path)
        return try finish(lines, lexer.diagnostics)
    }

    /// Parses configuration text as if it were the file `file` (includes relative to its directory).
    public static func parse(text: String, file: String = "keepalived.conf", configID: String = "") throws -> (KeepalivedConfig, [KeepalivedDiagnostic]) {
        var lexer = KeepalivedLexer(configID: configID)
        let lines = try lexer.lex(text: text, path: file)
        return try finish(lines, lexer.diagnostics)
    }

    private static func finish(_ lines: [KeepalivedLine], _ lexDiagnostics: [KeepalivedDiagnostic]) throws -> (KeepalivedConfig, [KeepalivedDiagnostic]) {
        var parser = KeepalivedParser(lines: lines)
        parser.diagnostics = lexDiagnostics
        parser.parseTopLevel()
        if parser.fatal == nil { parser.finishVRRP() }
        if let fatal = parser.fatal {
            throw KeepalivedLoadError(diagnostics: parser.diagnostics, message: fatal.description)
        }
        return (parser.config, parser.diagnostics)
    }
}

struct KeepalivedParser {
    var lines: [KeepalivedLine]
    var i = 0
    var diagnostics: [KeepalivedDiagnostic] = []
    var config = KeepalivedConfig()
    var fatal: KeepalivedDiagnostic?
    /// The VRRP blocks and global settings read so far (`finishVRRP` turns them into `config.vrrp`).
    var vrrp = VRRPParseState()

    static let schedulers: Set<String> = ["rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq", "twos"]
    static let otherTopBlocks: Set<String> = [
        "static_ipaddress", "static_routes", "static_rules", "track_file", "vrrp_track_file", "SSL",
        "linkbeat_interfaces", "garp_group", "vrrp_track_process", "track_process", "bfd_instance",
        "net_namespace", "use_pid_dir", "instance",
    ]
    /// Keywords of blocks and settings we parse but do not apply whose keepalived 2.2.7 handler
    /// reads its first parameter unconditionally, so a bare one is fatal there (vrrp_parser.c,
    /// global_parser.c): we report it the same way instead of skipping it silently.
    static let ignoredKeywordsNeedingValue: Set<String> = [
        // vrrp_instance, vrrp_script, vrrp_sync_group
        "advert_int", "auth_pass", "auth_type", "debug", "down_timer_adverts", "fall", "garp_interval",
        "garp_lower_prio_delay", "garp_lower_prio_repeat", "garp_master_delay", "garp_master_refresh",
        "garp_master_refresh_repeat", "garp_master_repeat", "gna_interval", "interface", "interval",
        "lvs_sync_daemon_interface", "mcast_dst_ip", "mcast_src_ip", "notify", "notify_backup", "notify_fault",
        "notify_master", "notify_master_rx_lower_pri", "notify_stop", "preempt_delay", "priority", "quorum",
        "quorum_max", "rise", "state", "timeout", "unicast_ttl", "version", "virtual_router_id", "vrf",
        // global_defs
        "checker_process_name", "nftables_priority", "smtp_connect_timeout", "vrrp_down_timer_adverts",
        "vrrp_garp_interval", "vrrp_garp_lower_prio_delay", "vrrp_garp_lower_prio_repeat", "vrrp_garp_master_delay",
        "vrrp_garp_master_refresh", "vrrp_garp_master_refresh_repeat", "vrrp_garp_master_repeat",
        "vrrp_gna_interval", "vrrp_mcast_group4", "vrrp_mcast_group6", "vrrp_process_name", "vrrp_startup_delay",
        "vrrp_version",
    ]
    /// Keywords old configurations still carry: ignored with a warning instead of an error (§6).
    static let legacy: Set<String> = ["lvs_id", "nat_mask", "net_mask"]
    static let unsupportedCheckers: Set<String> = ["SMTP_CHECK", "DNS_CHECK", "UDP_CHECK", "PING_CHECK", "FILE_CHECK", "BFD_CHECK"]

    // MARK: diagnostics

    mutating func warn(_ l: KeepalivedLine, _ message: String) {
        diagnostics.append(.init(.warning, file: l.file, line: l.line, message))
    }

    mutating func error(_ l: KeepalivedLine, _ message: String) {
        diagnostics.append(.init(.error, file: l.file, line: l.line, message))
    }

    mutating func unknown(_ l: KeepalivedLine, in context: String) {
        if Self.legacy.contains(l.keyword) {
            warn(l, "obsolete keyword '\(l.keyword)' in \(context) - ignored")
        } else {
            error(l, "unknown keyword '\(l.keyword)' in \(context)")
        }
        skipBlockIfAny()
    }

    // MARK: block structure

    /// Consumes the `{` that must follow a block header.
    mutating func openBlock(_ header: KeepalivedLine) -> Bool {
        if i < lines.count, lines[i].isOpen {
            i += 1
            return true
        }
        error(header, "Missing '{' at beginning of configuration block '\(header.keyword)'")
        return false
    }

    /// The next line inside the current block, or nil after its `}` (or at the end of input).
    mutating func next(in header: KeepalivedLine) -> KeepalivedLine? {
        while i < lines.count {
            let l = lines[i]
            i += 1
            if l.isClose { return nil }
            if l.isOpen {
                error(l, "Unexpected '{' - block skipped")
                i -= 1
                skipBlockIfAny()
                continue
            }
            return l
        }
        error(header, "missing '}' at end of '\(header.keyword)' block")
        return nil
    }

    /// Skips a balanced `{ … }` if one follows, reporting a keyword of `ignoredKeywordsNeedingValue`
    /// without its value as keepalived does (fatal).
    mutating func skipIgnoredBlockIfAny() {
        guard i < lines.count, lines[i].isOpen else { return }
        let start = i
        skipBlockIfAny()
        for l in lines[start..<i] where !l.isOpen && !l.isClose {
            if l.words.count < 2, Self.ignoredKeywordsNeedingValue.contains(l.keyword) { missingParameter(l, at: 1) }
        }
    }

    /// Skips a balanced `{ … }` if one follows.
    mutating func skipBlockIfAny() {
        guard i < lines.count, lines[i].isOpen else { return }
        var depth = 0
        while i < lines.count {
            if lines[i].isOpen { depth += 1 }
            if lines[i].isClose { depth -= 1 }
            i += 1
            if depth == 0 { return }
        }
    }

    // MARK: values

    /// Argument `n`; a missing one is fatal, as in keepalived.
    mutating func arg(_ l: KeepalivedLine, _ n: Int = 1) -> String? {
        if n < l.words.count { return l.words[n] }
        missingParameter(l, at: n)
        return nil
    }

    /// keepalived 2.2.7's fatal error for a keyword whose value is not on its line (lib/parser.c
    /// null_strvec); word positions count from 1, so the first parameter is word position 2.
    mutating func missingParameter(_ l: KeepalivedLine, at n: Int) {
        let message = Self.missingParameterMessage(words: l.words, index: n)
        let d = KeepalivedDiagnostic(.error, file: l.file, line: l.line, message)
        diagnostics.append(d)
        if fatal == nil { fatal = d }
    }

    static func missingParameterMessage(words: [String], index n: Int) -> String {
        let first = words.first ?? "***MISSING ***"
        if n > 0, n - 1 < words.count {
            return "*** Configuration line starting `\(first)` is missing a parameter after keyword `\(words[n - 1])` at word position \(n + 1)"
        }
        return "*** Configuration line starting `\(first)` is missing a parameter at word position \(n + 1)"
    }

    /// `<BOOL>`: optional, bare keyword means true.
    /// An invalid word is reported with `invalid(word)` (keepalived's message for the keyword).
    mutating func bool(_ l: KeepalivedLine, invalid: ((String) -> String)? = nil) -> Bool? {
        guard l.words.count > 1 else { return true }
        // keepalived's check_true_false
        switch l.words[1] {
        case "on", "true", "yes": return true
        case "off", "false", "no": return false
        default:
            error(l, invalid?(l.words[1]) ?? "invalid boolean '\(l.words[1])' for '\(l.keyword)'")
            return nil
        }
    }

    /// Decimal integer in `range`. A valid prefix followed by junk is accepted (truncated) with an
    /// error, as keepalived does at run time.
    mutating func integer(_ l: KeepalivedLine, _ text: String, _ range: ClosedRange<UInt64>) -> UInt64? {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let v = UInt64(digits) else {
            error(l, "invalid number '\(text)' for '\(l.keyword)'")
            return nil
        }
        guard range.contains(v) else {
            error(l, "'\(l.keyword)' value \(text) out of range \(range.lowerBound)-\(range.upperBound)")
            return nil
        }
        if digits.count != text.count {
            error(l, "invalid number '\(text)' for '\(l.keyword)' - truncated to \(v)")
        }
        return v
    }

    mutating func integerArg(_ l: KeepalivedLine, _ range: ClosedRange<UInt64>) -> UInt64? {
        guard let t = arg(l) else { return nil }
        return integer(l, t, range)
    }

    /// `<TIMER>`: seconds with up to 6 fractional digits.
    mutating func timer(_ l: KeepalivedLine, min: Int64 = 0) -> Duration? {
        guard let t = arg(l) else { return nil }
        guard let us = Self.parseTimer(t) else {
            error(l, "invalid number '\(t)' for '\(l.keyword)'")
            return nil
        }
        if t.split(separator: ".").dropFirst().first.map({ $0.count > 6 }) ?? false {
            warn(l, "'\(l.keyword)' \(t) has more than 6 decimal places - rounded")
        }
        guard us >= min else {
            error(l, "'\(l.keyword)' value \(t) is too small")
            return nil
        }
        return .microseconds(us)
    }

    /// Microseconds from `S[.ffffff]`; nil for anything else (signs, hex, exponents).
    static func parseTimer(_ t: String) -> Int64? {
        let parts = t.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, whole.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        var frac = parts.count > 1 ? String(parts[1]) : ""
        guard frac.allSatisfy({ $0.isASCII && $0.isNumber }), !(whole.isEmpty && frac.isEmpty) else { return nil }
        guard whole.count <= 12 else { return nil }
        var roundUp = false
        if frac.count > 6 {
            roundUp = frac[frac.index(frac.startIndex, offsetBy: 6)] >= "5"
            frac = String(frac.prefix(6))
        }
        while frac.count < 6 { frac += "0" }
        let s = Int64(whole.isEmpty ? "0" : String(whole))!
        return s * 1_000_000 + Int64(frac)! + (roundUp ? 1 : 0)
    }

    mutating func address(_ l: KeepalivedLine, _ text: String) -> IPAddress? {
        if let a = IPAddress(text) { return a }
        if text == "0.0.0.0" { return .ipv4Zero }
        error(l, "invalid IP address '\(text)' for '\(l.keyword)'")
        return nil
    }

    /// Optional port argument at `n`: 0 means "no port".
    mutating func port(_ l: KeepalivedLine, _ n: Int) -> UInt16?? {
        guard n < l.words.count else { return .some(nil) }
        guard let v = integer(l, l.words[n], 0...65535) else { return nil }
        return .some(v == 0 ? nil : UInt16(v))
    }

    /// The script command of notify_*, quorum_* (first shell word of the arguments).
    mutating func script(_ l: KeepalivedLine) -> String? {
        let words = KeepalivedLexer.shellWords(rest(of: l))
        guard let cmd = words.first else { _ = arg(l); return nil }
        if words.count > 1 { warn(l, "'\(l.keyword)': user/group '\(words.dropFirst().joined(separator: " "))' ignored - notify and quorum scripts run as script_user (global_defs)") }
        return cmd
    }

    /// The raw text after the keyword.
    func rest(of l: KeepalivedLine) -> String {
        let raw = l.raw
        guard let r = raw.range(of: l.keyword) else { return "" }
        return String(raw[r.upperBound...]).trimmingCharacters(in: .whitespaces)
    }

    mutating func method(_ l: KeepalivedLine, for what: String) -> KeepalivedMethod? {
        guard let v = arg(l) else { return nil }
        var m: KeepalivedMethod
        switch v {
        case "NAT": m = KeepalivedMethod(.masquerade)
        case "DR": m = KeepalivedMethod(.directRoute)
        case "TUN":
            m = KeepalivedMethod(.tunnel)
            var k = 2
            while k < l.words.count {
                switch l.words[k] {
                case "type":
                    k += 1
                    switch k < l.words.count ? l.words[k] : "" {
                    case "ipip": m.tunnelType = .ipip
                    case "gue": m.tunnelType = .gue
                    case "gre": m.tunnelType = .gre
                    default: error(l, "invalid tunnel type for \(what)")
                    }
                case "port":
                    k += 1
                    if k < l.words.count, let p = integer(l, l.words[k], 1...65535) { m.tunnelPort = UInt16(p) }
                case "nocsum": m.tunnelFlags = 0
                case "csum": m.tunnelFlags = 1
                case "remcsum": m.tunnelFlags = 2
                default: error(l, "unknown tunnel option '\(l.words[k])' for \(what)")
                }
                k += 1
            }
            if m.tunnelType == .gue && m.tunnelPort == 0 { error(l, "gue tunnel needs a port for \(what)") }
        default:
            error(l, "unknown [\(v)] routing method for \(what)")
            return nil
        }
        return m
    }

    // MARK: top level

    mutating func parseTopLevel() {
        while i < lines.count {
            let l = lines[i]
            i += 1
            switch l.keyword {
            case "global_defs": parseGlobal(l)
            case "virtual_server_group": parseGroup(l)
            case "virtual_server": parseVirtualServer(l)
            case "vrrp_instance": parseVRRPInstance(l)
            case "vrrp_script": parseVRRPScript(l)
            case "vrrp_sync_group": parseVRRPSyncGroup(l)
            case _ where Self.otherTopBlocks.contains(l.keyword):
                config.ignoredBlocks.append(.init(keyword: l.keyword, name: l.words.count > 1 ? l.words[1] : nil, file: l.file, line: l.line))
                let what = l.words.prefix(2).joined(separator: " ")
                warn(l, "\(what) parsed but not applied (not supported by swift-lvs)")
                if i < lines.count, lines[i].isOpen { skipIgnoredBlockIfAny() }
            case "}":
                error(l, "Extra '}' found")
            default:
                unknown(l, in: "top level")
            }
        }
    }

    mutating func parseGlobal(_ h: KeepalivedLine) {
        guard openBlock(h) else { return }
        while let l = next(in: h) {
            if parseVRRPGlobal(l) { continue }
            switch l.keyword {
            case "router_id": if let v = arg(l) { config.globals.routerID = v }
            case "lvs_timeouts":
                var t = IPVSTimeouts(tcp: 0, tcpFin: 0, udp: 0)
                var k = 1
                while k + 1 < l.words.count {
                    let v = integer(l, l.words[k + 1], 0...UInt64(Int32.max)).map { UInt32($0) }
                    switch l.words[k] {
                    case "tcp": t.tcp = v ?? 0
                    case "tcpfin": t.tcpFin = v ?? 0
                    case "udp": t.udp = v ?? 0
                    default: error(l, "unknown lvs_timeouts option '\(l.words[k])'")
                    }
                    k += 2
                }
                if k < l.words.count { error(l, "lvs_timeouts '\(l.words[k])' has no value") }
                config.globals.lvsTimeouts = t
            case "lvs_flush": config.globals.lvsFlush = bool(l) ?? false
            case "lvs_flush_on_stop": config.globals.lvsFlushOnStop = true
            case "checker_log_all_failures": config.globals.checkerLogAllFailures = bool(l) ?? false
            case "rs_init_notifies": config.globals.rsInitNotifies = true
            case "enable_script_security": config.globals.enableScriptSecurity = true
            case "script_user": if arg(l) != nil { config.globals.scriptUser = Array(l.words.dropFirst()) }
            case "notification_email":
                skipBlockIfAny()
            case _ where l.keyword.hasPrefix("vrrp_") || l.keyword.hasPrefix("smtp_") || l.keyword.hasPrefix("snmp_") || l.keyword.hasPrefix("notify_fifo") || l.keyword.hasPrefix("lvs_notify_fifo") || l.keyword.hasPrefix("enable_") || l.keyword.hasPrefix("max_auto_priority")
                || ["notification_email_from", "no_checker_emails", "dynamic_interfaces", "process_names", "startup_script", "shutdown_script", "umask", "nftables", "nftables_priority", "nftables_ifindex", "checker_process_name", "vrrp_process_name", "script_timeout", "router_id"].contains(l.keyword):
                // Accepted: alerting, the remaining VRRP and process settings we do not apply.
                if l.words.count < 2, Self.ignoredKeywordsNeedingValue.contains(l.keyword) { missingParameter(l, at: 1) }
                skipBlockIfAny()
            default:
                unknown(l, in: "global_defs")
            }
        }
    }

    mutating func parseGroup(_ h: KeepalivedLine) {
        guard let name = arg(h) else { skipBlockIfAny(); return }
        var group = VirtualServerGroup(name: name)
        guard openBlock(h) else { return }
        while let l = next(in: h) {
            if l.keyword == "fwmark" {
                guard let t = arg(l), let m = integer(l, t, 0...UInt64(UInt32.max)) else { continue }
                var v6 = false
                if l.words.count > 2 {
                    switch l.words[2] {
                    case "inet": v6 = false
                    case "inet6": v6 = true
                    default: error(l, "invalid address family '\(l.words[2])' in virtual_server_group \(name)")
                    }
                }
                group.entries.append(.fwmark(UInt32(m), ipv6: v6))
                continue
            }
            guard let addresses = expandRange(l, l.keyword) else { continue }
            guard let p = port(l, 1) else { continue }
            for a in addresses { group.entries.append(.address(a, port: p ?? 0)) }
        }
        if group.entries.isEmpty {
            warn(h, "virtual_server_group \(name) has no valid entries - removing")
            return
        }
        if config.groups[name] != nil { warn(h, "virtual_server_group \(name) defined again - the last definition is used") }
        config.groups[name] = group
    }

    /// `IP`, `a.b.c.d-e`, `a.b.c.d-e.f.g.h`, `a.b.c.d/nn` (and the IPv6 forms on the last group).
    mutating func expandRange(_ l: KeepalivedLine, _ text: String) -> [IPAddress]? {
        if let a = IPAddress(text) { return [a] }
        if let slash = text.firstIndex(of: "/") {
            guard let base = IPAddress(String(text[..<slash])), let len = Int(text[text.index(after: slash)...]) else {
                error(l, "invalid virtual_server_group entry '\(text)'"); return nil
            }
            let bits = base.isIPv4 ? 32 : 128
            guard len <= bits, len >= bits - 16, base.masked(prefix: len) == base else {
                error(l, "invalid virtual_server_group range '\(text)' (host bits must be zero, at most 65536 addresses)"); return nil
            }
            let count = UInt64(1) << UInt64(bits - len)
            return (0..<count).map { IPAddress(high: base.high, low: base.low &+ $0) }
        }
        if let dash = text.lastIndex(of: "-") {
            let first = String(text[..<dash]), last = String(text[text.index(after: dash)...])
            guard let base = IPAddress(first) else { error(l, "invalid virtual_server_group entry '\(text)'"); return nil }
            var end: IPAddress?
            if let full = IPAddress(last) {
                end = full
            } else if base.isIPv4, let octet = UInt64(last), octet <= 255 {
                end = IPAddress(high: base.high, low: (base.low & ~0xFF) | octet)
            } else if !base.isIPv4, let group = UInt64(last, radix: 16), group <= 0xFFFF {
                end = IPAddress(high: base.high, low: (base.low & ~0xFFFF) | group)
            }
            guard let e = end, e.high == base.high, e.low >= base.low, e.low - base.low < 65536 else {
                error(l, "invalid virtual_server_group range '\(text)'"); return nil
            }
            return (0...(e.low - base.low)).map { IPAddress(high: base.high, low: base.low + $0) }
        }
        error(l, "invalid virtual_server_group entry '\(text)'")
        return nil
    }
}
