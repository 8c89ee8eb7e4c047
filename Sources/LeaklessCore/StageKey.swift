import Foundation
/// The key of a stage run: the hash of everything that determines its output (as DVC keys a
/// stage by its command, dependencies and parameters). Same key, same output: the driver skips a
/// stage whose output under this key exists.
public struct StageKey: Sendable {
    public let hash: ContentHash
    /// What was hashed, kept in the run manifest so a changed key can be explained.
    public let description: JSONValue

    /// - Parameters:
    ///   - templates: the folder of the stage's templates and schema (`stages/<stage>/`); every
    ///     file's bytes count.
    ///   - inputName: the previous stage's output file name (itself a key), or nil for a stage
    ///     that reads a data file named by a parameter.
    public init(stage: StageConfig, pipeline: PipelineConfig, templates: String, inputName: String?) throws {
        var parameters: [String: JSONValue] = [:]
        for parameter in stage.definition.parameters {
            let value = stage.parameters[parameter.name] ?? parameter.defaultValue
            if case .collectionList = parameter.type, let paths = value.stringArray {
                parameters[parameter.name] = .array(try paths.map { .string(try Self.hashListing($0, stage: stage, pipeline: pipeline, parameter: parameter)) })
            } else if parameter.type.isPath, case .string(let path) = value {
                // The bytes decide, not where they live.
                if case .optionalPath = parameter.type, !FileSystem.exists(pipeline.locate(path)) {
                    parameters[parameter.name] = "absent"
                } else if case .collection = parameter.type {
                    parameters[parameter.name] = path.isEmpty ? "none" : .string(try Self.hashListing(path, stage: stage, pipeline: pipeline, parameter: parameter))
                } else {
                    parameters[parameter.name] = .string(try Self.hashPath(path, stage: stage, pipeline: pipeline, parameter: parameter.name))
                }
            } else {
                parameters[parameter.name] = value
            }
        }
        var templateHashes: [String: JSONValue] = [:]
        if FileSystem.isDirectory(templates) {
            for file in try FileSystem.files(under: templates) {
                templateHashes[file] = .string(ContentHash(of: try FileSystem.read(FileSystem.join(templates, file))).hex)
            }
        }
        var description: JSONValue = .object([
            "stage": .string(stage.name),
            "version": .int(Int64(stage.definition.version)),
            "parameters": .object(parameters),
            "templates": .object(templateHashes),
            "backends": .object(stage.backends.mapValues(\.identity)),
            "input": inputName.map(JSONValue.string) ?? .null,
        ])
        // A workdir log the stage reads (the review decisions) changes what it writes: the key
        // covers the log's complete lines.
        for need in stage.definition.needs {
            guard case .workdirLog(let name, let path, let applies) = need, applies(stage.parameters), case .object(var fields) = description else { continue }
            if let log = try AppendOnlyLog.contentKey(path: FileSystem.join(pipeline.workdirPath, path)) {
                fields[name] = .object(["hash": .string(log.hash), "bytes": .int(Int64(log.bytes))])
            } else {
                fields[name] = "absent"
            }
            description = .object(fields)
        }
        self.description = description
        self.hash = ContentHash(ofJSON: description)
    }

    /// A collection's files by name, size and modification time: thousands of installed files
    /// are not read on every plan, and not even listed again while none of its folders changed
    /// (see FileHashCache.listingHash).
    private static func hashListing(_ path: String, stage: StageConfig, pipeline: PipelineConfig, parameter: StageParameter) throws -> String {
        let located = pipeline.locate(path)
        guard FileSystem.isDirectory(located) else {
            throw LocatedError(path: pipeline.path, line: stage.line, message: "stage '\(stage.name)': '\(parameter.name)' names \(path), which is not a folder (looked in \(pipeline.searched(path))); it is \(parameter.help)")
        }
        do {
            return try FileHashCache.shared.listingHash(of: located) {
                let listing = try FileSystem.listing(under: located).map { "\($0.path)\t\($0.size)\t\($0.modified)" }
                return ContentHash(ofString: listing.sorted().joined(separator: "\n")).hex
            }
        } catch {
            throw LocatedError(path: pipeline.path, line: stage.line, message: "stage '\(stage.name)': cannot list \(located)")
        }
    }

    private static func hashPath(_ path: String, stage: StageConfig, pipeline: PipelineConfig, parameter: String) throws -> String {
        let located = pipeline.locate(path)
        guard FileSystem.exists(located) else {
            throw LocatedError(path: pipeline.path, line: stage.line, message: "stage '\(stage.name)': '\(parameter)' names \(path), which does not exist (looked in \(pipeline.searched(path)))")
        }
        return try FileSystem.contentHash(of: located).hex
    }
}

/// Where a stage run's files live in the store, all named by its key.
public struct StageFiles: Sendable {
    public let stage: String
    public let key: ContentHash
    public let folder: String

    public init(stage: String, key: ContentHash, storeFolder: String) {
        self.stage = stage
        self.key = key
        self.folder = storeFolder
    }

    public var baseName: String { "\(stage)-\(key.hex)" }
    public var output: String { FileSystem.join(folder, "\(baseName).jsonl") }
    public var outputFolder: String { FileSystem.join(folder, baseName) }
    public var rejects: String { FileSystem.join(folder, "\(baseName).rejects.jsonl") }
    /// Written last: its presence marks the run complete.
    public var stats: String { FileSystem.join(folder, "\(baseName).stats.json") }
    /// What a model stage spent in its last process, until the driver books it in the ledger.
    public var spent: String { FileSystem.join(folder, "\(baseName).spent.json") }
    /// What the stage executable was given (StageRunRequest).
    public var request: String { FileSystem.join(folder, "\(baseName).request.json") }
}
