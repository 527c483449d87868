import LVSHealth
import Logging

extension LVSD {
    /// Before the health checks start: the real servers' up/down states the previous lvsd saved
    /// (state file version 2), so that a restart neither brings a down one up nor takes an up
    /// one down before its first check.
    func seedCheckerStates(_ monitor: HealthMonitor) async {
        guard let path = options.statePath else { return }
        let states = StateStore.checkerStates(at: path)
        guard !states.isEmpty else { return }
        let applied = await monitor.seedCheckerStates(states)
        logger.notice("restart: health checker states carried over", metadata: ["real_servers": "\(applied)/\(states.count)"])
    }
}
