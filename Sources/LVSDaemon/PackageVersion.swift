/// swift-lvs's release version: `lvsd --version` prints it, and scripts/package.sh reads it from
/// this line for the Debian package's version (one place to change at a release).
public enum PackageVersion {
    public static let string = "0.16.0"
}
