import LeaklessCore

/// The registry's stages as Markdown: one table of the stages, and one of each stage's
/// parameters (README's tables are this output).
public enum StageTable {
    public static func markdown() -> String {
        var lines = ["| stage | reads | writes | backends | on Slurm | what it does |", "|---|---|---|---|---|---|"]
        for definition in StageRegistry.definitions {
            let reads: String
            switch definition.input {
            case .parameter(let name): reads = "the file in `\(name)`"
            case .records(let kinds): reads = kinds.map { "`\($0)`" }.joined(separator: " or ")
            }
            let writes = definition.outputKind.map { "`\($0)`" } ?? "a folder"
            let roles = definition.roles.isEmpty ? "-" : definition.roles.map { "`\($0.name)`: \($0.serves.joined(separator: "/"))" }.joined(separator: "; ")
            lines.append("| `\(definition.name)` | \(reads) | \(writes) | \(roles) | \(definition.sharding.description) | \(definition.summary) |")
        }
        for definition in StageRegistry.definitions {
            lines += ["", "`\(definition.name)` (version \(definition.version)):", "", "| parameter | type | default | meaning |", "|---|---|---|---|"]
            for parameter in definition.parameters {
                lines.append("| `\(parameter.name)` | \(parameter.type) | `\(JSONWriter.canonical(parameter.defaultValue))` | \(parameter.help) |")
            }
        }
        lines += ["", "`executor` (in pipeline.yaml, and in a stage's own `executor:` over it):", "", "| setting | type | default | meaning |", "|---|---|---|---|"]
        for setting in ExecutorSettings.fields {
            lines.append("| `\(setting.name)` | \(setting.type) | `\(JSONWriter.canonical(setting.defaultValue))` | \(setting.help) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
