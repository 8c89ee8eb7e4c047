import Foundation
import Synchronization
import LeaklessCore

#if canImport(Glibc)
    import Glibc
#endif

/// One request as the server read it.
public struct MockRequest: Sendable {
    public let method: String
    public let path: String
    /// Header names in lower case.
    public let headers: [String: String]
    public let body: [UInt8]

    public var json: JSONValue? { try? JSONParser.parse(bytes: body) }
    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// What the server does with a request.
public enum MockAction: Sendable {
    /// Answer after `delay` seconds.
    case reply(status: Int, headers: [(String, String)], body: [UInt8], delay: Double)
    /// Close the connection without answering, after `delay` seconds.
    case drop(delay: Double)

    public static func json(_ value: JSONValue, status: Int = 200, headers: [(String, String)] = [], delay: Double = 0) -> MockAction {
        .reply(status: status, headers: [("Content-Type", "application/json")] + headers,
               body: Array(JSONWriter.canonical(value).utf8), delay: delay)
    }
}

/// An HTTP/1.1 server on 127.0.0.1 for tests and benchmarks: a thread per connection,
/// keep-alive, Content-Length bodies, and a handler that decides each answer. It keeps a log of
/// every request it read.
public final class MockServer: Sendable {
    public let port: Int
    private let listener: Int32
    private let handler: @Sendable (MockRequest) -> MockAction
    private struct State {
        var log: [MockRequest] = []
        var stopped = false
        var connections = Set<Int32>()
    }
    private let state = Mutex(State())

    public init(port: Int = 0, handler: @escaping @Sendable (MockRequest) -> MockAction) throws {
        self.handler = handler
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw RecordError("cannot open a socket") }
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 512) == 0 else {
            close(listener)
            throw RecordError("cannot listen on 127.0.0.1:\(port)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.listener = listener
        self.port = Int(UInt16(bigEndian: actual.sin_port))
        _ = WorkerPool(workers: 1) { [self] _ in self.acceptLoop() }
    }

    deinit { stop() }

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    public var requests: [MockRequest] { state.withLock { $0.log } }

    public func clearLog() { state.withLock { $0.log.removeAll() } }

    public func stop() {
        let (wasStopped, open) = state.withLock { state -> (Bool, Set<Int32>) in
            defer { state.stopped = true }
            return (state.stopped, state.connections)
        }
        guard !wasStopped else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for connection in open { shutdown(connection, Int32(SHUT_RDWR)) }
    }

    private func acceptLoop() {
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if state.withLock({ $0.stopped }) { return }
                continue
            }
            var yes: Int32 = 1
            setsockopt(connection, Int32(IPPROTO_TCP), TCP_NODELAY, &yes, socklen_t(MemoryLayout<Int32>.size))
            state.withLock { _ = $0.connections.insert(connection) }
            _ = WorkerPool(workers: 1, stackSize: 1 << 20) { [self] _ in
                self.serve(connection)
                self.state.withLock { _ = $0.connections.remove(connection) }
                close(connection)
            }
        }
    }

    private func serve(_ connection: Int32) {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            // Read the head.
            var headEnd: Int?
            while headEnd == nil {
                if let end = Self.find([13, 10, 13, 10], in: buffer) {
                    headEnd = end
                    break
                }
                let count = read(connection, &chunk, chunk.count)
                if count <= 0 { return }
                buffer.append(contentsOf: chunk[0..<count])
            }
            let head = String(decoding: buffer[0..<headEnd!], as: UTF8.self)
            var lines = head.components(separatedBy: "\r\n")
            let requestLine = lines.removeFirst().split(separator: " ")
            guard requestLine.count >= 2 else { return }
            var headers: [String: String] = [:]
            for line in lines {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            let length = Int(headers["content-length"] ?? "0") ?? 0
            let bodyStart = headEnd! + 4
            while buffer.count < bodyStart + length {
                let count = read(connection, &chunk, chunk.count)
                if count <= 0 { return }
                buffer.append(contentsOf: chunk[0..<count])
            }
            let request = MockRequest(
                method: String(requestLine[0]), path: String(requestLine[1]), headers: headers,
                body: Array(buffer[bodyStart..<(bodyStart + length)]))
            buffer.removeFirst(bodyStart + length)
            state.withLock { $0.log.append(request) }

            switch handler(request) {
            case .drop(let delay):
                if delay > 0 { Thread.sleep(forTimeInterval: delay) }
                return
            case .reply(let status, let extra, let body, let delay):
                if delay > 0 { Thread.sleep(forTimeInterval: delay) }
                var response = "HTTP/1.1 \(status) \(Self.reason(status))\r\nContent-Length: \(body.count)\r\n"
                for (name, value) in extra { response += "\(name): \(value)\r\n" }
                response += "\r\n"
                let bytes = Array(response.utf8) + body
                var sent = 0
                while sent < bytes.count {
                    let count = bytes[sent...].withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    if count <= 0 { return }
                    sent += count
                }
            }
        }
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if Array(haystack[start..<(start + needle.count)]) == needle { return start }
        }
        return nil
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 404: return "Not Found"
        case 429: return "Too Many Requests"
        case 500: return "Internal Server Error"
        case 503: return "Service Unavailable"
        default: return "Status"
        }
    }
}
