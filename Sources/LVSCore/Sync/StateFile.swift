import LVSModel

/// lvsd's state file: the connection table and persistence templates written at a graceful stop
/// and read by the next lvsd before its data plane forwards (issue 16, docs/restart.md).
///
/// The entries are carried as sync messages (version 1, `SyncMessageBuilder`), the format the
/// backup daemon already validates, so every field a restart needs is decoded by code the sync
/// tests and the fuzzer cover. Sync datagrams have no checksum and no version of their own beyond
/// the wire protocol's, so the file wraps them in a header of its own:
///
/// ```
/// offset  size  field
///      0     8  magic "LVSDSTAT"
///      8     2  format version (big endian), `currentVersion`
///     10     2  reserved, 0
///     12     4  number of entries
///     16     4  payload length in bytes
///     20     4  CRC-32 (IEEE) of the payload
///     24     …  payload: messages, each a 2-byte length then a version 1 sync message
/// ```
///
/// A file is used whole or not at all: any mismatch refuses it before one entry is applied.
public enum StateFile {
    /// "LVSDSTAT".
    public static let magic: [UInt8] = Array("LVSDSTAT".utf8)
    /// The format this build writes (version 2: connections, counters and checker states,
    /// StateFile+Version2.swift). A newer format gets a new number; a build reads every version it
    /// knows (`readableVersions`) and refuses the others.
    public static let currentVersion: UInt16 = 2
    /// The versions this build reads: 1 (connections and templates only) and 2.
    public static let readableVersions: ClosedRange<UInt16> = 1...2
    public static let headerLength = 24
    public static let offsetVersion = 8
    static let offsetReserved = 10
    static let offsetCount = 12
    static let offsetLength = 16
    static let offsetChecksum = 20
    static let messagePrefixLength = 2
    /// Bytes per sync message inside the file (the message's own size field is 16 bits).
    static let messageMaxLength = 60_000

    /// Why a state file was refused.
    public enum Refusal: Error, Hashable, Sendable, CustomStringConvertible {
        case tooShort(Int)
        case badMagic
        case unsupportedVersion(UInt16)
        case lengthMismatch(header: Int, actual: Int)
        case checksumMismatch
        case badMessage(Int)
        case countMismatch(header: Int, actual: Int)
        case badRecord(String)

        public var description: String {
            switch self {
            case .tooShort(let n): return "truncated: \(n) bytes, shorter than the \(StateFile.headerLength)-byte header"
            case .badMagic: return "not an lvsd state file (bad magic)"
            case .unsupportedVersion(let v):
                return "format version \(v), this lvsd reads versions \(StateFile.readableVersions.lowerBound) to \(StateFile.readableVersions.upperBound)"
            case .lengthMismatch(let h, let a): return "truncated or extended: the header says \(h) payload bytes, the file has \(a)"
            case .checksumMismatch: return "corrupt: the payload's CRC-32 does not match"
            case .badMessage(let i): return "corrupt: message \(i) does not decode"
            case .countMismatch(let h, let a): return "corrupt: the header says \(h) entries, the messages hold \(a)"
            case .badRecord(let what): return "corrupt: \(what)"
            }
        }
    }

    /// The file's bytes for `entries` (the current version, without counters or checker states).
    public static func encode(_ entries: [SyncConnection]) -> [UInt8] {
        encode(StateFileContents(entries: entries))
    }

    /// A version 1 file (what lvsd wrote before version 2; for tests of the upgrade path).
    public static func encodeVersion1(_ entries: [SyncConnection]) -> [UInt8] {
        let payload = messagesPayload(entries)
        return header(version: 1, count: entries.count, payload: payload) + payload
    }

    /// The messages part: each message's 2-byte length, then the version 1 sync message.
    static func messagesPayload(_ entries: [SyncConnection]) -> [UInt8] {
        var payload: [UInt8] = []
        for m in SyncMessageBuilder.messages(entries, syncID: 0, maxLength: messageMaxLength) {
            payload += [UInt8(m.count >> 8), UInt8(m.count & 0xFF)]
            payload += m
        }
        return payload
    }

    static func header(version: UInt16, count: Int, payload: [UInt8]) -> [UInt8] {
        var out = magic
        put16(&out, version)
        put16(&out, 0)
        put32(&out, UInt32(count))
        put32(&out, UInt32(payload.count))
        put32(&out, CRC32.checksum(payload))
        return out
    }

    /// The entries of a whole file, or why it is refused.
    public static func decode(_ bytes: [UInt8]) -> Result<[SyncConnection], Refusal> {
        decodeContents(bytes).map(\.entries)
    }

    /// The header checked against the payload: the version, the entry count and the payload.
    static func checkedPayload(_ bytes: [UInt8]) -> Result<(UInt16, Int, [UInt8]), Refusal> {
        guard bytes.count >= headerLength else { return .failure(.tooShort(bytes.count)) }
        guard Array(bytes[0..<magic.count]) == magic else { return .failure(.badMagic) }
        let version = u16(bytes, offsetVersion)
        guard readableVersions.contains(version), u16(bytes, offsetReserved) == 0 else { return .failure(.unsupportedVersion(version)) }
        let count = Int(u32(bytes, offsetCount))
        let length = Int(u32(bytes, offsetLength))
        let payload = Array(bytes[headerLength...])
        guard payload.count == length else { return .failure(.lengthMismatch(header: length, actual: payload.count)) }
        guard CRC32.checksum(payload) == u32(bytes, offsetChecksum) else { return .failure(.checksumMismatch) }
        return .success((version, count, payload))
    }

    /// The sync messages of `payload` (`count` entries in all), whole or refused.
    static func decodeMessages(_ payload: [UInt8], count: Int) -> Result<[SyncConnection], Refusal> {
        var entries: [SyncConnection] = []
        // Never trust the header for memory: at most as many entries as the payload can hold.
        entries.reserveCapacity(min(count, payload.count / SyncProtocol.entryLengthV4))
        var at = 0, number = 0
        while at < payload.count {
            guard at + messagePrefixLength <= payload.count else { return .failure(.badMessage(number)) }
            let size = Int(u16(payload, at))
            at += messagePrefixLength
            guard size > 0, at + size <= payload.count else { return .failure(.badMessage(number)) }
            let dg = SyncMessageDecoder.decode(Array(payload[at..<at + size]))
            guard dg.version == 1, dg.error == nil, dg.skipped == 0 else { return .failure(.badMessage(number)) }
            entries += dg.entries
            at += size
            number += 1
        }
        guard entries.count == count else { return .failure(.countMismatch(header: count, actual: entries.count)) }
        return .success(entries)
    }

    static func put16(_ b: inout [UInt8], _ v: UInt16) { b += [UInt8(v >> 8), UInt8(v & 0xFF)] }
    static func put32(_ b: inout [UInt8], _ v: UInt32) { put16(&b, UInt16(v >> 16)); put16(&b, UInt16(v & 0xFFFF)) }
    static func u16(_ b: [UInt8], _ o: Int) -> UInt16 { UInt16(b[o]) << 8 | UInt16(b[o + 1]) }
    static func u32(_ b: [UInt8], _ o: Int) -> UInt32 { UInt32(u16(b, o)) << 16 | UInt32(u16(b, o + 2)) }
}

/// CRC-32 as Ethernet and zlib compute it (reflected polynomial 0xEDB88320).
public enum CRC32 {
    static let polynomial: UInt32 = 0xEDB8_8320
    static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? polynomial ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}
