import Foundation
import FlyingFox
import Leakless
import LeaklessCore

typealias JSONValue = LeaklessCore.JSONValue

/// The review app on 127.0.0.1: the page, the pairs, their images, and the decisions API over a
/// `ReviewSession`. Nothing is loaded from elsewhere (no scripts, fonts or styles from a CDN).
public final class ReviewServer: Sendable {
    public let session: ReviewSession
    let server: HTTPServer
    let defaultReviewer: String

    public init(session: ReviewSession, port: UInt16, reviewer: String) throws {
        self.session = session
        defaultReviewer = reviewer
        server = HTTPServer(address: try .inet(ip4: "127.0.0.1", port: port), timeout: 30, logger: .disabled)
    }

    /// Serves until the task is cancelled or `stop()` is called.
    public func run() async throws {
        await addRoutes()
        try await server.run()
    }

    /// The port it listens on, once listening (the one asked for, or the one the system gave for 0).
    public func listeningPort() async throws -> Int {
        try await server.waitUntilListening(timeout: 10)
        guard case .ip4(_, let port) = await server.listeningAddress else { throw ReviewSession.RequestError(description: "the review server is not listening") }
        return Int(port)
    }

    public func stop() async { await server.stop(timeout: 1) }

    private func addRoutes() async {
        let session = self.session
        let reviewer = defaultReviewer
        await server.appendRoute("GET /") { _ in
            Self.respond(200, Array(ReviewPage.html(reviewer: reviewer, pipeline: session.pipelinePath).utf8), type: "text/html; charset=utf-8")
        }
        await server.appendRoute("GET /api/pairs") { _ in
            Self.json(200, ["pairs": session.pairsJSON, "reasons": JSONValue(ReviewSession.reasons), "pipeline": .string(session.pipelinePath)])
        }
        await server.appendRoute("GET /api/state") { request in
            let name = request.query.first { $0.name == "reviewer" }?.value ?? reviewer
            return Self.handle { try session.stateJSON(reviewer: name) }
        }
        await server.appendRoute("POST /api/decide") { request in
            let body = try await request.bodyData
            return Self.handle { try session.decide(try Self.parse(body)) }
        }
        await server.appendRoute("POST /api/undo") { request in
            let body = try await request.bodyData
            return Self.handle { try session.undo(try Self.parse(body)) }
        }
        await server.appendRoute("GET /image/*") { request in
            let name = String(request.path.dropFirst("/image/".count))
            guard let image = try? session.image(named: name) else { return Self.respond(404, Array("no such image\n".utf8), type: "text/plain") }
            return Self.respond(200, image.bytes, type: image.contentType, cache: "max-age=86400, immutable")
        }
    }

    static func parse(_ body: Data) throws -> JSONValue {
        do { return try JSONParser.parse(bytes: Array(body)) } catch {
            throw ReviewSession.RequestError(description: "the request body is not JSON: \(error)")
        }
    }

    /// A JSON answer, or the error as `{"error": ...}`: 400 for a bad request, 500 for a store
    /// that cannot be read or written (the app shows it and keeps the decision unsaved).
    static func handle(_ body: () throws -> JSONValue) -> HTTPResponse {
        do {
            return json(200, try body())
        } catch let error as ReviewSession.RequestError {
            return json(400, ["error": .string(error.description)])
        } catch {
            return json(500, ["error": .string("\(error)")])
        }
    }

    static func json(_ status: Int, _ value: JSONValue) -> HTTPResponse {
        respond(status, Array(JSONWriter.canonical(value).utf8), type: "application/json")
    }

    static func respond(_ status: Int, _ body: [UInt8], type: String, cache: String = "no-store") -> HTTPResponse {
        let code: HTTPStatusCode = switch status {
        case 200: .ok
        case 400: .badRequest
        case 404: .notFound
        default: .internalServerError
        }
        return HTTPResponse(statusCode: code, headers: [.contentType: type, .cacheControl: cache], body: Data(body))
    }
}
