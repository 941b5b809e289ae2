import Foundation
import VSwitchControl

extension SwitchService {
    /// Answers one JSON-RPC request line with one response line (without the newline).
    /// Malformed JSON, a bad envelope, an unknown method or wrong params get an error reply;
    /// nothing a client sends can stop the daemon.
    public func handle(_ line: Data) -> Data {
        let decoder = JSONRPC.decoder()
        guard (try? JSONSerialization.jsonObject(with: line)) != nil else {
            return JSONRPC.encodeError(id: .null, .init(code: .parseError, message: "parse error: the request is not valid JSON"))
        }
        let head: JSONRPC.RequestHead
        do { head = try decoder.decode(JSONRPC.RequestHead.self, from: line) } catch {
            return JSONRPC.encodeError(id: .null, .init(code: .invalidRequest, message: "invalid request: expected an object with jsonrpc \"2.0\", id, method and params"))
        }
        let id = head.id ?? .null
        guard head.jsonrpc == "2.0" else {
            return JSONRPC.encodeError(id: id, .init(code: .invalidRequest, message: "invalid request: jsonrpc must be \"2.0\""))
        }
        guard let method = ControlMethod(rawValue: head.method) else {
            return JSONRPC.encodeError(id: id, .init(code: .methodNotFound, message: "unknown method \(head.method)"))
        }
        func params<P: Decodable>(_ type: P.Type) throws -> P {
            do { return try decoder.decode(JSONRPC.ParamsOf<P>.self, from: line).params } catch {
                throw JSONRPC.ErrorObject(code: .invalidParams, message: "invalid params for \(method.rawValue): \(Self.describe(error))")
            }
        }
        do {
            switch method {
            case .addBridge: return JSONRPC.encodeResponse(id: id, result: try addBridge(params(BridgeParams.self)))
            case .deleteBridge: return JSONRPC.encodeResponse(id: id, result: try deleteBridge(params(BridgeParams.self)))
            case .listBridges: return JSONRPC.encodeResponse(id: id, result: listBridges())
            case .addPort: return JSONRPC.encodeResponse(id: id, result: try addPort(params(AddPortParams.self)))
            case .deletePort: return JSONRPC.encodeResponse(id: id, result: try deletePort(params(PortParams.self)))
            case .listPorts: return JSONRPC.encodeResponse(id: id, result: try listPorts(params(BridgeParams.self)))
            case .show: return JSONRPC.encodeResponse(id: id, result: show())
            case .fdbShow: return JSONRPC.encodeResponse(id: id, result: try fdbShow(params(BridgeParams.self)))
            case .fdbFlush: return JSONRPC.encodeResponse(id: id, result: try fdbFlush(params(PortParams.self)))
            case .fdbAdd: return JSONRPC.encodeResponse(id: id, result: try fdbAdd(params(FDBEntryParams.self)))
            case .fdbDelete: return JSONRPC.encodeResponse(id: id, result: try fdbDelete(params(FDBEntryParams.self)))
            case .stats: return JSONRPC.encodeResponse(id: id, result: try stats(params(PortParams.self)))
            case .set: return JSONRPC.encodeResponse(id: id, result: try set(params(SetParams.self)))
            case .setPort: return JSONRPC.encodeResponse(id: id, result: try setPort(params(SetPortParams.self)))
            case .captureStart: return JSONRPC.encodeResponse(id: id, result: try captureStart(params(PortParams.self)))
            case .captureRead: return JSONRPC.encodeResponse(id: id, result: try captureRead(params(CaptureParams.self)))
            case .captureStop: return JSONRPC.encodeResponse(id: id, result: try captureStop(params(CaptureParams.self)))
            case .bridgeNIC: return JSONRPC.encodeResponse(id: id, result: try bridgeNIC(params(BridgeNICParams.self)))
            case .unbridgeNIC: return JSONRPC.encodeResponse(id: id, result: try unbridgeNIC(params(BridgeNICParams.self)))
            case .stpShow: return JSONRPC.encodeResponse(id: id, result: try stpShow(params(BridgeParams.self)))
            }
        } catch let e as JSONRPC.ErrorObject {
            return JSONRPC.encodeError(id: id, e)
        } catch {
            return JSONRPC.encodeError(id: id, .init(code: .failed, message: "\(error)"))
        }
    }

    static func describe(_ error: Error) -> String {
        func path(_ c: DecodingError.Context) -> String {
            let p = c.codingPath.filter { $0.stringValue != "params" }.map(\.stringValue).joined(separator: ".")
            return p.isEmpty ? "params" : p
        }
        switch error {
        case DecodingError.keyNotFound(let key, let c):
            let p = path(c)
            return "missing \(p == "params" ? "" : p + ".")\(key.stringValue)"
        case DecodingError.typeMismatch(let type, let c): return "\(path(c)) must be \(typeName(type))"
        case DecodingError.valueNotFound(let type, let c): return "\(path(c)) must be \(typeName(type)), not null"
        case DecodingError.dataCorrupted(let c): return "\(path(c)): \(c.debugDescription)"
        default: return "\(error)"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is UInt64.Type: "an integer"
        case is Bool.Type: "a boolean"
        default: "an object"
        }
    }
}
