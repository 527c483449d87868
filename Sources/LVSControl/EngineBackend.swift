import LVSCore
import LVSModel

/// Executes control requests directly on an engine (lvsd's worker thread, and tests).
public enum EngineControl {
    /// Applies one request; errors come back as `.failed` so nothing already configured is lost.
    public static func execute(_ request: ControlRequest, on engine: Engine, now: UInt64) -> ControlResponse {
        do {
            switch request {
            case let .addService(key, options): try engine.addService(key, options)
            case let .editService(key, options): try engine.editService(key, options)
            case let .deleteService(key): try engine.deleteService(key)
            case .clear: engine.clear()
            case let .addDestination(key, options): try engine.addDestination(key, options)
            case let .editDestination(key, options): try engine.editDestination(key, options)
            case let .deleteDestination(key, address, port): try engine.deleteDestination(key, address: address, port: port)
            case let .zero(key): try engine.zero(key)
            case let .setTimeouts(t): try engine.setTimeouts(t)
            case .startDaemon: return .failed(.invalid) // the sync daemon is not implemented yet
            case .stopDaemon: return .failed(.noDaemon)
            case .snapshot: return .snapshot(engine.snapshot())
            case .connections: return .connections(engine.connections(now: now))
            case .status: return .text(status(engine))
            case .reload: return .text("reload is handled by lvsd\n")
            case .restart: return .text("restart is handled by lvsd\n")
            case let .batch(batch): return .batch(batch.run { execute($0, on: engine, now: now) })
            case let .sysctl(assignments):
                do { try engine.setSysctls(assignments) } catch { return .failed(.invalid) }
                return .sysctls(engine.sysctls)
            }
            return .ok
        } catch {
            return .failed(error)
        }
    }

    /// Human-readable daemon status: interfaces, table occupancy, counters.
    public static func status(_ e: Engine) -> String {
        var lines: [String] = []
        lines.append("data plane: afpacket (TPACKET_V2 ring, sendmmsg, PACKET_VNET_HDR)")
        for i in e.interfaces { lines.append("interface \(i.name) index \(i.index) mac \(i.mac)") }
        lines.append("connections: \(e.connectionCount) (capacity \(e.connectionCapacity) per worker)")
        let c = e.counters
        lines.append("forwarded \(c.forwarded) passed \(c.passed) replies \(c.replies) new-connections \(c.newConnections)")
        for r in DropReason.allCases where c.drops[Int(r.rawValue)] > 0 {
            lines.append("dropped \(r): \(c.drops[Int(r.rawValue)])")
        }
        for r in NeighbourIgnoreReason.allCases where c.neighbourIgnored[Int(r.rawValue)] > 0 {
            lines.append("neighbour not learnt \(r): \(c.neighbourIgnored[Int(r.rawValue)])")
        }
        let sync = e.syncCounters
        if sync.received > 0 || e.syncDaemons.backup != nil {
            let t = e.syncedTemplates
            lines.append("sync backup: " + sync.named.map { "\($0.0) \($0.1)" }.joined(separator: " ")
                         + " synced-templates \(t.count) (limit \(t.limit))")
        }
        if e.syncDaemons.master != nil {
            lines.append("sync master: " + e.resyncCounters.named.map { "\($0.0) \($0.1)" }.joined(separator: " "))
        }
        let d = e.defenseStatus
        let cfg = d.configuration
        lines.append("defense: drop_entry \(cfg.dropEntry.rawValue) (engaged on \(d.dropEntry) of \(d.shards) shards), "
                     + "drop_packet \(cfg.dropPacket.rawValue) (\(d.dropPacket)), secure_tcp \(cfg.secureTCP.rawValue) (\(d.secureTCP)), "
                     + "amemthresh \(cfg.amemthreshPercent)% free, am_droprate \(cfg.amDropRate), secure_tcp SYN_RECV timeout \(cfg.secureSynRecvTimeout) s")
        lines.append("defense evicted (drop_entry): \(c.dropEntryEvictions)")
        lines.append("defense evicted templates (drop_entry): \(c.dropEntryTemplateEvictions)")
        lines.append("defense short SYN_RECV timeouts (secure_tcp): \(c.secureTCPShortened)")
        lines.append("sysctl: " + e.sysctls.assignments.map { "\($0.setting.name)=\($0.value)" }.joined(separator: " "))
        for rule in e.currentMarkRules {
            lines.append("fwmark rule: \(MarkRuleSyntax.format(rule))")
        }
        let managed = e.managedVIPs
        if !managed.isEmpty {
            let notOwned = e.notOwnedVIPs
            func list(_ s: Set<IPAddress>) -> String { s.isEmpty ? "none" : s.map(\.description).sorted().joined(separator: " ") }
            lines.append("VIPs under VRRP: owned \(list(managed.subtracting(notOwned))); not owned \(list(notOwned))")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// The text form of firewall-mark rules on lvsd's command line and in its listing:
/// `DST[/LEN][,tcp|udp|sctp[,PORT[-PORT]]]=MARK`, e.g. `192.168.1.100/32,tcp,80-81=1`
/// replaces `iptables -t mangle -A PREROUTING -d 192.168.1.100/32 -p tcp --dport 80:81 -j MARK --set-mark 1`.
public enum MarkRuleSyntax {
    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    public static func parse(_ text: String) throws -> MarkRule {
        let sides = text.split(separator: "=", omittingEmptySubsequences: false)
        guard sides.count == 2, let mark = UInt32(sides[1]), mark != 0 else {
            throw ParseError(description: "invalid fwmark rule `\(text)': expected DST[/LEN][,PROTO[,PORT[-PORT]]]=MARK with MARK 1..4294967295")
        }
        let parts = sides[0].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let dst = parts[0].split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard let address = IPAddress(dst[0]) ?? (dst[0] == "0.0.0.0" ? IPAddress.ipv4Zero : nil) else {
            throw ParseError(description: "invalid fwmark rule `\(text)': bad destination address `\(dst[0])'")
        }
        let maxPrefix = address.isIPv4 ? 32 : 128
        var prefix = maxPrefix
        if dst.count == 2 {
            guard let p = Int(dst[1]), p >= 0, p <= maxPrefix else {
                throw ParseError(description: "invalid fwmark rule `\(text)': bad prefix length `\(dst[1])'")
            }
            prefix = p
        }
        var proto: IPProtocolNumber?
        var low: UInt16 = 0, high: UInt16 = 65535
        if parts.count >= 2 {
            switch parts[1] {
            case "tcp": proto = .tcp
            case "udp": proto = .udp
            case "sctp": proto = .sctp
            default: throw ParseError(description: "invalid fwmark rule `\(text)': protocol must be tcp, udp or sctp")
            }
        }
        if parts.count >= 3 {
            let range = parts[2].split(separator: "-").map { UInt16($0) }
            guard (range.count == 1 || range.count == 2), range.allSatisfy({ $0 != nil }) else {
                throw ParseError(description: "invalid fwmark rule `\(text)': bad port range `\(parts[2])'")
            }
            low = range[0]!
            high = range.count == 2 ? range[1]! : low
            guard low <= high else { throw ParseError(description: "invalid fwmark rule `\(text)': port range is empty") }
        }
        guard parts.count <= 3 else { throw ParseError(description: "invalid fwmark rule `\(text)': too many fields") }
        return MarkRule(destination: address.masked(prefix: prefix), prefixLength: prefix, proto: proto,
                        portLow: low, portHigh: high, mark: mark)
    }

    public static func format(_ r: MarkRule) -> String {
        var s = "\(r.destination)/\(r.prefixLength)"
        if let p = r.proto {
            s += ",\(p.listName.lowercased())"
            if !(r.portLow == 0 && r.portHigh == 65535) {
                s += r.portLow == r.portHigh ? ",\(r.portLow)" : ",\(r.portLow)-\(r.portHigh)"
            }
        }
        return s + "=\(r.mark)"
    }
}

/// A `ControlBackend` that applies requests to an engine in the same process (config loading, tests).
public final class EngineBackend: ControlBackend {
    public let engine: Engine
    public var now: () -> UInt64

    public init(engine: Engine, now: @escaping () -> UInt64 = { 0 }) {
        self.engine = engine
        self.now = now
    }

    public func execute(_ request: ControlRequest) throws -> ControlResponse {
        EngineControl.execute(request, on: engine, now: now())
    }

    public func execute(batch: ControlBatch) throws -> [ControlResponse] {
        try executeAsOneRequest(batch)
    }
}
