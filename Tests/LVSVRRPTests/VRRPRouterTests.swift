import Testing
import LVSModel
@testable import LVSVRRP

/// Master_Down_Interval for advert_int 1 s, priority 100: 3 × 1 s + (256 − 100) / 256 s.
let downInterval100: VRRPNanoseconds = 3 * second + 609_375_000

@Suite struct VRRPElectionTests {
    @Test func aSilentMasterIsReplacedAfterTheMasterDownInterval() {
        let router = makeRouter([instance()])
        #expect(kinds(router.start(now: 0)) == ["state(BACKUP)"])
        #expect(router.nextDeadline == downInterval100)   // 3.61 s, as the reference says
        #expect(router.advance(now: downInterval100 - 1).isEmpty)
        let actions = router.advance(now: downInterval100)
        #expect(kinds(actions) == ["state(MASTER)", "send(100)", "take", "announce(5)"])
        #expect(state(router) == .master)
        #expect(router.status[0].transitions == 2 && router.status[0].lastTransition == downInterval100)
    }

    @Test func anAdvertFromTheMasterRestartsTheDownTimer() {
        let router = makeRouter([instance()])
        _ = router.start(now: 0)
        #expect(router.receive(advert(priority: 150), now: 2 * second).isEmpty)
        #expect(router.nextDeadline == 2 * second + downInterval100)
        #expect(router.status[0].masterAddress == ip("10.0.0.2") && router.status[0].masterPriority == 150)
        #expect(router.advance(now: 2 * second + downInterval100 - 1).isEmpty)
        #expect(state(router) == .backup)
    }

    @Test func priorityZeroFromTheMasterLeavesOnlyTheSkewTime() {
        let router = makeRouter([instance()])
        _ = router.start(now: 0)
        _ = router.receive(advert(priority: 150), now: 1 * second)
        _ = router.receive(advert(priority: 0), now: 2 * second)
        #expect(router.nextDeadline == 2 * second + 609_375_000)   // ≈0.6 s
        _ = router.advance(now: 2 * second + 609_375_000)
        #expect(state(router) == .master)
    }

    @Test func anOwnerConfiguredMasterIsMasterAtOnce() {
        let router = makeRouter([instance(priority: 255, master: true)])
        let actions = router.start(now: 0)
        #expect(kinds(actions) == ["state(MASTER)", "send(255)", "take", "announce(5)"])
        #expect(router.nextDeadline == 1 * second)
    }

    /// keepalived 2.2.7 (its vrrp_init_state, and the capture in checks/vrrp) starts `state MASTER`
    /// below 255 as BACKUP for a whole Master_Down_Interval, not one advert interval.
    @Test func aMasterBelowOwnerPriorityStartsAsBackup() {
        let router = makeRouter([instance(priority: 150, master: true)])
        #expect(kinds(router.start(now: 0)) == ["state(BACKUP)"])
        #expect(router.nextDeadline == 3 * second + 414_062_000)
    }

    @Test func vrrpStartupDelayPostponesTheTimers() {
        let router = makeRouter([instance(), instance("OWNER", vrid: 52, priority: 255, master: true)]) {
            $0.startupDelay = 10 * second
        }
        #expect(kinds(router.start(now: 0)) == ["state(BACKUP)", "state(BACKUP)"])
        #expect(router.nextDeadline == 10 * second + 1_000)   // the owner, just after the delay
        _ = router.advance(now: 10 * second + 1_000)
        #expect(state(router, "OWNER") == .master && state(router) == .backup)
        _ = router.advance(now: 10 * second + downInterval100 - 1)
        #expect(state(router) == .backup)
        _ = router.advance(now: 10 * second + downInterval100)
        #expect(state(router) == .master)
    }

    @Test func aV3BackupAdoptsTheMastersInterval() {
        let router = makeRouter([instance(version: 3, interval: 100)])
        _ = router.start(now: 0)
        #expect(router.nextDeadline == downInterval100)   // v3 skew: 156 × 100 cs / 256
        _ = router.receive(advert(priority: 200, version: 3, interval: 50), now: second)
        // 3 × 0.5 s + 156 × 50 cs / 256 (304 687 µs, keepalived's integer arithmetic)
        #expect(router.nextDeadline == second + 1_500_000_000 + 304_687_000)
        // As MASTER it advertises its own interval again.
        _ = router.advance(now: router.nextDeadline!)
        #expect(router.nextDeadline == second + 1_804_687_000 + second)
    }

    @Test func aBackupWithPreemptionIgnoresALowerMasterAndTakesOver() {
        let router = makeRouter([instance(priority: 150)])
        _ = router.start(now: 0)
        let deadline = router.nextDeadline!
        _ = router.receive(advert(priority: 100), now: second)
        #expect(router.nextDeadline == deadline)
        _ = router.advance(now: deadline)
        #expect(state(router) == .master)
    }

    @Test func nopreemptKeepsALowerMaster() {
        var settings = instance(priority: 150)
        settings.preempt = false
        let router = makeRouter([settings])
        _ = router.start(now: 0)
        for tick in 1...20 {
            _ = router.receive(advert(priority: 100), now: VRRPNanoseconds(tick) * second)
            _ = router.advance(now: VRRPNanoseconds(tick) * second)
        }
        #expect(state(router) == .backup)
    }

    @Test func preemptDelayWaitsBeforeTakingOverFromALowerMaster() {
        var settings = instance(priority: 150)
        settings.preemptDelay = 10 * second
        let router = makeRouter([settings])
        _ = router.start(now: 0)
        var tookOver: VRRPNanoseconds? = nil
        for tick in VRRPNanoseconds(1)...30 {
            let now = tick * second
            if let next = router.nextDeadline, next <= now {
                _ = router.advance(now: next)
                if state(router) == .master { tookOver = next; break }
            }
            _ = router.receive(advert(priority: 100), now: now)
        }
        // Adverts are accepted while the delay (armed by the first, at 1 s) runs: the last one
        // accepted, at 10 s, arms the down timer.
        #expect(tookOver == 10 * second + 3 * second + 414_062_000)
    }

    @Test func equalPriorityIsWonByTheHigherAddress() {
        // We are 10.0.0.1: a master at equal priority from 10.0.0.2 wins, from 10.0.0.0 loses.
        let router = makeRouter([instance(priority: 255, master: true)])
        _ = router.start(now: 0)
        // Two address owners: keepalived reports it, lowers itself to 254 and so steps down.
        _ = router.receive(advert(from: "10.0.0.0", priority: 255), now: second / 2)
        #expect(state(router) == .backup && router.status[0].effectivePriority == 254)
        let router2 = makeRouter([instance(priority: 100, master: false)])
        _ = router2.start(now: 0)
        _ = router2.advance(now: downInterval100)
        #expect(kinds(router2.receive(advert(from: "10.0.0.0", priority: 100), now: 4 * second)).first == "send(100)")
        #expect(state(router2) == .master)
        let higher = router2.receive(advert(from: "10.0.0.2", priority: 100), now: 5 * second)
        #expect(kinds(higher) == ["state(BACKUP)", "release"])
        #expect(state(router2) == .backup)
    }

    @Test func aMasterHearingAHigherPriorityStepsDown() {
        var settings = instance(priority: 255, master: true)
        settings.notify.backup = VRRPScriptCommand(command: "/bin/to-backup")
        settings.notify.any = VRRPScriptCommand(command: "/bin/notify")
        let router = makeRouter([settings]) { $0.lvsSyncDaemon = VRRPLVSSyncDaemon(interface: "eth0", instance: "VI_1") }
        _ = router.start(now: 0)
        let actions = router.receive(advert(from: "10.0.0.9", priority: 255), now: second / 2)
        // 255 against 255 from a higher address: we lower ourselves and step down.
        #expect(kinds(actions) == ["state(BACKUP)", "sync(backup)", "release", "script(/bin/to-backup)", "script(/bin/notify)"])
        #expect(actions.last == .runScript(command: VRRPScriptCommand(command: "/bin/notify"), arguments: ["INSTANCE", "VI_1", "BACKUP", "254"]))
        #expect(router.status[0].masterAddress == ip("10.0.0.9"))
    }

    @Test func aMasterHearingALowerPriorityAdvertisesAtOnceAndAnnounces() {
        var settings = instance(priority: 200, master: false)
        settings.gratuitous.lowerPriorityRepeat = 2
        settings.gratuitous.lowerPriorityDelay = 3 * second
        let router = makeRouter([settings])
        _ = router.start(now: 0)
        _ = router.advance(now: router.nextDeadline!)
        let at = 10 * second
        _ = router.advance(now: at)
        #expect(kinds(router.receive(advert(priority: 100), now: at)) == ["send(200)", "announce(2)"])
        #expect(router.nextDeadline == at + second)   // the advert timer restarts
        var later: [String] = []
        var now = at
        while let next = router.nextDeadline, next <= at + 3 * second { now = next; later += kinds(router.advance(now: now)) }
        #expect(later.contains("announce(2)"))
    }

    /// lower_prio_no_advert: the RFC's behaviour; no advert in answer, the advert timer keeps
    /// its time, the lower-priority announcements still go.
    @Test func lowerPrioNoAdvertIgnoresALowerPriorityAdvert() {
        var settings = instance(priority: 200, master: false)
        settings.gratuitous.lowerPriorityRepeat = 2
        settings.lowerPriorityNoAdvert = true
        let router = makeRouter([settings])
        _ = router.start(now: 0)
        _ = router.advance(now: router.nextDeadline!)
        let at = 10 * second
        _ = router.advance(now: at)
        let deadline = router.nextDeadline
        #expect(kinds(router.receive(advert(priority: 100), now: at + second / 2)) == ["announce(2)"])
        #expect(router.nextDeadline == deadline)
        #expect(state(router) == .master)
    }

    /// higher_prio_send_advert: one advert of ours, then BACKUP; without it, BACKUP silently.
    @Test func higherPrioSendAdvertSendsOneAdvertBeforeSteppingDown() {
        for send in [false, true] {
            var settings = instance(priority: 200, master: false)
            settings.higherPrioritySendAdvert = send
            let router = makeRouter([settings])
            _ = router.start(now: 0)
            _ = router.advance(now: router.nextDeadline!)
            #expect(state(router) == .master)
            let actions = kinds(router.receive(advert(priority: 250), now: 10 * second))
            #expect(actions.first == (send ? "send(200)" : "state(BACKUP)"), "higher_prio_send_advert \(send): \(actions)")
            #expect(actions.filter { $0.hasPrefix("send(") }.count == (send ? 1 : 0))
            #expect(state(router) == .backup)
        }
    }

    @Test func aMasterAdvertisesEveryInterval() {
        let router = makeRouter([instance(priority: 255, master: true)])
        _ = router.start(now: 0)
        var adverts = 0
        for tick in VRRPNanoseconds(1)...10 { adverts += sentAdverts(router.advance(now: tick * second)).count }
        #expect(adverts == 10)
        #expect(router.status[0].advertsSent == 11)
    }
}

@Suite struct VRRPAnnouncementTests {
    @Test func becomingMasterAnnouncesInKeepalivedsOrderThenTheSecondBurstAndRefreshes() {
        var settings = instance(priority: 255, master: true, vips: ["10.0.0.100"])
        settings.excludedAddresses = [VRRPAddress(address: ip("2001:db8::100"), prefixLength: 128)]
        settings.gratuitous.masterRefresh = 2 * second
        settings.gratuitous.masterRefreshRepeat = 1
        settings.notify.master = VRRPScriptCommand(command: "/bin/to-master")
        settings.notify.any = VRRPScriptCommand(command: "/bin/notify")
        let router = makeRouter([settings]) { $0.lvsSyncDaemon = VRRPLVSSyncDaemon(interface: "eth0", instance: "VI_1") }
        let actions = router.start(now: 0)
        #expect(kinds(actions) == ["state(MASTER)", "send(255)", "take", "announce(5)", "announce(5)",
                                   "script(/bin/to-master)", "script(/bin/notify)", "sync(master)"])
        #expect(actions.contains(.runScript(command: VRRPScriptCommand(command: "/bin/notify"), arguments: ["INSTANCE", "VI_1", "MASTER", "255"])))
        var announced: [VRRPNanoseconds: Int] = [:]
        while let next = router.nextDeadline, next <= 6 * second {
            for case .announce(_, _, let count) in router.advance(now: next) { announced[next, default: 0] += count }
        }
        #expect(announced[2 * second] == 2)        // refresh, both families
        #expect(announced[4 * second] == 2)
        #expect(announced[5 * second] == 10)       // garp_master_delay's second burst
        #expect(announced[6 * second] == 2)
    }

    @Test func aGarpIntervalSpacesTheBurst() {
        var settings = instance(priority: 255, master: true)
        settings.gratuitous.arpInterval = 100 * millisecond
        settings.gratuitous.masterDelay = 0
        let router = makeRouter([settings])
        var times: [VRRPNanoseconds] = []
        for case .announce(_, _, let count) in router.start(now: 0) { #expect(count == 1); times.append(0) }
        while let next = router.nextDeadline, next < second {
            for case .announce(_, _, let count) in router.advance(now: next) { #expect(count == 1); times.append(next) }
        }
        #expect(times == [0, 100 * millisecond, 200 * millisecond, 300 * millisecond, 400 * millisecond])
    }
}

@Suite struct VRRPTrackingTests {
    @Test func theInstancesInterfaceDownIsFaultAndAMasterSendsPriorityZeroFirst() {
        var settings = instance(priority: 255, master: true)
        settings.notify.fault = VRRPScriptCommand(command: "/bin/to-fault")
        let router = makeRouter([settings])
        _ = router.start(now: 0)
        let down = router.setInterface("eth0", up: false, primaryIPv4: ip("10.0.0.1"), primaryIPv6LinkLocal: nil, now: second)
        #expect(kinds(down) == ["state(FAULT)", "send(0)", "release", "script(/bin/to-fault)"])
        #expect(router.nextDeadline == nil)
        #expect(router.receive(advert(priority: 100), now: 2 * second).isEmpty)
        #expect(router.rejections[.inactive] == 1)
        let up = router.setInterface("eth0", up: true, primaryIPv4: ip("10.0.0.1"), primaryIPv6LinkLocal: nil, now: 3 * second)
        // Out of FAULT: an owner configured MASTER goes straight back to MASTER.
        #expect(kinds(up).prefix(2) == ["state(MASTER)", "send(255)"])
    }

    @Test func aBackupOutOfFaultIsBackupWithAFreshTimer() {
        let router = makeRouter([instance()])
        _ = router.start(now: 0)
        _ = router.setInterface("eth0", up: false, primaryIPv4: ip("10.0.0.1"), primaryIPv6LinkLocal: nil, now: second)
        #expect(state(router) == .fault)
        _ = router.setInterface("eth0", up: true, primaryIPv4: ip("10.0.0.1"), primaryIPv6LinkLocal: nil, now: 5 * second)
        #expect(state(router) == .backup && router.nextDeadline == 5 * second + downInterval100)
    }

    @Test func theSyncDaemonStartsAsBackupUnlessItsInstanceStartsMaster() {
        let daemon: (inout VRRPConfiguration) -> Void = { $0.lvsSyncDaemon = VRRPLVSSyncDaemon(interface: "eth0", instance: "VI_1") }
        #expect(kinds(makeRouter([instance()], configure: daemon).start(now: 0)) == ["state(BACKUP)", "sync(backup)"])
        let faulty = makeRouter([instance()], configure: daemon, interfaces: [])
        #expect(kinds(faulty.start(now: 0)) == ["state(FAULT)", "sync(backup)"])
        #expect(kinds(makeRouter([instance(priority: 255, master: true)], configure: daemon).start(now: 0)).last == "sync(master)")
    }

    @Test func noAddressToSendFromIsFault() {
        let router = makeRouter([instance(version: 3, vips: ["2001:db8::1"])], interfaces: [])
        _ = router.setInterface("eth0", up: true, primaryIPv4: ip("10.0.0.1"), primaryIPv6LinkLocal: nil, now: 0)
        _ = router.start(now: 0)
        #expect(state(router) == .fault)
    }

    @Test func aTrackedInterfaceWithoutWeightFaultsWithWeightAdjustsThePriority() {
        var faulting = instance("A", vrid: 1)
        faulting.trackInterfaces = [VRRPTrack(name: "eth1")]
        var weighted = instance("B", vrid: 2)
        weighted.trackInterfaces = [VRRPTrack(name: "eth1", weight: -30), VRRPTrack(name: "eth2", weight: 10)]
        let router = makeRouter([faulting, weighted], interfaces: ["eth0", "eth1", "eth2"])
        _ = router.start(now: 0)
        #expect(router.status.map(\.effectivePriority) == [100, 110])
        _ = router.setInterface("eth1", up: false, primaryIPv4: nil, primaryIPv6LinkLocal: nil, now: second)
        #expect(state(router, "A") == .fault && state(router, "B") == .backup)
        #expect(router.status[1].effectivePriority == 80)
        // The running down timer moves with the new skew: (256 − 80) / 256 instead of (256 − 110) / 256.
        #expect(router.nextDeadline == 3 * second + 570_312_000 + (687_500_000 - 570_312_000))
    }

    @Test func scriptRiseAndFallAreCountedByTheRouter() {
        var settings = instance()
        settings.trackScripts = [VRRPTrack(name: "chk")]
        let router = makeRouter([settings]) {
            var script = VRRPScriptSettings(name: "chk", script: VRRPScriptCommand(command: "/bin/true"))
            script.rise = 2
            script.fall = 3
            $0.scripts = [script]
        }
        _ = router.start(now: 0)
        #expect(state(router) == .fault)           // no result yet
        _ = router.setScriptResult("chk", success: true, now: second)
        #expect(state(router) == .backup)          // one success is enough at start
        for tick in VRRPNanoseconds(2)...3 {
            _ = router.setScriptResult("chk", success: false, now: tick * second)
            #expect(state(router) == .backup)      // fall 3: two failures are tolerated
        }
        _ = router.setScriptResult("chk", success: false, now: 4 * second)
        #expect(state(router) == .fault)
        _ = router.setScriptResult("chk", success: true, now: 5 * second)
        #expect(state(router) == .fault)           // rise 2
        _ = router.setScriptResult("chk", success: true, now: 6 * second)
        #expect(state(router) == .backup)
    }

    @Test func scriptWeightsClampAndSpareTheOwner() {
        var plain = instance("A", vrid: 1, priority: 250)
        plain.trackScripts = [VRRPTrack(name: "chk", weight: 20)]
        var negative = instance("B", vrid: 2, priority: 10)
        negative.trackScripts = [VRRPTrack(name: "chk", weight: -50)]
        var owner = instance("C", vrid: 3, priority: 255, master: true)
        owner.trackScripts = [VRRPTrack(name: "chk", weight: -50)]
        let router = makeRouter([plain, negative, owner]) {
            $0.scripts = [VRRPScriptSettings(name: "chk", script: VRRPScriptCommand(command: "/bin/true"))]
        }
        _ = router.start(now: 0)
        #expect(router.status.map(\.effectivePriority) == [250, 10, 255])
        _ = router.setScriptResult("chk", success: true, now: second)
        #expect(router.status.map(\.effectivePriority) == [254, 10, 255])
        _ = router.setScriptResult("chk", success: false, now: 2 * second)
        #expect(router.status.map(\.effectivePriority) == [250, 1, 255])
        #expect(router.status.map(\.state) == [.backup, .backup, .master])
    }
}

@Suite struct VRRPSyncGroupTests {
    func groupRouter(_ a: VRRPInstanceSettings, _ b: VRRPInstanceSettings) -> VRRPRouter {
        makeRouter([a, b], configure: {
            var group = VRRPSyncGroupSettings(name: "G", members: ["A", "B"])
            group.notify.any = VRRPScriptCommand(command: "/bin/group")
            $0.syncGroups = [group]
        }, interfaces: ["eth0", "eth1"])
    }

    @Test func membersBecomeMasterTogetherAndFollowAStepDown() {
        let router = groupRouter(instance("A", vrid: 1), instance("B", vrid: 2, interface: "eth1"))
        _ = router.start(now: 0)
        _ = router.advance(now: downInterval100)
        #expect(state(router, "A") == .master && state(router, "B") == .master)
        let actions = router.receive(advert(vrid: 1, priority: 200), now: 5 * second)
        #expect(state(router, "A") == .backup && state(router, "B") == .backup)
        #expect(actions.contains(.runScript(command: VRRPScriptCommand(command: "/bin/group"), arguments: ["GROUP", "G", "BACKUP", "0"])))
    }

    @Test func oneMemberHeldByAMasterHoldsTheOther() {
        let router = groupRouter(instance("A", vrid: 1), instance("B", vrid: 2, interface: "eth1"))
        _ = router.start(now: 0)
        // B keeps hearing a master; A's timer runs out but A waits for B to want MASTER too.
        for tick in VRRPNanoseconds(1)...8 {
            _ = router.receive(advert(vrid: 2, priority: 200, interface: "eth1"), now: tick * second)
            _ = router.advance(now: tick * second)
        }
        #expect(state(router, "A") == .backup && state(router, "B") == .backup)
    }

    @Test func oneMemberInFaultPutsTheGroupInFault() {
        let router = groupRouter(instance("A", vrid: 1), instance("B", vrid: 2, interface: "eth1"))
        _ = router.start(now: 0)
        _ = router.advance(now: downInterval100)
        let actions = router.setInterface("eth1", up: false, primaryIPv4: ip("10.0.1.1"), primaryIPv6LinkLocal: nil, now: 5 * second)
        #expect(state(router, "A") == .fault && state(router, "B") == .fault)
        #expect(kinds(actions).filter { $0 == "send(0)" }.count == 2)
        _ = router.setInterface("eth1", up: true, primaryIPv4: ip("10.0.1.1"), primaryIPv6LinkLocal: nil, now: 6 * second)
        #expect(state(router, "A") == .backup && state(router, "B") == .backup)
    }
}

@Suite struct VRRPUnicastAndShutdownTests {
    @Test func unicastSendsToEachPeerAndAcceptsOnlyPeers() {
        var settings = instance(priority: 255, master: true)
        settings.unicastPeers = [ip("10.0.0.2"), ip("10.0.0.3")]
        settings.sourceAddress = ip("10.0.0.1")
        let router = makeRouter([settings])
        let adverts = sentAdverts(router.start(now: 0))
        #expect(adverts.map(\.destination) == [ip("10.0.0.2"), ip("10.0.0.3")])
        _ = router.receive(advert(from: "10.0.0.9", to: "10.0.0.1", priority: 255), now: second / 2)
        #expect(router.rejections[.unknownPeer] == 1)
        // Unicast adverts may be routed: keepalived does not check their TTL.
        _ = router.receive(advert(from: "10.0.0.2", to: "10.0.0.1", priority: 100, hopLimit: 64), now: second / 2)
        #expect(router.rejections[.hopLimit] == nil && router.status[0].advertsReceived == 1)
    }

    @Test func shutdownSendsPriorityZeroReleasesAndNotifiesStop() {
        var settings = instance(priority: 255, master: true)
        settings.notify.stop = VRRPScriptCommand(command: "/bin/stop")
        let router = makeRouter([settings, instance("VI_2", vrid: 52)])
        _ = router.start(now: 0)
        let actions = router.shutdown(now: second)
        #expect(kinds(actions) == ["state(STOP)", "send(0)", "release", "script(/bin/stop)", "state(STOP)"])
        #expect(router.nextDeadline == nil && router.advance(now: 10 * second).isEmpty)
    }
}
