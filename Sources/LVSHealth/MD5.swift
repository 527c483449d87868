import KeepalivedConfig

/// MD5 (RFC 1321), for HTTP_GET `digest`. Not for security: keepalived's digest is MD5.
struct MD5 {
    private var state: (UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476)
    private var buffer: [UInt8] = []
    private var length: UInt64 = 0

    private static let shifts: [UInt32] = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21]
    /// floor(abs(sin(i + 1)) * 2^32)
    private static let table: [UInt32] = (0..<64).map { i in
        UInt32(truncatingIfNeeded: Int64((abs(sin(Double(i + 1))) * 4_294_967_296.0).rounded(.down)))
    }

    mutating func update<S: Sequence>(_ bytes: S) where S.Element == UInt8 {
        for b in bytes {
            buffer.append(b)
            length &+= 1
            if buffer.count == 64 {
                block(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
    }

    private mutating func block(_ chunk: [UInt8]) {
        var m = [UInt32](repeating: 0, count: 16)
        for j in 0..<16 {
            m[j] = UInt32(chunk[4 * j]) | UInt32(chunk[4 * j + 1]) << 8 | UInt32(chunk[4 * j + 2]) << 16 | UInt32(chunk[4 * j + 3]) << 24
        }
        var (a, b, c, d) = state
        for i in 0..<64 {
            var f: UInt32
            let g: Int
            switch i / 16 {
            case 0: f = (b & c) | (~b & d); g = i
            case 1: f = (d & b) | (~d & c); g = (5 * i + 1) % 16
            case 2: f = b ^ c ^ d; g = (3 * i + 5) % 16
            default: f = c ^ (b | ~d); g = (7 * i) % 16
            }
            f = f &+ a &+ Self.table[i] &+ m[g]
            a = d
            d = c
            c = b
            let s = Self.shifts[(i / 16) * 4 + i % 4]
            b = b &+ ((f << s) | (f >> (32 - s)))
        }
        state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d)
    }

    mutating func finish() -> [UInt8] {
        let bits = length &* 8
        update([0x80])
        while buffer.count != 56 { update([0]) }
        update((0..<8).map { UInt8(truncatingIfNeeded: bits >> (8 * UInt64($0))) })
        var out: [UInt8] = []
        for w in [state.0, state.1, state.2, state.3] {
            for k in 0..<4 { out.append(UInt8(truncatingIfNeeded: w >> (8 * UInt32(k)))) }
        }
        return out
    }

    /// Lower-case hex MD5 of `bytes`.
    static func hex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var md5 = MD5()
        md5.update(bytes)
        let digits = Array("0123456789abcdef")
        return String(md5.finish().flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0xF)]] })
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
