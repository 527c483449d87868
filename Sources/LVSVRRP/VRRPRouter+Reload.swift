import LVSModel

/// What a reload does with the running VRRP instances (the answer to `lvsadm daemon reload`).
public struct VRRPReloadSummary: Sendable, Hashable {
    /// Instances of the new configuration that are running ones (the new names).
    public var kept: [String] = []
    /// The kept instances whose settings changed.
    public var changed: [String] = []
    public var added: [String] = []
    public var removed: [String] = []
    /// The new VRRP configuration is the running one: nothing is done.
    public var unchanged = false
    public init() {}

    /// "VRRP: 1 instance kept (1 changed), 1 added, 0 removed", or "VRRP: unchanged".
    public var description: String {
        if unchanged { return "VRRP: unchanged" }
        let instances = kept.count == 1 ? "instance" : "instances"
        return "VRRP: \(kept.count) \(instances) kept (\(changed.count) changed), \(added.count) added, \(removed.count) removed"
    }
}

/// A reload with keepalived 2.2.7's semantics (vrrp.c: `vrrp_exist`, `clear_diff_vrrp`,
/// `restore_vrrp_state`, `clear_diff_script`):
/// - an instance of the new configuration with the VRID, family and interface of a running one
///   (and unicast-ness, the unicast source or the multicast group) IS that instance, whatever
///   its name: it keeps its state, statistics and timers, and its new settings apply from now;
/// - a kept MASTER releases the addresses no longer configured and takes and announces the
///   added ones only; a kept BACKUP restarts its down timer (its new priority, preempt,
///   interval apply to the next adverts);
/// - a removed MASTER sends a priority-0 advert and releases its addresses; a removed
///   instance is notified as FAULT (keepalived's default for a deleted one: `notify` only) unless
///   it was in FAULT already, or as DELETED with `notify_deleted`;
/// - a new instance starts as at start-up; sync groups are rebuilt; a `vrrp_script` whose
///   command is unchanged keeps its rise/fall state;
/// - the same configuration does nothing at all.
extension VRRPRouter {
    /// keepalived's `vrrp_exist`: for each old instance, the index of the same instance among
    /// `new` (nil: it is removed). Each new instance matches one old instance at most.
    public static func matchInstances(_ old: [VRRPInstanceSettings], _ new: [VRRPInstanceSettings]) -> [Int?] {
        var taken = Set<Int>()
        return old.map { instance in
            guard let match = sameInstance(instance, in: new, excluding: taken) else { return nil }
            taken.insert(match)
            return match
        }
    }

    static func sameInstance(_ old: VRRPInstanceSettings, in new: [VRRPInstanceSettings], excluding taken: Set<Int>) -> Int? {
        for (index, candidate) in new.enumerated() where !taken.contains(index) {
            guard candidate.virtualRouterID == old.virtualRouterID, candidate.isIPv6 == old.isIPv6,
                  candidate.interface == old.interface,
                  candidate.unicastPeers.isEmpty == old.unicastPeers.isEmpty else { continue }
            if !candidate.unicastPeers.isEmpty {
                if candidate.sourceAddress == old.sourceAddress { return index }
                continue
            }
            // Multicast: another group is another instance (keepalived stops looking there).
            return candidate.multicastGroup == old.multicastGroup ? index : nil
        }
        return nil
    }

    /// What `reload` would do with the instances of `old` given `new`.
    public static func reloadSummary(from old: VRRPConfiguration, to new: VRRPConfiguration) -> VRRPReloadSummary {
        var summary = VRRPReloadSummary()
        guard old != new else {
            summary.unchanged = true
            return summary
        }
        let matches = matchInstances(old.instances, new.instances)
        for (index, match) in matches.enumerated() {
            guard let match else {
                summary.removed.append(old.instances[index].name)
                continue
            }
            summary.kept.append(new.instances[match].name)
            if old.instances[index] != new.instances[match] { summary.changed.append(new.instances[match].name) }
        }
        let matched = Set(matches.compactMap { $0 })
        summary.added = new.instances.indices.filter { !matched.contains($0) }.map { new.instances[$0].name }
        return summary
    }

    /// Applies a new configuration to the running instances (see the extension's comment);
    /// the actions to perform, in order. The same configuration: no action at all. Before
    /// `start` the new configuration simply replaces the old one.
    public func reload(configuration new: VRRPConfiguration, now: VRRPNanoseconds) -> [VRRPAction] {
        guard new != configuration else { return [] }
        var actions: [VRRPAction] = []
        let active = started && !stopped
        let matches = Self.matchInstances(configuration.instances, new.instances)
        if active {
            for (index, match) in matches.enumerated() where match == nil { leaveRemoved(index, now: now, &actions) }
        }
        let old = instances
        let oldGroups = groups
        var (fresh, freshGroups) = Self.build(new)
        var previous = [Int?](repeating: nil, count: fresh.count)
        for (index, match) in matches.enumerated() {
            guard let match else { continue }
            previous[match] = index
            Self.carry(old[index], into: &fresh[match])
        }
        let syncInstanceBefore = configuration.lvsSyncDaemon?.instance
        configuration = new
        instances = fresh
        groups = freshGroups
        scripts = Self.carriedScripts(scripts, new.scripts)
        for index in instances.indices { instances[index].effectivePriority = computedPriority(index) }
        guard active else { return actions }

        for index in instances.indices {
            guard let before = previous[index] else { continue }
            applyChanges(index, was: old[before], now: now, &actions)
            if isSyncDaemonInstance(index) && syncInstanceBefore != instances[index].settings.name {
                actions.append(.syncRole(instance: instances[index].settings.name, master: instances[index].state == .master))
            }
        }
        // New instances leave INIT as at start-up.
        let added = instances.indices.filter { previous[$0] == nil }
        for index in added {
            let owner = instances[index].settings.initialMaster && instances[index].isOwner
            instances[index].wantState = owner ? .master : .backup
        }
        for index in added { enterInitialState(index, now: now, timersFrom: now, delayed: false, &actions) }
        rebuildGroupStates(oldGroups, now: now, &actions)
        // The new tracking (interfaces, scripts, weights): effective priorities, FAULT in or out.
        reevaluate(now: now, &actions)
        return actions
    }

    /// A removed instance leaves as at a stop: a MASTER sends priority 0 (the peer takes over
    /// after its skew time), hands the sync daemon back and releases its addresses.
    func leaveRemoved(_ index: Int, now: VRRPNanoseconds, _ actions: inout [VRRPAction]) {
        let state = instances[index].state
        if state == .master {
            sendAdvert(index, priority: 0, &actions)
            if isSyncDaemonInstance(index) {
                actions.append(.syncRole(instance: instances[index].settings.name, master: false))
            }
            actions.append(.releaseAddresses(instance: instances[index].settings.name, addresses: ownedAddresses(index)))
        }
        notifyDeleted(index, &actions)
        clearTimers(index)
    }

    /// keepalived 2.2.7's `clear_diff_vrrp` and `send_instance_notifies` for a deleted instance:
    /// with `notify_deleted`, its script (no arguments) and `notify … DELETED`; without it, only
    /// `notify … FAULT` (the specific script is the deleted one, so `notify_fault` does not run),
    /// and nothing when it was in FAULT already.
    func notifyDeleted(_ index: Int, _ actions: inout [VRRPAction]) {
        let instance = instances[index]
        let notify = instance.settings.notify
        if notify.notifyDeleted {
            if let script = notify.deleted { actions.append(.runScript(command: script, arguments: [])) }
        } else if instance.state == .fault || instance.state == .initial || instance.state == .stopped {
            return
        }
        if let any = notify.any {
            actions.append(.runScript(command: any, arguments: ["INSTANCE", instance.settings.name,
                                                                notify.notifyDeleted ? "DELETED" : VRRPState.fault.rawValue,
                                                                String(instance.effectivePriority)]))
        }
    }

    /// A kept instance takes over its predecessor's state, statistics and timers.
    static func carry(_ old: Instance, into new: inout Instance) {
        new.state = old.state
        new.wantState = old.wantState
        new.deadline = old.deadline
        new.preemptTime = old.preemptTime
        new.masterAddress = old.masterAddress
        new.masterPriority = old.masterPriority
        new.announcements = old.announcements
        new.refreshAt = old.refreshAt
        new.transitions = old.transitions
        new.lastTransition = old.lastTransition
        new.advertsSent = old.advertsSent
        new.advertsReceived = old.advertsReceived
        if old.intervalCentiseconds == new.intervalCentiseconds && old.version == new.version {
            new.masterIntervalCentiseconds = old.masterIntervalCentiseconds
        }
        // An owner lowered to 254 by a second owner on the link stays lowered.
        if old.settings.priority == new.settings.priority { new.basePriority = old.basePriority }
    }

    /// A kept instance whose settings changed: the new ones apply from now on.
    func applyChanges(_ index: Int, was old: Instance, now: VRRPNanoseconds, _ actions: inout [VRRPAction]) {
        let settings = instances[index].settings
        guard old.settings != settings || old.effectivePriority != instances[index].effectivePriority else { return }
        if old.intervalCentiseconds != instances[index].intervalCentiseconds || old.version != instances[index].version {
            instances[index].masterIntervalCentiseconds = instances[index].intervalCentiseconds
        }
        if old.settings.preemptDelay != settings.preemptDelay || old.settings.preempt != settings.preempt {
            instances[index].preemptTime = nil
        }
        switch instances[index].state {
        case .master:
            let before = old.settings.virtualAddresses + old.settings.excludedAddresses
            let after = ownedAddresses(index)
            let released = before.filter { !after.contains($0) }
            let taken = after.filter { !before.contains($0) }
            let name = settings.name
            if !released.isEmpty { actions.append(.releaseAddresses(instance: name, addresses: released)) }
            if !taken.isEmpty {
                actions.append(.takeAddresses(instance: name, addresses: taken))
                let garp = settings.gratuitous
                announce(index, count: garp.masterRepeat, now: now, only: taken, &actions)
                if garp.masterDelay > 0 {
                    instances[index].announcements.append(Announcement(at: now + garp.masterDelay, ipv6: nil,
                                                                       count: garp.masterRepeat, addresses: taken))
                }
            }
            // The next advert (with the new priority, interval and addresses) is no later than one new interval.
            let next = now + interval(index)
            instances[index].deadline = min(instances[index].deadline ?? next, next)
            if old.settings.gratuitous.masterRefresh != settings.gratuitous.masterRefresh {
                let refresh = settings.gratuitous.masterRefresh
                instances[index].refreshAt = refresh > 0 ? now + refresh : nil
            }
        case .backup:
            // keepalived restarts a reloaded backup's down timer.
            instances[index].deadline = now + masterDownInterval(index)
        default:
            break
        }
    }

    /// The sync groups of the new configuration take their members' states; a group that had
    /// that state already (by name) is not notified again. A group whose members are mixed
    /// MASTER and BACKUP goes BACKUP whole (keepalived prefers BACKUP to thrashing).
    func rebuildGroupStates(_ oldGroups: [Group], now: VRRPNanoseconds, _ actions: inout [VRRPAction]) {
        for group in groups.indices {
            let state = memberState(group)
            let before = oldGroups.first { $0.settings.name == groups[group].settings.name }?.state
            if state == .backup && groups[group].members.contains(where: { instances[$0].state == .master }) {
                syncGroupToBackup(group, except: -1, now: now, &actions)
                continue
            }
            if before == state {
                groups[group].state = state
            } else {
                setGroupState(group, state, &actions)
            }
        }
    }

    /// keepalived's `clear_diff_script`: a script of the same name and command keeps its
    /// result, mapped onto the new rise/fall; any other starts afresh.
    static func carriedScripts(_ old: [String: Script], _ new: [VRRPScriptSettings]) -> [String: Script] {
        var out: [String: Script] = [:]
        for settings in new {
            let rise = max(1, settings.rise), fall = max(1, settings.fall)
            var script = Script(settings: settings, result: rise - 1)
            if let before = old[settings.name], before.settings.script == settings.script, !before.pending {
                let oldRise = max(1, before.settings.rise), oldFall = max(1, before.settings.fall)
                if before.result < oldRise {
                    script.result = before.result == 0 ? 0 : max(0, rise - (oldRise - before.result))
                } else if before.result == oldRise + oldFall - 1 {
                    script.result = rise + fall - 1
                } else {
                    script.result = min(rise + fall - 1, rise + (before.result - oldRise))
                }
                script.ok = before.result >= oldRise
                script.pending = false
            }
            out[settings.name] = script
        }
        return out
    }
}
