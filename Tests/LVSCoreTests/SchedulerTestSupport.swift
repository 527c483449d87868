@testable import LVSCore
import LVSModel

/// A destination table and one service's list (newest first) for scheduler tests.
struct Pool {
    var table: [Destination] = []
    var order: [UInt32] = []
    var names: [String] = []

    init() {}

    /// Builds a list given in list order (first = newest), e.g. `[("A", 4), ("B", 3)]`;
    /// destination n (1-based, in insertion order) gets address 10.0.0.n.
    init(_ listOrder: [(String, Int32)]) {
        for (name, weight) in listOrder.reversed() { add(name, weight: weight) }
    }

    /// Inserts a destination at the head of the list, as `-a` does; returns its slot.
    @discardableResult
    mutating func add(_ name: String, address: String? = nil, port: UInt16 = 80, weight: Int32 = 1) -> UInt32 {
        let slot = UInt32(table.count)
        let a = IPAddress(address ?? "10.0.0.\(table.count + 1)")!
        table.append(Destination(options: DestinationOptions(address: a, port: port, weight: weight), serviceSlot: 0))
        names.append(name)
        order.insert(slot, at: 0)
        return slot
    }

    func slot(_ name: String) -> UInt32 { UInt32(names.firstIndex(of: name)!) }

    subscript(name: String) -> Destination {
        get { table[Int(slot(name))] }
        set { table[Int(slot(name))] = newValue }
    }

    /// Removes a destination from the list (its table slot stays, not available); returns the change.
    mutating func remove(_ name: String) -> DestinationChange {
        let s = slot(name)
        let i = order.firstIndex(of: s)!
        order.remove(at: i)
        table[Int(s)].available = false
        return .removed(slot: s, formerIndex: i)
    }

    /// Sets a destination's weight as `-e` does (keeping `lastWeight` when quiescing); returns the change.
    mutating func setWeight(_ name: String, _ w: Int32) -> DestinationChange {
        self[name].weight = w
        if w > 0 { self[name].lastWeight = w }
        return .edited(slot: slot(name))
    }

    func view<R>(_ body: (SchedulingDestinations) -> R) -> R {
        let storage = table.isEmpty ? [Destination(options: DestinationOptions(address: .zero, port: 0), serviceSlot: 0)] : table
        return order.withUnsafeBufferPointer { o in
            storage.withUnsafeBufferPointer { t in body(SchedulingDestinations(order: o, table: t.baseAddress!)) }
        }
    }

    /// Name of the destination at list index `i`.
    func name(at i: Int?) -> String? {
        i.map { names[Int(order[$0])] }
    }
}

func ctx(_ source: String = "192.168.1.50", port: UInt16 = 0, destination: String = "192.168.1.100",
             flags: ServiceFlags = [], now: UInt32 = 0, seed: UInt64 = 1) -> SchedulingContext {
    SchedulingContext(source: IPAddress(source)!, sourcePort: port, destination: IPAddress(destination)!,
                      flags: flags, nowSeconds: now, randomState: seed)
}

extension Scheduler {
    mutating func update(_ pool: Pool, _ change: DestinationChange = .initialized, flags: ServiceFlags = []) {
        pool.view { update($0, flags: flags, change: change) }
    }

    /// Schedules one connection; returns the chosen destination's name.
    mutating func pick(_ pool: Pool, _ c: inout SchedulingContext) -> String? {
        pool.name(at: pool.view { schedule($0, &c) })
    }

    mutating func pick(_ pool: Pool, _ c: SchedulingContext = ctx()) -> String? {
        var c = c
        return pick(pool, &c)
    }

    /// `n` picks as one string of names ("-" for no destination).
    mutating func sequence(_ pool: Pool, _ n: Int) -> String {
        var c = ctx()
        return (0..<n).map { _ in pick(pool, &c) ?? "-" }.joined()
    }
}

extension SchedulerInstance {
    mutating func update(_ pool: Pool, _ change: DestinationChange = .initialized, flags: ServiceFlags = []) {
        pool.view { update($0, flags: flags, change: change) }
    }

    mutating func pick(_ pool: Pool, _ c: SchedulingContext = ctx()) -> String? {
        var c = c
        return pool.name(at: pool.view { schedule($0, &c) })
    }
}
