import ArgumentParser
import Foundation
import Leakless
import LeaklessCore

public struct TaxonomyCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "taxonomy",
        abstract: "Check a taxonomy file, or list harmful elements for its new or short sub-categories.",
        subcommands: [TaxonomyCheckCommand.self, TaxonomyExpandCommand.self])

    public init() {}
}

public struct TaxonomyCheckCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Read a taxonomy file and report its first error with its line, or its counts.")

    @Argument(help: "The taxonomy file.")
    var file: String = "data/taxonomy.yaml"

    public init() {}

    public func run() throws {
        try reportingErrors {
            let taxonomy = try Taxonomy.load(path: file)
            let subs = taxonomy.categories.flatMap(\.subCategories)
            let empty = subs.filter { $0.elements.isEmpty }.map(\.name)
            print("\(file): \(taxonomy.categories.count) categories, \(subs.count) sub-categories, \(subs.reduce(0) { $0 + $1.elements.count }) elements"
                  + (empty.isEmpty ? "" : "; without elements: \(empty.joined(separator: ", ")) (leakless taxonomy expand lists them)"))
        }
    }
}

public struct TaxonomyExpandCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "expand",
        abstract: "List harmful elements (risky objects and scenarios, with the words that name them) for every sub-category with fewer than --min-elements, by a chat model or the builtin; deduplicate them against the elements there; write a new taxonomy file.")

    @Option(help: "The taxonomy file to read.")
    var taxonomy: String = "data/taxonomy.yaml"

    @Option(help: "Where to write the expanded taxonomy.")
    var output: String

    @Option(help: "A sub-category to add first: 'Category / Sub-category: one-line definition' (repeatable).")
    var add: [String] = []

    @Option(help: "Sub-categories with fewer elements than this get more.")
    var minElements: Int = 4

    @Option(help: "A chat backend of the pipeline file that lists the elements (default: the builtin, which lists what each definition names).")
    var backend: String?

    /// Its 'backends' name --backend; its workdir holds the request cache.
    @OptionGroup var pipelineOptions: PipelineOptions

    @Option(help: "The folder of the prompt templates.")
    var templates: String = "stages/extract"

    @Option(help: "The lexicon whose stop words the deduplication leaves out.")
    var lexicon: String = Lexicon.defaultPath

    public init() {}

    public func validate() throws {
        guard (1...50).contains(minElements) else { throw ValidationError("'--min-elements' must be from 1 to 50") }
    }

    public func run() throws {
        try reportingErrors {
            var read = try Taxonomy.load(path: taxonomy)
            read = try TaxonomyExpansion.adding(try add.map(TaxonomyExpansion.parseAddition), to: read)
            var chat: BackendConfig?
            var cache = FileSystem.join(NSTemporaryDirectory(), "leakless-taxonomy-\(getpid())")
            if let backend {
                let config = try pipelineOptions.config()
                chat = try chatBackend(backend, option: "backend", in: config)
                cache = FileSystem.join(config.workdirPath, "cache")
            }
            defer { if chat == nil { try? FileSystem.remove(cache) } }
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withFullDate]
            let outcome = try TaxonomyExpansion.expand(
                read, minimum: minElements, backend: chat, templates: projectFile(templates), cache: cache,
                work: FileSystem.join(cache, "taxonomy-expand"), stopStems: try Lexicon.load(path: projectFile(lexicon)).stopStems,
                date: formatter.string(from: Date()))
            try AtomicFile.write(outcome.yaml, to: output)
            for line in outcome.report { print(line) }
            print("written: \(output)")
        }
    }
}
