import Foundation
import XCTest

@testable import Leakless
@testable import LeaklessCore
@testable import LeaklessMockServer
@testable import LeaklessModels
@testable import LeaklessNetwork

final class ModelClientTests: XCTestCase {
    func client(_ server: MockServer, _ overrides: [String: JSONValue] = [:], cache: String? = nil) throws -> (ChatClient, ModelSession) {
        let backend = testBackend(.openAIChat, baseURL: server.baseURL + "/v1", overrides)
        let session = try ModelSession(backends: [backend], cache: cache ?? (try temporaryFolder(self)), budget: Budget())
        return (session.chat(backend), session)
    }

    func testStructuredRepliesProseReaskAndRefusal() throws {
        let server = try scriptedServer(self) { _, marker, count in
            switch marker {
            case "good": return chatAnswer(#"{"answer": "yes"}"#)
            case "prose": return chatAnswer("Sure! Here it is:\n```json\n{\"answer\": \"fenced\"}\n```\nAnything else?")
            case "reask": return chatAnswer(count == 0 ? "{answer: broken" : #"{"answer": "fixed"}"#)
            case "never": return chatAnswer(#"{"wrong": 1}"#)
            case "refuse": return chatAnswer("I'm sorry, but I can't help with that request.")
            case "field": return chatAnswer("", refusal: "I can't assist with that.")
            default: return chatAnswer("?")
            }
        }
        let template = try testTemplate(self)
        let (chat, session) = try client(server, ["max_reasks": 2])
        let http = session.http(0)

        guard case .value(let good, _, 1) = try chat.structured(template, values: ["task": "[[good]]"], http: http) else { return XCTFail("good") }
        XCTAssertEqual(good["answer"], "yes")
        guard case .value(let fenced, _, 1) = try chat.structured(template, values: ["task": "[[prose]]"], http: http) else { return XCTFail("prose") }
        XCTAssertEqual(fenced["answer"], "fenced")

        guard case .value(let fixed, _, let attempts) = try chat.structured(template, values: ["task": "[[reask]]"], http: http) else { return XCTFail("reask") }
        XCTAssertEqual(fixed["answer"], "fixed")
        XCTAssertEqual(attempts, 2)
        // The re-ask carries the broken reply and what was wrong with it.
        let reask = server.requests.last!.json!["messages"]!.arrayValue!
        XCTAssertEqual(reask.count, 4)
        XCTAssertEqual(reask[2]["content"], "{answer: broken")
        XCTAssertTrue(MockModel.lastUserText(reask).contains("the reply is not valid JSON"), MockModel.lastUserText(reask))

        guard case .invalid(let raw, let problem, 3, false) = try chat.structured(template, values: ["task": "[[never]]"], http: http) else { return XCTFail("never") }
        XCTAssertEqual(raw, #"{"wrong": 1}"#)
        XCTAssertTrue(problem.contains("missing required field 'answer'"), problem)

        guard case .refusal(let text, _) = try chat.structured(template, values: ["task": "[[refuse]]"], http: http) else { return XCTFail("refuse") }
        XCTAssertTrue(text.hasPrefix("I'm sorry"))
        guard case .refusal(let field, _) = try chat.structured(template, values: ["task": "[[field]]"], http: http) else { return XCTFail("field") }
        XCTAssertEqual(field, "I can't assist with that.")

        XCTAssertEqual(session.meter["reasks"], 3)
        XCTAssertEqual(session.meter["refusals"], 2)
        XCTAssertEqual(session.meter["invalid_replies"], 1)
        // The reply schema went out as json_schema.
        XCTAssertEqual(server.requests[0].json?["response_format"]?["type"], "json_schema")
    }

    func testTolerantJSONExtraction() {
        XCTAssertEqual(StructuredReply.extractJSON(#"The result: {"a": "}"} and more"#)?["a"], "}")
        XCTAssertEqual(StructuredReply.extractJSON("```\n[1, 2]\n```")?.arrayValue?.count, 2)
        XCTAssertNil(StructuredReply.extractJSON("no json here {"))
        XCTAssertTrue(StructuredReply.looksLikeRefusal("I’m sorry, I cannot do that."))
        XCTAssertFalse(StructuredReply.looksLikeRefusal("Here is the plan."))
    }

    func testRetriesOn429With500TimeoutAndDroppedConnection() throws {
        let server = try scriptedServer(self) { _, marker, count in
            switch (marker, count) {
            case ("429", 0): return .json(["error": ["message": "Rate limit reached"]], status: 429, headers: [("Retry-After", "1")])
            case ("500", 0): return .json(["error": ["message": "internal"]], status: 500)
            case ("slow", 0): return chatAnswer(#"{"answer": "late"}"#, delay: 1.5)
            case ("drop", 0): return .drop(delay: 0)
            default: return chatAnswer(#"{"answer": "ok"}"#)
            }
        }
        let (chat, session) = try client(server, ["timeout": 0.5, "max_retries": 3])
        let http = session.http(0)
        let messages = { (marker: String) in [ChatMessage(role: "user", text: "[[\(marker)]]")] }

        let started = Date()
        XCTAssertEqual(try chat.complete(messages("429"), http: http).text, #"{"answer": "ok"}"#)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.95, "Retry-After: 1 was honoured")
        _ = try chat.complete(messages("500"), http: http)
        _ = try chat.complete(messages("slow"), http: http)
        let counters = chat.endpoint.counters
        // On a fresh connection (curl itself retries a request whose reused connection was closed).
        let (fresh, freshSession) = try client(server, ["timeout": 0.5, "max_retries": 3])
        _ = try fresh.complete(messages("drop"), http: freshSession.http(0))
        XCTAssertEqual(fresh.endpoint.counters["dropped_connections"], 1)
        XCTAssertEqual(fresh.endpoint.counters["retries"], 1)

        XCTAssertEqual(counters["http_429"], 1)
        XCTAssertEqual(counters["http_5xx"], 1)
        XCTAssertEqual(counters["timeouts"], 1)
        XCTAssertEqual(counters["retries"], 3)
        XCTAssertEqual(counters["http_requests"], 6)
        XCTAssertEqual(server.requests.count, 8)
    }

    func testRetriesGiveUpAfterMaxRetries() throws {
        let server = try scriptedServer(self) { _, _, _ in .json(["error": ["message": "overloaded"]], status: 503) }
        let (chat, session) = try client(server, ["max_retries": 2])
        XCTAssertThrowsError(try chat.complete([ChatMessage(role: "user", text: "x")], http: session.http(0))) { error in
            XCTAssertTrue("\(error)".contains("failed 3 times"), "\(error)")
            XCTAssertTrue("\(error)".contains("503: overloaded"), "\(error)")
        }
        XCTAssertEqual(server.requests.count, 3)
    }

    func testBadKeyFailsAtOnceAndTheKeyIsNowhere() throws {
        let secret = "sk-test-SECRET-4d1e9"
        let server = try MockServer { request in
            if request.headers["authorization"] != "Bearer right-key" {
                // A careless server that echoes the key it was given.
                let given = request.headers["authorization"] ?? ""
                return .json(["error": ["message": .string("Incorrect API key provided: \(given)")]], status: 401)
            }
            return chatAnswer("ok")
        }
        addTeardownBlock { server.stop() }
        let cache = try temporaryFolder(self)
        let backend = testBackend(.openAIChat, baseURL: server.baseURL + "/v1", ["api_key_env": "LEAKLESS_TEST_KEY"])
        let session = try ModelSession(backends: [backend], cache: cache, budget: Budget(), environment: ["LEAKLESS_TEST_KEY": secret])
        let chat = session.chat(backend)
        XCTAssertThrowsError(try chat.complete([ChatMessage(role: "user", text: "hello")], http: session.http(0))) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("answered 401: Incorrect API key provided"), message)
            XCTAssertFalse(message.contains(secret), message)
        }
        XCTAssertEqual(server.requests.count, 1, "a 401 is not retried")
        XCTAssertEqual(server.requests[0].headers["authorization"], "Bearer \(secret)")
        XCTAssertThrowsError(try ModelSession(backends: [backend], cache: cache, budget: Budget(), environment: [:])) { error in
            XCTAssertTrue("\(error)".contains("LEAKLESS_TEST_KEY, which is not set"))
        }
    }

    func testCacheAnswersARepeatedRequestAndCountsTokens() throws {
        let server = try scriptedServer(self) { _, _, _ in chatAnswer(#"{"answer": "cached"}"#) }
        let cache = try temporaryFolder(self)
        let (first, firstSession) = try client(server, cache: cache)
        let messages = [ChatMessage(role: "user", text: "same question")]
        let reply = try first.complete(messages, http: firstSession.http(0))
        XCTAssertFalse(reply.cached)
        XCTAssertGreaterThan(reply.promptTokens, 0)
        XCTAssertEqual(firstSession.meter["prompt_tokens"], reply.promptTokens)
        XCTAssertEqual(firstSession.meter["completion_tokens"], reply.completionTokens)
        XCTAssertEqual(firstSession.meter["cache_misses"], 1)

        // A new process (a new session) with the same cache sends nothing.
        let (second, secondSession) = try client(server, cache: cache)
        let again = try second.complete(messages, http: secondSession.http(0))
        XCTAssertTrue(again.cached)
        XCTAssertEqual(again.text, reply.text)
        XCTAssertEqual(server.requests.count, 1)
        XCTAssertEqual(secondSession.meter["cache_hits"], 1)
        XCTAssertEqual(secondSession.meter["prompt_tokens"], 0)

        // A changed parameter is a different request.
        let (warmer, warmerSession) = try client(server, ["temperature": 0.7], cache: cache)
        _ = try warmer.complete(messages, http: warmerSession.http(0))
        XCTAssertEqual(server.requests.count, 2)
    }

    func testJSONModeFallsBackWhenTheEndpointRefusesResponseFormat() throws {
        let server = try scriptedServer(self) { request, _, _ in
            if request.json?["response_format"]?["type"] == "json_schema" {
                return .json(["error": ["message": "response_format json_schema is not supported by this model"]], status: 400)
            }
            return chatAnswer(#"{"answer": "plain"}"#)
        }
        let (chat, session) = try client(server)
        guard case .value(let value, _, _) = try chat.structured(try testTemplate(self), values: ["task": "x"], http: session.http(0)) else {
            return XCTFail("no value")
        }
        XCTAssertEqual(value["answer"], "plain")
        XCTAssertEqual(chat.currentMode, .jsonObject)
        XCTAssertEqual(server.requests.map { $0.json?["response_format"]?["type"]?.stringValue ?? "" }, ["json_schema", "json_object"])
    }

    func testImagesSentAsDataURLsAndKeyedByHash() throws {
        let server = try scriptedServer(self) { _, _, _ in chatAnswer("seen") }
        let (chat, session) = try client(server)
        let png = try FileSystem.read(fixture("small.png"))
        let message = ChatMessage(role: "user", text: "what is this", images: [ImageAttachment(bytes: png, mimeType: "image/png")])
        _ = try chat.complete([message], http: session.http(0))
        let parts = server.requests[0].json!["messages"]!.arrayValue![0]["content"]!.arrayValue!
        XCTAssertEqual(parts[1]["type"], "image_url")
        XCTAssertTrue(parts[1]["image_url"]!["url"]!.stringValue!.hasPrefix("data:image/png;base64,iVBOR"))
        XCTAssertEqual(message.keyed["images"], [.string(ContentHash(of: png).hex)])
    }

    func testRateLimiterSpacesRequests() {
        // 600 per minute is 10 per second, with a burst of ten seconds' worth (100).
        let limiter = RateLimiter(requestsPerMinute: 600, tokensPerMinute: 0)
        let started = Date()
        for _ in 0..<105 { XCTAssertTrue(limiter.acquire(tokens: 1)) }
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.35)
        XCTAssertEqual(RetryPolicy.retryAfter(["retry-after": "7"]), 7)
        XCTAssertEqual(RetryPolicy.retryAfter(["retry-after-ms": "250"]), 0.25)
        let delay = RetryPolicy(maxRetries: 5, baseSeconds: 1).delay(attempt: 3, retryAfter: nil)
        XCTAssertTrue((4...8).contains(delay), "\(delay)")
    }

    /// A worker held by the rate limit shows in the progress line, with until when.
    func testWaitingOnTheRateLimitIsVisible() throws {
        let limiter = RateLimiter(requestsPerMinute: 6, tokensPerMinute: 0)
        let endpoint = Endpoint(baseURL: "http://127.0.0.1:9/v1", apiKey: nil, timeout: 1, policy: RetryPolicy(maxRetries: 0, baseSeconds: 0),
                                limiter: limiter, maxInFlight: 1)
        XCTAssertNil(endpoint.waiting)
        XCTAssertTrue(limiter.acquire(tokens: 0))
        XCTAssertFalse(limiter.acquire(tokens: 0, cancelled: { true }), "the bucket is empty: the caller would wait")
        let waiting = try XCTUnwrap(endpoint.waiting)
        XCTAssertTrue(waiting.hasPrefix("waiting on the rate limit (rpm/tpm) until "), waiting)
    }
}
