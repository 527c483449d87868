import LVSModel

/// The IPVS connection synchronisation protocol (the kernel's `ip_vs_sync.c`): message format
/// version 1 (IPv4 and IPv6 entries with option TLVs) and the legacy version 0, over plain bytes.
///
/// Decoding never traps: a framing error (an entry running past the datagram, an entry version
/// other than 0, a malformed option) abandons the rest of the datagram; a semantic error (bad
/// flags, unknown protocol or state, unknown mandatory option, unknown persistence engine) skips
/// only that entry, as `ip_vs_process_message` does.
public enum SyncProtocol {
    public static let defaultGroup: UInt32 = 0xE000_0051 // 224.0.0.81
    public static let defaultPort: UInt16 = 8848
    public static let defaultTTL: UInt8 = 1
    /// Master sync_maxlen default: 1500 - 20 (IPv4) - 8 (UDP).
    public static let defaultMaxLength = 1472
    public static let headerLength = 8
    public static let headerLengthV0 = 4
    public static let entryLengthV4 = 36
    public static let entryLengthV6 = 72
    public static let entryLengthV0 = 24
    /// Sequence options: in_seq and out_seq, each (init_seq, delta, previous_delta).
    public static let sequenceOptionLength = 24
    public static let peDataMaxLength = 255
    public static let peNameMaxLength = 16

    // Option TLV types.
    public static let optionSequence: UInt8 = 1
    public static let optionPEData: UInt8 = 2
    public static let optionPEName: UInt8 = 3
    /// Marks an optional parameter: unknown types without it make the receiver drop the entry.
    public static let optionParam: UInt8 = 0x40

    // Connection flag bits (`IP_VS_CONN_F_*`).
    public static let flagForwardMask: UInt32 = 0x0007
    public static let flagSync: UInt32 = 0x0020
    public static let flagHashed: UInt32 = 0x0040
    public static let flagNoOutput: UInt32 = 0x0080
    public static let flagInactive: UInt32 = 0x0100
    public static let flagOutSeq: UInt32 = 0x0200
    public static let flagInSeq: UInt32 = 0x0400
    public static let flagSeqMask: UInt32 = 0x0600
    public static let flagNoClientPort: UInt32 = 0x0800
    public static let flagTemplate: UInt32 = 0x1000
    public static let flagOnePacket: UInt32 = 0x2000
    /// `IP_VS_CONN_F_BACKUP_MASK`: what a backup keeps of a received entry's flags.
    public static let backupMask: UInt32 = flagForwardMask | flagNoOutput | flagInactive | flagSeqMask | flagNoClientPort | flagTemplate

    /// Number of states per protocol (`pp->num_states`); nil for protocols IPVS cannot sync.
    public static func stateCount(protocol p: UInt8) -> UInt16? {
        switch p {
        case 6: return 11   // IP_VS_TCP_S_LAST
        case 17: return 1   // IP_VS_UDP_S_LAST
        case 132: return 10 // IP_VS_SCTP_S_LAST
        default: return nil
        }
    }
    /// Template states: NONE, ASSURED.
    public static let templateStateCount: UInt16 = 2
    /// Persistence engines the receiver knows.
    public static let knownPersistenceEngines: [[UInt8]] = [Array("sip".utf8)]

    // MARK: Full-resync request (lvsd's own; not a kernel message)

    /// The `spare` field of a full-resync request: "RS". A kernel backup reads a v1 header whose
    /// spare is not 0 as a version 0 message with `reserved` (0) connections: it does nothing.
    public static let resyncMarker: UInt16 = 0x5253
    /// Offsets in the 8-byte header.
    static let offsetReserved = 0, offsetSyncID = 1, offsetSize = 2, offsetCount = 4, offsetVersion = 5, offsetSpare = 6

    /// A request to the masters with `syncID` to send their whole table: a version 1 header, no
    /// connections, `resyncMarker` in the spare field.
    public static func resyncRequest(syncID: UInt8) -> [UInt8] {
        [0, syncID, 0, UInt8(headerLength), 0, 1, UInt8(resyncMarker >> 8), UInt8(resyncMarker & 0xFF)]
    }

    /// The syncid a full-resync request asks for, nil when `bytes` is not one.
    public static func resyncRequestSyncID(_ bytes: UnsafeRawBufferPointer) -> UInt8? {
        guard bytes.count == headerLength else { return nil }
        let r = SyncReader(bytes: bytes)
        guard r.u8(offsetReserved) == 0, Int(r.u16(offsetSize)) == headerLength, r.u8(offsetCount) == 0,
              r.u8(offsetVersion) == 1, r.u16(offsetSpare) == resyncMarker else { return nil }
        return r.u8(offsetSyncID)
    }
}

/// One connection (or persistence template) as carried by a sync message.
public struct SyncConnection: Hashable, Sendable {
    public var ipv6: Bool
    public var proto: UInt8
    /// Connection flags as sent (bits below 16, HASHED cleared by the sender).
    public var flags: UInt32
    public var state: UInt16
    public var clientPort: UInt16
    public var virtualPort: UInt16
    public var destinationPort: UInt16
    public var fwmark: UInt32
    /// The entry's state timeout in seconds (0 in version 0 messages: none carried).
    public var timeout: UInt32
    public var client: IPAddress
    public var virtualAddress: IPAddress
    public var destination: IPAddress
    /// in_seq then out_seq (init_seq, delta, previous_delta each), when a sequence option is present.
    public var sequence: [UInt32]?
    public var peData: [UInt8]?
    public var peName: [UInt8]?

    public init(ipv6: Bool = false, proto: UInt8, flags: UInt32, state: UInt16, clientPort: UInt16, virtualPort: UInt16,
                destinationPort: UInt16, fwmark: UInt32 = 0, timeout: UInt32, client: IPAddress, virtualAddress: IPAddress,
                destination: IPAddress, sequence: [UInt32]? = nil, peData: [UInt8]? = nil, peName: [UInt8]? = nil) {
        self.ipv6 = ipv6
        self.proto = proto
        self.flags = flags
        self.state = state
        self.clientPort = clientPort
        self.virtualPort = virtualPort
        self.destinationPort = destinationPort
        self.fwmark = fwmark
        self.timeout = timeout
        self.client = client
        self.virtualAddress = virtualAddress
        self.destination = destination
        self.sequence = sequence
        self.peData = peData
        self.peName = peName
    }

    public var isTemplate: Bool { flags & SyncProtocol.flagTemplate != 0 }
    public var isInactive: Bool { flags & SyncProtocol.flagInactive != 0 }

    /// The flags a backup keeps: `BACKUP_MASK` plus SYNC.
    public var backupFlags: UInt32 { (flags & SyncProtocol.backupMask) | SyncProtocol.flagSync }

    /// Bytes of this entry in a version 1 message (header and options, no padding).
    public var encodedLength: Int {
        var n = ipv6 ? SyncProtocol.entryLengthV6 : SyncProtocol.entryLengthV4
        if sequence != nil { n += 2 + SyncProtocol.sequenceOptionLength }
        if let d = peData { n += 2 + min(d.count, SyncProtocol.peDataMaxLength) }
        if let p = peName { n += 2 + min(p.count, SyncProtocol.peNameMaxLength) }
        return n
    }
}

/// Why a datagram was (partly) not used.
public enum SyncDecodeError: Error, Hashable, Sendable {
    /// Shorter than the 4-byte minimum header.
    case tooShort
    /// The header's size differs from the datagram length.
    case sizeMismatch
    /// The message's syncid is not the backup's.
    case syncIDMismatch
    /// An entry runs past the datagram (entry number given).
    case truncatedEntry(Int)
    /// An entry's version nibble is not 0.
    case unknownEntryVersion(Int)
    /// A malformed option TLV (bad length, duplicate, too long).
    case badOption(Int)
}

/// A decoded datagram: the usable entries, how many were skipped, and the error that stopped it.
public struct SyncDatagram: Hashable, Sendable {
    public var version: UInt8
    public var syncID: UInt8
    public var entries: [SyncConnection]
    /// Entries skipped for semantic reasons.
    public var skipped: Int
    /// Set when the datagram was dropped, or its remaining entries abandoned.
    public var error: SyncDecodeError?
}

/// Big-endian reads that return nil instead of trapping.
struct SyncReader {
    let bytes: UnsafeRawBufferPointer
    @inline(__always) func u8(_ o: Int) -> UInt8 { bytes[o] }
    @inline(__always) func u16(_ o: Int) -> UInt16 { UInt16(bytes[o]) << 8 | UInt16(bytes[o + 1]) }
    @inline(__always) func u32(_ o: Int) -> UInt32 { UInt32(u16(o)) << 16 | UInt32(u16(o + 2)) }
    func ipv4(_ o: Int) -> IPAddress { IPAddress(ipv4: u32(o)) }
    func ipv6(_ o: Int) -> IPAddress {
        IPAddress(high: UInt64(u32(o)) << 32 | UInt64(u32(o + 4)), low: UInt64(u32(o + 8)) << 32 | UInt64(u32(o + 12)))
    }
}

public enum SyncMessageDecoder {
    /// Decodes one datagram. `syncID`: the backup's id (0 accepts every message).
    public static func decode(_ bytes: [UInt8], syncID: UInt8 = 0) -> SyncDatagram {
        bytes.withUnsafeBytes { decode($0, syncID: syncID) }
    }

    public static func decode(_ buf: UnsafeRawBufferPointer, syncID: UInt8 = 0) -> SyncDatagram {
        var out = SyncDatagram(version: 0, syncID: 0, entries: [], skipped: 0, error: nil)
        guard buf.count >= SyncProtocol.headerLengthV0 else {
            out.error = .tooShort
            return out
        }
        let r = SyncReader(bytes: buf)
        out.syncID = r.u8(1)
        guard Int(r.u16(2)) == buf.count else {
            out.error = .sizeMismatch
            return out
        }
        if syncID != 0 && out.syncID != syncID {
            out.error = .syncIDMismatch
            return out
        }
        if buf.count >= SyncProtocol.headerLength && r.u8(5) == 1 && r.u8(0) == 0 && r.u16(6) == 0 {
            out.version = 1
            decodeV1(r, count: Int(r.u8(4)), into: &out)
        } else {
            out.version = 0
            decodeV0(r, count: Int(r.u8(0)), into: &out)
        }
        return out
    }

    static func decodeV1(_ r: SyncReader, count: Int, into out: inout SyncDatagram) {
        let end = r.bytes.count
        var p = SyncProtocol.headerLength
        for n in 0..<count {
            guard p + SyncProtocol.entryLengthV4 <= end else {
                out.error = .truncatedEntry(n)
                return
            }
            let verSize = r.u16(p + 2)
            let size = Int(verSize & 0x0FFF)
            guard size >= 4, p + size <= end else {
                out.error = .truncatedEntry(n)
                return
            }
            guard verSize >> 12 == 0 else {
                out.error = .unknownEntryVersion(n)
                return
            }
            switch entry(r, at: p, end: p + size, number: n) {
            case let .success(c?): out.entries.append(c)
            case .success(nil): out.skipped += 1
            case let .failure(e):
                out.error = e
                return
            }
            p += (size + 3) & ~3
        }
    }

    /// One version 1 entry: nil when it must be skipped, an error when the datagram must be abandoned.
    static func entry(_ r: SyncReader, at s: Int, end: Int, number n: Int) -> Result<SyncConnection?, SyncDecodeError> {
        let ipv6 = r.u8(s) & 1 != 0
        var p = s + (ipv6 ? SyncProtocol.entryLengthV6 : SyncProtocol.entryLengthV4)
        guard p <= end else { return .failure(.truncatedEntry(n)) }
        var c = SyncConnection(ipv6: ipv6, proto: r.u8(s + 1), flags: r.u32(s + 4), state: r.u16(s + 8),
                               clientPort: r.u16(s + 10), virtualPort: r.u16(s + 12), destinationPort: r.u16(s + 14),
                               fwmark: r.u32(s + 16), timeout: r.u32(s + 20),
                               client: ipv6 ? r.ipv6(s + 24) : r.ipv4(s + 24),
                               virtualAddress: ipv6 ? r.ipv6(s + 40) : r.ipv4(s + 28),
                               destination: ipv6 ? r.ipv6(s + 56) : r.ipv4(s + 32))
        var skip = false
        while p < end {
            guard p + 1 < end else { return .failure(.badOption(n)) }
            let type = r.u8(p), length = Int(r.u8(p + 1))
            p += 2
            guard length > 0, p + length <= end else { return .failure(.badOption(n)) }
            switch type & ~SyncProtocol.optionParam {
            case SyncProtocol.optionSequence:
                guard length == SyncProtocol.sequenceOptionLength, c.sequence == nil else { return .failure(.badOption(n)) }
                c.sequence = (0..<6).map { r.u32(p + 4 * $0) }
            case SyncProtocol.optionPEData:
                guard length <= SyncProtocol.peDataMaxLength, c.peData == nil else { return .failure(.badOption(n)) }
                c.peData = Array(UnsafeRawBufferPointer(rebasing: r.bytes[p..<(p + length)]))
            case SyncProtocol.optionPEName:
                guard length <= SyncProtocol.peNameMaxLength, c.peName == nil else { return .failure(.badOption(n)) }
                c.peName = Array(UnsafeRawBufferPointer(rebasing: r.bytes[p..<(p + length)]))
            default:
                if type & SyncProtocol.optionParam == 0 { skip = true } // unknown mandatory parameter
            }
            p += length
        }
        if skip || !acceptable(c) { return .success(nil) }
        return .success(c)
    }

    /// The semantic checks of `ip_vs_proc_sync_conn` / `ip_vs_proc_conn`.
    static func acceptable(_ c: SyncConnection) -> Bool {
        if c.flags & SyncProtocol.flagOnePacket != 0 { return false }
        if c.flags & SyncProtocol.flagTemplate != 0 {
            if c.flags & SyncProtocol.flagNoClientPort != 0 { return false }
            if c.state >= SyncProtocol.templateStateCount { return false }
        } else {
            guard let states = SyncProtocol.stateCount(protocol: c.proto), c.state < states else { return false }
        }
        if let name = c.peName {
            // The kernel's string option holds the name possibly NUL-terminated.
            let trimmed = Array(name.prefix { $0 != 0 })
            if !SyncProtocol.knownPersistenceEngines.contains(trimmed) { return false }
        } else if c.peData != nil {
            return false // PE data without an engine to interpret it
        }
        return true
    }

    static func decodeV0(_ r: SyncReader, count: Int, into out: inout SyncDatagram) {
        let end = r.bytes.count
        var p = SyncProtocol.headerLengthV0
        for n in 0..<count {
            guard p + SyncProtocol.entryLengthV0 <= end else {
                out.error = .truncatedEntry(n)
                return
            }
            let s = p
            let flags = UInt32(r.u16(s + 20))
            var c = SyncConnection(proto: r.u8(s + 1), flags: flags & ~SyncProtocol.flagHashed, state: r.u16(s + 22),
                                   clientPort: r.u16(s + 2), virtualPort: r.u16(s + 4), destinationPort: r.u16(s + 6),
                                   timeout: 0, client: r.ipv4(s + 8), virtualAddress: r.ipv4(s + 12), destination: r.ipv4(s + 16))
            p += SyncProtocol.entryLengthV0
            if flags & SyncProtocol.flagSeqMask != 0 {
                guard p + SyncProtocol.sequenceOptionLength <= end else {
                    out.error = .truncatedEntry(n)
                    return
                }
                c.sequence = (0..<6).map { r.u32(p + 4 * $0) }
                p += SyncProtocol.sequenceOptionLength
            }
            if acceptable(c) { out.entries.append(c) } else { out.skipped += 1 }
        }
    }
}

/// Packs entries into version 1 messages of at most `maxLength` bytes (one entry alone may be larger).
public struct SyncMessageBuilder: Sendable {
    public let syncID: UInt8
    public let maxLength: Int
    public private(set) var bytes: [UInt8]
    public private(set) var count = 0

    public init(syncID: UInt8, maxLength: Int = SyncProtocol.defaultMaxLength) {
        self.syncID = syncID
        self.maxLength = max(maxLength, SyncProtocol.headerLength)
        bytes = []
        bytes.reserveCapacity(self.maxLength)
        reset()
    }

    public var isEmpty: Bool { count == 0 }

    mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        bytes += [0, syncID, 0, UInt8(SyncProtocol.headerLength), 0, 1, 0, 0]
        count = 0
    }

    /// Whether `c` fits in the current message (always true for an empty one).
    public func fits(_ c: SyncConnection) -> Bool {
        if count == 0 { return true }
        let pad = (4 - bytes.count & 3) & 3
        return bytes.count + pad + c.encodedLength <= maxLength && count < 255
    }

    /// Appends one entry; the caller checks `fits` first (and takes the message when it does not).
    public mutating func append(_ c: SyncConnection) {
        while bytes.count & 3 != 0 { bytes.append(0) }
        let length = c.encodedLength
        bytes.append(c.ipv6 ? 1 : 0)
        bytes.append(c.proto)
        put16(UInt16(length & 0x0FFF))
        put32(c.flags & 0xFFFF & ~SyncProtocol.flagHashed)
        put16(c.state)
        put16(c.clientPort)
        put16(c.virtualPort)
        put16(c.destinationPort)
        put32(c.fwmark)
        put32(c.timeout)
        for a in [c.client, c.virtualAddress, c.destination] {
            if c.ipv6 {
                let w = a.words
                put32(w.0); put32(w.1); put32(w.2); put32(w.3)
            } else {
                put32(a.ipv4Value)
            }
        }
        if let seq = c.sequence {
            bytes += [SyncProtocol.optionSequence, UInt8(SyncProtocol.sequenceOptionLength)]
            for i in 0..<6 { put32(i < seq.count ? seq[i] : 0) }
        }
        if let d = c.peData {
            let v = d.prefix(SyncProtocol.peDataMaxLength)
            bytes += [SyncProtocol.optionPEData, UInt8(v.count)] + v
        }
        if let n = c.peName {
            let v = n.prefix(SyncProtocol.peNameMaxLength)
            bytes += [SyncProtocol.optionPEName, UInt8(v.count)] + v
        }
        count += 1
        bytes[2] = UInt8(truncatingIfNeeded: bytes.count >> 8)
        bytes[3] = UInt8(truncatingIfNeeded: bytes.count)
        bytes[4] = UInt8(count)
    }

    /// The finished message, leaving the builder empty.
    public mutating func take() -> [UInt8] {
        let m = bytes
        reset()
        return m
    }

    mutating func put16(_ v: UInt16) { bytes += [UInt8(v >> 8), UInt8(v & 0xFF)] }
    mutating func put32(_ v: UInt32) { put16(UInt16(v >> 16)); put16(UInt16(v & 0xFFFF)) }

    /// Packs a list into as many messages as needed.
    public static func messages(_ list: [SyncConnection], syncID: UInt8, maxLength: Int = SyncProtocol.defaultMaxLength) -> [[UInt8]] {
        var b = SyncMessageBuilder(syncID: syncID, maxLength: maxLength)
        var out: [[UInt8]] = []
        for c in list {
            if !b.fits(c) { out.append(b.take()) }
            b.append(c)
        }
        if !b.isEmpty { out.append(b.take()) }
        return out
    }
}

/// Version 0 encoding (IPv4 only, no timeout, fwmark or PE data), for tests and old backups.
public enum SyncMessageV0 {
    public static func encode(_ list: [SyncConnection], syncID: UInt8) -> [UInt8] {
        var b: [UInt8] = [UInt8(truncatingIfNeeded: list.count), syncID, 0, 0]
        func p16(_ v: UInt16) { b += [UInt8(v >> 8), UInt8(v & 0xFF)] }
        func p32(_ v: UInt32) { p16(UInt16(v >> 16)); p16(UInt16(v & 0xFFFF)) }
        for c in list.prefix(255) {
            b += [0, c.proto]
            p16(c.clientPort); p16(c.virtualPort); p16(c.destinationPort)
            p32(c.client.ipv4Value); p32(c.virtualAddress.ipv4Value); p32(c.destination.ipv4Value)
            var flags = c.flags & 0xFFFF & ~SyncProtocol.flagHashed
            if c.sequence == nil { flags &= ~SyncProtocol.flagSeqMask } else { flags |= flags & SyncProtocol.flagSeqMask == 0 ? SyncProtocol.flagInSeq : 0 }
            p16(UInt16(flags)); p16(c.state)
            if let seq = c.sequence { for i in 0..<6 { p32(i < seq.count ? seq[i] : 0) } }
        }
        b[2] = UInt8(truncatingIfNeeded: b.count >> 8)
        b[3] = UInt8(truncatingIfNeeded: b.count)
        return b
    }
}
