// Base64 (RFC 4648 section 4, standard alphabet) for key text, through Foundation's codec.
// Keys are 32 bytes, 44 characters; nothing here is on the packet path.
import struct Foundation.Data

enum Base64 {
    /// `bytes` as padded base64 text.
    static func encode(_ bytes: some Collection<UInt8>) -> String { Data(bytes).base64EncodedString() }

    /// The bytes `text` encodes, or nil if it is not base64. Padding may be left out, but
    /// padding that is there must be right.
    static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        var s = String(decoding: text, as: UTF8.self)
        if let first = s.firstIndex(of: "=") {
            // Padding only at the end, at most two, completing a group of four.
            let padding = s[first...]
            guard padding.allSatisfy({ $0 == "=" }), padding.count <= 2, s.utf8.count % 4 == 0 else { return nil }
        } else {
            switch s.utf8.count % 4 {
            case 2: s += "=="
            case 3: s += "="
            default: break
            }
        }
        return Data(base64Encoded: s).map { [UInt8]($0) }
    }
}
