import LVSModel

/// How a connection's packets reach its real server: the kernel's `IP_VS_CONN_F_FWD_MASK` bits of
/// a connection's flags, which it takes from its destination when it is bound (`ip_vs_bind_dest`).
/// DR is 0, so that DR's packet path needs no masking (`ConnectionEntry.destWord`); the kernel's
/// LocalNode is forwarded as DR here and stored as DR.
public enum ConnectionMethod: UInt32, Sendable {
    case directRoute = 0
    case tunnel = 1
    case masquerade = 2

    /// The method of a destination configured with `method`.
    @inlinable public init(_ method: ForwardMethod) {
        switch method {
        case .masquerade: self = .masquerade
        case .tunnel: self = .tunnel
        case .directRoute, .local: self = .directRoute
        }
    }

    /// The method of the destination whose forwarding word is `word` (`Engine.flagMasq`,
    /// `Engine.flagTunnel`).
    @inlinable @inline(__always) init(forwarding word: UInt64) {
        if word & Engine.flagMasq != 0 {
            self = .masquerade
        } else if word & Engine.flagTunnel != 0 {
            self = .tunnel
        } else {
            self = .directRoute
        }
    }

    /// The configured method this stands for (`ipvsadm`'s Forward column).
    public var forwardMethod: ForwardMethod {
        switch self {
        case .directRoute: return .directRoute
        case .tunnel: return .tunnel
        case .masquerade: return .masquerade
        }
    }
}
