import COpenCL

/// The limits a launch must respect: `CL_DEVICE_MAX_WORK_GROUP_SIZE` (lowered to a cap when one is given),
/// `CL_DEVICE_MAX_WORK_ITEM_SIZES` and `CL_DEVICE_LOCAL_MEM_SIZE`.
struct LaunchLimits: Sendable {
    /// The most work-items in one work-group (after the cap).
    let maxWorkGroupSize: Int
    /// The most work-items along each dimension of a work-group.
    let maxWorkItemSizes: [Int]
    /// Bytes of local memory a work-group may use.
    let localMemorySize: Int
    /// The cap asked for (`MYELIN_MAX_WORK_GROUP_SIZE` or `OpenCLBackend(maxWorkGroupSize:)`), if any.
    let cap: Int?

    init(device: cl_device_id, cap: Int?) {
        let deviceMax = Int(OpenCLPlatforms.deviceValue(device, CL_DEVICE_MAX_WORK_GROUP_SIZE, Int.self))
        self.cap = cap.map { max($0, 1) }
        maxWorkGroupSize = max(1, min(deviceMax, self.cap ?? deviceMax))
        let dimensions = Int(OpenCLPlatforms.deviceValue(device, CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS, cl_uint.self))
        var sizes = [Int](repeating: 0, count: max(dimensions, 1))
        sizes.withUnsafeMutableBytes { raw in
            _ = clGetDeviceInfo(device, cl_device_info(CL_DEVICE_MAX_WORK_ITEM_SIZES), raw.count, raw.baseAddress, nil)
        }
        maxWorkItemSizes = sizes.map { $0 > 0 ? $0 : deviceMax }
        localMemorySize = Int(clamping: OpenCLPlatforms.deviceValue(device, CL_DEVICE_LOCAL_MEM_SIZE, cl_ulong.self))
    }
}
