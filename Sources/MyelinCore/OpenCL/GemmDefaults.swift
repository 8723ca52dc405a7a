import Foundation

// The built-in GEMM kernel choice of an OpenCL device without a tuning table (see OpenCLBackend+Gemm.swift).

/// The built-in choice when a device has no tuning table: GPU-style tiles through local memory on GPUs (the
/// GPU-grade tiles of `fragTiles` on NVIDIA and AMD; with K split for `deep` products, so that every compute unit
/// gets work), the register-block kernels on CPU OpenCL (PoCL) for small products and the K-blocked packed panels
/// there from 2²⁶ FLOPs on.
enum GemmDefaults {
    /// The kernel for `s` on a device of this type and vendor with these limits.
    static func kernel(for s: GemmShape, info: OpenCLDeviceInfo, limits: LaunchLimits) -> GemmKernelChoice.Kernel {
        if info.isGPU {
            let deep = GemmShapeClass.isDeep(s)
            // Few rows or columns and a short K: one work-item per output is as good as a tile.
            if !deep && (s.m < 8 || s.n <= 16) { return .direct }
            guard let v = gpuTile(for: s, info: info, limits: limits) else { return .direct }
            if deep { return .variant(split(v, for: s, computeUnits: info.computeUnits)) }
            return .variant(v)
        }
        let cpu = GemmKernelChoice.choose(s)
        // From about the MLP's products (128×784×512) up: packed panels of 6 x 16 (15 of the 16 AVX2 vector
        // registers; the 8 x 16 blocks spill there) with K blocks that keep the panels in the caches (the 8 x 16
        // blocks fall to a third of the cores' speed from n = 2048 on).
        // The GPU-grade tiles (`fragTiles`) measured slower on PoCL than these (see BENCHMARKS.md), so CPU devices
        // keep them.
        if case .direct = cpu { return cpu }
        if case .skinny = cpu { return cpu }
        if 2.0 * Double(s.m) * Double(s.n) * Double(s.k) >= 0x1p26 { return .variant(panelPacksA(s) ? cpuWide : cpuLarge) }
        return cpu
    }

    /// The GPU-grade tiles NVIDIA and AMD GPUs use without a table, the largest first (vector width 4, K tiles of
    /// 16, register prefetch; at most 17 KiB of local memory, 64 to 256 work-items).
    static let fragTiles: [GemmVariant] = [
        .frag(128, 128, k: 16, w: 8, 8), .frag(128, 64, k: 16, w: 8, 8), .frag(64, 64, k: 16, w: 4, 4),
        .frag(32, 32, k: 16, w: 4, 4),
    ]

    /// The tiles a GPU uses without a table, the preferred first: the GPU-grade `fragTiles` on NVIDIA and AMD, then
    /// the plain 32 x 32 and 16 x 16 tiles (for other GPUs, and devices with smaller work-groups or local memory).
    static func gpuTiles(_ info: OpenCLDeviceInfo) -> [GemmVariant] {
        let vendor = info.vendor.lowercased()
        let big = vendor.contains("nvidia") || vendor.contains("amd") || vendor.contains("advanced micro")
        return (big ? fragTiles : []) + [.tile(tm: 32, tn: 32, tk: 16, wm: 4, wn: 4), .tile(tm: 16, tn: 16, tk: 16, wm: 2, wn: 2)]
    }

    /// The tile for `s` among the `gpuTiles` that fit: of the GPU-grade ones, the largest that still gives every
    /// compute unit a work-group (a 128 x 128 tile would leave most of a GPU idle on a 512 x 512 product; `split`
    /// then adds K slices for a `deep` one), else the smallest; the first plain tile where none fits.
    static func gpuTile(for s: GemmShape, info: OpenCLDeviceInfo, limits: LaunchLimits) -> GemmVariant? {
        let fitting = gpuTiles(info).filter { $0.fits(limits) }
        let frags = fitting.filter { if case .frag = $0 { return true } else { return false } }
        guard let smallest = frags.last else { return fitting.first }
        return frags.first { tiles(of: $0, s) >= max(info.computeUnits, 1) } ?? smallest
    }

    /// How many work-groups (tiles of C) tile variant `v` runs for `s`, before any K-split.
    static func tiles(of v: GemmVariant, _ s: GemmShape) -> Int {
        guard let t = v.tileSize else { return 1 }
        return (s.m + t.tm - 1) / t.tm * ((s.n + t.tn - 1) / t.tn) * s.batch
    }

    /// Tile `v` with K split for the `deep` product `s`: enough slices that the work-groups are at least twice the
    /// device's compute units (a few tiles of C and a long K would leave most of a GPU idle), each slice at least
    /// 4 K tiles long, at most 64 slices (1: no split, when the tiles alone fill the device or K is short).
    static func split(_ v: GemmVariant, for s: GemmShape, computeUnits: Int) -> GemmVariant {
        guard let tk = v.tileSize?.tk else { return v }
        let tiles = tiles(of: v, s)
        let wanted = 2 * max(computeUnits, 1)
        let slices = min(64, (wanted + tiles - 1) / tiles, s.k / (4 * tk))
        return slices >= 2 ? v.withSlices(slices) : v
    }

    /// What runs `s` when variant `v` does not build or fit the device: the direct kernel when there is nothing to
    /// sum; on a GPU the next of `gpuTiles` after `v` (or, for a tile not among them, the largest smaller one) that is
    /// `usable`, with `v`'s K-split, else the direct kernel; on other devices the CPU-device default
    /// (`GemmKernelChoice.choose`).
    static func fallback(for v: GemmVariant, _ s: GemmShape, info: OpenCLDeviceInfo,
                         usable: (GemmVariant) -> Bool) -> GemmKernelChoice.Kernel {
        if s.k == 0 { return .direct }
        guard info.isGPU else { return GemmKernelChoice.choose(s) }
        guard let size = v.tileSize else { return .direct }
        let list = gpuTiles(info)
        let after = list.firstIndex(of: v.withoutSplit.specialised(transA: false, transB: false)).map { Array(list[($0 + 1)...]) }
            ?? list.filter { t in t.tileSize.map { $0.tm * $0.tn < size.tm * size.tn } ?? false }
        for tile in after.map({ $0.withSlices(v.slices) }) where usable(tile) { return .variant(tile) }
        return .direct
    }

    /// Whether the panel kernels pack op(A) too (else gemm_panel reads it in place): from this many columns on,
    /// where the pack is shared by enough column panels.
    static func panelPacksA(_ s: GemmShape) -> Bool { s.n >= panelPackAColumns }

    /// The column count from which `panelPacksA`.
    static let panelPackAColumns = 2048

    /// The panel variant CPU devices use from 2²⁶ FLOPs on without a table.
    static let cpuLarge = GemmVariant.panel(mr: 6, nv: 2, kc: 256, mb: 8, nb: 4)

    /// The panel variant for those products when op(A) is packed (`panelPacksA`): blocks of C of 144 x 128 per
    /// work-item, so that each K block of A (144 x 256, in L2) serves 8 column panels and each of B (256 x 16, in
    /// L1) 24 row panels: at 2048² about 10% faster on one PoCL thread than `cpuLarge`'s 48 x 64, which fetched
    /// its operands from memory again for every small block.
    static let cpuWide = GemmVariant.panel(mr: 6, nv: 2, kc: 256, mb: 24, nb: 8)
}
