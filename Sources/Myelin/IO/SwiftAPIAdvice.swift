// Advice in error messages that names Swift API arguments, kept in one place for tools that replace it.

/// The advice in error messages that names an argument of Myelin's Swift API, each phrase exactly as messages
/// hold it, so that a tool without such an argument (the `myelin` command) can replace it with its own words.
public enum SwiftAPIAdvice {
    /// Ends a `CheckpointError.keysMismatch` message.
    public static let loadNotStrict = " (load with strict: false to copy only the tensors both have)"
    /// Ends a `CheckpointError.nonFinite` message of a save.
    public static let saveNonFinite = "pass allowNonFinite: true to save it anyway"
    /// Ends a `CheckpointError.nonFinite` message of a load.
    public static let loadNonFinite = "pass allowNonFinite: true to load it anyway"
    /// Inside a `TrainingError.diverged` message, after "lower the learning rate".
    public static let noDivergenceCheck = "; fit's divergence: nil turns this check off"
    /// Ends a `CheckpointError.invalid` message for a training checkpoint without its position.
    public static let plainModelFile = "; load a plain model file with Layer.load(from:)"
}
