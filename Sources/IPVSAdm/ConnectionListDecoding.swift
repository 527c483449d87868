import Glibc
import LVSModel

/// lvsadm's reader of the `.connections` answer, the counterpart of `ConnectionListEncoding`:
/// it reads exactly the line lvsd writes (keys in that order, no white space) without
/// `JSONDecoder`, which spends seconds of CPU on a listing of a million entries. Anything else
/// (another answer, another layout, a value it does not take) gives nil, and the caller decodes
/// the line with `JSONDecoder` as before; what it does return equals what `JSONDecoder` reads.
public enum ConnectionListDecoding {
    /// The entries of a response line (without its newline), or nil when the line is not in the
    /// form `ConnectionListEncoding.responseLine` writes.
    public static func connections(_ line: UnsafeRawBufferPointer) -> [ConnectionSnapshot]? {
        var r = Reader(bytes: line)
        guard r.literal(ControlProtocol.connectionsAnswerHeader) else { return nil }
        var list: [ConnectionSnapshot] = []
        list.reserveCapacity(line.count / Self.minimumEntryBytes)
        if !r.literal("]") {
            repeat {
                guard let c = r.entry() else { return nil }
                list.append(c)
            } while r.literal(",")
            guard r.literal("]") else { return nil }
        }
        guard r.literal("}"), r.atEnd else { return nil } // the trailer after its "]"
        return list
    }

    /// `connections(_:)` on an array's bytes.
    public static func connections(_ line: [UInt8]) -> [ConnectionSnapshot]? {
        line.withUnsafeBytes { connections($0) }
    }

    /// About the length of the shortest entry lvsd writes (addresses "::", one-digit values,
    /// empty names: 35 bytes and a comma), for a capacity hint that never exceeds the count.
    static let minimumEntryBytes = 36
}

/// `ConnectionListDecoding` for an answer read in pieces: the entries as their bytes arrive, so
/// that lvsadm holds neither the whole answer (about 75 bytes per entry) nor all the entries.
public struct ConnectionListStream {
    /// What `next()` found.
    public enum Step: Equatable {
        /// One more entry.
        case entry(ConnectionSnapshot)
        /// The rest of the entry (or of the line) has not arrived yet: `feed` more.
        case needMore
        /// The line ended (its newline included) after the last entry.
        case end
        /// The bytes are not in lvsd's form (another answer, another layout, a value this reader
        /// does not take): the line is for `JSONDecoder` (`fedSoFar` has its start while no
        /// entry has been given).
        case notLvsdForm
    }

    private enum Phase { case header, firstEntry, afterEntry, trailer, done }

    private var pending: [UInt8] = []
    private var at = 0
    private var phase = Phase.header
    /// Entries given by `next()` so far.
    public private(set) var entries = 0

    public init() {}

    /// Bytes fed and not yet read (after `.end`: what followed the newline).
    public var unconsumed: ArraySlice<UInt8> { pending[at...] }

    /// Every byte fed, while no entry has been given (nil after: they are no longer kept).
    public var fedSoFar: ArraySlice<UInt8>? { entries == 0 ? pending[...] : nil }

    /// Appends received bytes.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        if entries > 0 && at >= pending.count / 2 {
            pending.removeFirst(at) // what was read goes
            at = 0
        }
        pending.append(contentsOf: bytes)
    }

    /// The next entry, or why there is none now.
    public mutating func next() -> Step {
        var phase = self.phase, at = self.at
        let step = pending.withUnsafeBytes { Self.step($0, &phase, &at) }
        self.phase = phase
        self.at = at
        if case .entry = step { entries += 1 }
        return step
    }

    private static func step(_ raw: UnsafeRawBufferPointer, _ phase: inout Phase, _ at: inout Int) -> Step {
        var r = Reader(bytes: raw)
        r.at = at
        while true {
            switch phase {
            case .header:
                if r.literal(ControlProtocol.connectionsAnswerHeader) { phase = .firstEntry; at = r.at; continue }
                return r.ranOut ? .needMore : .notLvsdForm
            case .firstEntry, .afterEntry:
                if r.literal("]") { phase = .trailer; at = r.at; continue }
                if r.ranOut { return .needMore }
                if phase == .afterEntry && !r.literal(",") { return r.ranOut ? .needMore : .notLvsdForm }
                guard let c = r.entry() else { return r.ranOut ? .needMore : .notLvsdForm }
                phase = .afterEntry
                at = r.at
                return .entry(c)
            case .trailer:
                guard r.literal("}\n") else { return r.ranOut ? .needMore : .notLvsdForm } // the trailer after its "]"
                phase = .done
                at = r.at
                return .end
            case .done:
                return .end
            }
        }
    }
}

/// A cursor over the bytes of one answer line, or of the part of it received so far.
private struct Reader {
    let bytes: UnsafeRawBufferPointer
    var at = 0
    /// A read failed at the end of `bytes`: with more of the line it may succeed.
    var ranOut = false

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var atEnd: Bool { at == bytes.count }

    /// Consumes `s` if the input continues with it (`ranOut` when what there is matches its start).
    mutating func literal(_ s: StaticString) -> Bool {
        let n = s.utf8CodeUnitCount, available = min(n, bytes.count - at)
        guard available > 0 else { ranOut = true; return false }
        if memcmp(bytes.baseAddress! + at, s.utf8Start, available) != 0 { return false }
        guard available == n else { ranOut = true; return false }
        at += n
        return true
    }

    /// One entry in `ConnectionListEncoding`'s form: an array of the values of
    /// `ControlProtocol.connectionFields` in that order.
    mutating func entry() -> ConnectionSnapshot? {
        guard literal("["), let proto = string(),
              literal(","), let client = address(),
              literal(","), let clientPort = number(max: UInt64(UInt16.max)),
              literal(","), let virtual = address(),
              literal(","), let virtualPort = number(max: UInt64(UInt16.max)),
              literal(","), let destination = address(),
              literal(","), let destinationPort = number(max: UInt64(UInt16.max)),
              literal(","), let state = string(),
              literal(","), let expires = number(max: UInt64(UInt32.max)),
              literal(",") else { return nil }
        let template: Bool
        if literal("true") {
            template = true
        } else if literal("false") {
            template = false
        } else {
            return nil
        }
        guard literal("]") else { return nil }
        return ConnectionSnapshot(protocolName: proto, clientAddress: client, clientPort: UInt16(clientPort),
                                  virtualAddress: virtual, virtualPort: UInt16(virtualPort),
                                  destinationAddress: destination, destinationPort: UInt16(destinationPort),
                                  state: state, expiresSeconds: UInt32(expires), isTemplate: template)
    }

    /// A JSON unsigned integer (no sign, fraction, exponent or leading zero) up to `max`.
    mutating func number(max: UInt64) -> UInt64? {
        let start = at
        var v: UInt64 = 0
        while at < bytes.count, let d = Self.digit(bytes[at]) {
            if at > start && v == 0 { return nil } // a leading zero
            v = v * 10 + UInt64(d)
            if v > max { return nil }
            at += 1
        }
        if at == bytes.count { ranOut = true; return nil } // more digits may follow
        return at > start ? v : nil
    }

    static func digit(_ b: UInt8) -> UInt8? {
        b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") ? b - UInt8(ascii: "0") : nil
    }

    /// A quoted address: a dotted quad read here (with `inet_pton`'s rules: four parts of one to
    /// three digits, no leading zero, each at most 255), anything else through `IPAddress(String)`
    /// exactly as `IPAddress.init(from:)` does.
    mutating func address() -> IPAddress? {
        let start = at
        if let a = dottedQuad() { return a }
        at = start
        guard let text = string() else { return nil }
        if text == "0.0.0.0" { return .ipv4Zero }
        return IPAddress(text)
    }

    private mutating func dottedQuad() -> IPAddress? {
        guard literal("\"") else { return nil }
        var value: UInt32 = 0
        for part in 0..<4 {
            if part > 0 { guard literal(".") else { return nil } }
            let start = at
            guard let octet = number(max: 255), at - start <= 3 else { return nil }
            value = value << 8 | UInt32(octet)
        }
        guard literal("\"") else { return nil }
        return IPAddress(ipv4: value)
    }

    /// A quoted JSON string: valid UTF-8, no raw control characters, escapes decoded. Nil for
    /// what JSON does not allow and for an unpaired surrogate escape.
    mutating func string() -> String? {
        guard literal("\"") else { return nil }
        let start = at
        var high: UInt8 = 0 // the bytes or'ed: below 0x80, all ASCII (valid UTF-8 as it is)
        while at < bytes.count {
            let b = bytes[at]
            if b == UInt8(ascii: "\"") {
                let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<at]).bindMemory(to: UInt8.self)
                at += 1
                return high < 0x80 ? String(decoding: raw, as: UTF8.self) : String(validating: raw, as: UTF8.self)
            }
            high |= b
            if b == UInt8(ascii: "\\") { return escapedString(from: start) }
            if b < Self.firstPrintable { return nil }
            at += 1
        }
        ranOut = true
        return nil
    }

    static let firstPrintable: UInt8 = 0x20

    /// The rest of a string that has escapes, its plain prefix starting at `start`.
    private mutating func escapedString(from start: Int) -> String? {
        var out = Array(bytes[start..<at])
        while at < bytes.count {
            let b = bytes[at]
            at += 1
            switch b {
            case UInt8(ascii: "\""):
                return String(validating: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard at < bytes.count else { ranOut = true; return nil }
                let e = bytes[at]
                at += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    guard let scalar = unicodeEscape() else { return nil }
                    out.append(contentsOf: String(Character(scalar)).utf8)
                default: return nil
                }
            default:
                if b < Self.firstPrintable { return nil }
                out.append(b)
            }
        }
        ranOut = true
        return nil
    }

    /// The scalar of `XXXX` after `\u` (and of a following `\uXXXX` low surrogate).
    private mutating func unicodeEscape() -> Unicode.Scalar? {
        guard let unit = hex4() else { return nil }
        switch unit {
        case 0xD800...0xDBFF:
            guard literal(#"\u"#), let low = hex4(), (0xDC00...0xDFFF).contains(low) else { return nil }
            return Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
        case 0xDC00...0xDFFF:
            return nil
        default:
            return Unicode.Scalar(unit)
        }
    }

    private mutating func hex4() -> UInt32? {
        guard bytes.count - at >= 4 else { ranOut = true; return nil }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[at]
            let d: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = b - UInt8(ascii: "A") + 10
            default: return nil
            }
            v = v << 4 | UInt32(d)
            at += 1
        }
        return v
    }
}
