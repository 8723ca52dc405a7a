import Foundation

extension MNIST {
    /// Checks the files of `splits` (both by default) from their headers alone, in well under a second whatever
    /// their size: the folder exists; each file exists, is readable and is an IDX file (images
    /// [count, rows, columns], labels [count]); a split's images and labels agree on the count; the images are
    /// `imageSize` when one is given (the size a model takes), else the same size in every split. Each error names
    /// the file. Call it before training so that a bad test file fails now, not after the training run.
    ///
    /// ```swift
    /// try MNIST.validateFiles(directory: MNIST.fashionDirectory, imageSize: (rows: 28, columns: 28))
    /// ```
    public static func validateFiles(directory: URL, imageSize: (rows: Int, columns: Int)? = nil,
                                     splits: [Split] = [.train, .test]) throws {
        var info = stat()
        if stat(directory.path, &info) != 0 {
            throw DataError.invalid(directory.path, reason: "cannot read the data folder (\(FileError.words(errno: errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw DataError.invalid(directory.path, reason: "is not a folder (the data folder holds the IDX files)")
        }
        var size = imageSize.map { [$0.rows, $0.columns] }
        var sizeSource = imageSize.map { "the model takes \($0.rows)×\($0.columns) = \($0.rows * $0.columns) inputs" } ?? ""
        for split in splits {
            let (imagesURL, labelsURL) = files(in: directory, split: split)
            let images = try IDX.header(of: imagesURL)
            let labels = try IDX.header(of: labelsURL)
            guard images.shape.count == 3 else {
                throw DataError.invalid(imagesURL.path, reason: "expected images [count, rows, columns], found dimensions \(images.shape)")
            }
            guard labels.shape.count == 1 else {
                throw DataError.invalid(labelsURL.path, reason: "expected labels [count], found dimensions \(labels.shape)")
            }
            guard images.shape[0] == labels.shape[0] else {
                throw DataError.countMismatch(imagesURL.path, labelsURL.path, images.shape[0], labels.shape[0])
            }
            let found = Array(images.shape[1...])
            if let size, found != size {
                throw DataError.invalid(imagesURL.path, reason: "images are \(found[0])×\(found[1]), expected \(size[0])×\(size[1]) (\(sizeSource))")
            }
            if size == nil { size = found; sizeSource = "the images of \(imagesURL.lastPathComponent)" }
        }
    }
}
