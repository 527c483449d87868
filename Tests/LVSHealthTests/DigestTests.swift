import Testing
@testable import LVSHealth

/// HTTP_GET's body digest comes from OpenSSL's EVP MD5: the test suite of RFC 1321 (appendix A.5).
@Suite struct DigestTests {
    @Test func md5MatchesRFC1321TestSuite() {
        let vectors: [(String, String)] = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"),
            (String(repeating: "1234567890", count: 8), "57edf4a22be3c955ac49da2e2107b67a"),
        ]
        for (text, digest) in vectors {
            #expect(MD5.hex(Array(text.utf8)) == digest, "MD5(\"\(text)\")")
        }
    }

    @Test func md5OfALargeBodyCrossesManyBlocks() {
        // One million 'a' (a common extra vector beside RFC 1321's).
        #expect(MD5.hex([UInt8](repeating: 0x61, count: 1_000_000)) == "7707d6ae4e027c70eea2a935c2296f21")
    }
}
