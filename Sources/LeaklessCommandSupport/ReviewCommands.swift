import ArgumentParser
import Dispatch
import Foundation
import Synchronization
import Leakless
import LeaklessCore
import LeaklessReview

#if canImport(Glibc)
    import Glibc
#endif

/// `leakless review`: people accept, reject or fix the pairs before they are published.
public struct ReviewCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "review",
        abstract: "Review the pairs the export reads: a local web app, Label Studio interchange, agreement.",
        subcommands: [ReviewServeCommand.self, ReviewExportCommand.self, ReviewImportCommand.self, ReviewStatusCommand.self],
        defaultSubcommand: ReviewServeCommand.self)

    public init() {}
}

func defaultReviewer() -> String {
    let name = ProcessInfo.processInfo.environment["USER"] ?? ""
    return (try? ReviewDecision.checkReviewer(name)) != nil ? name : "reviewer"
}

func reviewSession(_ options: PipelineOptions) throws -> ReviewSession {
    let driver = try options.driver()
    return try ReviewSession(pipeline: driver.pipeline)
}

public struct ReviewServeCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the review app on 127.0.0.1 until interrupted (keys: a accept, r reject, e edit, u undo, j/k move).")

    @OptionGroup var options: PipelineOptions
    @Option(help: "Your name, recorded with each decision (the page's ?reviewer= overrides it).")
    var reviewer: String = defaultReviewer()
    @Option(help: "The port (0: any free one).")
    var port: Int = 8765

    public init() {}

    public func run() throws {
        try reportingErrors {
            try ReviewDecision.checkReviewer(reviewer)
            guard (0...65535).contains(port) else { throw ValidationError("--port must be 0 to 65535, found \(port)") }
            let session = try reviewSession(options)
            let server = try ReviewServer(session: session, port: UInt16(port), reviewer: reviewer)
            let done = DispatchSemaphore(value: 0)
            let listening = DispatchSemaphore(value: 0)
            let portBox = PortBox()
            let task = Task {
                do { try await server.run() } catch is CancellationError {} catch {
                    if portBox.port == nil {
                        // It never listened (the port is taken): the waiting command reports it.
                        portBox.fail("\(error)".contains("Address already in use") ? "the port is in use (another review server?); choose another with --port" : "\(error)")
                        listening.signal()
                    } else {
                        FileHandleOutput.standardError("leakless: the review server stopped: \(error)\n")
                    }
                }
                done.signal()
            }
            Task {
                do { portBox.set(try await server.listeningPort()) } catch { portBox.fail("\(error)") }
                listening.signal()
            }
            listening.wait()
            guard let bound = portBox.port else {
                task.cancel()
                throw ValidationError("cannot listen on 127.0.0.1:\(port): \(portBox.error ?? "unknown error")")
            }
            let store = session.store.path
            print("review app: http://127.0.0.1:\(bound)/?reviewer=\(reviewer.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? reviewer)")
            print("\(session.count) pairs from \(session.pairsFile); decisions go to \(store); Ctrl-C stops")
            fflush(nil)
            // Stop cleanly on Ctrl-C or a termination signal: every acknowledged decision is already on disk.
            signal(SIGINT, SIG_IGN)
            signal(SIGTERM, SIG_IGN)
            let sources = [SIGINT, SIGTERM].map { number -> DispatchSourceSignal in
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { task.cancel() }
                source.resume()
                return source
            }
            done.wait()
            withExtendedLifetime(sources) {}
        }
    }
}

/// The port the server got, handed from its task to the waiting command.
final class PortBox: Sendable {
    private let state = Mutex<(port: Int?, error: String?)>((nil, nil))
    var port: Int? { state.withLock { $0.port } }
    var error: String? { state.withLock { $0.error } }
    func set(_ port: Int) { state.withLock { $0.port = port } }
    /// The first failure is the one reported.
    func fail(_ error: String) { state.withLock { if $0.error == nil { $0.error = error } } }
}

public struct ReviewExportCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the pairs under review as Label Studio tasks (tasks.json) with its labeling config (label-config.xml).")

    enum Format: String, ExpressibleByArgument { case labelStudio = "label-studio" }
    enum ImageMode: String, ExpressibleByArgument { case dataURL = "data-url", localFiles = "local-files" }

    @OptionGroup var options: PipelineOptions
    @Option(help: "The interchange format.")
    var format: Format = .labelStudio
    @Option(help: "The folder to write (replaced whole).")
    var output: String
    @Option(help: "data-url: each image inline; local-files: images copied under the output folder and named by Label Studio's /data/local-files/ route.")
    var images: ImageMode = .dataURL
    @Option(help: "For local-files: Label Studio's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT, which must hold the output folder.")
    var documentRoot: String?

    public init() {}

    public func run() throws {
        try reportingErrors {
            let mode: LabelStudio.Images
            switch images {
            case .dataURL: mode = .dataURL
            case .localFiles:
                guard let documentRoot else { throw ValidationError("--images local-files needs --document-root DIR (Label Studio's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT)") }
                mode = .localFiles(documentRoot: documentRoot)
            }
            let session = try reviewSession(options)
            let count = try LabelStudio.export(session, to: output, images: mode)
            print("wrote \(count) Label Studio tasks to \(FileSystem.join(output, "tasks.json")) and the labeling config to \(FileSystem.join(output, "label-config.xml"))")
        }
    }
}

public struct ReviewImportCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Read a Label Studio JSON export of those tasks back into the workdir's review decisions.")

    @OptionGroup var options: PipelineOptions
    @Argument(help: "Label Studio's JSON export (a list of tasks with their annotations).")
    var file: String
    @Option(help: "The interchange format.")
    var format: ReviewExportCommand.Format = .labelStudio

    public init() {}

    public func run() throws {
        try reportingErrors {
            let session = try reviewSession(options)
            let state = ReviewState(try session.store.load().decisions)
            let decisions = try LabelStudio.decisions(fromExport: file, session: session, state: state)
            try session.store.append(decisions)
            let counts = Dictionary(grouping: decisions, by: \.action.rawValue).mapValues(\.count)
            let summary = counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            print("imported \(decisions.count) decision\(decisions.count == 1 ? "" : "s")\(summary.isEmpty ? " (all were already recorded)" : ": \(summary)") into \(session.store.path)")
        }
    }
}

public struct ReviewStatusCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Print how far the review is, per reviewer, and the agreement between reviewers.")

    @OptionGroup var options: PipelineOptions

    public init() {}

    public func run() throws {
        try reportingErrors {
            let session = try reviewSession(options)
            let loaded = try session.store.load()
            let state = ReviewState(loaded.decisions)
            let ids = Set(session.pairs.map(\.id))
            print("\(session.count) pairs under review; \(loaded.decisions.count) decisions in \(session.store.path)")
            if loaded.tornTail { print("note: the store's last line was cut short by a crash; it was never acknowledged and is ignored") }
            for reviewer in state.reviewers {
                var counts: [String: Int] = [:]
                for pair in ids { if let decision = state.current(pair, reviewer: reviewer) { counts[decision.action.rawValue, default: 0] += 1 } }
                let total = counts.values.reduce(0, +)
                print("  \(reviewer): \(total) reviewed (accept \(counts["accept"] ?? 0), edit \(counts["edit"] ?? 0), reject \(counts["reject"] ?? 0))")
            }
            print("agreement: \(state.agreement(over: ids).summary)")
        }
    }
}
