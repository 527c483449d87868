/// Limits and kernel-sysctl equivalents of one engine.
public struct EngineConfiguration: Sendable {
    /// Maximum connection entries (connections + persistence templates). Default: 4 Mi.
    public var connectionCapacity: Int = 4 << 20
    /// Maximum destination slots (live + deleted-but-referenced).
    public var maxDestinations: Int = 65_536
    /// Maximum virtual services.
    public var maxServices: Int = 4096
    /// Answer ARP / neighbour solicitations for service VIPs.
    public var answerNeighbourRequests: Bool = true
    /// sysctl expire_nodest_conn.
    public var expireNodestConn: Bool = false
    /// sysctl expire_quiescent_template.
    public var expireQuiescentTemplate: Bool = false
    /// sysctl conn_reuse_mode (bit 0: reuse TIME_WAIT/CLOSE; bit 1: also FIN_WAIT for DR/TUN).
    public var connReuseMode: UInt8 = 1
    /// sysctl sloppy_tcp: any non-RST TCP packet may create a connection.
    public var sloppyTCP: Bool = false
    /// Seed for the connection hash and the random generator (twos).
    public var seed: UInt64 = 0x5EED_CAFE_F00D_0001
    /// The `size=` value shown in the listing header (kernel conn_tab_bits = 12).
    public var reportedTableSize: Int = 4096
    public init() {}
}

/// A data-plane interface as the engine needs it: MAC and addresses (for ARP/ND and neighbour requests).
public struct EngineInterface: Sendable {
    public var index: Int32
    public var name: String
    public var mac: MACAddress
    /// (address, prefix length) pairs, IPv4 and IPv6.
    public var addresses: [(IPAddress, Int)]
    public init(index: Int32, name: String, mac: MACAddress, addresses: [(IPAddress, Int)]) {
        self.index = index
        self.name = name
        self.mac = mac
        self.addresses = addresses
    }

    func contains(_ a: IPAddress) -> Bool {
        addresses.contains { net, prefix in
            net.isIPv4 == a.isIPv4 && net.masked(prefix: prefix) == a.masked(prefix: prefix)
        }
    }
}

/// A firewall-mark classification rule: what `iptables -t mangle ... -j MARK --set-mark` did.
public struct MarkRule: Sendable, Hashable, Codable {
    public var destination: IPAddress
    public var prefixLength: Int
    /// nil matches any protocol.
    public var proto: IPProtocolNumber?
    public var portLow: UInt16
    public var portHigh: UInt16
    public var mark: UInt32
    public init(destination: IPAddress, prefixLength: Int, proto: IPProtocolNumber?, portLow: UInt16 = 0,
                portHigh: UInt16 = 65535, mark: UInt32) {
        self.destination = destination
        self.prefixLength = prefixLength
        self.proto = proto
        self.portLow = portLow
        self.portHigh = portHigh
        self.mark = mark
    }

    func matches(_ f: ParsedFrame) -> Bool {
        guard destination.isIPv4 == f.destination.isIPv4,
              destination.masked(prefix: prefixLength) == f.destination.masked(prefix: prefixLength) else { return false }
        if let p = proto {
            guard p.rawValue == f.proto else { return false }
            guard f.hasPorts else { return portLow == 0 && portHigh == 65535 }
            return f.destinationPort >= portLow && f.destinationPort <= portHigh
        }
        return true
    }
}

/// Counters of the engine itself (not per service).
public struct EngineCounters: Sendable {
    public var drops = [UInt64](repeating: 0, count: DropReason.allCases.count)
    public var forwarded: UInt64 = 0
    public var passed: UInt64 = 0
    public var replies: UInt64 = 0
    public var newConnections: UInt64 = 0
    public init() {}
}

struct ServiceRecord {
    var key: ServiceKey
    var options: ServiceOptions
    var scheduler: SchedulerInstance
    /// Destination slots, newest first (the kernel's list order).
    var destinations: [UInt32]
    /// Deleted destinations still referenced by connections.
    var trash: [UInt32]
    var estimator = RateEstimator()
}

/// The IPVS director's decision logic: services, destinations, schedulers, connection table,
/// statistics, and the per-frame entry point `process`.
///
/// Single-threaded: one engine per worker thread (or one engine driven by one thread). Time is
/// injected (`now`, nanoseconds of a monotonic clock), so every behaviour is deterministic.
public final class Engine {
    public let configuration: EngineConfiguration
    public let table: ConnectionTable
    @usableFromInline let dests: UnsafeMutablePointer<Destination>
    @usableFromInline let destStats: UnsafeMutablePointer<StatsCounters>
    @usableFromInline let serviceStats: UnsafeMutablePointer<StatsCounters>
    var destEstimators: [RateEstimator]
    var destSlotsUsed = 0
    var freeDestSlots: [UInt32] = []
    var services: [ServiceRecord?] = []
    var serviceIndex: [ServiceKey: Int] = [:]
    var freeServiceSlots: [Int] = []
    /// Dest slots by address (neighbour learning).
    var destsByAddress: [IPAddress: [UInt32]] = [:]
    /// IPv4 and IPv6 VIPs of the services (answered for in ARP/ND).
    public private(set) var vips: Set<IPAddress> = []
    var markRules: [MarkRule] = []
    public private(set) var interfaces: [EngineInterface] = []
    public private(set) var timeouts = IPVSTimeouts()
    /// Timeouts in ticks: 11 TCP states, then UDP, SCTP.
    @usableFromInline let timeoutTicks: UnsafeMutablePointer<UInt32>
    public var counters = EngineCounters()
    var randomState: UInt64
    var lastEstimateTick: UInt32 = 0
    /// Tick of the frame being processed.
    @usableFromInline var currentTick: UInt32 = 0
    var lastHousekeepingTick: UInt32 = 0
    @usableFromInline var fragments: FragmentCache
    /// VIPs to announce with gratuitous ARP / unsolicited NA on the next tick.
    var pendingAnnouncements: [IPAddress] = []
    var neighbourRequested: [UInt32: UInt32] = [:]
    /// Destinations reported unreachable (logged once).
    public private(set) var unreachableLog: [String] = []

    /// One tick is 10 ms.
    public static let nanosecondsPerTick: UInt64 = 10_000_000
    public static let ticksPerSecond: UInt32 = 100

    public init(configuration: EngineConfiguration = EngineConfiguration()) {
        self.configuration = configuration
        table = ConnectionTable(capacity: configuration.connectionCapacity, seed: UInt32(truncatingIfNeeded: configuration.seed))
        dests = .allocate(capacity: configuration.maxDestinations)
        destStats = .allocate(capacity: configuration.maxDestinations)
        destStats.initialize(repeating: StatsCounters(), count: configuration.maxDestinations)
        serviceStats = .allocate(capacity: configuration.maxServices)
        serviceStats.initialize(repeating: StatsCounters(), count: configuration.maxServices)
        destEstimators = []
        timeoutTicks = .allocate(capacity: 16)
        timeoutTicks.initialize(repeating: 0, count: 16)
        randomState = configuration.seed
        fragments = FragmentCache()
        applyTimeouts()
    }

    deinit {
        dests.deinitialize(count: destSlotsUsed)
        dests.deallocate()
        destStats.deallocate()
        serviceStats.deallocate()
        timeoutTicks.deallocate()
        fragments.deallocate()
    }

    @inlinable static func tick(_ now: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: now / nanosecondsPerTick) }

    func applyTimeouts() {
        for (i, t) in TCPStateTable.defaultTimeouts.enumerated() { timeoutTicks[i] = t * Self.ticksPerSecond }
        timeoutTicks[Int(TCPState.established.rawValue)] = timeouts.tcp * Self.ticksPerSecond
        timeoutTicks[Int(TCPState.finWait.rawValue)] = timeouts.tcpFin * Self.ticksPerSecond
        timeoutTicks[Self.udpTimeoutIndex] = timeouts.udp * Self.ticksPerSecond
        timeoutTicks[Self.sctpTimeoutIndex] = timeouts.tcp * Self.ticksPerSecond
    }
    @usableFromInline static let udpTimeoutIndex = 11
    @usableFromInline static let sctpTimeoutIndex = 12

    // MARK: Interfaces and mark rules

    public func setInterfaces(_ list: [EngineInterface]) {
        interfaces = list
        for slot in 0..<destSlotsUsed where dests[slot].inUse { assignInterface(UInt32(slot)) }
    }

    public func setMarkRules(_ rules: [MarkRule]) { markRules = rules }
    public var currentMarkRules: [MarkRule] { markRules }

    func assignInterface(_ slot: UInt32) {
        let a = dests[Int(slot)].address
        let chosen = interfaces.first { $0.contains(a) } ?? interfaces.first
        if let i = chosen, dests[Int(slot)].interface != i.index {
            dests[Int(slot)].interface = i.index
            dests[Int(slot)].sourceMAC = i.mac
        }
    }

    // MARK: Services

    public func addService(_ key: ServiceKey, _ options: ServiceOptions) throws(IPVSError) {
        guard serviceIndex[key] == nil else { throw .serviceExists }
        try validate(key, options)
        guard let scheduler = SchedulerInstance(name: options.scheduler) else { throw .schedulerNotFound }
        let slot: Int
        if let s = freeServiceSlots.popLast() {
            slot = s
        } else {
            guard services.count < configuration.maxServices else { throw .noMemory }
            slot = services.count
            services.append(nil)
        }
        serviceStats[slot] = StatsCounters()
        services[slot] = ServiceRecord(key: key, options: options, scheduler: scheduler, destinations: [], trash: [])
        serviceIndex[key] = slot
        updateScheduler(slot, .initialized)
        refreshVIPs()
    }

    func validate(_ key: ServiceKey, _ options: ServiceOptions) throws(IPVSError) {
        if key.isIPv6 && (options.netmask < 1 || options.netmask > 128) { throw .invalid }
        if let pe = options.persistenceEngine, pe != "sip" { throw .schedulerNotFound }
    }

    public func editService(_ key: ServiceKey, _ options: ServiceOptions) throws(IPVSError) {
        guard let slot = serviceIndex[key] else { throw .noSuchService }
        try validate(key, options)
        guard let scheduler = SchedulerInstance(name: options.scheduler) else { throw .schedulerNotFound }
        let changed = services[slot]!.options.scheduler != options.scheduler
        services[slot]!.options = options
        if changed {
            services[slot]!.scheduler = scheduler
        }
        updateScheduler(slot, .initialized)
    }

    public func deleteService(_ key: ServiceKey) throws(IPVSError) {
        guard let slot = serviceIndex[key] else { throw .noSuchService }
        for d in services[slot]!.destinations + services[slot]!.trash { retireDestination(d) }
        services[slot] = nil
        serviceIndex[key] = nil
        freeServiceSlots.append(slot)
        refreshVIPs()
    }

    /// `-C`: delete every service.
    public func clear() {
        for key in Array(serviceIndex.keys) { try? deleteService(key) }
    }

    public func setTimeouts(_ t: IPVSTimeouts) throws(IPVSError) {
        let limit = UInt32(Int32.max) / 100
        guard t.tcp <= limit, t.tcpFin <= limit, t.udp <= limit else { throw .invalid }
        if t.tcp != 0 { timeouts.tcp = t.tcp }
        if t.tcpFin != 0 { timeouts.tcpFin = t.tcpFin }
        if t.udp != 0 { timeouts.udp = t.udp }
        applyTimeouts()
    }

    /// `-Z`: zero one service (and its destinations) or everything.
    public func zero(_ key: ServiceKey?) throws(IPVSError) {
        var slots: [Int]
        if let key {
            guard let s = serviceIndex[key] else { throw .noSuchService }
            slots = [s]
        } else {
            slots = services.indices.filter { services[$0] != nil }
        }
        for s in slots {
            serviceStats[s] = StatsCounters()
            services[s]!.estimator = RateEstimator()
            for d in services[s]!.destinations + services[s]!.trash {
                destStats[Int(d)] = StatsCounters()
                destEstimators[Int(d)] = RateEstimator()
            }
        }
    }

    func refreshVIPs() {
        var set = Set<IPAddress>()
        for case let s? in services where !s.key.isFwmark { set.insert(s.key.address) }
        for rule in markRules where rule.prefixLength == (rule.destination.isIPv4 ? 32 : 128) { set.insert(rule.destination) }
        let added = set.subtracting(vips)
        vips = set
        pendingAnnouncements.append(contentsOf: added.sorted())
    }

    // MARK: Destinations

    func findDestination(_ slot: Int, _ address: IPAddress, _ port: UInt16) -> Int? {
        services[slot]!.destinations.firstIndex { dests[Int($0)].address == address && dests[Int($0)].port == port }
    }

    func validateDestination(_ key: ServiceKey, _ o: DestinationOptions) throws(IPVSError) {
        guard o.weight >= 0 else { throw .outOfRange }
        if o.lowerThreshold > o.upperThreshold { throw .outOfRange }
        if o.upperThreshold > UInt32(Int32.max) { throw .invalid }
        if o.tunnelType == .gue && o.method == .tunnel && o.tunnelPort == 0 { throw .invalid }
        if o.address.isIPv4 != !key.isIPv6 && o.method != .tunnel { throw .invalid }
        let a = o.address
        if a.isIPv4 {
            let v = a.ipv4Value
            if v == 0 || v == 0xFFFF_FFFF || (v >> 28) == 0xE { throw .invalid }
        } else if a == .zero || (a.high >> 56) == 0xFF {
            throw .invalid
        }
    }

    public func addDestination(_ key: ServiceKey, _ o: DestinationOptions) throws(IPVSError) {
        guard let s = serviceIndex[key] else { throw .noSuchService }
        try validateDestination(key, o)
        guard findDestination(s, o.address, o.port) == nil else { throw .destinationExists }
        let slot: UInt32
        if let t = services[s]!.trash.firstIndex(where: { dests[Int($0)].address == o.address && dests[Int($0)].port == o.port }) {
            // Revive a deleted destination still referenced by connections (the kernel's trash).
            slot = services[s]!.trash.remove(at: t)
            let keep = dests[Int(slot)]
            dests[Int(slot)] = Destination(options: o, serviceSlot: UInt32(s))
            dests[Int(slot)].activeConns = keep.activeConns
            dests[Int(slot)].inactConns = keep.inactConns
            dests[Int(slot)].persistConns = keep.persistConns
            dests[Int(slot)].mac = keep.mac
            dests[Int(slot)].macKnown = keep.macKnown
        } else {
            if let f = freeDestSlots.popLast() {
                slot = f
                dests[Int(slot)] = Destination(options: o, serviceSlot: UInt32(s))
            } else {
                guard destSlotsUsed < configuration.maxDestinations else { throw .noMemory }
                slot = UInt32(destSlotsUsed)
                (dests + destSlotsUsed).initialize(to: Destination(options: o, serviceSlot: UInt32(s)))
                destSlotsUsed += 1
                destEstimators.append(RateEstimator())
            }
            destStats[Int(slot)] = StatsCounters()
            destEstimators[Int(slot)] = RateEstimator()
            destsByAddress[o.address, default: []].append(slot)
            learnFromExisting(slot)
        }
        assignInterface(slot)
        services[s]!.destinations.insert(slot, at: 0)
        updateScheduler(s, .added(slot: slot))
    }

    /// A new destination with an address already resolved for another service shares its MAC.
    func learnFromExisting(_ slot: UInt32) {
        for other in destsByAddress[dests[Int(slot)].address] ?? [] where other != slot && dests[Int(other)].macKnown {
            dests[Int(slot)].mac = dests[Int(other)].mac
            dests[Int(slot)].macKnown = true
            return
        }
    }

    public func editDestination(_ key: ServiceKey, _ o: DestinationOptions) throws(IPVSError) {
        guard let s = serviceIndex[key] else { throw .noSuchService }
        guard let i = findDestination(s, o.address, o.port) else { throw .noSuchDestination }
        try validateDestination(key, o)
        let slot = services[s]!.destinations[i]
        let oldUpper = dests[Int(slot)].upperThreshold
        dests[Int(slot)].method = o.method
        dests[Int(slot)].weight = o.weight
        if o.weight > 0 { dests[Int(slot)].lastWeight = o.weight }
        dests[Int(slot)].upperThreshold = o.upperThreshold
        dests[Int(slot)].lowerThreshold = o.lowerThreshold
        dests[Int(slot)].tunnelType = o.tunnelType
        dests[Int(slot)].tunnelPort = o.tunnelPort
        dests[Int(slot)].tunnelFlags = o.tunnelFlags
        if o.upperThreshold == 0 || o.upperThreshold > oldUpper { dests[Int(slot)].overloaded = false }
        updateScheduler(s, .edited(slot: slot))
    }

    public func deleteDestination(_ key: ServiceKey, address: IPAddress, port: UInt16) throws(IPVSError) {
        guard let s = serviceIndex[key] else { throw .noSuchService }
        guard let i = findDestination(s, address, port) else { throw .noSuchDestination }
        let slot = services[s]!.destinations.remove(at: i)
        updateScheduler(s, .removed(slot: slot, formerIndex: i))
        dests[Int(slot)].available = false
        if destReferences(slot) > 0 {
            services[s]!.trash.append(slot)
        } else {
            releaseDestSlot(slot)
        }
        if configuration.expireNodestConn { expireConnections(toDestination: slot) }
    }

    /// A destination of a deleted service: unavailable, freed once unreferenced.
    func retireDestination(_ slot: UInt32) {
        dests[Int(slot)].available = false
        dests[Int(slot)].serviceSlot = UInt32.max
        if destReferences(slot) == 0 { releaseDestSlot(slot) }
    }

    func destReferences(_ slot: UInt32) -> Int32 {
        let d = dests[Int(slot)]
        return d.activeConns + d.inactConns + d.persistConns
    }

    func releaseDestSlot(_ slot: UInt32) {
        guard dests[Int(slot)].inUse else { return }
        let a = dests[Int(slot)].address
        destsByAddress[a]?.removeAll { $0 == slot }
        if destsByAddress[a]?.isEmpty == true { destsByAddress[a] = nil }
        let svc = dests[Int(slot)].serviceSlot
        if svc != UInt32.max, Int(svc) < services.count { services[Int(svc)]?.trash.removeAll { $0 == slot } }
        dests[Int(slot)].inUse = false
        neighbourRequested[slot] = nil
        freeDestSlots.append(slot)
    }

    func expireConnections(toDestination slot: UInt32) {
        var victims: [UInt32] = []
        table.forEachLive { i, e in if e.dest == slot { victims.append(i) } }
        for v in victims { kill(v) }
    }

    func updateScheduler(_ s: Int, _ change: DestinationChange) {
        let order = services[s]!.destinations
        let flags = services[s]!.options.flags
        order.withUnsafeBufferPointer { buf in
            services[s]!.scheduler.update(SchedulingDestinations(order: buf, table: dests), flags: flags, change: change)
        }
    }
}
