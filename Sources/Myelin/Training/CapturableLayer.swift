// Which layers `fit` may train with a captured step (see `CapturedStep.isBuiltIn`).

/// A layer type of Myelin's own that keeps capture's rules: its forward and backward pass read nothing back to
/// the host that changes between steps, update its state tensors in place, and note per-step seeds (Dropout's
/// mask seeds) so that a replay draws them as an eager step would. A record freezes any host state a forward
/// pass depends on without noticing, so `fit` captures a model only when every layer conforms: a layer type of
/// a program's own (which cannot conform, the protocol being internal) makes it train eagerly.
///
/// Only types whose subclasses all belong to Myelin may conform (final classes, or public classes that are not
/// open, such as `ActivationLayer`): a subclass inherits the conformance. A new layer type of Myelin's own that
/// keeps these rules is added below; containers (`Sequential`, `Residual`) are checked layer by layer instead.
protocol CapturableLayer: Layer {}

extension ActivationLayer: CapturableLayer {}   // ReLU, Sigmoid, Tanh, ... (subclasses, all in Myelin)
extension Softmax: CapturableLayer {}
extension Flatten: CapturableLayer {}
extension Dropout: CapturableLayer {}
extension Reshape: CapturableLayer {}
extension Dense: CapturableLayer {}
extension BatchNorm: CapturableLayer {}
extension Conv2D: CapturableLayer {}
extension MaxPool2D: CapturableLayer {}
extension AvgPool2D: CapturableLayer {}
extension GlobalAvgPool2D: CapturableLayer {}
extension ResidualBlock: CapturableLayer {}
extension Embedding: CapturableLayer {}
extension LayerNorm: CapturableLayer {}
extension MultiHeadAttention: CapturableLayer {}   // its dropouts note their seeds as `Dropout` does
extension TransformerMLP: CapturableLayer {}
extension TransformerBlock: CapturableLayer {}
