import Glibc

/// TCP_CHECK (keepalived check_tcp.c): up when a connection opens within connect_timeout.
extension HealthProbes {
    static func tcp(_ t: ProbeTarget) -> ProbeResult {
        let (fd, err) = connect(t)
        if let err { return .failure(err) }
        close(fd)
        return .success
    }
}
