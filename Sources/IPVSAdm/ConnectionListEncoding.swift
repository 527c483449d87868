import LVSModel

/// The control protocol's answer to `.connections`, written straight into bytes: a JSON line that
/// `JSONDecoder` reads back as `ControlResponse.connections(list)` (the field names once, then one
/// array of values per entry), about ten times cheaper than `JSONEncoder`, which matters for a
/// listing of a million entries. lvsd streams it: the header, the entries in chunks, the trailer.
public enum ConnectionListEncoding {
    /// The response line (with its final newline) for `list`.
    public static func responseLine(_ list: [ConnectionSnapshot]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(headerBytes + list.count * typicalEntryBytes)
        appendHeader(to: &out)
        for (i, c) in list.enumerated() { appendEntry(c, first: i == 0, to: &out) }
        appendTrailer(to: &out)
        return out
    }

    /// About the size of the header (the version, the answer's name and the field names).
    public static let headerBytes = ControlProtocol.connectionsAnswerHeader.utf8CodeUnitCount
    /// About the size of an IPv4 entry (a capacity hint).
    public static let typicalEntryBytes = 80

    /// The start of the answer, up to its first entry (a streamed answer is the header, then
    /// each entry, then the trailer).
    public static func appendHeader(to out: inout [UInt8]) {
        append(ControlProtocol.connectionsAnswerHeader, to: &out)
    }

    /// The end of the answer after its last entry, with the line's newline.
    public static func appendTrailer(to out: inout [UInt8]) {
        append(ControlProtocol.connectionsAnswerTrailer, to: &out)
        out.append(UInt8(ascii: "\n"))
    }

    /// One entry: its values in the order of `ControlProtocol.connectionFields`, after a comma
    /// unless it is the answer's `first`.
    public static func appendEntry(_ c: ConnectionSnapshot, first: Bool, to out: inout [UInt8]) {
        append(first ? "[" : ",[", to: &out)
        appendString(c.protocolName, to: &out)
        append(#",""#, to: &out)
        appendAddress(c.clientAddress, to: &out)
        append(#"","#, to: &out)
        appendNumber(UInt64(c.clientPort), to: &out)
        append(#",""#, to: &out)
        appendAddress(c.virtualAddress, to: &out)
        append(#"","#, to: &out)
        appendNumber(UInt64(c.virtualPort), to: &out)
        append(#",""#, to: &out)
        appendAddress(c.destinationAddress, to: &out)
        append(#"","#, to: &out)
        appendNumber(UInt64(c.destinationPort), to: &out)
        append(",", to: &out)
        appendString(c.state, to: &out)
        append(",", to: &out)
        appendNumber(UInt64(c.expiresSeconds), to: &out)
        append(c.isTemplate ? ",true]" : ",false]", to: &out)
    }

    static func append(_ s: StaticString, to out: inout [UInt8]) {
        s.withUTF8Buffer { out.append(contentsOf: $0) }
    }

    static func appendNumber(_ v: UInt64, to out: inout [UInt8]) {
        if v < 10 {
            out.append(UInt8(ascii: "0") + UInt8(v))
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = v, count = 0
        withUnsafeMutableBytes(of: &digits) { d in
            while n > 0 {
                d[count] = UInt8(ascii: "0") + UInt8(n % 10)
                n /= 10
                count += 1
            }
            for k in stride(from: count - 1, through: 0, by: -1) { out.append(d[k]) }
        }
    }

    static func appendAddress(_ a: IPAddress, to out: inout [UInt8]) {
        guard a.isIPv4 else {
            out.append(contentsOf: a.description.utf8) // hex digits and colons: nothing to escape
            return
        }
        let v = a.ipv4Value
        for shift in stride(from: 24, through: 0, by: -8) {
            appendNumber(UInt64((v >> UInt32(shift)) & 0xFF), to: &out)
            if shift > 0 { out.append(UInt8(ascii: ".")) }
        }
    }

    /// A JSON string (quotes, backslash, control characters and "/" escaped as JSONEncoder does).
    static func appendString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): append(#"\""#, to: &out)
            case UInt8(ascii: "\\"): append(#"\\"#, to: &out)
            case UInt8(ascii: "/"): append(#"\/"#, to: &out)
            case 0x0A: append(#"\n"#, to: &out)
            case 0x0D: append(#"\r"#, to: &out)
            case 0x09: append(#"\t"#, to: &out)
            case 0..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                append(#"\u00"#, to: &out)
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 0xF)])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
