/** Defaults and bounds of job options, shared by server validation, SDKs and docs. */
export const JOB_LIMITS = {
  scriptMaxBytes: 1024 * 1024,
  nameMaxLength: 128,
  environmentMaxVars: 256,
  environmentValueMaxBytes: 64 * 1024,
  defaultVcpus: 2,
  maxVcpus: 64,
  defaultMemoryMb: 1024,
  minMemoryMb: 64,
  maxMemoryMb: 256 * 1024,
  defaultDiskGb: 2,
  maxDiskGb: 1024,
  defaultPageSize: 20,
  maxPageSize: 100,
} as const;
