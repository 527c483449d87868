/// Who a notify or MISC_CHECK script runs as: a user's uid and a group's gid (its only group).
public struct ScriptIdentity: Sendable, Hashable, CustomStringConvertible {
    public var user: String
    public var uid: UInt32
    public var gid: UInt32

    public init(user: String, uid: UInt32, gid: UInt32) {
        self.user = user
        self.uid = uid
        self.gid = gid
    }

    public var description: String { "\(user) (uid:gid \(uid):\(gid))" }
}
