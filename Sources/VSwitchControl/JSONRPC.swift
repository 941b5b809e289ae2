import Foundation

/// JSON-RPC 2.0 framing: envelopes, ids, errors, and the coders both sides use.
public enum JSONRPC {
    public static func encoder(pretty: Bool = false) -> JSONEncoder {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return e
    }

    public static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }

    /// A request or response id: a number, a string, or null.
    public enum ID: Codable, Sendable, Equatable {
        case number(Int64), string(String), null
        public init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { self = .null }
            else if let n = try? c.decode(Int64.self) { self = .number(n) }
            else { self = .string(try c.decode(String.self)) }
        }
        public func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .number(let n): try c.encode(n)
            case .string(let s): try c.encode(s)
            case .null: try c.encodeNil()
            }
        }
    }

    public struct Request<Params: Encodable>: Encodable {
        public let jsonrpc = "2.0"
        public let id: ID
        public let method: String
        public let params: Params
        public init(id: ID, method: String, params: Params) { self.id = id; self.method = method; self.params = params }
    }

    /// The head of a request: enough to route it before its params are decoded.
    public struct RequestHead: Decodable, Sendable {
        public let jsonrpc: String
        public let id: ID?
        public let method: String
    }

    public struct ParamsOf<P: Decodable>: Decodable { public let params: P }

    public struct ErrorObject: Codable, Sendable, Error, Equatable, CustomStringConvertible {
        public var description: String { message }
        public var code: Int
        public var message: String
        public init(code: ControlErrorCode, message: String) { self.code = code.rawValue; self.message = message }
        public init(rawCode: Int, message: String) { self.code = rawCode; self.message = message }
    }

    public struct Response<Result: Encodable>: Encodable {
        public let jsonrpc = "2.0"
        public let id: ID
        public let result: Result
        public init(id: ID, result: Result) { self.id = id; self.result = result }
    }

    public struct ErrorResponse: Encodable {
        public let jsonrpc = "2.0"
        public let id: ID
        public let error: ErrorObject
        public init(id: ID, error: ErrorObject) { self.id = id; self.error = error }
    }

    /// A response as the client reads it: the result left raw until the caller picks its type.
    public struct RawResponse: Decodable {
        public let id: ID?
        public let error: ErrorObject?
        public let hasResult: Bool
        enum CodingKeys: String, CodingKey { case id, error, result }
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try c.decodeIfPresent(ID.self, forKey: .id)
            error = try c.decodeIfPresent(ErrorObject.self, forKey: .error)
            hasResult = c.contains(.result)
        }
    }

    public struct ResultOf<R: Decodable>: Decodable { public let result: R }

    /// One response line for `id` with `result`.
    public static func encodeResponse<R: Encodable>(id: ID, result: R) -> Data {
        (try? encoder().encode(Response(id: id, result: result))) ?? encodeError(id: id, .init(code: .internalError, message: "cannot encode result"))
    }

    public static func encodeError(id: ID, _ error: ErrorObject) -> Data {
        (try? encoder().encode(ErrorResponse(id: id, error: error))) ?? Data(#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error"}}"#.utf8)
    }
}
