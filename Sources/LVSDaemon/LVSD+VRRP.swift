import Logging
import LVSCore
import LVSModel
import LVSVRRP

extension LVSD {
    /// Step 2 (part): the addresses of every `vrrp_instance` are managed by VRRP: lvsd does not
    /// answer for them nor forward to them until an instance owning them is MASTER. Set before
    /// the data plane starts, so that a BACKUP never answers, not even at start-up.
    func manageVRRPAddresses(_ vrrp: VRRPConfiguration) {
        guard !vrrp.isEmpty else { return }
        let all = Self.vrrpAddresses(vrrp)
        engine.setManagedAddresses(all)
        logger.info("VRRP manages \(all.count) address(es); lvsd answers and forwards for them only as MASTER",
                    metadata: ["instances": "\(vrrp.instances.map(\.name).joined(separator: ","))"])
    }

    /// Every address of every instance (virtual_ipaddress and virtual_ipaddress_excluded).
    static func vrrpAddresses(_ vrrp: VRRPConfiguration) -> Set<IPAddress> {
        Set(vrrp.instances.flatMap { ($0.virtualAddresses + $0.excludedAddresses).map(\.address) })
    }

    /// Step 7b: the VRRP instances of keepalived.conf, and the sync daemons `lvs_sync_daemon` ties to
    /// them. Both sync daemons run at once (master sends this director's connections, backup
    /// applies the peer's), so that a failback keeps what was made on either side.
    func startVRRP() throws {
        guard let configured = keepalived?.vrrp, !configured.isEmpty else { return }
        let (vrrp, scriptLog) = VRRPScripts.prepare(configured, defaultIdentity: keepalived?.globals.scriptRunAs,
                                                    securityEnabled: keepalived?.globals.enableScriptSecurity ?? false)
        for line in scriptLog { logger.warning("VRRP: \(line)") }
        let director = self.director!, logger = self.logger
        if let d = vrrp.lvsSyncDaemon {
            for role in ["master", "backup"] {
                let request = SyncDaemonSnapshot(role: role, interface: d.interface, syncID: d.syncID,
                                                 maxLength: UInt32(d.maxLength ?? 0), group: d.group.map { "\($0)" } ?? "",
                                                 port: d.port ?? 0, ttl: d.ttl ?? 0)
                if case let .failed(e) = director.sync.start(request) {
                    throw ServerError("lvs_sync_daemon \(d.interface) \(d.instance): cannot start the \(role) sync daemon: \(e)")
                }
            }
            logger.info("lvs_sync_daemon: master and backup sync daemons started", metadata: [
                "interface": "\(d.interface)", "instance": "\(d.instance)", "syncid": "\(d.syncID)"])
        }
        let runAs = keepalived?.globals.scriptRunAs
        let hooks = VRRPHooks(
            setOwned: { instance, addresses, owned in
                do {
                    try director.setOwned(addresses.map(\.address), owned)
                } catch {
                    logger.error("VRRP instance \(instance): cannot \(owned ? "take" : "release") the addresses in the data plane: \(error)")
                }
                logger.info("VRRP instance \(instance): \(owned ? "owns" : "released") \(addresses.map { "\($0.address)" }.joined(separator: " "))")
            },
            announce: { addresses, count in
                for _ in 0..<count { _ = director.announce(addresses.map(\.address)) }
            },
            runScript: { command, arguments in VRRPScripts.notify(command, arguments: arguments, defaultIdentity: runAs, logger: logger) },
            checkScript: { script in await VRRPScripts.check(script, defaultIdentity: runAs) },
            syncRole: { instance, master in
                logger.info("VRRP instance \(instance): sync daemon role \(master ? "master" : "backup") (both daemons run)")
                if !master { _ = director.sync.requestFullResync() }
            })
        let service = VRRPService(configuration: vrrp, transport: VRRPSockets(), hooks: hooks, logger: logger)
        do {
            try service.start()
        } catch {
            throw ServerError("VRRP: \(error)")
        }
        undo.add { service.stop() }
        self.vrrp = service
        director.vrrpStatus = { service.statusLines }
        logger.info("VRRP running", metadata: ["instances": "\(vrrp.instances.count)"])
    }
}
