import VSwitchControl

/// Value syntax of lab files: the one vswitchd also uses (VSwitchControl.ValueSyntax).
typealias LabValues = ValueSyntax
