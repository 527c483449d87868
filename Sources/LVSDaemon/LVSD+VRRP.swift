import Glibc
import KeepalivedConfig
import Logging
import Synchronization
import LVSCore
import LVSDataPlane
import LVSHealth
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

    /// `lvs_sync_daemon`: both sync daemons, master and backup, with its interface and id (with or
    /// without VRRP instances: the master daemon sends this director's connections, the backup
    /// daemon applies the peer's).
    func startSyncDaemons(_ d: VRRPLVSSyncDaemon?) throws {
        try Self.startSyncDaemons(d, director: director!, logger: logger)
    }

    /// Starts both sync daemons of `d` (nothing when nil); throws naming the role that failed.
    static func startSyncDaemons(_ d: VRRPLVSSyncDaemon?, director: Director, logger: Logger) throws {
        guard let d else { return }
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

    /// keepalived.conf's VRRP blocks as lvsd runs them: keepalived's script rules applied (a notify
    /// or track script that may not run is dropped, with keepalived's messages, logged), and who
    /// runs scripts by default (script_user, keepalived_script, or lvsd's own user), as the
    /// checkers resolve it. At start and at each reload.
    static func preparedVRRP(_ keepalived: KeepalivedConfig, logger: Logger) -> (VRRPConfiguration, ScriptIdentity?) {
        let runAs = ScriptSecurity.prepare(keepalived).0.globals.scriptRunAs
        let (vrrp, scriptLog) = VRRPScripts.prepare(keepalived.vrrp, defaultIdentity: runAs,
                                                    securityEnabled: keepalived.globals.enableScriptSecurity)
        for line in scriptLog { logger.warning("VRRP: \(line)") }
        return (vrrp, runAs)
    }

    /// Every address of every instance (virtual_ipaddress and virtual_ipaddress_excluded).
    static func vrrpAddresses(_ vrrp: VRRPConfiguration) -> Set<IPAddress> {
        Set(vrrp.instances.flatMap { ($0.virtualAddresses + $0.excludedAddresses).map(\.address) })
    }

    /// Step 7b: the VRRP instances of keepalived.conf, and the sync daemons `lvs_sync_daemon` ties to
    /// them. Both sync daemons run at once (master sends this director's connections, backup
    /// applies the peer's), so that a failback keeps what was made on either side.
    func startVRRP() throws {
        guard let keepalived else { return }
        let director = self.director!, holder = vrrpHolder
        try startSyncDaemons(keepalived.vrrp.lvsSyncDaemon)
        // Read at each `lvsadm daemon status`: VRRP may start later, at a reload.
        director.vrrpStatus = { holder.current?.statusLines ?? [] }
        guard !keepalived.vrrp.isEmpty else { return }
        let (vrrp, runAs) = Self.preparedVRRP(keepalived, logger: logger)
        let service = try Self.startVRRPService(vrrp, runAs: runAs, director: director, logger: logger)
        undo.add { service.stop() }
        holder.set(service)
    }

    /// Makes and starts the VRRP speaker of `vrrp` (prepared by `preparedVRRP`): at start-up, or at
    /// a reload that brings the first `vrrp_instance`.
    static func startVRRPService(_ vrrp: VRRPConfiguration, runAs: ScriptIdentity?, director: Director,
                                 logger: Logger) throws -> VRRPService {
        let interfaces = Dictionary(vrrp.instances.map { ($0.name, $0.interface) }, uniquingKeysWith: { a, _ in a })
        // As keepalived at start: addresses left on the interfaces by a killed predecessor go.
        let serviceVIPs = Set(director.engine.snapshot().services.map(\.key.address))
        for i in vrrp.instances {
            let kernel = (i.virtualAddresses + i.excludedAddresses).filter { !serviceVIPs.contains($0.address) }
            VRRPKernelAddresses.apply(kernel, defaultDevice: i.interface, add: false, logger: logger)
        }
        let hooks = VRRPHooks(
            setOwned: { instance, addresses, owned in
                let serviceVIPs = Set(director.engine.snapshot().services.map(\.key.address))
                let kernel = addresses.filter { !serviceVIPs.contains($0.address) }
                VRRPKernelAddresses.apply(kernel, defaultDevice: interfaces[instance] ?? "", add: owned, logger: logger)
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
            },
            setManaged: { addresses in director.manageAddresses(addresses, context: "VRRP") })
        let service = VRRPService(configuration: vrrp, transport: VRRPSockets(), hooks: hooks, logger: logger)
        do {
            try service.start()
        } catch {
            throw ServerError("VRRP: \(error)")
        }
        logger.info("VRRP running", metadata: ["instances": "\(vrrp.instances.count)"])
        return service
    }
}

/// The running VRRP speaker, if any: set at start-up, or by the reload that brings the first
/// `vrrp_instance`; read by the status, the metrics, reloads and the stop.
final class VRRPHolder: Sendable {
    private let service = Mutex<VRRPService?>(nil)

    var current: VRRPService? { service.withLock { $0 } }

    func set(_ s: VRRPService) { service.withLock { $0 = s } }

    /// Starts one with `make` unless one runs (two reloads at once start one); the one running.
    func startIfNone(_ make: () throws -> VRRPService) throws -> VRRPService {
        try service.withLock { s throws in
            if let s { return s }
            let made = try make()
            s = made
            return made
        }
    }
}

extension DirectorService {
    /// Reload, before the virtual servers change: the new VRRP blocks as lvsd runs them (nil:
    /// none, and VRRP does not run), and the addresses of the running and the new blocks managed,
    /// so that an address the reload puts under VRRP is not answered for (a BACKUP must not)
    /// meanwhile. Throws (the whole reload is refused) when an instance's interface does not exist.
    func prepareVRRPReload(_ config: KeepalivedConfig) throws -> (VRRPConfiguration, runAs: ScriptIdentity?)? {
        guard vrrp != nil || !config.vrrp.isEmpty else { return nil }
        let (new, runAs) = LVSD.preparedVRRP(config, logger: logger)
        for i in new.instances where if_nametoindex(i.interface) == 0 {
            throw ServerError("vrrp_instance \(i.name): interface \(i.interface) does not exist")
        }
        let running = vrrp?.configuration
        if new != running {
            director.manageAddresses(LVSD.vrrpAddresses(new).union(running.map(LVSD.vrrpAddresses) ?? []), context: "reload")
        }
        return (new, runAs)
    }

    /// Reload, after the virtual servers: the VRRP blocks (`VRRPService.reload`), or VRRP started
    /// when the reload brings the first `vrrp_instance` (as keepalived starts a new instance); the
    /// answer's line.
    func applyVRRPReload(_ prepared: (VRRPConfiguration, runAs: ScriptIdentity?)?) -> String {
        guard let (new, runAs) = prepared else { return "" }
        guard let vrrp else {
            do {
                let director = self.director, logger = self.logger
                _ = try vrrpHolder.startIfNone {
                    try LVSD.startVRRPService(new, runAs: runAs, director: director, logger: logger)
                }
                logger.notice("reload: VRRP started", metadata: ["instances": "\(new.instances.count)"])
                return "VRRP: started, \(new.instances.count) instance\(new.instances.count == 1 ? "" : "s") added\n"
            } catch {
                director.manageAddresses([], context: "reload")
                logger.error("reload: VRRP not started: \(error)")
                return "VRRP not started: \(error)\n"
            }
        }
        switch vrrp.reload(new) {
        case .success(let summary):
            return summary.description + "\n"
        case .failure(let error):
            // Nothing applied: the running instances' addresses alone are managed again.
            director.manageAddresses(LVSD.vrrpAddresses(vrrp.configuration), context: "reload")
            return "VRRP reload failed, the running VRRP configuration is kept: \(error)\n"
        }
    }
}

/// The VRRP addresses that are no virtual service's (a gateway address, a VIP of services the
/// kernel serves): lvsd's data plane does not answer for those, so they go on the interface as
/// keepalived puts them there (`ip addr add … dev IF [label L]` while MASTER, removed otherwise).
/// The addresses of virtual services are never put on the interface: lvsd answers for them
/// itself, so a killed lvsd stops claiming them at once.
enum VRRPKernelAddresses {
    /// The `ip` command line that adds (or deletes) one address on its device.
    static func command(_ a: VRRPAddress, defaultDevice: String, add: Bool) -> [String] {
        var args = ["ip", a.address.isIPv4 ? "-4" : "-6", "addr", add ? "add" : "del",
                    "\(a.address)/\(a.prefixLength)", "dev", a.device ?? defaultDevice]
        if add {
            if let b = a.broadcast { args += ["brd", "\(b)"] }
            if let s = a.scope { args += ["scope", s] }
            if let l = a.label, a.address.isIPv4 { args += ["label", l] }
            if !a.address.isIPv4 { args.append("nodad") }
        }
        return args
    }

    /// Adds or removes the addresses; logs a failure (an address already there or already gone is no failure).
    static func apply(_ addresses: [VRRPAddress], defaultDevice: String, add: Bool, logger: Logger) {
        for a in addresses {
            let args = command(a, defaultDevice: defaultDevice, add: add)
            do {
                let (status, output) = try ExternalCommand.run(args)
                let harmless = add ? output.contains("File exists") : (output.contains("Cannot assign requested address") || output.contains("Address not found"))
                if status != 0 && !harmless {
                    logger.error("VRRP: `\(args.joined(separator: " "))` failed (exit \(status)): \(output)")
                }
            } catch {
                logger.error("VRRP: cannot run `\(args.joined(separator: " "))`: \(error)")
            }
        }
    }
}
