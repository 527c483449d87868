import LVSModel

/// One instance as `VRRPRouter.status` shows it (lvsadm daemon status, metrics).
public struct VRRPInstanceStatus: Sendable, Hashable {
    public var name: String
    public var interface: String
    public var virtualRouterID: UInt8
    public var state: VRRPState
    public var configuredPriority: UInt8
    /// After track_interface / track_script weights (1...254; 255 stays 255).
    public var effectivePriority: UInt8
    /// The current master's address and priority, while BACKUP and one has been heard.
    public var masterAddress: IPAddress?
    public var masterPriority: UInt8?
    public var transitions: Int
    public var lastTransition: VRRPNanoseconds?
    public var advertsSent: Int
    public var advertsReceived: Int
    /// The `vrrp_sync_group` the instance belongs to.
    public var syncGroup: String?
}

/// The VRRP protocol engine (keepalived 2.2.7's semantics, RFC 3768 / 5798): every instance
/// of one configuration, its timers, tracking and sync groups. Pure: no I/O, time passed in,
/// deterministic. Not thread-safe: its owner calls it from one thread (or actor) only.
public final class VRRPRouter {
    private struct Interface {
        var up: Bool
        var ipv4: IPAddress?
        var ipv6LinkLocal: IPAddress?
    }

    /// A `vrrp_script`'s rise/fall state, fed by `setScriptResult`.
    struct Script {
        var settings: VRRPScriptSettings
        /// keepalived's counter: 0..<rise counts successes while down, rise...rise+fall-1
        /// counts the failures still allowed while up.
        var result: Int
        /// No result has been reported yet.
        var pending = true
        var ok = false
    }

    /// A gratuitous ARP / NA burst (`ipv6` nil: every family, spaced by the family's interval),
    /// or one spaced announcement of one family.
    struct Announcement {
        var at: VRRPNanoseconds
        var ipv6: Bool?
        var count: Int
        /// Only these addresses (nil: every owned address), for the addresses a reload added.
        var addresses: [VRRPAddress]? = nil
    }

    struct Instance {
        var settings: VRRPInstanceSettings
        var group: Int?
        var state: VRRPState = .initial
        /// keepalived's wantstate: what the instance would be in without its sync group.
        var wantState: VRRPState = .backup
        var basePriority: UInt8
        var effectivePriority: UInt8
        var masterIntervalCentiseconds: UInt16
        /// BACKUP: the master-down timer; MASTER: the next advert.
        var deadline: VRRPNanoseconds?
        var preemptTime: VRRPNanoseconds?
        var masterAddress: IPAddress?
        var masterPriority: UInt8?
        var announcements: [Announcement] = []
        var refreshAt: VRRPNanoseconds?
        var transitions = 0
        var lastTransition: VRRPNanoseconds?
        var advertsSent = 0
        var advertsReceived = 0

        var version: UInt8 { settings.isIPv6 ? 3 : (settings.version == 3 ? 3 : 2) }
        var isOwner: Bool { basePriority == VRRPRouter.ownerPriority }
        /// nopreempt and preempt_delay do nothing with `state MASTER` (keepalived clears them).
        var preempt: Bool { settings.preempt || settings.initialMaster }
        var preemptDelay: VRRPNanoseconds { settings.initialMaster || !settings.preempt ? 0 : settings.preemptDelay }
        /// The configured interval as sent: v2 whole seconds, v3 1...4095 centiseconds.
        var intervalCentiseconds: UInt16 {
            if version == 2 { return max(1, settings.advertIntervalCentiseconds / 100) * 100 }
            return min(VRRPAdvert.maxIntervalCentiseconds, max(1, settings.advertIntervalCentiseconds))
        }
    }

    struct Group {
        var settings: VRRPSyncGroupSettings
        var members: [Int]
        var state: VRRPState = .initial
    }

    static let ownerPriority: UInt8 = 255
    static let nanosecondsPerCentisecond: VRRPNanoseconds = 10_000_000
    static let nanosecondsPerMicrosecond: VRRPNanoseconds = 1_000

    var configuration: VRRPConfiguration
    var instances: [Instance] = []
    var groups: [Group] = []
    private var interfaces: [String: Interface] = [:]
    var scripts: [String: Script] = [:]
    private var rejectionCounts: [VRRPRejection: Int] = [:]
    var started = false
    var stopped = false

    public init(configuration: VRRPConfiguration, now: VRRPNanoseconds) {
        self.configuration = configuration
        (instances, groups) = Self.build(configuration)
        for script in configuration.scripts {
            scripts[script.name] = Script(settings: script, result: max(1, script.rise) - 1)
        }
        for index in instances.indices { instances[index].effectivePriority = computedPriority(index) }
    }

    /// The instances (INIT) and sync groups of a configuration, as `init` and `reload` build them.
    static func build(_ configuration: VRRPConfiguration) -> (instances: [Instance], groups: [Group]) {
        var instances: [Instance] = []
        var groups: [Group] = []
        for settings in configuration.instances {
            instances.append(Instance(settings: settings, basePriority: max(1, settings.priority),
                                      effectivePriority: max(1, settings.priority),
                                      masterIntervalCentiseconds: settings.advertIntervalCentiseconds))
        }
        for index in instances.indices { instances[index].masterIntervalCentiseconds = instances[index].intervalCentiseconds }
        for settings in configuration.syncGroups {
            var members: [Int] = []
            for name in settings.members {
                // An instance belongs to one group at most (keepalived ignores later ones).
                if let index = instances.firstIndex(where: { $0.settings.name == name }), instances[index].group == nil {
                    members.append(index)
                    instances[index].group = groups.count
                }
            }
            groups.append(Group(settings: settings, members: members))
        }
        // A group whose members do not all start as address owners starts every member BACKUP.
        for group in groups where group.members.contains(where: { !(instances[$0].settings.initialMaster && instances[$0].isOwner) }) {
            for member in group.members { instances[member].settings.initialMaster = false }
        }
        return (instances, groups)
    }

    // MARK: - Public API

    /// The interface's link state and primary addresses (the adverts' source, the tie-break).
    public func setInterface(_ name: String, up: Bool, primaryIPv4: IPAddress?, primaryIPv6LinkLocal: IPAddress?,
                             now: VRRPNanoseconds) -> [VRRPAction] {
        interfaces[name] = Interface(up: up, ipv4: primaryIPv4, ipv6LinkLocal: primaryIPv6LinkLocal)
        var actions: [VRRPAction] = []
        if started && !stopped { reevaluate(now: now, &actions) }
        return actions
    }

    /// Leaves INIT: each instance becomes BACKUP, MASTER (an address owner configured MASTER)
    /// or FAULT. Timers start after `startupDelay`.
    public func start(now: VRRPNanoseconds) -> [VRRPAction] {
        guard !started else { return [] }
        started = true
        var actions: [VRRPAction] = []
        let timersFrom = now + configuration.startupDelay
        for index in instances.indices {
            instances[index].effectivePriority = computedPriority(index)
            let owner = instances[index].settings.initialMaster && instances[index].isOwner
            instances[index].wantState = owner ? .master : .backup
        }
        for index in instances.indices {
            enterInitialState(index, now: now, timersFrom: timersFrom, delayed: configuration.startupDelay > 0, &actions)
        }
        for group in groups.indices { setGroupState(group, memberState(group), &actions) }
        return actions
    }

    /// An instance leaving INIT (at start, or added by a reload): FAULT, MASTER at once (an
    /// owner configured MASTER, without a startup delay) or BACKUP with its down timer.
    /// `wantState` is set beforehand.
    func enterInitialState(_ index: Int, now: VRRPNanoseconds, timersFrom: VRRPNanoseconds, delayed: Bool,
                           _ actions: inout [VRRPAction]) {
        if !isUp(index) {
            setState(index, .fault, now: now, &actions)
            if !waitingForFirstScriptResult(index) { notify(index, &actions) }
            // keepalived starts the sync daemon as backup for any instance not starting MASTER.
            if isSyncDaemonInstance(index) {
                actions.append(.syncRole(instance: instances[index].settings.name, master: false))
            }
            return
        }
        if instances[index].wantState == .master && !delayed {
            gotoMaster(index, now: now, &actions)
            return
        }
        setState(index, .backup, now: now, &actions)
        if instances[index].wantState == .master {
            // The owner leaves BACKUP as soon as the startup delay is over.
            instances[index].deadline = timersFrom + Self.nanosecondsPerMicrosecond
        } else {
            instances[index].deadline = timersFrom + masterDownInterval(index)
            notify(index, &actions)
        }
        if isSyncDaemonInstance(index) {
            actions.append(.syncRole(instance: instances[index].settings.name, master: false))
        }
    }

    /// A sync group's state from its members': FAULT if one is, MASTER if all are, else BACKUP.
    func memberState(_ group: Int) -> VRRPState {
        let states = groups[group].members.map { instances[$0].state }
        return states.contains(.fault) ? .fault : (!states.isEmpty && states.allSatisfy { $0 == .master } ? .master : .backup)
    }

    /// An advert (or anything else) received on protocol 112.
    public func receive(_ packet: VRRPReceived, now: VRRPNanoseconds) -> [VRRPAction] {
        var actions: [VRRPAction] = []
        switch validate(packet) {
        case .failure(let reason):
            rejectionCounts[reason, default: 0] += 1
        case .success(let (index, message)):
            instances[index].advertsReceived += 1
            if instances[index].state == .backup {
                receiveAsBackup(index, message, from: packet.source, now: now)
            } else {
                receiveAsMaster(index, message, from: packet.source, now: now, &actions)
            }
        }
        return actions
    }

    /// Runs the timers due at `now`: master-down timeouts, adverts, gratuitous ARP / NA.
    public func advance(now: VRRPNanoseconds) -> [VRRPAction] {
        var actions: [VRRPAction] = []
        guard started && !stopped else { return actions }
        while let (index, due) = earliestEvent(), due <= now {
            runEvent(index, at: due, now: now, &actions)
        }
        return actions
    }

    /// When `advance` next has work (nil: nothing scheduled).
    public var nextDeadline: VRRPNanoseconds? {
        guard started && !stopped else { return nil }
        return earliestEvent()?.at
    }

    /// One run of a `vrrp_script`: rise and fall are applied here.
    public func setScriptResult(_ script: String, success: Bool, now: VRRPNanoseconds) -> [VRRPAction] {
        guard var state = scripts[script] else { return [] }
        let rise = max(1, state.settings.rise), fall = max(1, state.settings.fall)
        var changed = false
        if success {
            if state.result < rise - 1 {
                state.result += 1
            } else if state.result != rise + fall - 1 {
                if state.result < rise { state.ok = true; changed = true }
                state.result = rise + fall - 1
            }
        } else {
            if state.result > rise {
                state.result -= 1
            } else {
                if state.result == rise || state.pending { state.ok = false; changed = true }
                state.result = 0
            }
        }
        if changed { state.pending = false }
        scripts[script] = state
        var actions: [VRRPAction] = []
        if changed && started && !stopped { reevaluate(now: now, &actions) }
        return actions
    }

    /// Stops every instance: a MASTER sends a priority-0 advert and releases its addresses;
    /// then notify_stop runs for each instance and group.
    public func shutdown(now: VRRPNanoseconds) -> [VRRPAction] {
        guard started && !stopped else { stopped = true; return [] }
        stopped = true
        var actions: [VRRPAction] = []
        for index in instances.indices {
            let wasMaster = instances[index].state == .master
            setState(index, .stopped, now: now, &actions)
            if wasMaster {
                sendAdvert(index, priority: 0, &actions)
                if isSyncDaemonInstance(index) {
                    actions.append(.syncRole(instance: instances[index].settings.name, master: false))
                }
                actions.append(.releaseAddresses(instance: instances[index].settings.name, addresses: ownedAddresses(index)))
            }
            clearTimers(index)
            notify(index, &actions)
        }
        for group in groups.indices { setGroupState(group, .stopped, &actions) }
        return actions
    }

    public var status: [VRRPInstanceStatus] {
        instances.map { instance in
            VRRPInstanceStatus(name: instance.settings.name, interface: instance.settings.interface,
                               virtualRouterID: instance.settings.virtualRouterID, state: instance.state,
                               configuredPriority: instance.settings.priority,
                               effectivePriority: instance.effectivePriority,
                               masterAddress: instance.state == .backup ? instance.masterAddress : nil,
                               masterPriority: instance.state == .backup ? instance.masterPriority : nil,
                               transitions: instance.transitions, lastTransition: instance.lastTransition,
                               advertsSent: instance.advertsSent, advertsReceived: instance.advertsReceived,
                               syncGroup: instance.group.map { groups[$0].settings.name })
        }
    }

    /// Every ignored packet, counted by reason.
    public var rejections: [VRRPRejection: Int] { rejectionCounts }

    // MARK: - Validation

    private func validate(_ packet: VRRPReceived) -> Result<(Int, VRRPAdvert.Message), VRRPRejection> {
        let payload = packet.payload
        guard payload.count >= VRRPAdvert.Offset.addresses else { return .failure(.truncated) }
        let ipv6 = !packet.source.isIPv4
        guard packet.destination.isIPv4 != ipv6 else { return .failure(.family) }
        let vrid = payload[VRRPAdvert.Offset.virtualRouterID]
        let candidates = instances.indices.filter {
            instances[$0].settings.interface == packet.interface && instances[$0].settings.isIPv6 == ipv6
                && instances[$0].settings.virtualRouterID == vrid
        }
        guard let first = candidates.first else { return .failure(.unknownVRID) }
        let index = candidates.first { instances[$0].settings.unicastPeers.contains(packet.source) } ?? first
        let instance = instances[index]
        guard started && !stopped && (instance.state == .backup || instance.state == .master) else {
            return .failure(.inactive)
        }
        let unicast = !instance.settings.unicastPeers.isEmpty
        // keepalived checks the TTL of multicast adverts only (unicast ones may be routed).
        if !unicast && packet.hopLimit != VRRPAdvert.hopLimit { return .failure(.hopLimit) }
        let message: VRRPAdvert.Message
        switch VRRPAdvert.decode(payload, ipv6: ipv6) {
        case .failure(let reason): return .failure(reason)
        case .success(let decoded): message = decoded
        }
        guard message.version == instance.version else { return .failure(.version) }
        if instance.version == 2 && !ipv6 {
            let password = instance.settings.authPassword
            let expected = password == nil ? VRRPAdvert.authNone : VRRPAdvert.authPassword
            guard message.authType == expected else { return .failure(.authType) }
            if let password, message.authData != VRRPAdvert.authData(password: password) {
                return .failure(.authPassword)
            }
        }
        if instance.version == 2 && message.intervalCentiseconds != instance.intervalCentiseconds {
            return .failure(.interval)
        }
        guard VRRPAdvert.checksumIsValid(payload, version: message.version, source: packet.source,
                                         destination: packet.destination) else { return .failure(.checksum) }
        if let own = sourceAddress(index), own == packet.source { return .failure(.ownAddress) }
        if unicast && !instance.settings.unicastPeers.contains(packet.source) { return .failure(.unknownPeer) }
        let ours = advertisedAddresses(index)
        guard message.addresses.count == ours.count else { return .failure(.addressCount) }
        guard Set(message.addresses) == Set(ours) else { return .failure(.addressList) }
        return .success((index, message))
    }

    // MARK: - Receiving

    private func receiveAsBackup(_ index: Int, _ message: VRRPAdvert.Message, from source: IPAddress, now: VRRPNanoseconds) {
        var instance = instances[index]
        if message.priority == 0 {
            // The master is leaving: take over after the skew time only.
            instance.deadline = now + skew(index, priority: instance.effectivePriority)
            instances[index] = instance
            return
        }
        let delaying = instance.preemptDelay > 0 && (instance.preemptTime.map { $0 > now } ?? true)
        if !instance.preempt || message.priority >= instance.effectivePriority || delaying {
            if instance.version == 3 { instance.masterIntervalCentiseconds = max(1, message.intervalCentiseconds) }
            instance.masterAddress = source
            instance.masterPriority = message.priority
            if instance.preemptDelay > 0 {
                if message.priority >= instance.effectivePriority {
                    instance.preemptTime = nil
                } else if instance.preemptTime == nil {
                    instance.preemptTime = now + instance.preemptDelay
                }
            }
            instance.wantState = .backup
            instances[index] = instance
            instances[index].deadline = now + masterDownInterval(index)
        } else {
            // A lower priority that we may preempt: ignore it, the down timer runs out.
            instance.masterAddress = source
            instance.masterPriority = message.priority
            instances[index] = instance
        }
    }

    private func receiveAsMaster(_ index: Int, _ message: VRRPAdvert.Message, from source: IPAddress,
                                 now: VRRPNanoseconds, _ actions: inout [VRRPAction]) {
        let ours = instances[index].effectivePriority
        let comparison = compare(source, with: sourceAddress(index))
        if message.priority == 0 {
            // Another master is leaving: assert ourselves at once.
            sendAdvert(index, priority: ours, &actions)
            instances[index].deadline = now + interval(index)
            return
        }
        if instances[index].settings.higherPrioritySendAdvert
            && (message.priority > ours || (message.priority == ours && comparison > 0)) {
            // higher_prio_send_advert: one advert of ours before stepping down, so that a peer
            // that became MASTER while it could not hear us learns of us (keepalived 2.2.7).
            sendAdvert(index, priority: ours, &actions)
        }
        if message.priority == ours && ours == Self.ownerPriority {
            // Two address owners: keepalived reports a configuration error and lowers itself.
            instances[index].basePriority = Self.ownerPriority - 1
            instances[index].effectivePriority = computedPriority(index)
        }
        let priority = instances[index].effectivePriority
        if message.priority < priority || (message.priority == priority && comparison < 0) {
            // A lower-priority master: force a new election (unless lower_prio_no_advert, the
            // RFC's way: ignore it) and refresh the neighbours' caches.
            if !instances[index].settings.lowerPriorityNoAdvert {
                sendAdvert(index, priority: priority, &actions)
                instances[index].deadline = now + interval(index)
            }
            lowerPriorityAnnouncements(index, now: now, &actions)
            if let group = instances[index].group {
                for member in groups[group].members where member != index && instances[member].state == .master {
                    lowerPriorityAnnouncements(member, now: now, &actions)
                }
            }
            return
        }
        // Higher priority, or equal from a higher address: step down.
        if instances[index].version == 3 { instances[index].masterIntervalCentiseconds = max(1, message.intervalCentiseconds) }
        instances[index].masterAddress = source
        instances[index].masterPriority = message.priority
        instances[index].wantState = .backup
        leaveMaster(index, to: .backup, priorityZero: false, now: now, &actions)
        if let group = instances[index].group { syncGroupToBackup(group, except: index, now: now, &actions) }
    }

    // MARK: - Transitions

    /// BACKUP (or FAULT, for an owner) to MASTER; false when its sync group holds it back.
    @discardableResult
    private func gotoMaster(_ index: Int, now: VRRPNanoseconds, _ actions: inout [VRRPAction]) -> Bool {
        if let group = instances[index].group, groups[group].state != .master {
            // Only when every member wants MASTER (prefer BACKUP to thrashing).
            let others = groups[group].members.filter { $0 != index }
            if others.contains(where: { instances[$0].wantState != .master && instances[$0].state != .master }) {
                instances[index].wantState = .master
                instances[index].deadline = now + masterDownInterval(index)
                return false
            }
        }
        let name = instances[index].settings.name
        instances[index].wantState = .master
        instances[index].masterIntervalCentiseconds = instances[index].intervalCentiseconds
        instances[index].preemptTime = nil
        instances[index].masterAddress = nil
        instances[index].masterPriority = nil
        setState(index, .master, now: now, &actions)
        // keepalived sends the advert first, so that the old master drops the addresses
        // before the gratuitous ARPs go out.
        sendAdvert(index, priority: instances[index].effectivePriority, &actions)
        instances[index].deadline = now + interval(index)
        actions.append(.takeAddresses(instance: name, addresses: ownedAddresses(index)))
        let garp = instances[index].settings.gratuitous
        announce(index, count: garp.masterRepeat, now: now, &actions)
        if garp.masterDelay > 0 {
            instances[index].announcements.append(Announcement(at: now + garp.masterDelay, ipv6: nil, count: garp.masterRepeat))
        }
        instances[index].refreshAt = garp.masterRefresh > 0 ? now + garp.masterRefresh : nil
        notify(index, &actions)
        if isSyncDaemonInstance(index) { actions.append(.syncRole(instance: name, master: true)) }
        if let group = instances[index].group, groups[group].state != .master {
            setGroupState(group, .master, &actions)
            for member in groups[group].members where member != index && instances[member].state == .backup {
                gotoMaster(member, now: now, &actions)
            }
        }
        return true
    }

    private func leaveMaster(_ index: Int, to state: VRRPState, priorityZero: Bool, now: VRRPNanoseconds,
                             _ actions: inout [VRRPAction]) {
        let name = instances[index].settings.name
        setState(index, state, now: now, &actions)
        if isSyncDaemonInstance(index) { actions.append(.syncRole(instance: name, master: false)) }
        if priorityZero { sendAdvert(index, priority: 0, &actions) }
        actions.append(.releaseAddresses(instance: name, addresses: ownedAddresses(index)))
        clearTimers(index)
        instances[index].preemptTime = nil
        if state == .backup { instances[index].deadline = now + masterDownInterval(index) }
        notify(index, &actions)
    }

    func syncGroupToBackup(_ group: Int, except index: Int, now: VRRPNanoseconds, _ actions: inout [VRRPAction]) {
        guard groups[group].state != .backup else { return }
        for member in groups[group].members where member != index {
            instances[member].wantState = .backup
            if instances[member].state == .master {
                leaveMaster(member, to: .backup, priorityZero: false, now: now, &actions)
            } else if instances[member].state == .backup {
                instances[member].deadline = now + masterDownInterval(member)
            }
        }
        setGroupState(group, .backup, &actions)
    }

    /// Applies the tracked interfaces and scripts: effective priorities, and FAULT in or out.
    func reevaluate(now: VRRPNanoseconds, _ actions: inout [VRRPAction]) {
        for index in instances.indices { updatePriority(index) }
        for index in instances.indices {
            let state = instances[index].state
            guard state == .backup || state == .master || state == .fault else { continue }
            let up = isUp(index)
            if !up && state != .fault {
                instances[index].wantState = .fault
                if state == .master {
                    leaveMaster(index, to: .fault, priorityZero: true, now: now, &actions)
                } else {
                    setState(index, .fault, now: now, &actions)
                    clearTimers(index)
                    notify(index, &actions)
                }
                if let group = instances[index].group { setGroupState(group, .fault, &actions) }
            } else if up && state == .fault {
                leaveFault(index, now: now, &actions)
            }
        }
    }

    private func leaveFault(_ index: Int, now: VRRPNanoseconds, _ actions: inout [VRRPAction]) {
        let owner = instances[index].settings.initialMaster && instances[index].isOwner
        instances[index].wantState = owner ? .master : .backup
        instances[index].masterIntervalCentiseconds = instances[index].intervalCentiseconds
        instances[index].masterAddress = nil
        instances[index].masterPriority = nil
        if owner && gotoMaster(index, now: now, &actions) { return }
        setState(index, .backup, now: now, &actions)
        instances[index].deadline = now + masterDownInterval(index)
        notify(index, &actions)
        if let group = instances[index].group,
           groups[group].members.allSatisfy({ instances[$0].state == .backup || instances[$0].state == .master }) {
            setGroupState(group, .backup, &actions)
        }
    }

    // MARK: - Timers

    private func earliestEvent() -> (index: Int, at: VRRPNanoseconds)? {
        var best: (index: Int, at: VRRPNanoseconds)? = nil
        for index in instances.indices {
            let instance = instances[index]
            var times: [VRRPNanoseconds] = instance.announcements.map(\.at)
            if let deadline = instance.deadline { times.append(deadline) }
            if let refresh = instance.refreshAt { times.append(refresh) }
            if let at = times.min(), best.map({ at < $0.at }) ?? true { best = (index, at) }
        }
        return best
    }

    private func runEvent(_ index: Int, at due: VRRPNanoseconds, now: VRRPNanoseconds, _ actions: inout [VRRPAction]) {
        if let position = instances[index].announcements.firstIndex(where: { $0.at == due }) {
            let event = instances[index].announcements.remove(at: position)
            if let ipv6 = event.ipv6 {
                let owned = ownedAddresses(index)
                let addresses = (event.addresses ?? owned).filter { owned.contains($0) && !$0.address.isIPv4 == ipv6 }
                if !addresses.isEmpty {
                    actions.append(.announce(instance: instances[index].settings.name, addresses: addresses, count: event.count))
                }
            } else {
                announce(index, count: event.count, now: due, only: event.addresses, &actions)
            }
            return
        }
        if instances[index].refreshAt == due {
            let garp = instances[index].settings.gratuitous
            announce(index, count: garp.masterRefreshRepeat, now: due, &actions)
            instances[index].refreshAt = due + garp.masterRefresh
            return
        }
        instances[index].deadline = nil
        switch instances[index].state {
        case .backup:
            gotoMaster(index, now: now, &actions)
        case .master:
            sendAdvert(index, priority: instances[index].effectivePriority, &actions)
            instances[index].deadline = now + interval(index)
        default:
            break
        }
    }

    func clearTimers(_ index: Int) {
        instances[index].deadline = nil
        instances[index].announcements.removeAll()
        instances[index].refreshAt = nil
    }

    /// Master_Adver_Interval in nanoseconds (v3: the master's, once one is heard).
    private func masterInterval(_ index: Int) -> VRRPNanoseconds {
        VRRPNanoseconds(instances[index].masterIntervalCentiseconds) * Self.nanosecondsPerCentisecond
    }

    /// The instance's own advert interval.
    func interval(_ index: Int) -> VRRPNanoseconds {
        VRRPNanoseconds(instances[index].intervalCentiseconds) * Self.nanosecondsPerCentisecond
    }

    /// Skew_Time, computed in microseconds as keepalived does: v2 (256 − priority) / 256 s,
    /// v3 (256 − priority) × Master_Adver_Interval / 256.
    private func skew(_ index: Int, priority: UInt8) -> VRRPNanoseconds {
        let weight = VRRPNanoseconds(256 - Int(priority))
        let micros: VRRPNanoseconds
        if instances[index].version == 3 {
            micros = weight * VRRPNanoseconds(instances[index].masterIntervalCentiseconds) * 625 / 16
        } else {
            micros = weight * 1_000_000 / 256
        }
        return micros * Self.nanosecondsPerMicrosecond
    }

    /// Master_Down_Interval = down_timer_adverts × Master_Adver_Interval + Skew_Time.
    func masterDownInterval(_ index: Int) -> VRRPNanoseconds {
        VRRPNanoseconds(max(1, instances[index].settings.downTimerAdverts)) * masterInterval(index)
            + skew(index, priority: instances[index].effectivePriority)
    }

    // MARK: - Tracking

    private func trackedInterfaces(_ index: Int) -> [VRRPTrack] {
        instances[index].settings.trackInterfaces + (instances[index].group.map { groups[$0].settings.trackInterfaces } ?? [])
    }

    private func trackedScripts(_ index: Int) -> [VRRPTrack] {
        instances[index].settings.trackScripts + (instances[index].group.map { groups[$0].settings.trackScripts } ?? [])
    }

    /// A tracked script's weight and whether it is reversed (the track's own weight wins).
    private func scriptWeight(_ track: VRRPTrack, _ script: Script) -> (weight: Int, reverse: Bool) {
        if let weight = track.weight { return (weight, false) }
        return (script.settings.weight, script.settings.weightReverse)
    }

    /// The instance's own conditions: its interface up with an address to send from, every
    /// weightless tracked interface up and every weightless tracked script succeeding.
    private func isUpAlone(_ index: Int) -> Bool {
        let settings = instances[index].settings
        guard interfaces[settings.interface]?.up == true, sourceAddress(index) != nil else { return false }
        for track in trackedInterfaces(index) where (track.weight ?? 0) == 0 {
            if interfaces[track.name]?.up != true { return false }
        }
        for track in trackedScripts(index) {
            guard let script = scripts[track.name] else { continue }
            let (weight, reverse) = scriptWeight(track, script)
            if weight == 0 && (script.pending || script.ok == reverse) { return false }
        }
        return true
    }

    /// A sync group member is up only when every member is.
    private func isUp(_ index: Int) -> Bool {
        guard let group = instances[index].group else { return isUpAlone(index) }
        return groups[group].members.allSatisfy { isUpAlone($0) }
    }

    private func waitingForFirstScriptResult(_ index: Int) -> Bool {
        trackedScripts(index).contains { track in
            guard let script = scripts[track.name] else { return false }
            return scriptWeight(track, script).weight == 0 && script.pending
        }
    }

    /// keepalived's effective priority: the base plus the weights of what is tracked,
    /// clamped to 1...254; an address owner (255) is never adjusted.
    func computedPriority(_ index: Int) -> UInt8 {
        let base = instances[index].basePriority
        if base == Self.ownerPriority { return base }
        var total = Int(base)
        for track in trackedInterfaces(index) {
            guard let weight = track.weight, weight != 0 else { continue }
            total += interfaces[track.name]?.up == true ? max(weight, 0) : min(weight, 0)
        }
        for track in trackedScripts(index) {
            guard let script = scripts[track.name], !script.pending else { continue }
            let (weight, reverse) = scriptWeight(track, script)
            guard weight != 0 else { continue }
            let signed = reverse ? -weight : weight
            total += script.ok ? (weight > 0 ? signed : 0) : (weight < 0 ? signed : 0)
        }
        return UInt8(min(Int(Self.ownerPriority) - 1, max(1, total)))
    }

    private func updatePriority(_ index: Int) {
        let priority = computedPriority(index)
        guard priority != instances[index].effectivePriority else { return }
        let oldDown = masterDownInterval(index)
        instances[index].effectivePriority = priority
        let newDown = masterDownInterval(index)
        if instances[index].state == .backup, let deadline = instances[index].deadline {
            // keepalived moves the running down timer by the change of Master_Down_Interval.
            instances[index].deadline = newDown >= oldDown ? deadline + (newDown - oldDown)
                : deadline - min(deadline, oldDown - newDown)
        }
    }

    // MARK: - Output

    func setState(_ index: Int, _ state: VRRPState, now: VRRPNanoseconds, _ actions: inout [VRRPAction]) {
        let from = instances[index].state
        guard from != state else { return }
        instances[index].state = state
        instances[index].transitions += 1
        instances[index].lastTransition = now
        actions.append(.stateChanged(instance: instances[index].settings.name, from: from, to: state,
                                     priority: instances[index].effectivePriority))
    }

    /// notify_master/backup/fault/stop, then `notify INSTANCE name STATE priority`, for the
    /// instance's state (or `state`: FAULT for an instance a reload deletes).
    func notify(_ index: Int, as state: VRRPState? = nil, _ actions: inout [VRRPAction]) {
        let instance = instances[index]
        let notify = instance.settings.notify
        let state = state ?? instance.state
        if let script = specificScript(notify, state) {
            actions.append(.runScript(command: script, arguments: []))
        }
        if let any = notify.any {
            actions.append(.runScript(command: any, arguments: ["INSTANCE", instance.settings.name,
                                                                 state.rawValue, String(instance.effectivePriority)]))
        }
    }

    func setGroupState(_ group: Int, _ state: VRRPState, _ actions: inout [VRRPAction]) {
        guard groups[group].state != state else { return }
        groups[group].state = state
        let notify = groups[group].settings.notify
        if let script = specificScript(notify, state) { actions.append(.runScript(command: script, arguments: [])) }
        if let any = notify.any {
            actions.append(.runScript(command: any, arguments: ["GROUP", groups[group].settings.name, state.rawValue, "0"]))
        }
    }

    private func specificScript(_ notify: VRRPNotify, _ state: VRRPState) -> VRRPScriptCommand? {
        switch state {
        case .master: return notify.master
        case .backup: return notify.backup
        case .fault: return notify.fault
        case .stopped: return notify.stop
        case .initial: return nil
        }
    }

    func isSyncDaemonInstance(_ index: Int) -> Bool {
        configuration.lvsSyncDaemon?.instance == instances[index].settings.name
    }

    /// The adverts' source: `unicast_src_ip` / `mcast_src_ip`, else the interface's primary
    /// address of the instance's family.
    private func sourceAddress(_ index: Int) -> IPAddress? {
        let settings = instances[index].settings
        if let configured = settings.sourceAddress { return configured }
        let interface = interfaces[settings.interface]
        return settings.isIPv6 ? interface?.ipv6LinkLocal : interface?.ipv4
    }

    /// -1, 0, 1: the sender's address against ours (the equal-priority tie-break).
    private func compare(_ address: IPAddress, with ours: IPAddress?) -> Int {
        guard let ours else { return 1 }
        return address < ours ? -1 : (address == ours ? 0 : 1)
    }

    private func advertisedAddresses(_ index: Int) -> [IPAddress] {
        let ipv6 = instances[index].settings.isIPv6
        return instances[index].settings.virtualAddresses.map(\.address).filter { $0.isIPv4 != ipv6 }
    }

    func ownedAddresses(_ index: Int) -> [VRRPAddress] {
        instances[index].settings.virtualAddresses + instances[index].settings.excludedAddresses
    }

    func sendAdvert(_ index: Int, priority: UInt8, _ actions: inout [VRRPAction]) {
        guard let source = sourceAddress(index) else { return }
        let instance = instances[index]
        let settings = instance.settings
        var message = VRRPAdvert.Message(version: instance.version, virtualRouterID: settings.virtualRouterID,
                                         priority: priority, intervalCentiseconds: instance.intervalCentiseconds,
                                         addresses: advertisedAddresses(index))
        if instance.version == 2, !settings.isIPv6, let password = settings.authPassword {
            message.authType = VRRPAdvert.authPassword
            message.authData = VRRPAdvert.authData(password: password)
        }
        let group = settings.multicastGroup ?? (settings.isIPv6 ? VRRPAdvert.ipv6Group : VRRPAdvert.ipv4Group)
        let destinations = settings.unicastPeers.isEmpty ? [group] : settings.unicastPeers
        for destination in destinations {
            actions.append(.send(instance: settings.name, interface: settings.interface, source: source,
                                 destination: destination,
                                 message: VRRPAdvert.encode(message, source: source, destination: destination)))
        }
        instances[index].advertsSent += 1
    }

    /// One burst of `count` announcements per owned address (or per address of `only` still
    /// owned), now; with vrrp_garp_interval / vrrp_gna_interval set, one round now and the
    /// others spaced by the interval.
    func announce(_ index: Int, count: Int, now: VRRPNanoseconds, only: [VRRPAddress]? = nil, _ actions: inout [VRRPAction]) {
        guard count > 0 else { return }
        let garp = instances[index].settings.gratuitous
        let owned = only.map { subset in ownedAddresses(index).filter { subset.contains($0) } } ?? ownedAddresses(index)
        for ipv6 in [false, true] {
            let addresses = owned.filter { !$0.address.isIPv4 == ipv6 }
            guard !addresses.isEmpty else { continue }
            let spacing = ipv6 ? garp.naInterval : garp.arpInterval
            if spacing == 0 || count == 1 {
                actions.append(.announce(instance: instances[index].settings.name, addresses: addresses, count: count))
                continue
            }
            actions.append(.announce(instance: instances[index].settings.name, addresses: addresses, count: 1))
            for round in 1..<count {
                instances[index].announcements.append(Announcement(at: now + VRRPNanoseconds(round) * spacing, ipv6: ipv6, count: 1,
                                                                   addresses: only))
            }
        }
    }

    /// garp_lower_prio_repeat announcements now, and again after garp_lower_prio_delay.
    private func lowerPriorityAnnouncements(_ index: Int, now: VRRPNanoseconds, _ actions: inout [VRRPAction]) {
        let garp = instances[index].settings.gratuitous
        let count = garp.lowerPriorityRepeat ?? garp.masterRepeat
        guard count > 0 else { return }
        announce(index, count: count, now: now, &actions)
        let delay = garp.lowerPriorityDelay ?? garp.masterDelay
        if delay > 0 { instances[index].announcements.append(Announcement(at: now + delay, ipv6: nil, count: count)) }
    }
}
