import LVSModel

/// A service's or real server's counters carried over a restart (state file version 2).
public struct CarriedCounters: Hashable, Sendable {
    public var service: ServiceKey
    /// nil: the service's own counters; else the real server's (address and port).
    public var destination: Endpoint?
    public var stats: StatsSnapshot

    /// A real server of a service.
    public struct Endpoint: Hashable, Sendable {
        public var address: IPAddress
        public var port: UInt16
        public init(address: IPAddress, port: UInt16) {
            self.address = address
            self.port = port
        }
    }

    public init(service: ServiceKey, destination: Endpoint?, stats: StatsSnapshot) {
        self.service = service
        self.destination = destination
        self.stats = stats
    }
}

/// A health checker's up/down state carried over a restart (state file version 2): `label` names
/// the virtual server and real server as the health monitor does ("VS PROTO RS:PORT").
public struct CarriedCheckerState: Hashable, Sendable {
    public var label: String
    public var up: Bool
    public init(label: String, up: Bool) {
        self.label = label
        self.up = up
    }
}

/// Everything a state file carries.
public struct StateFileContents: Hashable, Sendable {
    public var entries: [SyncConnection]
    /// Version 2 on: counters and checker states (empty in a version 1 file).
    public var counters: [CarriedCounters] = []
    public var checkers: [CarriedCheckerState] = []
    public init(entries: [SyncConnection], counters: [CarriedCounters] = [], checkers: [CarriedCheckerState] = []) {
        self.entries = entries
        self.counters = counters
        self.checkers = checkers
    }
}

/// Version 2 of the state file: the same header (version 2); its payload is
///
/// ```
/// u32  M: bytes of the messages          M bytes: the messages, as in version 1
/// u32  C: counter records                C × 84 bytes: a counter record
/// u32  H: checker records                H × (u16 length, label UTF-8, u8 1 up / 0 down)
/// ```
///
/// A counter record: u8 protocol, u8 family (4/6), 16 bytes address, u16 port, u32 fwmark (the
/// service); u8 1 when a real server follows, else 0; u8 family, 16 bytes address, u16 port;
/// five u64: Conns, InPkts, InBytes, OutPkts, OutBytes. Every number big endian; the payload must
/// end with the last record.
extension StateFile {
    static let counterRecordLength = 84
    static let addressLength = 16
    /// Bytes of a checker label at most (lvsd writes short ones).
    static let checkerLabelMaxLength = 1024

    /// A version 2 file of `contents`.
    public static func encode(_ contents: StateFileContents) -> [UInt8] {
        let messages = messagesPayload(contents.entries)
        var payload: [UInt8] = []
        put32(&payload, UInt32(messages.count))
        payload += messages
        put32(&payload, UInt32(contents.counters.count))
        for c in contents.counters {
            payload.append(c.service.proto.rawValue)
            putAddress(&payload, c.service.isIPv6 ? 6 : 4, c.service.address)
            put16(&payload, c.service.port)
            put32(&payload, c.service.fwmark)
            payload.append(c.destination == nil ? 0 : 1)
            let d = c.destination ?? CarriedCounters.Endpoint(address: c.service.address, port: 0)
            putAddress(&payload, d.address.isIPv4 ? 4 : 6, d.address)
            put16(&payload, d.port)
            for v in [c.stats.conns, c.stats.inPackets, c.stats.inBytes, c.stats.outPackets, c.stats.outBytes] { put64(&payload, v) }
        }
        put32(&payload, UInt32(contents.checkers.count))
        for h in contents.checkers {
            let label = Array(h.label.utf8.prefix(checkerLabelMaxLength))
            put16(&payload, UInt16(label.count))
            payload += label
            payload.append(h.up ? 1 : 0)
        }
        return header(version: 2, count: contents.entries.count, payload: payload) + payload
    }

    /// The contents of a whole file of version 1 or 2, or why it is refused.
    public static func decodeContents(_ bytes: [UInt8]) -> Result<StateFileContents, Refusal> {
        switch checkedPayload(bytes) {
        case .failure(let r):
            return .failure(r)
        case .success(let (version, count, payload)):
            if version == 1 { return decodeMessages(payload, count: count).map { StateFileContents(entries: $0) } }
            return decodeVersion2(payload, count: count)
        }
    }

    static func decodeVersion2(_ payload: [UInt8], count: Int) -> Result<StateFileContents, Refusal> {
        var at = 0
        func need(_ n: Int) -> Bool { n >= 0 && at + n <= payload.count }
        guard need(4) else { return .failure(.badRecord("no messages length")) }
        let m = Int(u32(payload, at))
        at += 4
        guard need(m) else { return .failure(.badRecord("messages length \(m) beyond the payload")) }
        let entries: [SyncConnection]
        switch decodeMessages(Array(payload[at..<at + m]), count: count) {
        case .failure(let r): return .failure(r)
        case .success(let e): entries = e
        }
        at += m
        guard need(4) else { return .failure(.badRecord("no counter count")) }
        let c = Int(u32(payload, at))
        at += 4
        guard c <= (payload.count - at) / counterRecordLength else { return .failure(.badRecord("\(c) counter records do not fit")) }
        var counters: [CarriedCounters] = []
        for i in 0..<c {
            guard let proto = IPProtocolNumber(rawValue: payload[at]),
                  let service = address(payload, at + 1), let dest = address(payload, at + 25),
                  payload[at + 24] <= 1 else { return .failure(.badRecord("counter record \(i)")) }
            var key = ServiceKey(proto: proto, address: service, port: u16(payload, at + 18))
            let fwmark = u32(payload, at + 20)
            if fwmark != 0 { key = ServiceKey(fwmark: fwmark, ipv6: !service.isIPv4) }
            let v = (0..<5).map { u64(payload, at + 44 + 8 * $0) }
            let stats = StatsSnapshot(conns: v[0], inPackets: v[1], outPackets: v[3], inBytes: v[2], outBytes: v[4])
            let endpoint = payload[at + 24] == 1 ? CarriedCounters.Endpoint(address: dest, port: u16(payload, at + 42)) : nil
            counters.append(CarriedCounters(service: key, destination: endpoint, stats: stats))
            at += counterRecordLength
        }
        guard need(4) else { return .failure(.badRecord("no checker count")) }
        let h = Int(u32(payload, at))
        at += 4
        guard h <= (payload.count - at) / 3 else { return .failure(.badRecord("\(h) checker records do not fit")) }
        var checkers: [CarriedCheckerState] = []
        for i in 0..<h {
            guard need(2) else { return .failure(.badRecord("checker record \(i)")) }
            let n = Int(u16(payload, at))
            at += 2
            guard n <= checkerLabelMaxLength, need(n + 1), payload[at + n] <= 1,
                  let label = String(validating: payload[at..<at + n], as: UTF8.self) else { return .failure(.badRecord("checker record \(i)")) }
            checkers.append(CarriedCheckerState(label: label, up: payload[at + n] == 1))
            at += n + 1
        }
        guard at == payload.count else { return .failure(.badRecord("\(payload.count - at) bytes after the last record")) }
        return .success(StateFileContents(entries: entries, counters: counters, checkers: checkers))
    }

    /// A family byte (4 or 6) and 16 address bytes at `o`; nil for another family.
    static func address(_ b: [UInt8], _ o: Int) -> IPAddress? {
        guard b[o] == 4 || b[o] == 6 else { return nil }
        return b.withUnsafeBytes { IPAddress(bytes: $0.baseAddress! + o + 1, length: b[o] == 4 ? 4 : addressLength) }
    }

    static func putAddress(_ b: inout [UInt8], _ family: UInt8, _ a: IPAddress) {
        var raw = [UInt8](repeating: 0, count: addressLength)
        raw.withUnsafeMutableBytes { a.store(to: $0.baseAddress!) }
        b.append(family)
        b += raw
    }

    static func put64(_ b: inout [UInt8], _ v: UInt64) { put32(&b, UInt32(v >> 32)); put32(&b, UInt32(v & 0xFFFF_FFFF)) }
    static func u64(_ b: [UInt8], _ o: Int) -> UInt64 { UInt64(u32(b, o)) << 32 | UInt64(u32(b, o + 4)) }
}
