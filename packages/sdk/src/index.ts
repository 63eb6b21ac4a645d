/**
 * Node SDK of a self-hosted Mags server, with the class and method names of `@magpiecloud/mags`.
 *
 *   import { Mags } from '@mags/sdk';          // or: const Mags = require('@mags/sdk');
 *   const mags = new Mags();                   // MAGS_API_TOKEN / MAGS_API_URL / ~/.mags/config.json
 *   const r = await mags.runAndWait('echo Hello World');
 */
import { Mags } from './client.js';

export { Mags, SDK_VERSION } from './client.js';
export type {
  MagsOptions,
  RunOptions,
  RunAndWaitOptions,
  RunResult,
  NewOptions,
  ExecResult,
  UploadResult,
  UsageOptions,
  QuotaInput,
  CronCreateOptions,
  CronUpdateOptions,
  WebhookCreateOptions,
  NewResult,
  ExecOptions,
  ExecStreamOptions,
} from './client.js';
export type { UrlCallOptions, UrlAliasOptions } from './client.js';
export {
  MagsError,
  AuthenticationError,
  NotFoundError,
  ValidationError,
  TimeoutError,
  ConnectionError,
  AUTH_HINT,
} from './errors.js';
export type { ClientErrorCode, MagsErrorCode, MagsErrorOptions } from './errors.js';
export type { CallOptions, FetchLike } from './http.js';
export { isConnectionReset } from './http.js';
export { SandboxFiles } from './files.js';
export type { WatchEvent, WriteData } from './files.js';
export {
  DEFAULT_API_URL,
  configPath,
  readConfigFile,
  writeConfigFile,
  removeSavedToken,
  resolveSettings,
} from './config.js';
export type { ClientConfigFile, ResolvedSettings, TokenSource, UrlSource } from './config.js';
export { isTerminalStatus } from './status.js';
export { RAW_STREAM_TYPE } from './raw.js';
export type { RawOutput } from './raw.js';
export type * from './api/types.js';
export type { Camelize, CamelCase } from './wire.js';
export { toCamelCase, toSnakeCase } from './wire.js';

export default Mags;
