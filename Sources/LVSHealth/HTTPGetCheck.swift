import CLVSTLS
import Glibc
import LVSSystem
import Foundation
import KeepalivedConfig

/// HTTP_GET (keepalived check_http.c): one GET per URL, the status code and the body digest.
extension HealthProbes {
    /// The HTTP_GET request of §2.6.
    static func request(_ t: ProbeTarget, path: String) -> String {
        let version = t.httpProtocol == "1.1" ? "1.1" : "1.0"
        var r = "GET \(path) HTTP/\(version)\r\nUser-Agent: KeepAliveClient\r\n"
        if t.httpProtocol != "1.0" { r += "Connection: close\r\n" }
        r += "Host: \(t.virtualhost ?? "\(t.address.bracketed):\(t.port)")\r\n\r\n"
        return r
    }

    static func http(_ t: ProbeTarget) -> ProbeResult {
        guard let url = t.url else { return .failure("no url") }
        let (fd, err) = connect(t)
        if let err { return .failure(err) }
        defer { close(fd) }
        let timeout = milliseconds(t.connectTimeout)
        var out = Array(request(t, path: url.path).utf8)[...]
        while !out.isEmpty {
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard (try? syscall("poll") { poll(&p, 1, timeout) }) ?? 0 > 0 else { return .failure("write: timeout") }
            do {
                let n = try syscall("write") { out.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
                out = out.dropFirst(n)
            } catch let e as SystemError where e.errno == EAGAIN {
                continue
            } catch {
                return .failure(reason(error as! SystemError))
            }
        }
        // Read until EOF, each wait bounded by connect_timeout (§1.9).
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while response.count < 8 << 20 {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard (try? syscall("poll") { poll(&p, 1, timeout) }) ?? 0 > 0 else { return .failure("read: timeout") }
            let n: Int
            do {
                n = try syscall("read") { chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) } }
            } catch let e as SystemError where e.errno == EAGAIN {
                continue
            } catch {
                return .failure(reason(error as! SystemError))
            }
            if n == 0 { break }
            response += chunk[0..<n]
        }
        return evaluate(response: response, url: url)
    }

    /// Status and digest checks on a complete HTTP response (§2.6).
    static func evaluate(response: [UInt8], url: KeepalivedURL) -> ProbeResult {
        let sep: [UInt8] = [13, 10, 13, 10]
        guard response.count >= 4, let end = (0...(response.count - 4)).first(where: { Array(response[$0..<$0 + 4]) == sep }) else {
            return .failure("no data")
        }
        let header = String(decoding: response[0..<end], as: UTF8.self)
        var body = Array(response[(end + 4)...])
        let firstLine = header.split(separator: "\r\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        var status = 0
        if let space = firstLine.firstIndex(of: " ") {
            let rest = Array(firstLine[firstLine.index(after: space)...])
            if rest.count >= 4, rest[3] == " ", let v = Int(String(rest[0..<3])) { status = v }
        }
        guard url.accepts(status: status) else { return .failure("HTTP status \(status)") }
        if let digest = url.digest {
            for line in header.split(separator: "\r\n") {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2, parts[0].lowercased() == "content-length",
                   let n = Int(parts[1].trimmingCharacters(in: .whitespaces)), n >= 0, n < body.count {
                    body = Array(body[0..<n])
                }
            }
            guard let got = MD5.hex(body) else { return .failure("digest: MD5 not available from OpenSSL") }
            guard got == digest else { return .failure("digest mismatch (got \(got))") }
        }
        return .success
    }
}

/// MD5 (RFC 1321) of a response body, for HTTP_GET's and SSL_GET's `digest`: computed by
/// OpenSSL's EVP (not for security: keepalived's digest is MD5).
enum MD5 {
    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// The digest as 32 lower-case hex digits, as keepalived's `genhash` prints it; nil when
    /// OpenSSL has no MD5 (a FIPS-only provider).
    static func hex(_ bytes: [UInt8]) -> String? {
        var digest = [UInt8](repeating: 0, count: Int(CLVS_MD5_LENGTH))
        let rc = bytes.withUnsafeBytes { data in
            digest.withUnsafeMutableBufferPointer { clvs_md5(data.baseAddress, data.count, $0.baseAddress) }
        }
        guard rc == 0 else { return nil }
        var text: [UInt8] = []
        text.reserveCapacity(digest.count * 2)
        for byte in digest {
            text.append(hexDigits[Int(byte >> 4)])
            text.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
