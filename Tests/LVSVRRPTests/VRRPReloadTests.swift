import Testing
import LVSModel
@testable import LVSVRRP

/// `VRRPRouter.reload`: keepalived 2.2.7's reload semantics (kept instances keep their state,
/// only what changed is done, the same configuration does nothing).
@Suite struct VRRPReloadTests {
    /// A configuration of these instances.
    static func configuration(_ instances: [VRRPInstanceSettings], _ configure: (inout VRRPConfiguration) -> Void = { _ in }) -> VRRPConfiguration {
        var configuration = VRRPConfiguration()
        configuration.instances = instances
        configure(&configuration)
        return configuration
    }

    /// A router started with `instances` that became MASTER (no peer) at `downInterval100`.
    static func master(_ instances: [VRRPInstanceSettings]) -> VRRPRouter {
        let router = makeRouter(instances)
        _ = router.start(now: 0)
        _ = router.advance(now: downInterval100)
        return router
    }

    static func addresses(_ actions: [VRRPAction], _ kind: String) -> [IPAddress] {
        actions.flatMap { action -> [VRRPAddress] in
            switch action {
            case .takeAddresses(_, let a) where kind == "take": return a
            case .releaseAddresses(_, let a) where kind == "release": return a
            case .announce(_, let a, _) where kind == "announce": return a
            default: return []
            }
        }.map(\.address)
    }

    @Test func theSameConfigurationDoesNothing() {
        let router = Self.master([instance(), instance("VI_2", vrid: 52, vips: ["10.0.0.200"])])
        let before = router.status, deadline = router.nextDeadline
        let same = Self.configuration([instance(), instance("VI_2", vrid: 52, vips: ["10.0.0.200"])])
        for round in 1...10 {
            #expect(router.reload(configuration: same, now: downInterval100 + VRRPNanoseconds(round) * millisecond).isEmpty)
        }
        #expect(router.status == before)
        #expect(router.nextDeadline == deadline)
        #expect(VRRPRouter.reloadSummary(from: same, to: same).description == "VRRP: unchanged")
    }

    @Test func aKeptMasterReleasesARemovedVIPAndTakesAndAnnouncesOnlyTheAddedOne() {
        var old = instance(vips: ["10.0.0.100", "10.0.0.101"])
        old.gratuitous.masterDelay = 0
        let router = Self.master([old])
        var new = old
        new.gratuitous.masterDelay = 5 * second
        new.virtualAddresses = [VRRPAddress(address: ip("10.0.0.100"), prefixLength: 32),
                                VRRPAddress(address: ip("10.0.0.102"), prefixLength: 32)]
        let at = downInterval100 + 500 * millisecond
        let actions = router.reload(configuration: Self.configuration([new]), now: at)
        #expect(kinds(actions) == ["release", "take", "announce(5)"])
        #expect(Self.addresses(actions, "release") == [ip("10.0.0.101")])
        #expect(Self.addresses(actions, "take") == [ip("10.0.0.102")])
        #expect(Self.addresses(actions, "announce") == [ip("10.0.0.102")])
        #expect(state(router) == .master && router.status[0].transitions == 2)
        // The second block of announcements (garp_master_delay): again only the added address.
        let later = router.advance(now: at + 5 * second)
        #expect(Self.addresses(later, "announce") == [ip("10.0.0.102")])
        #expect(sentAdverts(later).allSatisfy { Set($0.message.addresses) == [ip("10.0.0.100"), ip("10.0.0.102")] })
    }

    @Test func aNewPriorityIsInTheNextAdvertOnItsUsualTime() {
        let router = Self.master([instance(priority: 150)])
        let next = router.nextDeadline!
        #expect(router.reload(configuration: Self.configuration([instance(priority: 120)]), now: next - 300 * millisecond).isEmpty)
        #expect(router.nextDeadline == next)
        let adverts = sentAdverts(router.advance(now: next))
        #expect(adverts.map(\.message.priority) == [120])
        #expect(router.status[0].configuredPriority == 120 && router.status[0].effectivePriority == 120)
    }

    @Test func aBackupRaisedAbovePreemptsAfterItsDownInterval() {
        let router = makeRouter([instance(priority: 100)])
        _ = router.start(now: 0)
        _ = router.receive(advert(priority: 150), now: second)
        let at = 2 * second
        #expect(router.reload(configuration: Self.configuration([instance(priority: 200)]), now: at).isEmpty)
        #expect(state(router) == .backup)
        // Master_Down_Interval at priority 200: 3 s + 56/256 s. The master's adverts (150) are ignored.
        let down: VRRPNanoseconds = 3 * second + 218_750_000
        #expect(router.nextDeadline == at + down)
        for tick in 1...3 { _ = router.receive(advert(priority: 150), now: at + VRRPNanoseconds(tick) * second) }
        #expect(router.nextDeadline == at + down)
        let actions = router.advance(now: at + down)
        #expect(kinds(actions) == ["state(MASTER)", "send(200)", "take", "announce(5)"])
    }

    @Test func aMasterLoweredBelowThePeerIsPreemptedByTheProtocol() {
        let router = Self.master([instance(priority: 150)])
        let at = downInterval100 + 100 * millisecond
        #expect(router.reload(configuration: Self.configuration([instance(priority: 90)]), now: at).isEmpty)
        #expect(state(router) == .master)
        // The peer (100) takes over: its first advert above our priority makes us BACKUP.
        let actions = router.receive(advert(priority: 100), now: at + 3 * second)
        #expect(kinds(actions) == ["state(BACKUP)", "release"])
    }

    /// keepalived 2.2.7 (checked: `keepalived --vrrp`, SIGHUP with the instance gone) runs only
    /// `notify` with FAULT for a deleted instance, not `notify_fault`.
    @Test func aRemovedMasterSendsPriorityZeroReleasesAndIsNotifiedAsFault() {
        var gone = instance(priority: 150)
        gone.notify.fault = VRRPScriptCommand(command: "/fault")
        gone.notify.any = VRRPScriptCommand(command: "/notify")
        let other = instance("VI_2", vrid: 52, vips: ["10.0.0.200"])
        let router = Self.master([gone, other])
        let actions = router.reload(configuration: Self.configuration([other]), now: downInterval100 + second / 2)
        #expect(kinds(actions) == ["send(0)", "release", "script(/notify)"])
        #expect(Self.addresses(actions, "release") == [ip("10.0.0.100")])
        #expect(actions.contains(.runScript(command: VRRPScriptCommand(command: "/notify"), arguments: ["INSTANCE", "VI_1", "FAULT", "150"])))
        #expect(router.status.map(\.name) == ["VI_2"] && state(router, "VI_2") == .master)
        #expect(VRRPRouter.reloadSummary(from: Self.configuration([gone, other]), to: Self.configuration([other])).description
                == "VRRP: 1 instance kept (0 changed), 0 added, 1 removed")
    }

    /// notify_deleted: its script (no arguments) and `notify … DELETED`, also for an instance in
    /// FAULT; without a script, `notify … DELETED` only.
    @Test func notifyDeletedTellsDeletedInsteadOfFault() {
        for script in [true, false] {
            var gone = instance(priority: 150)
            gone.notify.notifyDeleted = true
            if script { gone.notify.deleted = VRRPScriptCommand(command: "/deleted") }
            gone.notify.fault = VRRPScriptCommand(command: "/fault")
            gone.notify.any = VRRPScriptCommand(command: "/notify")
            let other = instance("VI_2", vrid: 52, vips: ["10.0.0.200"])
            let router = Self.master([gone, other])
            let actions = router.reload(configuration: Self.configuration([other]), now: downInterval100 + second / 2)
            #expect(kinds(actions) == ["send(0)", "release"] + (script ? ["script(/deleted)"] : []) + ["script(/notify)"])
            #expect(actions.contains(.runScript(command: VRRPScriptCommand(command: "/notify"), arguments: ["INSTANCE", "VI_1", "DELETED", "150"])))
        }
    }

    @Test func theSyncDaemonOfARemovedMasterGoesBackToBackup() {
        let router = makeRouter([instance()]) { $0.lvsSyncDaemon = VRRPLVSSyncDaemon(interface: "eth0", instance: "VI_1") }
        _ = router.start(now: 0)
        _ = router.advance(now: downInterval100)
        let actions = router.reload(configuration: Self.configuration([]), now: downInterval100 + second / 2)
        #expect(kinds(actions) == ["send(0)", "sync(backup)", "release"])
        #expect(router.status.isEmpty && router.nextDeadline == nil)
    }

    @Test func aNewInstanceStartsAsBackupAndIsMasterAfterItsDownInterval() {
        let router = Self.master([instance()])
        let at = downInterval100 + second / 2
        let second2 = instance("VI_2", vrid: 52, vips: ["10.0.0.200"])
        let actions = router.reload(configuration: Self.configuration([instance(), second2]), now: at)
        #expect(kinds(actions) == ["state(BACKUP)"])
        #expect(state(router) == .master && state(router, "VI_2") == .backup)
        _ = router.advance(now: at + downInterval100 - 1)
        #expect(state(router, "VI_2") == .backup)
        _ = router.advance(now: at + downInterval100)
        #expect(state(router, "VI_2") == .master)
        #expect(VRRPRouter.reloadSummary(from: Self.configuration([instance()]), to: Self.configuration([instance(), second2])).description
                == "VRRP: 1 instance kept (0 changed), 1 added, 0 removed")
    }

    @Test func aNewOwnerConfiguredMasterIsMasterAtOnce() {
        let router = Self.master([instance()])
        let owner = instance("OWNER", vrid: 53, priority: 255, master: true, vips: ["10.0.0.253"])
        let actions = router.reload(configuration: Self.configuration([instance(), owner]), now: downInterval100 + second / 2)
        #expect(kinds(actions) == ["state(MASTER)", "send(255)", "take", "announce(5)"])
    }

    @Test func aRenamedInstanceWithTheSameVRIDAndInterfaceIsKept() {
        let router = Self.master([instance()])
        let sent = router.status[0].advertsSent
        let renamed = instance("WEB")
        let actions = router.reload(configuration: Self.configuration([renamed]), now: downInterval100 + second / 2)
        #expect(actions.isEmpty)
        #expect(router.status[0].name == "WEB" && router.status[0].state == .master)
        #expect(router.status[0].transitions == 2 && router.status[0].advertsSent == sent)
        #expect(VRRPRouter.reloadSummary(from: Self.configuration([instance()]), to: Self.configuration([renamed])).description
                == "VRRP: 1 instance kept (1 changed), 0 added, 0 removed")
        // Another interface (or VRID) is another instance: the old one goes, the new one starts.
        let moved = router.reload(configuration: Self.configuration([instance("WEB", interface: "eth1")]), now: downInterval100 + second)
        #expect(kinds(moved) == ["send(0)", "release", "state(FAULT)"])   // eth1 is not up in this router
    }

    @Test func aScriptWithTheSameCommandKeepsItsStateAndAChangedOneStartsAgain() {
        var script = VRRPScriptSettings(name: "chk", script: VRRPScriptCommand(command: "/bin/true"))
        script.rise = 2
        script.fall = 2
        var tracked = instance()
        tracked.trackScripts = [VRRPTrack(name: "chk")]
        let router = makeRouter([tracked]) { $0.scripts = [script] }
        _ = router.start(now: 0)
        #expect(state(router) == .fault)   // waiting for the first results
        _ = router.setScriptResult("chk", success: true, now: second)
        _ = router.setScriptResult("chk", success: true, now: 2 * second)
        #expect(state(router) == .backup)
        // A new priority: the script's state is kept, the instance stays BACKUP.
        var raised = tracked
        raised.priority = 120
        #expect(router.reload(configuration: Self.configuration([raised]) { $0.scripts = [script] }, now: 3 * second).isEmpty)
        #expect(state(router) == .backup)
        // One failure is within fall 2: still up.
        _ = router.setScriptResult("chk", success: false, now: 4 * second)
        #expect(state(router) == .backup)
        // Another command: the script starts again (no result yet): FAULT, as keepalived.
        var changed = script
        changed.script = VRRPScriptCommand(command: "/bin/false")
        let actions = router.reload(configuration: Self.configuration([raised]) { $0.scripts = [changed] }, now: 5 * second)
        #expect(kinds(actions) == ["state(FAULT)"])
    }

    @Test func aSyncGroupInTheSameStateIsNotNotifiedAgainAndAMixedNewGroupGoesBackup() {
        var group = VRRPSyncGroupSettings(name: "G", members: ["A", "B"])
        group.notify.any = VRRPScriptCommand(command: "/group")
        let a = instance("A", vrid: 51), b = instance("B", vrid: 52, vips: ["10.0.0.200"])
        let router = makeRouter([a, b]) { $0.syncGroups = [group] }
        _ = router.start(now: 0)
        _ = router.advance(now: downInterval100)
        #expect(state(router, "A") == .master && state(router, "B") == .master)
        var raised = b
        raised.priority = 120
        let at = downInterval100 + second / 2
        #expect(router.reload(configuration: Self.configuration([a, raised]) { $0.syncGroups = [group] }, now: at).isEmpty)
        // A new group of a MASTER and a new BACKUP: both BACKUP (keepalived prefers BACKUP to thrashing).
        let c = instance("C", vrid: 53, vips: ["10.0.0.250"])
        var mixed = VRRPSyncGroupSettings(name: "H", members: ["A", "C"])
        mixed.notify.any = VRRPScriptCommand(command: "/group")
        let actions = router.reload(configuration: Self.configuration([a, raised, c]) { $0.syncGroups = [mixed] }, now: at + second)
        #expect(state(router, "A") == .backup && state(router, "C") == .backup && state(router, "B") == .master)
        #expect(kinds(actions) == ["state(BACKUP)", "state(BACKUP)", "release", "script(/group)"])
    }

    @Test func aReloadBeforeStartOnlyReplacesTheConfiguration() {
        let router = makeRouter([instance()])
        #expect(router.reload(configuration: Self.configuration([instance(priority: 200)]), now: 0).isEmpty)
        #expect(kinds(router.start(now: 0)) == ["state(BACKUP)"])
        #expect(router.status[0].configuredPriority == 200)
    }
}
