import Glibc
import CLVSTLS

/// SSL_GET (keepalived check_http.c over check_ssl.c): HTTP_GET in TLS.
extension HealthProbes {
    /// SSL_GET: HTTP_GET over TLS (OpenSSL), no certificate verification; SNI with `enable_sni`.
    static func ssl(_ t: ProbeTarget) -> ProbeResult {
        guard let url = t.url else { return .failure("no url") }
        let (fd, err) = connect(t)
        if let err { return .failure(err) }
        defer { close(fd) }
        let request = Array(request(t, path: url.path).utf8)
        var response = [UInt8](repeating: 0, count: 1 << 20)
        var error = [CChar](repeating: 0, count: 256)
        let n = request.withUnsafeBytes { req in
            response.withUnsafeMutableBytes { out in
                clvs_tls_fetch(fd, t.serverName ?? "", req.baseAddress, req.count, out.baseAddress, out.count,
                               milliseconds(t.connectTimeout), &error, error.count)
            }
        }
        guard n >= 0 else { return .failure(String(cString: error)) }
        return evaluate(response: Array(response[0..<n]), url: url)
    }
}
