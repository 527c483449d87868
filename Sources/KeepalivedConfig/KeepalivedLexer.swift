import Glibc
import Foundation

/// One logical line of keepalived.conf: a keyword with its arguments, or a lone `{` / `}`.
struct KeepalivedLine: Sendable, Equatable {
    var file: String
    var line: Int
    /// Tokens with double quotes removed.
    var words: [String]
    /// The logical line's text after comment removal (for keywords that re-parse it shell-style).
    var raw: String

    var keyword: String { words.first ?? "" }
    var isOpen: Bool { words == ["{"] }
    var isClose: Bool { words == ["}"] }
}

/// Reads keepalived.conf into logical lines (§1.1, §1.2): comments, quotes, braces as line
/// breaks, `include` with globs relative to the including file, `@ID` conditional lines and
/// `$NAME=value` parameters.
package struct KeepalivedLexer {
    var diagnostics: [KeepalivedDiagnostic] = []
    var configID: String
    var parameters: [String: String] = [:]
    private var openFiles: [String] = []

    init(configID: String) { self.configID = configID }

    /// The first label of the host name, keepalived's default config-id.
    static func defaultConfigID() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "" }
        let host = String(cString: buf)
        return String(host.split(separator: ".").first ?? "")
    }

    mutating func lex(file path: String) throws -> [KeepalivedLine] {
        guard openFiles.count < 32, !openFiles.contains(path) else {
            diagnostics.append(.init(.error, file: openFiles.last ?? path, line: 0, "include loop or nesting too deep at '\(path)' - skipping"))
            return []
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KeepalivedLoadError(diagnostics: diagnostics, message: "\(path): cannot read configuration file")
        }
        return try lex(text: String(decoding: data, as: UTF8.self), path: path)
    }

    /// Lexes `text` as if it were the file `path` (includes are relative to its directory).
    mutating func lex(text: String, path: String) throws -> [KeepalivedLine] {
        openFiles.append(path)
        defer { openFiles.removeLast() }
        var out: [KeepalivedLine] = []
        var number = 0
        var physical = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map(String.init)
        if physical.last == "" { physical.removeLast() }
        var index = 0
        while index < physical.count {
            var line = physical[index].replacingOccurrences(of: "\r", with: "")
            index += 1
            number += 1
            if line.utf8.count > 1023 {
                diagnostics.append(.init(.error, file: path, line: number, "line too long - ignored"))
                continue
            }
            var trimmed = Self.stripComment(line).trimmingCharacters(in: .whitespaces)
            // $NAME=value definitions (a trailing `\` continues the value on the next line).
            if trimmed.hasPrefix("$"), let eq = trimmed.firstIndex(of: "="),
               !trimmed[trimmed.index(after: trimmed.startIndex)..<eq].contains(where: { $0 == " " || $0 == "\t" }) {
                let name = String(trimmed[trimmed.index(after: trimmed.startIndex)..<eq])
                var value = String(trimmed[trimmed.index(after: eq)...])
                while value.hasSuffix("\\"), index < physical.count {
                    value.removeLast()
                    value += Self.stripComment(physical[index].replacingOccurrences(of: "\r", with: "")).trimmingCharacters(in: .whitespaces)
                    index += 1
                    number += 1
                }
                if !name.isEmpty { parameters[name] = value.trimmingCharacters(in: .whitespaces) }
                continue
            }
            // Include detection comes before conditionals and parameters (§1.2).
            let head = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            if let kw = head.first, ["include", "includer", "includem", "includew", "includeb", "includea"].contains(kw) {
                guard head.count >= 2 else {
                    diagnostics.append(.init(.error, file: path, line: number, "missing a parameter after keyword '\(kw)'"))
                    continue
                }
                out += try include(Self.unquote(head[1]), keyword: kw, from: path, line: number)
                continue
            }
            if trimmed.hasPrefix("@") {
                guard let space = trimmed.firstIndex(where: { $0 == " " || $0 == "\t" }) else { continue }
                var id = String(trimmed[trimmed.index(after: trimmed.startIndex)..<space])
                var negate = false
                if id.hasPrefix("^") { negate = true; id.removeFirst() }
                guard (id == configID) != negate else { continue }
                trimmed = trimmed[space...].trimmingCharacters(in: .whitespaces)
            }
            if trimmed.contains("$") { trimmed = substitute(trimmed) }
            line = trimmed
            for piece in Self.splitBraces(line) {
                let words = Self.tokens(piece)
                if !words.isEmpty { out.append(KeepalivedLine(file: path, line: number, words: words, raw: piece)) }
            }
        }
        return out
    }

    private mutating func include(_ pattern: String, keyword: String, from path: String, line: Int) throws -> [KeepalivedLine] {
        var full = pattern
        if !full.hasPrefix("/") {
            let dir = (path as NSString).deletingLastPathComponent
            full = (dir.isEmpty ? "." : dir) + "/" + full
        }
        var g = glob_t()
        defer { globfree(&g) }
        let flags = Int32(1 << 10) // GLOB_BRACE
        var matches: [String] = []
        if glob(full, flags, nil, &g) == 0 {
            for i in 0..<Int(g.gl_pathc) {
                if let p = g.gl_pathv[i] { matches.append(String(cString: p)) }
            }
        }
        if matches.isEmpty {
            if keyword != "include" {
                diagnostics.append(.init(.error, file: path, line: line, "\(keyword) '\(pattern)': no file matches"))
            }
            return []
        }
        var out: [KeepalivedLine] = []
        for m in matches {
            if access(m, R_OK) != 0 {
                diagnostics.append(.init(keyword == "include" ? .warning : .error, file: path, line: line, "cannot read included file '\(m)'"))
                continue
            }
            out += try lex(file: m)
        }
        return out
    }

    /// `${NAME}` and `$NAME` (followed by whitespace or the end) are replaced, recursively.
    func substitute(_ text: String, depth: Int = 0) -> String {
        guard depth < 16 else { return text }
        var out = ""
        var chars = Array(text)[...]
        var changed = false
        while let c = chars.first {
            chars = chars.dropFirst()
            guard c == "$" else { out.append(c); continue }
            if chars.first == "{", let close = chars.firstIndex(of: "}") {
                let name = String(chars[chars.index(after: chars.startIndex)..<close])
                if let v = parameters[name] {
                    out += v
                    changed = true
                    chars = chars[chars.index(after: close)...]
                    continue
                }
                out.append(c)
                continue
            }
            let name = String(chars.prefix { $0 != " " && $0 != "\t" })
            if let v = parameters[name], !name.isEmpty {
                out += v
                changed = true
                chars = chars.dropFirst(name.count)
            } else {
                out.append(c)
            }
        }
        return changed ? substitute(out, depth: depth + 1) : out
    }

    /// Removes a `#` or `!` comment outside double quotes; `\#` and `\!` stay literal.
    static func stripComment(_ line: String) -> String {
        var out = ""
        var inQuote = false
        var escaped = false
        for c in line {
            if escaped {
                if c == "#" || c == "!" { out.removeLast() }
                out.append(c)
                escaped = false
                continue
            }
            if c == "\\" && !inQuote { escaped = true; out.append(c); continue }
            if c == "\"" { inQuote.toggle() }
            if !inQuote && (c == "#" || c == "!") { break }
            out.append(c)
        }
        return out
    }

    /// Splits a line at every unquoted `{` or `}`; each brace becomes its own logical line.
    static func splitBraces(_ line: String) -> [String] {
        var pieces: [String] = []
        var current = ""
        var inQuote = false
        for c in line {
            if c == "\"" { inQuote.toggle() }
            if !inQuote && (c == "{" || c == "}") {
                pieces.append(current)
                pieces.append(String(c))
                current = ""
            } else {
                current.append(c)
            }
        }
        pieces.append(current)
        return pieces.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Whitespace-separated tokens; a `"…"` string is one token without its quotes.
    static func tokens(_ text: String) -> [String] {
        var words: [String] = []
        var current = ""
        var inQuote = false
        var has = false
        for c in text {
            if c == "\"" { inQuote.toggle(); has = true; continue }
            if !inQuote && (c == " " || c == "\t") {
                if has { words.append(current) }
                current = ""
                has = false
                continue
            }
            current.append(c)
            has = true
        }
        if has { words.append(current) }
        return words
    }

    static func unquote(_ s: String) -> String {
        if s.count >= 2, s.hasPrefix("\""), s.hasSuffix("\"") { return String(s.dropFirst().dropLast()) }
        return s
    }

    /// Shell-like re-parse of the arguments after the keyword (`"` and `'` quotes, `\n \t \xHH \ooo`
    /// escapes), for script keywords: returns the command (first word) and the remaining words.
    package static func shellWords(_ raw: String) -> [String] {
        var words: [String] = []
        var current = ""
        var has = false
        var quote: Character?
        var chars = Array(raw)[...]
        while let c = chars.popFirst() {
            if let q = quote {
                if c == q { quote = nil; continue }
                if c == "\\" && q == "\"", let n = chars.first {
                    chars = chars.dropFirst()
                    current += escape(n, &chars)
                    continue
                }
                current.append(c)
                continue
            }
            switch c {
            case "\"", "'":
                quote = c
                has = true
            case " ", "\t":
                if has { words.append(current) }
                current = ""
                has = false
            case "\\":
                if let n = chars.first {
                    chars = chars.dropFirst()
                    current += escape(n, &chars)
                    has = true
                }
            default:
                current.append(c)
                has = true
            }
        }
        if has { words.append(current) }
        return words
    }

    private static func escape(_ n: Character, _ rest: inout ArraySlice<Character>) -> String {
        switch n {
        case "n": return "\n"
        case "t": return "\t"
        case "r": return "\r"
        case "x":
            let hex = String(rest.prefix(2).prefix { $0.isHexDigit })
            rest = rest.dropFirst(hex.count)
            if let v = UInt8(hex, radix: 16) { return String(UnicodeScalar(v)) }
            return "x"
        case "0"..."7":
            var digits = String(n)
            while digits.count < 3, let d = rest.first, ("0"..."7").contains(d) {
                digits.append(d)
                rest = rest.dropFirst()
            }
            if let v = UInt8(digits, radix: 8) { return String(UnicodeScalar(v)) }
            return digits
        case "c":
            if let d = rest.popFirst(), let a = d.asciiValue { return String(UnicodeScalar(a & 0x1F)) }
            return ""
        default: return String(n)
        }
    }
}
