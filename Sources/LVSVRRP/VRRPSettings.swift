import LVSModel

/// Time in this module: nanoseconds on a monotonic clock that the caller injects.
public typealias VRRPNanoseconds = UInt64

/// The state of a VRRP instance (keepalived's names; INIT is the state before the first decision).
public enum VRRPState: String, Sendable, Hashable, CaseIterable {
    case initial = "INIT"
    case backup = "BACKUP"
    case master = "MASTER"
    case fault = "FAULT"
    /// After `shutdown`: the instance has sent its priority-0 advert and does nothing more.
    case stopped = "STOP"
}

/// One address of `virtual_ipaddress` / `virtual_ipaddress_excluded`.
public struct VRRPAddress: Sendable, Hashable {
    public var address: IPAddress
    /// Prefix length; /32 or /128 when the config gives none.
    public var prefixLength: Int
    /// `dev`: the interface the address goes on (the instance's interface when nil).
    public var device: String?
    /// `label`: the IPv4 address label (`eth0:vip`).
    public var label: String?
    /// `brd`, `scope`: kept for `ip addr add`.
    public var broadcast: IPAddress?
    public var scope: String?
    public init(address: IPAddress, prefixLength: Int, device: String? = nil, label: String? = nil,
                broadcast: IPAddress? = nil, scope: String? = nil) {
        self.address = address; self.prefixLength = prefixLength; self.device = device; self.label = label
        self.broadcast = broadcast; self.scope = scope
    }
}

/// A notify script: the command line, and the user/group it runs as (nil: keepalived's
/// `script_user`, or root).
public struct VRRPScriptCommand: Sendable, Hashable {
    public var command: String
    public var user: String?
    public var group: String?
    public init(command: String, user: String? = nil, group: String? = nil) {
        self.command = command; self.user = user; self.group = group
    }
}

/// The notify scripts of an instance or a sync group.
public struct VRRPNotify: Sendable, Hashable {
    public var master: VRRPScriptCommand?
    public var backup: VRRPScriptCommand?
    public var fault: VRRPScriptCommand?
    public var stop: VRRPScriptCommand?
    /// `notify_deleted [SCRIPT]`: an instance removed by a reload is notified as DELETED (this
    /// script, and `notify` with DELETED). Without it keepalived 2.2.7 calls only `notify`, with
    /// FAULT, and not `notify_fault`.
    public var deleted: VRRPScriptCommand?
    public var notifyDeleted = false
    /// `notify`: called with `GROUP|INSTANCE name state priority` on every transition.
    public var any: VRRPScriptCommand?
    public var smtpAlert = false
    public init() {}
}

/// Gratuitous ARP / unsolicited NA timing (keepalived's `garp_*` and `vrrp_garp_*`).
public struct VRRPGratuitousSettings: Sendable, Hashable {
    /// Second burst this long after becoming MASTER (0: none). keepalived default 5 s.
    public var masterDelay: VRRPNanoseconds = 5_000_000_000
    /// Announcements per VIP in each burst. Default 5.
    public var masterRepeat = 5
    /// Repeat the announcements this often while MASTER (0: never). Default 0.
    public var masterRefresh: VRRPNanoseconds = 0
    /// Announcements per VIP at each refresh. Default 1.
    public var masterRefreshRepeat = 1
    /// After an advert with a lower priority is received while MASTER: delay and count
    /// (defaults: masterDelay, masterRepeat).
    public var lowerPriorityDelay: VRRPNanoseconds? = nil
    public var lowerPriorityRepeat: Int? = nil
    /// Spacing between announcements of one burst (`vrrp_garp_interval`, `vrrp_gna_interval`). Default 0.
    public var arpInterval: VRRPNanoseconds = 0
    public var naInterval: VRRPNanoseconds = 0
    public init() {}
}

/// A tracked interface or script, and the weight it adds to or takes from the priority
/// (nil: a failure puts the instance in FAULT).
public struct VRRPTrack: Sendable, Hashable {
    public var name: String
    public var weight: Int?
    /// `weight N reverse`: keepalived reverses the direction of the adjustment.
    public var reverse = false
    public init(name: String, weight: Int? = nil) { self.name = name; self.weight = weight }
}

/// `vrrp_script NAME { … }`.
public struct VRRPScriptSettings: Sendable, Hashable {
    public var name: String
    public var script: VRRPScriptCommand
    public var interval: VRRPNanoseconds = 1_000_000_000
    /// nil: the interval.
    public var timeout: VRRPNanoseconds? = nil
    /// Weight applied by instances that track the script without their own weight (0: FAULT on failure).
    public var weight = 0
    /// `weight … reverse`.
    public var weightReverse = false
    public var rise = 1
    public var fall = 1
    public init(name: String, script: VRRPScriptCommand) { self.name = name; self.script = script }
}

/// `vrrp_instance NAME { … }`, as keepalived 2.2.7 reads it (defaults applied by the parser).
public struct VRRPInstanceSettings: Sendable, Hashable {
    public var name: String
    /// 2 or 3.
    public var version: UInt8 = 2
    public var interface: String
    public var virtualRouterID: UInt8
    /// 1-255; 255 is the address owner.
    public var priority: UInt8 = 100
    /// `state MASTER` (true) or `BACKUP` (false).
    public var initialMaster = false
    /// `advert_int`, in centiseconds (v2: whole seconds × 100).
    public var advertIntervalCentiseconds: UInt16 = 100
    public var virtualAddresses: [VRRPAddress] = []
    public var excludedAddresses: [VRRPAddress] = []
    /// `authentication { auth_type PASS; auth_pass … }` (v2 only): the password, up to 8 bytes.
    public var authPassword: [UInt8]? = nil
    public var preempt = true
    public var preemptDelay: VRRPNanoseconds = 0
    /// `lower_prio_no_advert`: a MASTER that hears a lower-priority advert ignores it, as the
    /// RFCs say; by default it answers with an advert of its own (keepalived's default).
    public var lowerPriorityNoAdvert = false
    /// `higher_prio_send_advert`: a MASTER that hears a higher-priority advert sends one advert
    /// of its own before it becomes BACKUP.
    public var higherPrioritySendAdvert = false
    /// `down_timer_adverts`: 3 by default.
    public var downTimerAdverts = 3
    public var gratuitous = VRRPGratuitousSettings()
    /// `unicast_src_ip` / `mcast_src_ip`: the adverts' source (the interface's primary address when nil).
    public var sourceAddress: IPAddress? = nil
    /// `unicast_peer { … }`: adverts go to each peer instead of the multicast group.
    public var unicastPeers: [IPAddress] = []
    /// `mcast_dst_ip` (224.0.0.18 / ff02::12 when nil).
    public var multicastGroup: IPAddress? = nil
    public var trackInterfaces: [VRRPTrack] = []
    public var trackScripts: [VRRPTrack] = []
    public var notify = VRRPNotify()
    public init(name: String, interface: String, virtualRouterID: UInt8) {
        self.name = name; self.interface = interface; self.virtualRouterID = virtualRouterID
    }
    /// The address family of the adverts: the family of the first virtual address (IPv4 when none).
    public var isIPv6: Bool { virtualAddresses.first.map { !$0.address.isIPv4 } ?? false }
}

/// `vrrp_sync_group NAME { group { … } }`: instances that change state together.
public struct VRRPSyncGroupSettings: Sendable, Hashable {
    public var name: String
    public var members: [String]
    public var notify = VRRPNotify()
    public var trackInterfaces: [VRRPTrack] = []
    public var trackScripts: [VRRPTrack] = []
    public init(name: String, members: [String]) { self.name = name; self.members = members }
}

/// The global `lvs_sync_daemon IF INSTANCE [id N] [maxlen N] [port N] [ttl N] [group IP]`: the
/// IPVS sync daemon follows this instance (master daemon while MASTER, backup daemon otherwise).
public struct VRRPLVSSyncDaemon: Sendable, Hashable {
    public var interface: String
    /// Empty when the line names no instance: then both daemons run, as in keepalived.
    public var instance: String
    /// `id`; the instance's VRID when not given (0 without an instance).
    public var syncID: UInt8 = 0
    public var maxLength: Int? = nil
    public var port: UInt16? = nil
    public var ttl: UInt8? = nil
    public var group: IPAddress? = nil
    public init(interface: String, instance: String) { self.interface = interface; self.instance = instance }
}

/// Everything VRRP in one keepalived.conf.
public struct VRRPConfiguration: Sendable, Hashable {
    public var instances: [VRRPInstanceSettings] = []
    public var syncGroups: [VRRPSyncGroupSettings] = []
    public var scripts: [VRRPScriptSettings] = []
    public var lvsSyncDaemon: VRRPLVSSyncDaemon? = nil
    /// `vrrp_startup_delay`.
    public var startupDelay: VRRPNanoseconds = 0
    public init() {}
    public var isEmpty: Bool { instances.isEmpty }
}
