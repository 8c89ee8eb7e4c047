/// One JSON object of the store. Its `id` is the content hash of its canonical JSON without the
/// `id` field; `parents` lists the ids of the records it was made from.
public struct Record: Hashable, Sendable {
    public private(set) var fields: [String: JSONValue]

    public init(_ fields: [String: JSONValue]) {
        var content = fields
        content.removeValue(forKey: "id")
        self.fields = content
    }

    public var id: String { ContentHash(ofJSON: .object(fields)).hex }

    public subscript(key: String) -> JSONValue? {
        get { fields[key] }
        set {
            precondition(key != "id", "a record's id is derived from its content")
            fields[key] = newValue
        }
    }

    public func string(_ key: String) -> String? { fields[key]?.stringValue }

    public var parents: [String] { fields["parents"]?.stringArray ?? [] }

    /// The record as it is written: its content plus its id.
    public var json: JSONValue {
        var withID = fields
        withID["id"] = .string(id)
        return .object(withID)
    }

    /// A new record derived from this one: its fields changed by `update`, its parent this record.
    public func derived(_ update: (inout [String: JSONValue]) -> Void) -> Record {
        var content = fields
        update(&content)
        content["parents"] = .array([.string(id)])
        return Record(content)
    }
}

public struct RecordError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension Record {
    /// Reads a record from a parsed line: it must be an object, and an `id` it carries must be the
    /// hash of its content (a hand-edited record whose id no longer matches is refused).
    public init(validating value: JSONValue) throws {
        guard case .object(let fields) = value else {
            throw RecordError("expected a JSON object, found \(value.typeName)")
        }
        self.init(fields)
        if let stated = fields["id"] {
            guard case .string(let statedID) = stated else {
                throw RecordError("field 'id' must be a string, found \(stated.typeName)")
            }
            if statedID != id {
                throw RecordError("id \(statedID) does not match the record's content (expected \(id))")
            }
        }
        if let parents = fields["parents"], parents.stringArray == nil {
            throw RecordError("field 'parents' must be an array of ids")
        }
    }
}
