"""Every OpenCL device the ICD loader finds, with its extension list, as one JSON line per device.

`myelin devices` does not print extensions; scripts/gpu-check uses this to tell whether the GPU's driver offers
cl_khr_command_buffer (a graph of launches replayed with one call). Needs only Python's ctypes and libOpenCL.so.1.
"""
import ctypes
import json
import sys

CL_PLATFORM_NAME, CL_PLATFORM_VERSION = 0x0902, 0x0901
CL_DEVICE_TYPE_ALL = 0xFFFFFFFF
CL_DEVICE = {"name": 0x102B, "vendor": 0x102C, "driver_version": 0x102D, "version": 0x102F, "extensions": 0x1030}
CL_DEVICE_MAX_COMPUTE_UNITS, CL_DEVICE_GLOBAL_MEM_SIZE, CL_DEVICE_TYPE = 0x1002, 0x101F, 0x1000


def main():
    try:
        cl = ctypes.CDLL("libOpenCL.so.1")
    except OSError as error:
        print(json.dumps({"error": f"libOpenCL.so.1: {error}"}))
        return 1
    count = ctypes.c_uint32()
    if cl.clGetPlatformIDs(0, None, ctypes.byref(count)) != 0 or count.value == 0:
        print(json.dumps({"error": "no OpenCL platform"}))
        return 1
    platforms = (ctypes.c_void_p * count.value)()
    cl.clGetPlatformIDs(count, platforms, None)

    def text(get, handle, key):
        size = ctypes.c_size_t()
        if get(ctypes.c_void_p(handle), ctypes.c_uint32(key), ctypes.c_size_t(0), None, ctypes.byref(size)) != 0:
            return None
        buf = ctypes.create_string_buffer(size.value)
        get(ctypes.c_void_p(handle), ctypes.c_uint32(key), size, buf, None)
        return buf.value.decode(errors="replace").strip()

    def number(handle, key, ctype):
        value = ctype()
        cl.clGetDeviceInfo(ctypes.c_void_p(handle), ctypes.c_uint32(key), ctypes.c_size_t(ctypes.sizeof(value)),
                           ctypes.byref(value), None)
        return value.value

    index = 0
    for platform in platforms:
        n = ctypes.c_uint32()
        if cl.clGetDeviceIDs(ctypes.c_void_p(platform), ctypes.c_uint64(CL_DEVICE_TYPE_ALL), 0, None, ctypes.byref(n)) != 0:
            continue
        devices = (ctypes.c_void_p * n.value)()
        cl.clGetDeviceIDs(ctypes.c_void_p(platform), ctypes.c_uint64(CL_DEVICE_TYPE_ALL), n, devices, None)
        for device in devices:
            row = {"opencl": index, "platform": text(cl.clGetPlatformInfo, platform, CL_PLATFORM_NAME),
                   "platform_version": text(cl.clGetPlatformInfo, platform, CL_PLATFORM_VERSION)}
            row.update({k: text(cl.clGetDeviceInfo, device, v) for k, v in CL_DEVICE.items()})
            row["gpu"] = bool(number(device, CL_DEVICE_TYPE, ctypes.c_uint64) & 4)
            row["compute_units"] = number(device, CL_DEVICE_MAX_COMPUTE_UNITS, ctypes.c_uint32)
            row["memory_gib"] = round(number(device, CL_DEVICE_GLOBAL_MEM_SIZE, ctypes.c_uint64) / 2 ** 30, 1)
            row["extensions"] = (row["extensions"] or "").split()
            row["cl_khr_command_buffer"] = "cl_khr_command_buffer" in row["extensions"]
            print(json.dumps(row), flush=True)
            index += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
