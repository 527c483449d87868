/// A service's scheduler, dispatched by `switch` rather than through an existential.
public enum SchedulerInstance {
    case rr(RoundRobinScheduler)
    /// The `none` scheduler: new connections are never scheduled.
    case none
    /// Transient value used while a scheduler is mutated in place (avoids copy-on-write copies).
    case moving

    /// Every name `-s` accepts.
    public static let names: [String] = ["rr", "none"]

    public init?(name: String) {
        switch name {
        case RoundRobinScheduler.name: self = .rr(RoundRobinScheduler())
        case "none": self = .none
        default: return nil
        }
    }

    public var name: String {
        switch self {
        case .rr: return RoundRobinScheduler.name
        case .none, .moving: return "none"
        }
    }

    public mutating func update(_ d: SchedulingDestinations, flags: ServiceFlags, change: DestinationChange) {
        switch self {
        case var .rr(s): self = .moving; s.update(d, flags: flags, change: change); self = .rr(s)
        case .none, .moving: break
        }
    }

    public mutating func schedule(_ d: SchedulingDestinations, _ c: inout SchedulingContext) -> Int? {
        switch self {
        case var .rr(s): self = .moving; defer { self = .rr(s) }; return s.schedule(d, &c)
        case .none, .moving: return nil
        }
    }

    public mutating func expire(nowSeconds: UInt32) {
        switch self {
        case var .rr(s): self = .moving; s.expire(nowSeconds: nowSeconds); self = .rr(s)
        case .none, .moving: break
        }
    }
}
