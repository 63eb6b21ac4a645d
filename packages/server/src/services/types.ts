/** Domain types the API layer shapes into responses (it never imports storage or runtime directly). */
export type { Job, User, TokenRecord } from '../storage/metadata/store.js';
export type { LogLine } from '../storage/logs/store.js';
export type { PoolStatus } from '../runtime/driver.js';
