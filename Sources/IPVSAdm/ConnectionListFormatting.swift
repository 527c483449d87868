import LVSModel

extension IPVSAdmFormatter {
    /// `list_conn` as bytes, for one buffered write of a listing of a million entries. With `-n`
    /// an entry is written straight into the buffer (no strings per line); names, and protocol or
    /// state names that are not printable ASCII, go through `connectionLine`. Same text either way.
    public func connectionListing(_ conns: [ConnectionSnapshot], format: IPVSAdmFormat) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.connectionHeaderBytes + conns.count * Self.numericIPv4LineBytes)
        out.append(contentsOf: connectionHeader(format: format).utf8)
        let numeric = format.contains(.numeric)
        for c in conns { appendConnection(c, numeric: numeric, to: &out) }
        return out
    }

    /// Appends one entry's line (as `connectionLine` writes it).
    public func appendConnection(_ c: ConnectionSnapshot, numeric: Bool, to out: inout [UInt8]) {
        if numeric && Self.appendNumericLine(c, to: &out) { return }
        out.append(contentsOf: connectionLine(c, numeric: numeric).utf8)
    }

    /// About the length of the two header lines and of a numeric IPv4 entry (a capacity hint).
    static let connectionHeaderBytes = 160
    static let numericIPv4LineBytes = 100

    /// Column widths of `list_conn` (`%-3s %-6s %-11s %-18s %-18s %s`).
    enum ConnectionColumn {
        static let proto = 3
        static let expire = 6
        static let state = 11
        static let address = 18
    }

    /// Appends `c`'s numeric line as `connectionLine(c, numeric: true)` writes it; false (and
    /// nothing appended) when a name is not printable ASCII, where characters and bytes differ.
    static func appendNumericLine(_ c: ConnectionSnapshot, to out: inout [UInt8]) -> Bool {
        guard isPrintableASCII(c.protocolName), isPrintableASCII(c.state) else { return false }
        var start = out.count
        out.append(contentsOf: c.protocolName.utf8)
        pad(&out, from: start, to: ConnectionColumn.proto)
        out.append(UInt8(ascii: " "))
        start = out.count
        let minutes = c.expiresSeconds / 60, seconds = c.expiresSeconds % 60
        if minutes < 10 { out.append(UInt8(ascii: "0")) }
        appendDecimal(UInt64(minutes), to: &out)
        out.append(UInt8(ascii: ":"))
        if seconds < 10 { out.append(UInt8(ascii: "0")) }
        appendDecimal(UInt64(seconds), to: &out)
        pad(&out, from: start, to: ConnectionColumn.expire)
        out.append(UInt8(ascii: " "))
        start = out.count
        out.append(contentsOf: c.state.utf8)
        pad(&out, from: start, to: ConnectionColumn.state)
        out.append(UInt8(ascii: " "))
        start = out.count
        appendAddressPort(c.clientAddress, c.clientPort, to: &out)
        pad(&out, from: start, to: ConnectionColumn.address)
        out.append(UInt8(ascii: " "))
        start = out.count
        appendAddressPort(c.virtualAddress, c.virtualPort, to: &out)
        pad(&out, from: start, to: ConnectionColumn.address)
        out.append(UInt8(ascii: " "))
        appendAddressPort(c.destinationAddress, c.destinationPort, to: &out)
        out.append(UInt8(ascii: "\n"))
        return true
    }

    static func isPrintableASCII(_ s: String) -> Bool {
        s.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
    }

    /// Spaces after the field that starts at `start`, up to `width` bytes (`%-Ns`).
    static func pad(_ out: inout [UInt8], from start: Int, to width: Int) {
        let written = out.count - start
        if written < width { out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: width - written)) }
    }

    static func appendDecimal(_ v: UInt64, to out: inout [UInt8]) {
        if v < 10 {
            out.append(UInt8(ascii: "0") + UInt8(v))
            return
        }
        var digits = 0
        var rest = v
        while rest > 0 { digits += 1; rest /= 10 }
        let end = out.count + digits
        out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: digits))
        out.withUnsafeMutableBufferPointer { buf in
            var n = v, k = end
            while n > 0 {
                k -= 1
                buf[k] = UInt8(ascii: "0") + UInt8(n % 10)
                n /= 10
            }
        }
    }

    /// `a.b.c.d:port` or `[v6]:port` (never longer than `addressPort`'s 59-character limit).
    static func appendAddressPort(_ a: IPAddress, _ port: UInt16, to out: inout [UInt8]) {
        if a.isIPv4 {
            let v = a.ipv4Value
            appendDecimal(UInt64(v >> 24), to: &out)
            out.append(UInt8(ascii: "."))
            appendDecimal(UInt64((v >> 16) & 0xFF), to: &out)
            out.append(UInt8(ascii: "."))
            appendDecimal(UInt64((v >> 8) & 0xFF), to: &out)
            out.append(UInt8(ascii: "."))
            appendDecimal(UInt64(v & 0xFF), to: &out)
        } else {
            out.append(UInt8(ascii: "["))
            out.append(contentsOf: a.description.utf8)
            out.append(UInt8(ascii: "]"))
        }
        out.append(UInt8(ascii: ":"))
        appendDecimal(UInt64(port), to: &out)
    }
}
