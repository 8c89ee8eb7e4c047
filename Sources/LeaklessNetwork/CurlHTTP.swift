import Foundation
import CCurl
import CCurlShims

public struct HTTPRequest: Sendable {
    public var url: String
    public var method: String
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// Whole-request timeout in seconds.
    public var timeout: Double

    public init(url: String, method: String = "GET", headers: [(String, String)] = [], body: [UInt8] = [], timeout: Double = 60) {
        self.url = url
        self.method = method
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}

public struct HTTPResponse: Sendable {
    public let status: Int
    /// Header names in lower case.
    public let headers: [String: String]
    public let body: [UInt8]
    /// Times libcurl itself sent the request again on a fresh connection after a kept-alive one
    /// had died: sends the endpoint saw that no retry of ours counts.
    public var transparentRetries = 0
}

public struct TransportError: Error, CustomStringConvertible {
    public let code: Int
    public let message: String
    public var description: String { message }
    /// Timeouts and dropped connections: worth another try.
    public var isTransient: Bool {
        [CURLE_OPERATION_TIMEDOUT, CURLE_COULDNT_CONNECT, CURLE_GOT_NOTHING, CURLE_SEND_ERROR, CURLE_RECV_ERROR,
         CURLE_PARTIAL_FILE].map { Int($0.rawValue) }.contains(code)
    }
}

/// One blocking HTTP exchange over a libcurl easy handle. Every curl call of the project is in
/// this file.
public final class CurlHTTP {
    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    private let handle: UnsafeMutableRawPointer

    public init() throws {
        _ = CurlHTTP.globalInit
        guard let handle = curl_easy_init() else {
            throw TransportError(code: -1, message: "libcurl could not create a handle")
        }
        self.handle = handle
    }

    deinit { curl_easy_cleanup(handle) }

    private final class Exchange {
        var body: [UInt8] = []
        var headers: [String: String] = [:]
        var transparentRetries = 0
    }

    private func check(_ code: CURLcode) throws {
        guard code == CURLE_OK else {
            throw TransportError(code: Int(code.rawValue), message: String(cString: curl_easy_strerror(code)))
        }
    }

    public func perform(_ request: HTTPRequest) throws -> HTTPResponse {
        curl_easy_reset(handle)
        let exchange = Exchange()
        let context = Unmanaged.passUnretained(exchange).toOpaque()
        var headerList: UnsafeMutablePointer<curl_slist>? = nil
        defer { curl_slist_free_all(headerList) }
        for (name, value) in request.headers {
            headerList = curl_slist_append(headerList, "\(name): \(value)")
        }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE))
        let code: CURLcode = request.body.withUnsafeBufferPointer { body in
            errorBuffer.withUnsafeMutableBufferPointer { errors in
                do {
                    try check(leakless_curl_setopt_string(handle, CURLOPT_URL, request.url))
                    try check(leakless_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method))
                    try check(leakless_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
                    try check(leakless_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, Int(request.timeout * 1000)))
                    try check(leakless_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errors.baseAddress))
                    try check(leakless_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList))
                    if request.method != "GET" {
                        try check(leakless_curl_setopt_pointer(handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: body.baseAddress)))
                        try check(leakless_curl_setopt_off(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)))
                    }
                    try check(leakless_curl_setopt_callback(handle, CURLOPT_WRITEFUNCTION) { data, size, count, context in
                        let exchange = Unmanaged<Exchange>.fromOpaque(context!).takeUnretainedValue()
                        exchange.body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: size * count))
                        return size * count
                    })
                    try check(leakless_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, context))
                    try check(leakless_curl_setopt_callback(handle, CURLOPT_HEADERFUNCTION) { data, size, count, context in
                        let exchange = Unmanaged<Exchange>.fromOpaque(context!).takeUnretainedValue()
                        let line = String(decoding: UnsafeRawBufferPointer(start: data, count: size * count), as: UTF8.self)
                        if let colon = line.firstIndex(of: ":") {
                            let name = line[..<colon].lowercased()
                            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
                            exchange.headers[name] = value
                        } else if line.hasPrefix("HTTP/") {
                            exchange.headers.removeAll()  // a new response (after a redirect or 100-continue)
                        }
                        return size * count
                    })
                    try check(leakless_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, context))
                    // libcurl's own resend on a dead kept-alive connection shows only in its
                    // informational text ("Connection died, retrying a fresh connect").
                    try check(leakless_curl_setopt_long(handle, CURLOPT_VERBOSE, 1))
                    try check(leakless_curl_setopt_debug(handle) { _, type, data, size, context in
                        guard type == CURLINFO_TEXT, let data, let context else { return 0 }
                        let text = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
                        if text.contains("retrying a fresh connect") {
                            Unmanaged<Exchange>.fromOpaque(context).takeUnretainedValue().transparentRetries += 1
                        }
                        return 0
                    })
                    try check(leakless_curl_setopt_pointer(handle, CURLOPT_DEBUGDATA, context))
                } catch let error as TransportError {
                    return CURLcode(UInt32(error.code))
                } catch {
                    return CURLE_FAILED_INIT
                }
                return curl_easy_perform(handle)
            }
        }
        guard code == CURLE_OK else {
            let detail = String(messageBuffer: errorBuffer)
            let message = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
            throw TransportError(code: Int(code.rawValue), message: "\(request.method) \(CurlHTTP.redacted(request.url)): \(message)")
        }
        var status = 0
        try check(leakless_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status))
        var response = HTTPResponse(status: status, headers: exchange.headers, body: exchange.body)
        response.transparentRetries = exchange.transparentRetries
        return response
    }

    /// The URL without user information or query, for messages: credentials never reach a log.
    public static func redacted(_ url: String) -> String {
        var text = url
        if let query = text.firstIndex(of: "?") { text = String(text[..<query]) }
        if let scheme = text.range(of: "://"), let at = text[scheme.upperBound...].firstIndex(of: "@") {
            text = String(text[..<scheme.upperBound]) + String(text[text.index(after: at)...])
        }
        return text
    }
}
