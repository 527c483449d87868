import CLVSXDP
import LVSCore
import LVSDataPlane
import Logging

/// A BPF data plane's side of a restart (`BPFAdoption`, docs/restart.md): the planes that keep
/// their programs attached over a restart.
protocol RestartAdoptingPlane: AnyObject {
    var adoption: BPFAdoption { get }
    var keepAttachedAtStop: Bool { get set }
    var connMap: XDPConnMap { get }
}

extension AFXDPDataPlane: RestartAdoptingPlane {}
extension TCDataPlane: RestartAdoptingPlane {}

extension LVSD {
    /// After the data plane is open: `--restart-guard` makes its stop leave the programs attached;
    /// the log says what a previous lvsd left and what was taken over.
    func prepareRestartAdoption() {
        guard let plane = dataPlane as? any RestartAdoptingPlane else { return }
        plane.keepAttachedAtStop = options.restartGuard
        if let note = plane.adoption.note { logger.notice("restart: \(note)") }
    }

    /// A stop for a restart: the BPF programs stay attached (`lvsadm daemon restart` without
    /// `--restart-guard`).
    static func keepProgramsAtStop(_ dataPlane: any DataPlaneBackend) {
        (dataPlane as? any RestartAdoptingPlane)?.keepAttachedAtStop = true
    }

    /// Once the state is restored and this lvsd's programs are attached: the adopted `conns`
    /// entries of connections the state file brought back are removed, so that their next packet
    /// comes to lvsd, which moves them from the synced table into a worker's table and offloads
    /// them again under its own destination slots (one packet each through user space). Entries
    /// lvsd does not know (a crash without state) keep forwarding until they are idle for their
    /// timeout or a new connection takes their 4-tuple (`StaleFastPathEntries`).
    func handBackAdoptedFlows() {
        guard let plane = dataPlane as? any RestartAdoptingPlane, plane.adoption.connsFD >= 0 else { return }
        var known: [(clvs_conn_key, clvs_conn_value)] = [], unknown: [ConnectionKey] = []
        plane.connMap.forEachEntry { k, v in
            let key = XDPConnMap.connectionKey(k)
            if engine.hasSyncedConnection(key) { known.append((k, v)) } else { unknown.append(key) }
        }
        // Stale unless they expire or are replaced: StaleFastPathEntries.
        if !unknown.isEmpty { director.fastPath?.stale.adopt(unknown, now: monotonicNanoseconds()) }
        for (k, v) in known {
            var k = k
            plane.connMap.delete(&k)
            // A NAT connection's reply entry (tc) goes with it.
            if v.flags & CLVS_CONN_NAT != 0 {
                var r = XDPConnMap.replyKey(conn: k, value: v)
                plane.connMap.deleteReply(&r)
            }
        }
        logger.notice("restart: adopted fast-path entries handed back to lvsd", metadata: [
            "handed_back": "\(known.count)", "kept_unknown": "\(unknown.count)"])
    }
}
