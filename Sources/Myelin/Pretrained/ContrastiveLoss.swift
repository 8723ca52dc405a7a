import Foundation

/// sentence-transformers' `MultipleNegativesRankingLoss`, the loss all-MiniLM-L6-v2 was trained with: for
/// `anchors` [N, D] and `positives` [M, D] (M ≥ N; row i of each is a matching pair, rows N..<M of positives are
/// extra negatives), the scores are `scale` · cos(anchor i, positive j), and the loss is their softmax
/// cross-entropy with the label i for row i (mean over the N anchors): each anchor must pick its own positive among
/// all the batch's. Differentiable in both inputs.
///
/// ```swift
/// let loss = try multipleNegativesRankingLoss(anchors: model.embed(questions), positives: model.embed(answers))
/// ```
public func multipleNegativesRankingLoss(anchors: Tensor, positives: Tensor, scale: Float = 20) throws -> Tensor {
    guard anchors.rank == 2, positives.rank == 2, anchors.shape[1] == positives.shape[1], anchors.shape[0] >= 1,
          positives.shape[0] >= anchors.shape[0] else {
        throw TensorError.shapeMismatch(op: "multipleNegativesRankingLoss",
                                        "need anchors [N, D] and positives [M, D] with M ≥ N ≥ 1", anchors.shape, positives.shape)
    }
    let n = anchors.shape[0]
    let scores = try SentenceEncoder.l2Normalized(anchors).matmul(SentenceEncoder.l2Normalized(positives), transposeB: true) * scale
    return try softmaxCrossEntropy(logits: scores, labels: Tensor((0..<n).map(Float.init), shape: [n], on: anchors.device))
}
