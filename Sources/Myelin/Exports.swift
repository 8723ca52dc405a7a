@_exported import MyelinCore
