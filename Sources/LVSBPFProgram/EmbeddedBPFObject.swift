import Foundation

/// lvsd's BPF object (`bpf/lvs_xdp.c`: the XDP program of the afxdp/xdp data planes and the tc
/// program), compiled by clang during `swift build` (BPFObjectPlugin) and carried in the binary.
public enum EmbeddedBPFObject {
    /// The ELF object's bytes, decoded once.
    public static let bytes: [UInt8] = {
        guard let data = Data(base64Encoded: base64), data.count == size else {
            fatalError("the embedded BPF object does not decode (\(name)): rebuild with swift build")
        }
        return [UInt8](data)
    }()

    /// How logs and `lvsadm daemon status` name it.
    public static var description: String { "\(name) built into lvsd (\(size) bytes)" }
}
