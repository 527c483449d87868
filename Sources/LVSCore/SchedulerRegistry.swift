import LVSModel

/// A service's scheduler, dispatched by `switch` rather than through an existential.
///
/// Mutation moves the payload out (leaving `.moving`) before calling the scheduler, so its
/// storage stays uniquely referenced and is never copied.
public enum SchedulerInstance {
    case rr(RoundRobinScheduler)
    case wrr(WeightedRoundRobinScheduler)
    case lc(LeastConnectionScheduler)
    case wlc(WeightedLeastConnectionScheduler)
    case lblc(LocalityBasedLeastConnectionScheduler)
    case lblcr(LocalityBasedLeastConnectionReplicationScheduler)
    case dh(DestinationHashingScheduler)
    case sh(SourceHashingScheduler)
    case sed(ShortestExpectedDelayScheduler)
    case nq(NeverQueueScheduler)
    case fo(WeightedFailoverScheduler)
    case ovf(WeightedOverflowScheduler)
    case mh(MaglevScheduler)
    case twos(PowerOfTwoChoicesScheduler)
    /// The `none` scheduler: new connections are never scheduled.
    case none
    /// Transient value used while a scheduler is mutated in place (avoids copy-on-write copies).
    case moving

    /// Every name `-s` accepts, in ipvsadm's order.
    public static let names: [String] = ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos", "none"]

    public init?(name: String) {
        switch name {
        case RoundRobinScheduler.name: self = .rr(RoundRobinScheduler())
        case WeightedRoundRobinScheduler.name: self = .wrr(WeightedRoundRobinScheduler())
        case LeastConnectionScheduler.name: self = .lc(LeastConnectionScheduler())
        case WeightedLeastConnectionScheduler.name: self = .wlc(WeightedLeastConnectionScheduler())
        case LocalityBasedLeastConnectionScheduler.name: self = .lblc(LocalityBasedLeastConnectionScheduler())
        case LocalityBasedLeastConnectionReplicationScheduler.name: self = .lblcr(LocalityBasedLeastConnectionReplicationScheduler())
        case DestinationHashingScheduler.name: self = .dh(DestinationHashingScheduler())
        case SourceHashingScheduler.name: self = .sh(SourceHashingScheduler())
        case ShortestExpectedDelayScheduler.name: self = .sed(ShortestExpectedDelayScheduler())
        case NeverQueueScheduler.name: self = .nq(NeverQueueScheduler())
        case WeightedFailoverScheduler.name: self = .fo(WeightedFailoverScheduler())
        case WeightedOverflowScheduler.name: self = .ovf(WeightedOverflowScheduler())
        case MaglevScheduler.name: self = .mh(MaglevScheduler())
        case PowerOfTwoChoicesScheduler.name: self = .twos(PowerOfTwoChoicesScheduler())
        case "none": self = .none
        default: return nil
        }
    }

    public var name: String {
        switch self {
        case .rr: return RoundRobinScheduler.name
        case .wrr: return WeightedRoundRobinScheduler.name
        case .lc: return LeastConnectionScheduler.name
        case .wlc: return WeightedLeastConnectionScheduler.name
        case .lblc: return LocalityBasedLeastConnectionScheduler.name
        case .lblcr: return LocalityBasedLeastConnectionReplicationScheduler.name
        case .dh: return DestinationHashingScheduler.name
        case .sh: return SourceHashingScheduler.name
        case .sed: return ShortestExpectedDelayScheduler.name
        case .nq: return NeverQueueScheduler.name
        case .fo: return WeightedFailoverScheduler.name
        case .ovf: return WeightedOverflowScheduler.name
        case .mh: return MaglevScheduler.name
        case .twos: return PowerOfTwoChoicesScheduler.name
        case .none, .moving: return "none"
        }
    }

    public mutating func update(_ d: SchedulingDestinations, flags: ServiceFlags, change: DestinationChange) {
        switch self {
        case var .rr(s): self = .moving; s.update(d, flags: flags, change: change); self = .rr(s)
        case var .wrr(s): self = .moving; s.update(d, flags: flags, change: change); self = .wrr(s)
        case var .lc(s): self = .moving; s.update(d, flags: flags, change: change); self = .lc(s)
        case var .wlc(s): self = .moving; s.update(d, flags: flags, change: change); self = .wlc(s)
        case var .lblc(s): self = .moving; s.update(d, flags: flags, change: change); self = .lblc(s)
        case var .lblcr(s): self = .moving; s.update(d, flags: flags, change: change); self = .lblcr(s)
        case var .dh(s): self = .moving; s.update(d, flags: flags, change: change); self = .dh(s)
        case var .sh(s): self = .moving; s.update(d, flags: flags, change: change); self = .sh(s)
        case var .sed(s): self = .moving; s.update(d, flags: flags, change: change); self = .sed(s)
        case var .nq(s): self = .moving; s.update(d, flags: flags, change: change); self = .nq(s)
        case var .fo(s): self = .moving; s.update(d, flags: flags, change: change); self = .fo(s)
        case var .ovf(s): self = .moving; s.update(d, flags: flags, change: change); self = .ovf(s)
        case var .mh(s): self = .moving; s.update(d, flags: flags, change: change); self = .mh(s)
        case var .twos(s): self = .moving; s.update(d, flags: flags, change: change); self = .twos(s)
        case .none, .moving: break
        }
    }

    public mutating func schedule(_ d: SchedulingDestinations, _ c: inout SchedulingContext) -> Int? {
        switch self {
        case var .rr(s): self = .moving; defer { self = .rr(s) }; return s.schedule(d, &c)
        case var .wrr(s): self = .moving; defer { self = .wrr(s) }; return s.schedule(d, &c)
        case var .lc(s): self = .moving; defer { self = .lc(s) }; return s.schedule(d, &c)
        case var .wlc(s): self = .moving; defer { self = .wlc(s) }; return s.schedule(d, &c)
        case var .lblc(s): self = .moving; defer { self = .lblc(s) }; return s.schedule(d, &c)
        case var .lblcr(s): self = .moving; defer { self = .lblcr(s) }; return s.schedule(d, &c)
        case var .dh(s): self = .moving; defer { self = .dh(s) }; return s.schedule(d, &c)
        case var .sh(s): self = .moving; defer { self = .sh(s) }; return s.schedule(d, &c)
        case var .sed(s): self = .moving; defer { self = .sed(s) }; return s.schedule(d, &c)
        case var .nq(s): self = .moving; defer { self = .nq(s) }; return s.schedule(d, &c)
        case var .fo(s): self = .moving; defer { self = .fo(s) }; return s.schedule(d, &c)
        case var .ovf(s): self = .moving; defer { self = .ovf(s) }; return s.schedule(d, &c)
        case var .mh(s): self = .moving; defer { self = .mh(s) }; return s.schedule(d, &c)
        case var .twos(s): self = .moving; defer { self = .twos(s) }; return s.schedule(d, &c)
        case .none, .moving: return nil
        }
    }

    public mutating func expire(nowSeconds: UInt32) {
        switch self {
        case var .rr(s): self = .moving; s.expire(nowSeconds: nowSeconds); self = .rr(s)
        case var .wrr(s): self = .moving; s.expire(nowSeconds: nowSeconds); self = .wrr(s)
        case var .lc(s): self = .moving; s.expire(nowSeconds: nowSeconds); self = .lc(s)
        case var .wlc(s): self = .moving; s.expire(nowSeconds: nowSeconds); self = .wlc(s)
        case var .lblc(s): self = .moving; s.expire(nowSeconds: nowSeconds); self = .lblc(s)
        case var .lblcr(s): self = .moving; s.expire(nowSeconds: nowSeconds); self = .lblcr(s)
        case var .dh(s): self = .moving; s.expire(nowSeconds: nowSeconds); self = .dh(s)
        case var .sh(s): self = .moving; s.expire(nowSeconds: nowSeconds); self = .sh(s)
        case var .sed(s): self = .moving; s.expire(nowSeconds: nowSeconds); self = .sed(s)
        case var .nq(s): self = .moving; s.expire(nowSeconds: nowSeconds); self = .nq(s)
        case var .fo(s): self = .moving; s.expire(nowSeconds: nowSeconds); self = .fo(s)
        case var .ovf(s): self = .moving; s.expire(nowSeconds: nowSeconds); self = .ovf(s)
        case var .mh(s): self = .moving; s.expire(nowSeconds: nowSeconds); self = .mh(s)
        case var .twos(s): self = .moving; s.expire(nowSeconds: nowSeconds); self = .twos(s)
        case .none, .moving: break
        }
    }
}
