import KeepalivedConfig

/// A restart's side of the health checks (docs/restart.md): the checkers' up/down states go into
/// the state file at a stop, and the next lvsd's monitor starts from them, so a restarted lvsd
/// neither brings a down real server up nor takes an up one down before its first check.
extension HealthMonitor {
    /// How a checker's real server is named in the state file: "VS PROTO RS:PORT".
    nonisolated static func restartLabel(_ vs: VirtualServerID, _ rs: RealServerIdentity) -> String {
        "\(vs.address) \(vs.proto.rawValue) \(rs)"
    }

    /// Every checked real server's state by its label (up when all its checkers are up).
    public func carriedCheckerStates() -> [(label: String, up: Bool)] {
        var out: [(label: String, up: Bool)] = []
        for id in order {
            guard let s = states[id] else { continue }
            for rs in s.config.realServers {
                guard let st = s.servers[rs.identity], !rs.checkers.filter({ $0.kind.isRun }).isEmpty else { continue }
                out.append((Self.restartLabel(id, rs.identity), st.alive))
            }
        }
        return out
    }

    /// Before `start`: each real server named in `wanted` starts in that state (all its checkers
    /// up, or all down) instead of its configured initial state. Returns how many were applied.
    @discardableResult
    public func seedCheckerStates(_ wanted: [String: Bool]) -> Int {
        guard !wanted.isEmpty else { return 0 }
        var applied = Set<String>()
        for (token, run) in checkers {
            let label = Self.restartLabel(run.vs, run.rs)
            guard let up = wanted[label], var s = states[run.vs], var st = s.servers[run.rs] else { continue }
            checkers[token]?.machine.up = up
            if up { st.failedCheckers.remove(run.index) } else { st.failedCheckers.insert(run.index) }
            s.servers[run.rs] = st
            states[run.vs] = s
            applied.insert(label)
        }
        for id in order {
            guard var s = states[id] else { continue }
            _ = s.updateQuorum()
            states[id] = s
        }
        return applied.count
    }
}
