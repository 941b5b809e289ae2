/// A lab file that cannot be used: where (file, line, field path) and why.
///
/// Prints as `FILE:LINE: FIELD: MESSAGE`, e.g.
/// `etc/labs/two-hosts.yaml:7: nodes.h1.links[0].addr: "198.18.0.300/24" is not an address with a prefix
/// length (like 198.18.0.1/24)`. `line` is 0 when the file could not be read; `field` is empty when the
/// problem is the file as a whole (then it prints as `FILE:LINE: MESSAGE`).
public struct LabFileError: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String
    /// 1-based; 0: not about a line (a missing or unreadable file).
    public var line: Int
    /// A path like `nodes.h1.links[0].addr`; empty for the whole file.
    public var field: String
    public var message: String

    public init(file: String, line: Int, field: String, message: String) {
        self.file = file; self.line = line; self.field = field; self.message = message
    }

    public var description: String {
        field.isEmpty ? "\(file):\(line): \(message)" : "\(file):\(line): \(field): \(message)"
    }
}
