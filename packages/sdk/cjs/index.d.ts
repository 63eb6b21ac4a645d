// Types of the CommonJS entry: `require('@mags/sdk')` is the Mags class with every export attached
// (see index.js). The namespace carries the type exports, so `Mags.Job`, `Mags.MagsError` and
// `import type { Job } from '@mags/sdk'` work from CommonJS too; test/package.test.ts checks that it
// names every type the ESM entry exports.
import * as sdk from './out/index.js';
declare const Mags: typeof sdk.Mags & typeof sdk & { default: typeof sdk.Mags };
declare namespace Mags {
  // Classes (their instance types).
  export type Mags = sdk.Mags;
  export type MagsError = sdk.MagsError;
  export type AuthenticationError = sdk.AuthenticationError;
  export type NotFoundError = sdk.NotFoundError;
  export type ValidationError = sdk.ValidationError;
  export type TimeoutError = sdk.TimeoutError;
  export type ConnectionError = sdk.ConnectionError;
  // Options and results of the client.
  export type MagsOptions = sdk.MagsOptions;
  export type RunOptions = sdk.RunOptions;
  export type RunAndWaitOptions = sdk.RunAndWaitOptions;
  export type RunResult = sdk.RunResult;
  export type NewOptions = sdk.NewOptions;
  export type ExecResult = sdk.ExecResult;
  export type CallOptions = sdk.CallOptions;
  export type FetchLike = sdk.FetchLike;
  export type RawOutput = sdk.RawOutput;
  export type StdinAnswer = sdk.StdinAnswer;
  export type DeleteJobAnswer = sdk.DeleteJobAnswer;
  export type ClientErrorCode = sdk.ClientErrorCode;
  export type MagsErrorCode = sdk.MagsErrorCode;
  export type MagsErrorOptions = sdk.MagsErrorOptions;
  export type ClientConfigFile = sdk.ClientConfigFile;
  export type ResolvedSettings = sdk.ResolvedSettings;
  export type TokenSource = sdk.TokenSource;
  export type UrlSource = sdk.UrlSource;
  export type CamelCase<S extends string> = sdk.CamelCase<S>;
  export type Camelize<T> = sdk.Camelize<T>;
  // Wire types (generated from spec/openapi.json).
  export type ErrorBody = sdk.ErrorBody;
  export type ServerErrorCode = sdk.ServerErrorCode;
  export type SubmitBody = sdk.SubmitBody;
  export type SubmitResponse = sdk.SubmitResponse;
  export type Job = sdk.Job;
  export type JobStatus = sdk.JobStatus;
  export type JobList = sdk.JobList;
  export type LogEntry = sdk.LogEntry;
  export type LogLevel = sdk.LogLevel;
  export type LogStream = sdk.LogStream;
  export type Logs = sdk.Logs;
  export type LogEnd = sdk.LogEnd;
  export type UpdateBody = sdk.UpdateBody;
  export type UpdateResponse = sdk.UpdateResponse;
  export type StopResponse = sdk.StopResponse;
  export type PoolStatus = sdk.PoolStatus;
  export type Me = sdk.Me;
  export type TokenCreated = sdk.TokenCreated;
  export type TokenInfo = sdk.TokenInfo;
  export type TokenList = sdk.TokenList;
  export type TokenRevoked = sdk.TokenRevoked;
  export type User = sdk.User;
  export type UserCreated = sdk.UserCreated;
  export type UserList = sdk.UserList;
  export type Health = sdk.Health;
  export type Access = sdk.Access;
  export type Success = sdk.Success;
  export type ExecResponse = sdk.ExecResponse;
  export type Workspace = sdk.Workspace;
  export type WorkspaceList = sdk.WorkspaceList;
  export type SyncResponse = sdk.SyncResponse;
  export type UploadResult = sdk.UploadResult;
  export type UploadedFile = sdk.UploadedFile;
  export type UploadedFileList = sdk.UploadedFileList;
  export type FileDeleted = sdk.FileDeleted;
  export type WorkspaceVersion = sdk.WorkspaceVersion;
  export type WorkspaceHistory = sdk.WorkspaceHistory;
  export type RestoreResponse = sdk.RestoreResponse;
  export type ResizeResponse = sdk.ResizeResponse;
  export type UrlAlias = sdk.UrlAlias;
  export type UrlAliasList = sdk.UrlAliasList;
}
export = Mags;
