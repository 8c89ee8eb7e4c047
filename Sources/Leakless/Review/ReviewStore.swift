import Foundation
import LeaklessCore
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One reviewer's decision on one pair, as the review store keeps it: a record named by the hash
/// of its content.
public struct ReviewDecision: Sendable, Equatable {
    public enum Action: String, Sendable, CaseIterable {
        /// The pair is fit to publish as it is.
        case accept
        /// The pair is left out, for `reason`.
        case reject
        /// The pair is fit to publish with `query` in place of its query (the original is kept).
        case edit
        /// Takes back the reviewer's decision `undoes`.
        case undo
    }

    public var pair: String
    public var reviewer: String
    public var action: Action
    public var reason: String = ""
    /// The edited query (edit only).
    public var query: String = ""
    /// The pair's query when the decision was made (edit only).
    public var originalQuery: String = ""
    /// The id of the decision taken back (undo only).
    public var undoes: String = ""
    /// When, in ISO 8601 UTC.
    public var time: String
    /// Where the decision was made: `app` or `label-studio`.
    public var via: String = "app"

    public init(pair: String, reviewer: String, action: Action, reason: String = "", query: String = "", originalQuery: String = "",
                undoes: String = "", time: String = ReviewDecision.now(), via: String = "app") {
        self.pair = pair
        self.reviewer = reviewer
        self.action = action
        self.reason = reason
        self.query = query
        self.originalQuery = originalQuery
        self.undoes = undoes
        self.time = time
        self.via = via
    }

    /// The fields without the id.
    private var content: [String: JSONValue] {
        var fields: [String: JSONValue] = [
            "kind": "review_decision", "pair": .string(pair), "reviewer": .string(reviewer),
            "decision": .string(action.rawValue), "time": .string(time), "via": .string(via),
        ]
        if !reason.isEmpty { fields["reason"] = .string(reason) }
        if action == .edit {
            fields["query"] = .string(query)
            fields["original_query"] = .string(originalQuery)
        }
        if action == .undo { fields["undoes"] = .string(undoes) }
        return fields
    }

    public var id: String { ContentHash(ofJSON: .object(content)).hex }

    public var json: JSONValue {
        var fields = content
        fields["id"] = .string(id)
        return .object(fields)
    }

    /// Whether the decision counts as an acceptance (an edit accepts the edited pair).
    public var accepts: Bool { action == .accept || action == .edit }

    /// A reviewer's name as it may be stored: 1 to 64 letters, digits, spaces, `.`, `_`, `-` or `@`.
    public static func checkReviewer(_ name: String) throws {
        let allowed = name.allSatisfy { $0.isLetter || $0.isNumber || " ._-@".contains($0) }
        guard !name.trimmingCharacters(in: .whitespaces).isEmpty, name.count <= 64, allowed else {
            throw RecordError("a reviewer's name must be 1 to 64 letters, digits, spaces or . _ - @, found '\(name)'")
        }
    }

    public init(json: JSONValue) throws {
        guard case .object(let fields) = json else { throw RecordError("a decision must be a JSON object, found \(json.typeName)") }
        func string(_ key: String, required: Bool = true) throws -> String {
            guard let value = fields[key] else {
                if required { throw RecordError("missing field '\(key)'") }
                return ""
            }
            guard let text = value.stringValue else { throw RecordError("field '\(key)' must be a string, found \(value.typeName)") }
            return text
        }
        guard try string("kind") == "review_decision" else { throw RecordError("field 'kind' must be 'review_decision'") }
        let decision = try string("decision")
        guard let action = Action(rawValue: decision) else {
            throw RecordError("field 'decision' must be one of \(Action.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")), found '\(decision)'")
        }
        self.init(pair: try string("pair"), reviewer: try string("reviewer"), action: action, reason: try string("reason", required: false),
                  query: try string("query", required: action == .edit), originalQuery: try string("original_query", required: action == .edit),
                  undoes: try string("undoes", required: action == .undo), time: try string("time"), via: try string("via", required: false))
        try Self.checkReviewer(reviewer)
        if action == .edit && query.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw RecordError("an edit needs a non-empty 'query'")
        }
        if let stored = fields["id"]?.stringValue, stored != id {
            throw RecordError("field 'id' is \(stored), but the decision's content hashes to \(id): the line was changed by hand")
        }
    }

    public static func now() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }
}

/// The review store of a workdir: `review/decisions.jsonl`, one decision per line, only ever
/// appended. Each append takes an exclusive lock, writes whole lines in one call and syncs them
/// before it returns, so a decision acknowledged is on disk, a killed server loses nothing that
/// was acknowledged, and reviewers writing at once never overwrite each other. A line cut short by
/// a crash (no newline) was never acknowledged: readers skip it and the next append removes it.
public struct ReviewStore: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    public init(workdir: String) { self.init(path: Self.path(workdir: workdir)) }

    /// Where in a workdir the decisions are kept.
    public static let relativePath = "review/decisions.jsonl"

    public static func path(workdir: String) -> String { FileSystem.join(workdir, relativePath) }

    @discardableResult
    public func append(_ decisions: [ReviewDecision]) throws -> [ReviewDecision] {
        guard !decisions.isEmpty else { return [] }
        try FileSystem.createDirectory(FileSystem.parent(of: path))
        let descriptor = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw failure("cannot open") }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX) == 0 else { throw failure("cannot lock") }
        defer { flock(descriptor, LOCK_UN) }
        try dropTornTail(descriptor)
        let bytes = Array(decisions.map { JSONWriter.canonical($0.json) + "\n" }.joined().utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                throw failure("cannot append")
            }
            offset += written
        }
        guard fsync(descriptor) == 0 else { throw failure("cannot sync") }
        return decisions
    }

    /// Cuts a last line with no newline (a write a crash interrupted) before appending.
    private func dropTornTail(_ descriptor: Int32) throws {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw failure("cannot stat") }
        let size = Int(info.st_size)
        guard size > 0 else { return }
        var last: UInt8 = 0
        guard pread(descriptor, &last, 1, off_t(size - 1)) == 1 else { throw failure("cannot read") }
        guard last != UInt8(ascii: "\n") else { return }
        let bytes = try FileSystem.read(path)
        let keep = bytes.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0
        guard ftruncate(descriptor, off_t(keep)) == 0 else { throw failure("cannot repair the cut last line of") }
    }

    private func failure(_ what: String) -> LocatedError {
        LocatedError(path: path, line: nil, message: "\(what) the review store: \(String(cString: strerror(errno)))")
    }

    /// Every complete decision, in the order appended (none when the store does not exist), of
    /// the first `limit` bytes when given. A line that is not a decision is an error naming it.
    public func load(bytes limit: Int? = nil) throws -> (decisions: [ReviewDecision], tornTail: Bool) {
        guard FileSystem.exists(path) else { return ([], false) }
        var bytes = try FileSystem.read(path)
        if let limit, limit < bytes.count { bytes.removeSubrange(limit...) }
        var decisions: [ReviewDecision] = []
        var lineNumber = 0
        var start = bytes.startIndex
        while start < bytes.endIndex {
            guard let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) else { return (decisions, true) }
            lineNumber += 1
            let line = bytes[start..<end]
            start = end + 1
            if LineReader.isBlank(line) { continue }
            do {
                decisions.append(try ReviewDecision(json: try JSONParser.parse(bytes: Array(line))))
            } catch let error as RecordError {
                throw LocatedError(path: path, line: lineNumber, message: error.description)
            } catch {
                throw LocatedError(path: path, line: lineNumber, message: "not JSON: \(error)")
            }
        }
        return (decisions, false)
    }
}
