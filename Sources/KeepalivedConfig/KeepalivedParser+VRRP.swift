import LVSModel
import LVSVRRP

/// What the VRRP part of the parser collects before the cross checks: the settings as the
/// blocks give them, with the lines the checks report at, and the global defaults that
/// keepalived applies to every instance once the whole file is read.
struct VRRPParseState {
    /// An instance as its block wrote it; `settings` gets the defaults in `finishVRRP`.
    struct Instance {
        var settings: VRRPInstanceSettings
        var header: KeepalivedLine
        var interfaceSet = false
        var routerIDSet = false
        var priority: Int?
        var version: Int?
        /// `advert_int` in microseconds.
        var advertMicroseconds: Int64?
        var authType: String?
        var authPassword: [UInt8]?
        var nopreempt = false
        var lowerPriorityNoAdvert: Bool?
        var higherPrioritySendAdvert: Bool?
        var unicastKeyword = false
        /// The family of the first address the block gave (VIP, unicast or multicast address).
        var isIPv6: Bool?
        var garpDelay: VRRPNanoseconds?
        var garpRepeat: Int?
        var garpRefresh: VRRPNanoseconds?
        var garpRefreshRepeat: Int?
        var garpLowerDelay: VRRPNanoseconds?
        var garpLowerRepeat: Int?
        var downTimerAdverts: Int?
        var trackScripts: [(track: VRRPTrack, line: KeepalivedLine)] = []
        var syncDaemonInterface: String?
        /// A list block (`virtual_ipaddress`, `track_script`, …) without its `{` took the lines up
        /// to the next `}`, which closed the instance too (keepalived counts the braces).
        var closedByValueBlock = false
    }

    struct SyncGroup {
        var settings: VRRPSyncGroupSettings
        var header: KeepalivedLine
    }

    var instances: [Instance] = []
    var scripts: [VRRPScriptSettings] = []
    var syncGroups: [SyncGroup] = []
    // global_defs
    var version: Int?
    var gratuitous = VRRPGratuitousSettings()
    var minGarp = false
    var multicastGroup4: IPAddress?
    var multicastGroup6: IPAddress?
    var downTimerAdverts: Int?
    var startupDelay: VRRPNanoseconds = 0
    var lowerPriorityNoAdvert = false
    var higherPrioritySendAdvert = false
    var lvsSyncDaemon: VRRPLVSSyncDaemon?
    var lvsSyncDaemonIDSet = false
    var lvsSyncDaemonLine: KeepalivedLine?
}

extension KeepalivedParser {
    /// vrrp_instance options keepalived 2.2.7 knows that lvsd reads but does not act on: a
    /// warning, and a missing value is fatal as in keepalived for those that take one.
    static let vrrpUnsupportedInstanceOptions: Set<String> = [
        "use_vmac", "vmac_xmit_base", "use_ipvlan", "accept", "no_accept", "strict_mode",
        "dont_track_primary", "skip_check_adv_addr", "track_src_ip", "check_unicast_src", "unicast_ttl",
        "unicast_fault_no_peer", "notify_master_rx_lower_pri", "notify_priority_changes", "linkbeat_use_polling",
        "debug", "vrrp_linkbeat_use_polling", "kernel_rx_buf_size", "track_file", "track_process", "track_bfd",
        "virtual_routes", "virtual_rules", "garp_extra_if", "garp_extra_if_vmac", "vrf", "mcast_ttl",
    ]
    /// vrrp_* settings of global_defs keepalived has and lvsd does not apply (a warning).
    static let vrrpUnsupportedGlobals: Set<String> = [
        "vrrp_strict", "vrrp_iptables", "vrrp_ipsets", "vrrp_nftables", "vrrp_skip_check_adv_addr",
        "vrrp_check_unicast_src",
        "vrrp_garp_extra_if", "vrrp_notify_fifo", "vrrp_notify_fifo_script", "vrrp_no_swap",
        "vrrp_rt_priority", "vrrp_rlimit_rtime", "vrrp_priority", "vrrp_cpu_affinity", "vrrp_netlink_cmd_rcv_bufs",
        "vrrp_netlink_monitor_rcv_bufs", "vrrp_rx_bufs_policy", "vrrp_rx_bufs_multiplier", "vrrp_socket_priority",
        "vrrp_track_process", "vrrp_dont_track_primary",
    ]

    // MARK: numbers, as keepalived's read_*_strvec report them

    /// An integer in `range`; otherwise keepalived's "invalid number" / "outside range" message and nil.
    mutating func vrrpInteger(_ l: KeepalivedLine, _ text: String, _ range: ClosedRange<Int>) -> Int? {
        let body = text.hasPrefix("-") || text.hasPrefix("+") ? text.dropFirst() : Substring(text)
        guard !body.isEmpty, body.allSatisfy({ $0.isASCII && $0.isNumber }), let v = Int(text) else {
            error(l, "invalid number '\(text)'")
            return nil
        }
        guard range.contains(v) else {
            error(l, "number '\(text)' outside range [\(range.lowerBound), \(range.upperBound)]")
            return nil
        }
        return v
    }

    /// A decimal number of seconds in `range` (microseconds), reported as keepalived does.
    mutating func vrrpDecimal(_ l: KeepalivedLine, _ text: String, _ range: ClosedRange<Int64>) -> Int64? {
        guard let us = Self.parseTimer(text) else {
            error(l, "invalid number '\(text)'")
            return nil
        }
        guard range.contains(us) else {
            error(l, "number '\(text)' outside range [\(Self.fixed(range.lowerBound, 6)), \(Self.fixed(range.upperBound, 6))]")
            return nil
        }
        return us
    }

    /// `printf("%.Nf")` of a microsecond count (N ≤ 6, rounded half up).
    static func fixed(_ microseconds: Int64, _ decimals: Int) -> String {
        var scale: Int64 = 1
        for _ in 0..<(6 - decimals) { scale *= 10 }
        let units = (microseconds + scale / 2) / scale
        var unit: Int64 = 1
        for _ in 0..<decimals { unit *= 10 }
        guard decimals > 0 else { return "\(units)" }
        let frac = String(units % unit)
        return "\(units / unit)." + String(repeating: "0", count: decimals - frac.count) + frac
    }

    static func nanoseconds(_ microseconds: Int64) -> VRRPNanoseconds { VRRPNanoseconds(microseconds) * 1000 }

    static func isMulticast(_ a: IPAddress) -> Bool {
        a.isIPv4 ? (a.ipv4Value >> 28) == 0xE : (a.high >> 56) == 0xFF
    }

    /// `notify_* SCRIPT [USER [GROUP]]`, `script …`: the command line and who runs it.
    mutating func vrrpScriptCommand(_ l: KeepalivedLine) -> VRRPScriptCommand? {
        let words = KeepalivedLexer.shellWords(rest(of: l))
        guard let command = words.first else { _ = arg(l); return nil }
        return VRRPScriptCommand(command: command, user: words.count > 1 ? words[1] : nil, group: words.count > 2 ? words[2] : nil)
    }

    /// A weight option of `track_script` / `track_interface` entries: `weight N [reverse]` from word `k`.
    /// Returns nil (after keepalived's message, through `report`) when it is not valid.
    mutating func trackWeight(_ l: KeepalivedLine, from k: Int, range: ClosedRange<Int>, report: (inout KeepalivedParser, String?) -> Void) -> (weight: Int, reverse: Bool)?? {
        guard k < l.words.count else { return .some(nil) }
        guard l.words[k] == "weight" else { return .some(nil) }
        guard k + 1 < l.words.count else { report(&self, nil); return nil }
        guard let w = vrrpInteger(l, l.words[k + 1], range), (-253...253).contains(w) else {
            report(&self, l.words[k + 1]); return nil
        }
        let reverse = k + 2 < l.words.count && l.words[k + 2] == "reverse"
        return .some((w, reverse))
    }

    /// Consumes the `{` of a list block if there is one. keepalived reads a list block without
    /// its `{` anyway (no message): its values are the lines up to the next `}`.
    mutating func openValueBlock() -> Bool {
        guard i < lines.count, lines[i].isOpen else { return false }
        i += 1
        return true
    }

    // MARK: vrrp_instance

    mutating func parseVRRPInstance(_ h: KeepalivedLine) {
        guard h.words.count > 1 else {
            error(h, "vrrp_instance must have a name")
            skipBlockIfAny()
            return
        }
        let name = h.words[1]
        if vrrp.instances.contains(where: { $0.settings.name == name }) {
            error(h, "vrrp instance \(name) already defined")
            skipBlockIfAny()
            return
        }
        var v = VRRPParseState.Instance(settings: VRRPInstanceSettings(name: name, interface: "", virtualRouterID: 0), header: h)
        guard openBlock(h) else { return }
        while !v.closedByValueBlock, let l = next(in: h) {
            parseVRRPInstanceLine(l, &v)
        }
        vrrp.instances.append(v)
    }

    private mutating func parseVRRPInstanceLine(_ l: KeepalivedLine, _ v: inout VRRPParseState.Instance) {
        let name = v.settings.name
        switch l.keyword {
        case "state":
            guard let s = arg(l) else { return }
            switch s {
            case "MASTER": v.settings.initialMaster = true
            case "BACKUP": v.settings.initialMaster = false
            default:
                error(l, "(\(name)) unknown state '\(s)', defaulting to BACKUP")
                v.settings.initialMaster = false
            }
        case "interface":
            guard let s = arg(l) else { return }
            v.settings.interface = s
            v.interfaceSet = true
        case "virtual_router_id":
            guard let s = arg(l) else { return }
            if let id = vrrpInteger(l, s, 1...255) {
                v.settings.virtualRouterID = UInt8(id)
                v.routerIDSet = true
            } else {
                error(l, "(\(name)): VRID '\(s)' not valid - must be between 1 & 255")
            }
        case "priority":
            guard let s = arg(l) else { return }
            if let p = vrrpInteger(l, s, 1...255) { v.priority = p } else {
                error(l, "(\(name)) Priority not valid! must be between 1 & 255. Using default 100")
                v.priority = 100
            }
        case "version":
            guard let s = arg(l) else { return }
            if let n = vrrpInteger(l, s, 2...3) { v.version = n } else { error(l, "(\(name)): Version must be either 2 or 3") }
        case "advert_int":
            guard let s = arg(l) else { return }
            if let us = vrrpDecimal(l, s, 10_000...255_000_000) { v.advertMicroseconds = us } else {
                error(l, "(\(name)) Advert interval (\(s)) not valid! Must be > 0 - ignoring")
            }
        case "virtual_ipaddress", "virtual_ipaddress_excluded":
            let excluded = l.keyword == "virtual_ipaddress_excluded"
            if !openValueBlock() { v.closedByValueBlock = true }
            while let e = next(in: l) {
                guard let a = vrrpAddress(e, name: name, excluded: excluded, &v) else { continue }
                if excluded { v.settings.excludedAddresses.append(a) } else { v.settings.virtualAddresses.append(a) }
            }
        case "authentication":
            guard openBlock(l) else { return }
            while let e = next(in: l) {
                switch e.keyword {
                case "auth_type":
                    guard let t = arg(e) else { continue }
                    if t == "PASS" || t == "AH" { v.authType = t } else { error(e, "(\(name)) unknown authentication type '\(t)'") }
                case "auth_pass":
                    guard let p = arg(e) else { continue }
                    var bytes = Array(p.utf8)
                    if bytes.count > 8 {
                        error(e, "Truncating auth_pass to 8 characters")
                        bytes = Array(bytes.prefix(8))
                    }
                    v.authPassword = bytes
                default: unknown(e, in: "authentication")
                }
            }
        case "native_ipv6":
            // The instance is IPv6 even before (or without) an address says so.
            if v.isIPv6 == false { error(l, "(\(name)) Cannot specify native_ipv6 with IPv4 addresses") } else { v.isIPv6 = true }
        case "lower_prio_no_advert", "higher_prio_send_advert":
            guard let value = bool(l, invalid: { "(\(name)) invalid \(l.keyword) \($0) specified" }) else { return }
            if l.keyword == "lower_prio_no_advert" { v.lowerPriorityNoAdvert = value } else { v.higherPrioritySendAdvert = value }
        case "nopreempt": v.nopreempt = true
        case "preempt": v.nopreempt = false
        case "preempt_delay":
            guard let s = arg(l) else { return }
            if let us = vrrpDecimal(l, s, 0...1_000_000_000) { v.settings.preemptDelay = Self.nanoseconds(us) } else {
                error(l, "(\(name)) Preempt_delay not valid! must be between 0-1000")
            }
        case "garp_master_delay", "garp_lower_prio_delay", "garp_master_refresh":
            guard let s = arg(l) else { return }
            guard let n = vrrpInteger(l, s, 0...Int(UInt32.max)) else {
                error(l, l.keyword == "garp_master_refresh" ? "(\(name)): Invalid garp_master_refresh '\(s)' - ignoring" : "(\(name)): \(l.keyword) '\(s)' invalid - ignoring")
                return
            }
            let ns = VRRPNanoseconds(n) * 1_000_000_000
            switch l.keyword {
            case "garp_master_delay": v.garpDelay = ns
            case "garp_lower_prio_delay": v.garpLowerDelay = ns
            default: v.garpRefresh = ns
            }
        case "garp_master_repeat", "garp_lower_prio_repeat", "garp_master_refresh_repeat":
            guard let s = arg(l) else { return }
            guard var n = vrrpInteger(l, s, 0...Int(Int32.max)) else { return }
            if n == 0 {
                error(l, "(\(name)): \(l.keyword) must be greater than 0, setting to 1")
                n = 1
            }
            switch l.keyword {
            case "garp_master_repeat": v.garpRepeat = n
            case "garp_lower_prio_repeat": v.garpLowerRepeat = n
            default: v.garpRefreshRepeat = n
            }
        case "unicast_src_ip", "mcast_src_ip":
            guard let s = arg(l) else { return }
            if l.keyword == "unicast_src_ip" { v.unicastKeyword = true }
            guard let a = IPAddress(s) else {
                error(l, "Configuration error: VRRP instance[\(name)] malformed src address[\(s)]. Skipping...")
                return
            }
            if let six = v.isIPv6, six == a.isIPv4 {
                error(l, "Configuration error: VRRP instance[\(name)] and src address[\(s)] MUST be of the same family !!! Skipping...")
                return
            }
            v.isIPv6 = !a.isIPv4
            v.settings.sourceAddress = a
        case "unicast_peer":
            v.unicastKeyword = true
            if !openValueBlock() { v.closedByValueBlock = true }
            while let e = next(in: l) {
                guard let a = IPAddress(e.keyword) else {
                    error(e, "Configuration error: VRRP instance[\(name)] malformed unicast peer address[\(e.keyword)]. Skipping...")
                    continue
                }
                if let six = v.isIPv6, six == a.isIPv4 {
                    error(e, "Configuration error: VRRP instance[\(name)] and unicast peer address[\(e.keyword)] MUST be of the same family !!! Skipping...")
                    continue
                }
                v.isIPv6 = !a.isIPv4
                if e.words.count > 1 { warn(e, "unicast_peer \(e.keyword): options '\(e.words.dropFirst().joined(separator: " "))' not supported by swift-lvs - ignored") }
                v.settings.unicastPeers.append(a)
            }
        case "mcast_dst_ip":
            guard let s = arg(l) else { return }
            guard let a = IPAddress(s), Self.isMulticast(a) else {
                error(l, "(\(name)) mcast_dst_ip \(s) not multicast. Skipping...")
                return
            }
            if let six = v.isIPv6, six == a.isIPv4 {
                error(l, "(\(name)) mcast dest address \(s) MUST match VRRP instance family. Skipping...")
                return
            }
            v.settings.multicastGroup = a
        case "down_timer_adverts":
            guard let s = arg(l) else { return }
            if let n = vrrpInteger(l, s, 1...100) { v.downTimerAdverts = n } else {
                error(l, "(\(name)): Invalid down_timer_adverts [1:100] '\(s)'")
            }
        case "track_interface":
            if !openValueBlock() { v.closedByValueBlock = true }
            while let e = next(in: l) {
                if v.settings.trackInterfaces.contains(where: { $0.name == e.keyword }) {
                    error(e, "(\(name)) duplicate track_interface \(e.keyword) - ignoring")
                    continue
                }
                if e.words.count > 1, e.words[1] != "weight" {
                    error(e, "(\(name)) unknown track_interface \(e.keyword) option \(e.words[1]) - ignoring")
                    continue
                }
                let ifname = e.keyword
                guard let w = trackWeight(e, from: 1, range: -254...254, report: { p, value in
                    if let value { p.error(e, "(\(name)) weight \(value) for \(ifname) must be between [-253..253] inclusive. Ignoring...") }
                    else { p.error(e, "(\(name)) weight without value specified for track_interface \(ifname) - ignoring") }
                }) else { continue }
                var t = VRRPTrack(name: ifname, weight: w?.weight)
                t.reverse = w?.reverse ?? false
                v.settings.trackInterfaces.append(t)
            }
        case "track_script":
            if !openValueBlock() { v.closedByValueBlock = true }
            while let e = next(in: l) {
                if v.trackScripts.contains(where: { $0.track.name == e.keyword }) {
                    error(e, "(\(name)) duplicate track_script \(e.keyword) - ignoring")
                    continue
                }
                let script = e.keyword
                guard let w = trackWeight(e, from: 1, range: -254...254, report: { p, _ in
                    p.error(e, "(\(name)) track script \(script): weight must be between [-253..253] inclusive, ignoring...")
                }) else { continue }
                var t = VRRPTrack(name: script, weight: w?.weight)
                t.reverse = w?.reverse ?? false
                v.trackScripts.append((t, e))
            }
        case "notify_master": v.settings.notify.master = vrrpScriptCommand(l)
        case "notify_backup": v.settings.notify.backup = vrrpScriptCommand(l)
        case "notify_fault": v.settings.notify.fault = vrrpScriptCommand(l)
        case "notify_stop": v.settings.notify.stop = vrrpScriptCommand(l)
        case "notify": v.settings.notify.any = vrrpScriptCommand(l)
        case "notify_deleted":
            // The script is optional: without one, only `notify` is told (DELETED).
            if v.settings.notify.notifyDeleted {
                error(l, "(\(name)) notify_deleted already specified - ignoring \(l.words.count > 1 ? l.words[1] : "")")
                return
            }
            v.settings.notify.notifyDeleted = true
            if l.words.count > 1 { v.settings.notify.deleted = vrrpScriptCommand(l) }
        case "smtp_alert": v.settings.notify.smtpAlert = bool(l) ?? true
        case "lvs_sync_daemon_interface":
            guard let s = arg(l) else { return }
            error(l, "(\(name)) Specifying lvs_sync_daemon_interface against a vrrp is deprecated.")
            error(l, "        Please use global lvs_sync_daemon")
            v.syncDaemonInterface = s
        case _ where Self.vrrpUnsupportedInstanceOptions.contains(l.keyword):
            if l.words.count < 2, Self.ignoredKeywordsNeedingValue.contains(l.keyword) { missingParameter(l, at: 1); return }
            warn(l, "(\(name)) \(l.keyword) not supported by swift-lvs - ignored")
            skipIgnoredBlockIfAny()
        default:
            unknown(l, in: "vrrp_instance")
        }
    }

    /// One line of `virtual_ipaddress { }`: `IP[/len] [brd IP] [dev IF] [scope S] [label L] [no_track]`.
    private mutating func vrrpAddress(_ e: KeepalivedLine, name: String, excluded: Bool, _ v: inout VRRPParseState.Instance) -> VRRPAddress? {
        let text = e.keyword
        var addressText = text
        var prefixText: String?
        if let slash = text.firstIndex(of: "/") {
            addressText = String(text[..<slash])
            prefixText = String(text[text.index(after: slash)...])
        }
        guard let a = IPAddress(addressText) else {
            error(e, "VRRP parsed invalid IP \(text). skipping IP...")
            return nil
        }
        let bits = a.isIPv4 ? 32 : 128
        var prefix = bits
        if let p = prefixText {
            if let n = vrrpInteger(e, p, 0...bits) { prefix = n } else {
                error(e, "Invalid address prefix len \(p) for address \(text) - using \(bits)")
            }
        }
        if !excluded {
            if let six = v.isIPv6, six == a.isIPv4 {
                error(e, "(\(name)): address family must match VRRP instance [\(text)] - ignoring")
                return nil
            }
            v.isIPv6 = !a.isIPv4
        }
        var out = VRRPAddress(address: a, prefixLength: prefix)
        var k = 1
        func value(_ p: inout KeepalivedParser) -> String? {
            guard k + 1 < e.words.count else { p.missingParameter(e, at: k + 1); return nil }
            k += 1
            return e.words[k]
        }
        while k < e.words.count {
            let word = e.words[k]
            switch word {
            case "dev": out.device = value(&self)
            case "label": out.label = value(&self)
            case "scope": out.scope = value(&self)
            case "brd", "broadcast":
                if let b = value(&self) {
                    guard let ba = IPAddress(b), ba.isIPv4 == a.isIPv4 else {
                        error(e, "VRRP is trying to assign invalid broadcast \(b). skipping VIP...")
                        return nil
                    }
                    out.broadcast = ba
                }
            case "no_track": break
            case "preferred_lft", "home", "-nodad", "nodad", "mngtmpaddr", "noprefixroute", "autojoin", "peer", "track_group":
                warn(e, "ip address option '\(word)' not supported by swift-lvs - ignored")
                if word == "preferred_lft" || word == "peer" || word == "track_group" { _ = value(&self) }
            default:
                error(e, "Unknown configuration entry '\(word)' for ip address - ignoring")
            }
            k += 1
        }
        return out
    }

    // MARK: vrrp_script

    mutating func parseVRRPScript(_ h: KeepalivedLine) {
        guard let name = arg(h) else { skipBlockIfAny(); return }
        var script: VRRPScriptCommand?
        var s = VRRPScriptSettings(name: name, script: VRRPScriptCommand(command: ""))
        var user: (String, String?)?
        guard openBlock(h) else { return }
        while let l = next(in: h) {
            switch l.keyword {
            case "script":
                // keepalived 2.2.7 ignores a bare `script` (no message).
                if l.words.count > 1 { script = vrrpScriptCommand(l) }
            case "interval":
                guard let t = arg(l), let us = vrrpDecimal(l, t, 0...Int64(UInt32.max) * 1_000_000) else { continue }
                if us == 0 {
                    error(l, "(\(name)): vrrp script interval must be greater than 0, setting to 1")
                    s.interval = 1_000_000_000
                } else { s.interval = Self.nanoseconds(us) }
            case "timeout":
                guard let t = arg(l), let us = vrrpDecimal(l, t, 0...Int64(UInt32.max) * 1_000_000) else { continue }
                if us == 0 {
                    error(l, "(\(name)): vrrp script timeout must be greater than 0, setting to 1")
                    s.timeout = 1_000_000_000
                } else { s.timeout = Self.nanoseconds(us) }
            case "weight":
                guard let t = arg(l) else { continue }
                guard let w = vrrpInteger(l, t, -253...253) else {
                    error(l, "vrrp_script \(name) weight \(t) must be in [-253, 253]")
                    continue
                }
                s.weight = w
                if l.words.count > 2 {
                    if l.words[2] == "reverse" { s.weightReverse = true } else { error(l, "vrrp_script \(name) unknown weight option \(l.words[2])") }
                }
            case "rise", "fall":
                guard let t = arg(l) else { continue }
                let n = vrrpInteger(l, t, 1...Int(Int32.max))
                if n == nil { error(l, "(\(name)): vrrp script \(l.keyword) value '\(t)' invalid, defaulting to 1") }
                if l.keyword == "rise" { s.rise = n ?? 1 } else { s.fall = n ?? 1 }
            case "user":
                guard let u = arg(l) else { continue }
                user = (u, l.words.count > 2 ? l.words[2] : nil)
            case "init_fail":
                warn(l, "vrrp_script \(name): init_fail not supported by swift-lvs - ignored")
            default:
                unknown(l, in: "vrrp_script")
            }
        }
        guard var command = script else {
            error(h, "No script set for vrrp_script \(name) - removing")
            return
        }
        if let (u, g) = user { command.user = u; command.group = g }
        s.script = command
        // keepalived 2.2.7 says nothing about a second definition; tracking finds the first.
        if !vrrp.scripts.contains(where: { $0.name == name }) { vrrp.scripts.append(s) }
    }

    // MARK: vrrp_sync_group

    mutating func parseVRRPSyncGroup(_ h: KeepalivedLine) {
        guard let name = arg(h) else { skipBlockIfAny(); return }
        var g = VRRPSyncGroupSettings(name: name, members: [])
        guard openBlock(h) else { return }
        while let l = next(in: h) {
            switch l.keyword {
            case "group":
                guard openBlock(l) else { continue }
                while let e = next(in: l) { g.members += e.words }
            case "notify_master": g.notify.master = vrrpScriptCommand(l)
            case "notify_backup": g.notify.backup = vrrpScriptCommand(l)
            case "notify_fault": g.notify.fault = vrrpScriptCommand(l)
            case "notify_stop": g.notify.stop = vrrpScriptCommand(l)
            case "notify": g.notify.any = vrrpScriptCommand(l)
            case "smtp_alert": g.notify.smtpAlert = bool(l) ?? true
            case "track_interface", "track_script":
                guard openBlock(l) else { continue }
                while let e = next(in: l) {
                    var t = VRRPTrack(name: e.keyword)
                    if e.words.count > 2, e.words[1] == "weight", let w = vrrpInteger(e, e.words[2], -253...253) {
                        t.weight = w
                        t.reverse = e.words.count > 3 && e.words[3] == "reverse"
                    }
                    if l.keyword == "track_interface" { g.trackInterfaces.append(t) } else { g.trackScripts.append(t) }
                }
            case "global_tracking", "sync_group_tracking_weight", "track_file", "track_process", "track_bfd", "notify_priority_changes":
                warn(l, "vrrp_sync_group \(name): \(l.keyword) not supported by swift-lvs - ignored")
                skipIgnoredBlockIfAny()
            default:
                unknown(l, in: "vrrp_sync_group")
            }
        }
        vrrp.syncGroups.append(.init(settings: g, header: h))
    }

    // MARK: global_defs

    /// The VRRP settings of global_defs; false when `l` is not one of them.
    mutating func parseVRRPGlobal(_ l: KeepalivedLine) -> Bool {
        switch l.keyword {
        case "vrrp_version":
            guard let s = arg(l) else { return true }
            if let n = vrrpInteger(l, s, 2...3) { vrrp.version = n } else { error(l, "VRRP Error: Version must be either 2 or 3") }
        case "vrrp_garp_master_delay", "vrrp_garp_lower_prio_delay", "vrrp_garp_master_refresh":
            guard let s = arg(l), let n = vrrpInteger(l, s, 0...Int(UInt32.max)) else { return true }
            let ns = VRRPNanoseconds(n) * 1_000_000_000
            switch l.keyword {
            case "vrrp_garp_master_delay": vrrp.gratuitous.masterDelay = ns
            case "vrrp_garp_lower_prio_delay": vrrp.gratuitous.lowerPriorityDelay = ns
            default: vrrp.gratuitous.masterRefresh = ns
            }
        case "vrrp_garp_master_repeat", "vrrp_garp_lower_prio_repeat", "vrrp_garp_master_refresh_repeat":
            guard let s = arg(l), var n = vrrpInteger(l, s, 0...Int(Int32.max)) else { return true }
            if n == 0 {
                error(l, "\(l.keyword) must be greater than 0, setting to 1")
                n = 1
            }
            switch l.keyword {
            case "vrrp_garp_master_repeat": vrrp.gratuitous.masterRepeat = n
            case "vrrp_garp_lower_prio_repeat": vrrp.gratuitous.lowerPriorityRepeat = n
            default: vrrp.gratuitous.masterRefreshRepeat = n
            }
        case "vrrp_garp_interval", "vrrp_gna_interval":
            guard let s = arg(l) else { return true }
            guard let us = vrrpDecimal(l, s, 0...Int64(UInt32.max) * 1_000_000) else {
                error(l, "\(l.keyword) '\(s)' is invalid")
                return true
            }
            if l.keyword == "vrrp_garp_interval" { vrrp.gratuitous.arpInterval = Self.nanoseconds(us) } else { vrrp.gratuitous.naInterval = Self.nanoseconds(us) }
        case "vrrp_lower_prio_no_advert", "vrrp_higher_prio_send_advert":
            guard let value = bool(l, invalid: { _ in "Invalid value for \(l.keyword) specified" }) else { return true }
            if l.keyword == "vrrp_lower_prio_no_advert" { vrrp.lowerPriorityNoAdvert = value } else { vrrp.higherPrioritySendAdvert = value }
        case "vrrp_min_garp":
            vrrp.minGarp = bool(l) ?? true
        case "vrrp_mcast_group4", "vrrp_mcast_group6":
            guard let s = arg(l) else { return true }
            let six = l.keyword.hasSuffix("6")
            guard let a = IPAddress(s), a.isIPv4 != six, Self.isMulticast(a) else {
                error(l, "\(l.keyword) [\(s)] is not multicast. Skipping")
                return true
            }
            if six { vrrp.multicastGroup6 = a } else { vrrp.multicastGroup4 = a }
        case "vrrp_down_timer_adverts":
            guard let s = arg(l) else { return true }
            if let n = vrrpInteger(l, s, 1...100) { vrrp.downTimerAdverts = n } else { error(l, "Invalid vrrp_down_timer_adverts [1:100] '\(s)'") }
        case "vrrp_startup_delay":
            guard let s = arg(l) else { return true }
            if let us = vrrpDecimal(l, s, 1000...Int64(UInt32.max)) { vrrp.startupDelay = Self.nanoseconds(us) } else {
                error(l, "vrrp_startup_delay '\(s)' is invalid")
            }
        case "lvs_sync_daemon":
            guard let interface = arg(l) else { return true }
            config.globals.lvsSyncDaemon = Array(l.words.dropFirst())
            parseLVSSyncDaemon(l, interface: interface)
        case _ where Self.vrrpUnsupportedGlobals.contains(l.keyword):
            warn(l, "\(l.keyword) not supported by swift-lvs - ignored")
            skipBlockIfAny()
        default:
            return false
        }
        return true
    }

    /// `lvs_sync_daemon IF [[inst] INSTANCE] [id N] [maxlen N] [port N] [ttl N] [group IP]`
    /// (an old form gives the sync id as the third word).
    private mutating func parseLVSSyncDaemon(_ l: KeepalivedLine, interface: String) {
        var d = VRRPLVSSyncDaemon(interface: interface, instance: "")
        let options: Set<String> = ["id", "maxlen", "port", "ttl", "group"]
        var k = 2
        if k < l.words.count, l.words[k] == "inst" { k += 1 }
        if k < l.words.count, !options.contains(l.words[k]) {
            d.instance = l.words[k]
            k += 1
            if k < l.words.count, !options.contains(l.words[k]) {
                // The old form: the sync id follows the instance.
                if let n = vrrpInteger(l, l.words[k], 0...255) { d.syncID = UInt8(n); vrrp.lvsSyncDaemonIDSet = true } else {
                    error(l, "Invalid syncid (\(l.words[k])) - defaulting to vrid")
                }
                k += 1
            }
        }
        while k < l.words.count {
            let option = l.words[k]
            guard options.contains(option) else {
                error(l, "Unknown option \(option) specified for lvs_sync_daemon")
                k += 1
                continue
            }
            guard k + 1 < l.words.count else { missingParameter(l, at: k + 1); return }
            let value = l.words[k + 1]
            switch option {
            case "id":
                if let n = vrrpInteger(l, value, 0...255) { d.syncID = UInt8(n); vrrp.lvsSyncDaemonIDSet = true } else {
                    error(l, "Invalid syncid (\(value)) - defaulting to vrid")
                }
            case "maxlen":
                if let n = vrrpInteger(l, value, 1...65507) { d.maxLength = n } else { error(l, "Invalid lvs_sync_daemon maxlen (\(value)) - ignoring") }
            case "port":
                if let n = vrrpInteger(l, value, 1...65535) { d.port = UInt16(n) } else { error(l, "Invalid lvs_sync_daemon port (\(value)) - ignoring") }
            case "ttl":
                if let n = vrrpInteger(l, value, 1...255) { d.ttl = UInt8(n) } else { error(l, "Invalid lvs_sync_daemon ttl (\(value)) - ignoring") }
            default:
                if let a = IPAddress(value), Self.isMulticast(a) { d.group = a } else { error(l, "lvs_sync_daemon group address \(value) is not multicast - ignoring") }
            }
            k += 2
        }
        vrrp.lvsSyncDaemon = d
        vrrp.lvsSyncDaemonLine = l
    }

    // MARK: after the whole file: defaults and keepalived's cross checks

    mutating func finishVRRP() {
        var out = VRRPConfiguration()
        out.startupDelay = vrrp.startupDelay
        var scripts = vrrp.scripts
        var usedScripts = Set<String>()
        for p in vrrp.instances {
            let name = p.settings.name
            guard p.routerIDSet else {
                error(p.header, "(\(name)) the virtual router id must be set")
                continue
            }
            guard p.interfaceSet else {
                error(p.header, "(\(name)) Unknown interface!")
                continue
            }
            var s = p.settings
            s.priority = UInt8(p.priority ?? (s.initialMaster ? 255 : 100))
            // The address owner (priority 255) starts as MASTER whatever `state` says.
            if s.priority == 255 { s.initialMaster = true }
            if p.authType == "AH", s.initialMaster, s.priority != 255 {
                error(p.header, "(\(name)) Initial state master is incompatible with AH authentication - clearing")
                s.initialMaster = false
            }
            let six = p.isIPv6 ?? false
            var version = p.version ?? vrrp.version ?? 2
            if six { version = 3 }
            s.version = UInt8(version)
            if s.virtualAddresses.isEmpty { error(p.header, "(\(name)) No VIP specified; at least one is sensible") }
            // advert_int
            var us = p.advertMicroseconds ?? 1_000_000
            if version == 2 {
                if us % 1_000_000 != 0 {
                    error(p.header, "(\(name)) VRRPv2 advertisement interval \(Self.fixed(us, 6))s must be an integer. rounding")
                    us = max(1, (us + 500_000) / 1_000_000) * 1_000_000
                }
            } else {
                if us > 40_950_000 {
                    error(p.header, "(\(name)) VRRPv3 advertisement interval \(Self.fixed(us, 2))s is out of range. Must be less than 40.96s. Setting to 40.95s")
                    us = 40_950_000
                } else if us % 10_000 != 0 {
                    error(p.header, "(\(name)) VRRPv3 advertisement interval \(Self.fixed(us, 6))s must be in units of 10ms - rounding")
                    us = max(1, (us + 5_000) / 10_000) * 10_000
                }
            }
            s.advertIntervalCentiseconds = UInt16(us / 10_000)
            // authentication
            if let type = p.authType {
                if version == 3 {
                    error(p.header, "(\(name)) VRRP version 3 does not support authentication. Ignoring.")
                } else if type == "AH" {
                    warn(p.header, "(\(name)) auth_type AH not supported by swift-lvs - adverts are sent and accepted without authentication")
                } else if let pass = p.authPassword {
                    s.authPassword = pass
                } else {
                    error(p.header, "(\(name)) Authentication specified but no password given. Ignoring")
                }
            }
            // preemption
            s.preempt = !p.nopreempt
            if p.nopreempt {
                if s.priority == 255 {
                    error(p.header, "(\(name)) nopreempt is incompatible with priority 255. resetting nopreempt")
                    s.preempt = true
                } else if s.initialMaster {
                    error(p.header, "(\(name)) Warning - nopreempt will not work with initial state MASTER - clearing")
                    s.preempt = true
                }
            }
            if s.preemptDelay > 0 {
                if !s.preempt {
                    error(p.header, "(\(name)) preempt_delay is incompatible with nopreempt mode - resetting")
                    s.preemptDelay = 0
                } else if s.initialMaster {
                    error(p.header, "(\(name)) Warning - preempt delay will not work with initial state MASTER - clearing")
                    s.preemptDelay = 0
                }
            }
            s.lowerPriorityNoAdvert = p.lowerPriorityNoAdvert ?? vrrp.lowerPriorityNoAdvert
            s.higherPrioritySendAdvert = p.higherPrioritySendAdvert ?? vrrp.higherPrioritySendAdvert
            // unicast
            if p.unicastKeyword && s.unicastPeers.isEmpty {
                error(p.header, "(\(name)) A unicast keyword has been specified without any unicast peers. Defaulting to multicast. This usage is deprecated - please update your configuration.")
            }
            if s.multicastGroup == nil { s.multicastGroup = six ? vrrp.multicastGroup6 : vrrp.multicastGroup4 }
            if let group = s.multicastGroup, group.isIPv4 == six {
                error(p.header, "(\(name)) mcast dest address \(group) MUST match VRRP instance family. Skipping...")
                s.multicastGroup = nil
            }
            s.downTimerAdverts = p.downTimerAdverts ?? vrrp.downTimerAdverts ?? 3
            // gratuitous ARP / NA: the instance's own values over the globals
            var g = vrrp.gratuitous
            if vrrp.minGarp { g.masterDelay = 0; g.masterRepeat = 1 }
            if let v = p.garpDelay { g.masterDelay = v }
            if let v = p.garpRepeat { g.masterRepeat = v }
            if let v = p.garpRefresh { g.masterRefresh = v }
            if let v = p.garpRefreshRepeat { g.masterRefreshRepeat = v }
            if let v = p.garpLowerDelay { g.lowerPriorityDelay = v }
            if let v = p.garpLowerRepeat { g.lowerPriorityRepeat = v }
            s.gratuitous = g
            // tracking
            s.trackInterfaces.removeAll { t in
                guard t.name == s.interface else { return false }
                error(p.header, "(\(name)) Ignoring track_interface \(t.name) since own interface")
                return true
            }
            for (t, line) in p.trackScripts {
                guard scripts.contains(where: { $0.name == t.name }) else {
                    error(line, "(\(name)) track script \(t.name) not found, ignoring...")
                    continue
                }
                usedScripts.insert(t.name)
                s.trackScripts.append(t)
            }
            // the deprecated per-instance sync daemon interface
            if let ifname = p.syncDaemonInterface, vrrp.lvsSyncDaemon == nil {
                vrrp.lvsSyncDaemon = VRRPLVSSyncDaemon(interface: ifname, instance: name)
            }
            // duplicate VRID on one interface and family
            if let other = out.instances.first(where: { $0.interface == s.interface && $0.virtualRouterID == s.virtualRouterID && $0.isIPv6 == s.isIPv6 }) {
                error(p.header, "\(other.name) and \(name) both use VRID \(s.virtualRouterID) with IPv\(six ? 6 : 4) on interface \(s.interface)")
            }
            out.instances.append(s)
        }
        scripts.removeAll { !usedScripts.contains($0.name) }
        out.scripts = scripts
        // sync groups
        var grouped: [String: String] = [:]
        for sg in vrrp.syncGroups {
            var g = sg.settings
            var members: [String] = []
            for m in g.members {
                guard out.instances.contains(where: { $0.name == m }) else {
                    error(sg.header, "Virtual router \(m) specified in sync group \(g.name) doesn't exist - ignoring")
                    continue
                }
                if grouped[m] != nil {
                    error(sg.header, "Virtual router \(m) cannot exist in more than one sync group; ignoring \(g.name)")
                    continue
                }
                if !members.contains(m) { members.append(m) }
            }
            if g.members.isEmpty {
                error(sg.header, "Sync group \(g.name) has no virtual router(s). removing")
                continue
            }
            if members.isEmpty {
                error(sg.header, "Sync group \(g.name), no matching virtual router found in group declaration - removing")
                continue
            }
            if members.count == 1 { error(sg.header, "Sync group \(g.name) has only 1 virtual router(s) - this probably isn't what you want") }
            for m in members { grouped[m] = g.name }
            g.members = members
            g.trackScripts.removeAll { t in
                guard scripts.contains(where: { $0.name == t.name }) || vrrp.scripts.contains(where: { $0.name == t.name }) else {
                    error(sg.header, "(\(g.name)) track script \(t.name) not found, ignoring...")
                    return true
                }
                return false
            }
            out.syncGroups.append(g)
        }
        // sync-group track scripts count as used
        for g in out.syncGroups {
            for t in g.trackScripts where !out.scripts.contains(where: { $0.name == t.name }) {
                if let s = vrrp.scripts.first(where: { $0.name == t.name }) { out.scripts.append(s) }
            }
        }
        // lvs_sync_daemon: the sync id defaults to the instance's VRID
        if var d = vrrp.lvsSyncDaemon {
            if !d.instance.isEmpty {
                if let inst = out.instances.first(where: { $0.name == d.instance }) {
                    if !vrrp.lvsSyncDaemonIDSet { d.syncID = inst.virtualRouterID }
                } else if let line = vrrp.lvsSyncDaemonLine {
                    warn(line, "lvs_sync_daemon: vrrp_instance \(d.instance) is not defined - the sync daemon runs as master and backup")
                    d.instance = ""
                }
            }
            out.lvsSyncDaemon = d
        }
        config.vrrp = out
    }
}
