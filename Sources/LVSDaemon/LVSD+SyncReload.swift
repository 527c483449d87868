import Glibc
import Logging
import LVSVRRP
import Synchronization

/// keepalived.conf's `lvs_sync_daemon` as last applied. A reload that changes it (interface, id,
/// group, port, ttl, maxlen), adds it or removes it restarts the sync daemons, as keepalived's
/// `reload_vrrp_thread` does (`ipvs_syncd_changed`: stop, then start with the new settings); the
/// same line changes nothing. The new backup daemon asks the peer for a full resync at its start.
final class KeepalivedSyncSetting: Sendable {
    private let current: Mutex<VRRPLVSSyncDaemon?>

    init(_ applied: VRRPLVSSyncDaemon?) { current = Mutex(applied) }

    /// Refuses (the whole reload) a new setting on an interface that does not exist.
    static func check(_ new: VRRPLVSSyncDaemon?) throws {
        if let new, if_nametoindex(new.interface) == 0 {
            throw ServerError("lvs_sync_daemon: interface \(new.interface) does not exist")
        }
    }

    /// Applies `new` after the virtual servers and VRRP: the reload answer's line ("" when unchanged).
    func apply(_ new: VRRPLVSSyncDaemon?, director: Director, logger: Logger) -> String {
        current.withLock { old in
            guard new != old else { return "" }
            if old != nil {
                director.sync.stopAll()
                logger.notice("reload: lvs_sync_daemon changed, the sync daemons stopped")
            }
            old = nil
            guard let new else { return "lvs_sync_daemon: removed, the sync daemons stopped\n" }
            do {
                try LVSD.startSyncDaemons(new, director: director, logger: logger)
            } catch {
                director.sync.stopAll()
                logger.error("reload: \(error)")
                return "lvs_sync_daemon: \(error); no sync daemon runs\n"
            }
            old = new
            return "lvs_sync_daemon: sync daemons (re)started on \(new.interface), syncid \(new.syncID)\n"
        }
    }
}
